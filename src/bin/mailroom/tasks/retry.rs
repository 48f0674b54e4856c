//! `mailroom tasks retry`: FAILED or CANCELLED tasks back to READY, by id or by filter;
//! prints the ids it put back, one a line.

use std::process::ExitCode;

use clap::Args;
use mailroom::tasks::{RetrySelection, TaskError, TaskFilter};

use super::{connect, parse_ids, parse_statuses};
use crate::queue::QueueArg;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["ids", "statuses"]))]
pub(crate) struct RetryArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// Retry the FAILED or CANCELLED tasks of this status (FAILED or CANCELLED; repeat for
    /// both) instead of naming ids.
    #[arg(long = "status", value_name = "S", conflicts_with = "ids")]
    statuses: Vec<String>,
    /// With --status: only tasks of this name.
    #[arg(long = "task", value_name = "NAME", requires = "statuses")]
    task: Option<String>,
    /// With --status: only tasks of this queue name.
    #[arg(long = "queue-name", value_name = "Q", requires = "statuses")]
    queue_name: Option<String>,
    /// The tasks to retry.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

pub(crate) async fn run(args: RetryArgs) -> ExitCode {
    let ids = match parse_ids(&args.ids) {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    let selection = if ids.is_empty() {
        match parse_statuses(&args.statuses) {
            Ok(statuses) => RetrySelection::Filter(TaskFilter {
                statuses,
                task_name: args.task.clone(),
                queue_name: args.queue_name.clone(),
                ..TaskFilter::default()
            }),
            Err(code) => return code,
        }
    } else {
        RetrySelection::Ids(ids.clone())
    };
    let ops = match connect(&args.queue.url).await {
        Ok(ops) => ops,
        Err(code) => return code,
    };
    let retried = match ops.retry(&selection).await {
        Ok(r) => r,
        Err(e) => return crate::fail(&e.into()),
    };
    let mut out = String::new();
    for id in &retried {
        out.push_str(&id.to_string());
        out.push('\n');
    }
    crate::print_text(&out);
    // Say why each named task that was not retried stayed as it was.
    let mut code = ExitCode::SUCCESS;
    for id in ids.iter().filter(|id| !retried.contains(id)) {
        match ops.get_result(*id).await {
            Ok(r) => eprintln!(
                "mailroom: {id} was not retried: it is {} (only FAILED and CANCELLED tasks are)",
                r.status
            ),
            Err(e @ TaskError::NotFound { .. }) => {
                eprintln!("mailroom: {e}");
                code = ExitCode::from(crate::exit::DATAERR);
            }
            Err(e) => return crate::fail(&e.into()),
        }
    }
    code
}
