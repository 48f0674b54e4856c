//! `mailroom tasks list|stats|retry|cancel`: look at the tasks of a durable queue and steer
//! them (one file per command), and what they share: opening the queue in the operator's
//! role, reading task ids, statuses and times, and printing tables.

mod cancel;
mod list;
mod retry;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use mailroom::Error;
use mailroom::tasks::{self, QueueOperations, TaskId, TaskStatus};

/// The `tasks` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TasksCommand {
    /// List tasks, newest first, a page at a time.
    List(list::ListArgs),
    /// Count the tasks of each queue by status.
    Stats(stats::StatsArgs),
    /// Put FAILED or CANCELLED tasks back to READY; prints their ids.
    Retry(retry::RetryArgs),
    /// Cancel tasks; prints each id and its status afterwards.
    Cancel(cancel::CancelArgs),
}

pub(crate) async fn run(command: TasksCommand) -> ExitCode {
    match command {
        TasksCommand::List(args) => list::run(args).await,
        TasksCommand::Stats(args) => stats::run(args).await,
        TasksCommand::Retry(args) => retry::run(args).await,
        TasksCommand::Cancel(args) => cancel::run(args).await,
    }
}

/// Opens the queue in the operator's role (a durable queue only: `immediate:` or `dummy:`
/// is a usage error).
pub(crate) async fn connect(url: &str) -> Result<Arc<dyn QueueOperations>, ExitCode> {
    tasks::connect_operations(url).await.map_err(|e| match e {
        e @ tasks::TaskError::Unsupported { .. } => {
            crate::fail(&Error::configuration("queue", e.to_string()))
        }
        e => crate::fail(&e.into()),
    })
}

/// Reads task ids as `mailroom enqueue` printed them; a bad one is invalid input.
pub(crate) fn parse_ids(ids: &[String]) -> Result<Vec<TaskId>, ExitCode> {
    ids.iter()
        .map(|id| {
            id.parse().map_err(|_| {
                crate::fail(&Error::InvalidMessage {
                    field: "TASK_ID".into(),
                    reason: format!("`{id}` is not a task id as printed by `mailroom enqueue`"),
                })
            })
        })
        .collect()
}

/// Reads `--status` values (any case).
pub(crate) fn parse_statuses(statuses: &[String]) -> Result<Vec<TaskStatus>, ExitCode> {
    statuses
        .iter()
        .map(|s| TaskStatus::parse(s).map_err(|e| crate::fail(&e.into())))
        .collect()
}

/// Reads an RFC 3339 time given to `--FLAG`.
pub(crate) fn parse_time(
    flag: &str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ExitCode> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    crate::fail(&Error::configuration(
                        flag,
                        format!("`{v}` is not an RFC 3339 time (e.g. 2026-12-01T10:00:00Z): {e}"),
                    ))
                })
        })
        .transpose()
}

/// Lays out rows under a header, each column as wide as its widest cell; columns listed
/// in `right` are right-aligned (numbers).
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A time as the tables show it (UTC, to the second).
pub(crate) fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned())
}
