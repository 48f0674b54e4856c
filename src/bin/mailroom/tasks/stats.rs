//! `mailroom tasks stats`: how many tasks each queue holds in each status, with the queues'
//! stored settings (paused, rate limit) in the table.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use mailroom::tasks::TaskStatus;

use super::{connect, table};
use crate::queue::QueueArg;

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// Print `{"QUEUE": {"READY": n, ...}}` instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: StatsArgs) -> ExitCode {
    let ops = match connect(&args.queue.url).await {
        Ok(ops) => ops,
        Err(code) => return code,
    };
    let counts = match ops.count_tasks().await {
        Ok(c) => c,
        Err(e) => return crate::fail(&e.into()),
    };
    if !counts.exact {
        let which: Vec<String> = counts
            .estimated
            .iter()
            .map(|(q, s)| format!("{q} {s}"))
            .collect();
        eprintln!(
            "mailroom: estimated counts (more than 10,000 tasks, sampled from the status index, \
             typically within a few percent): {}",
            which.join(", ")
        );
    }
    if args.json {
        // Every status of every queue, zeros included, so scripts can read any of them.
        let full: BTreeMap<&str, BTreeMap<&str, u64>> = counts
            .counts
            .iter()
            .map(|(queue, by_status)| {
                let statuses = TaskStatus::ALL
                    .iter()
                    .map(|s| (s.as_str(), by_status.get(s).copied().unwrap_or(0)))
                    .collect();
                (queue.as_str(), statuses)
            })
            .collect();
        crate::print_line(&serde_json::to_string(&full).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let settings = match ops.queue_settings().await {
        Ok(s) => s,
        Err(e) => return crate::fail(&e.into()),
    };
    let mut queues: Vec<&str> = counts.counts.keys().map(String::as_str).collect();
    for s in &settings {
        if !queues.contains(&s.queue_name.as_str()) {
            queues.push(&s.queue_name);
        }
    }
    queues.sort_unstable();
    if queues.is_empty() {
        crate::print_line("no tasks");
        return ExitCode::SUCCESS;
    }
    let empty = BTreeMap::new();
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|queue| {
            let by_status = counts.counts.get(*queue).unwrap_or(&empty);
            let mut row = vec![(*queue).to_owned()];
            for status in TaskStatus::ALL {
                let n = by_status.get(&status).copied().unwrap_or(0);
                row.push(if counts.is_estimated(queue, status) {
                    format!("~{n}")
                } else {
                    n.to_string()
                });
            }
            let setting = settings.iter().find(|s| s.queue_name == *queue);
            row.push(
                if setting.is_some_and(|s| s.paused_at.is_some()) {
                    "paused"
                } else {
                    "-"
                }
                .to_owned(),
            );
            row.push(
                setting
                    .and_then(|s| s.rate_limit.as_ref())
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
            );
            row
        })
        .collect();
    let mut out = table(
        &[
            "QUEUE",
            "READY",
            "RUNNING",
            "SUCCESSFUL",
            "FAILED",
            "CANCELLED",
            "PAUSED",
            "RATE LIMIT",
        ],
        &rows,
        &[1, 2, 3, 4, 5],
    );
    if !counts.exact {
        out.push_str("~ estimated: sampled from the status index (more than 10,000 tasks)\n");
    }
    crate::print_text(&out);
    ExitCode::SUCCESS
}
