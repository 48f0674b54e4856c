//! `mailroom tasks cancel`: prints each id and its status afterwards — `CANCELLED` (it
//! never runs), `RUNNING` (its worker was asked to stop it), or the status it had already
//! finished with; `NOT_FOUND` for an unknown id (exit 65 once all are done).

use std::process::ExitCode;

use clap::Args;
use mailroom::tasks::{CancelOutcome, TaskStatus};

use super::{connect, parse_ids};
use crate::queue::QueueArg;

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// The tasks to cancel.
    #[arg(value_name = "ID", required = true)]
    ids: Vec<String>,
}

pub(crate) async fn run(args: CancelArgs) -> ExitCode {
    let ids = match parse_ids(&args.ids) {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    let ops = match connect(&args.queue.url).await {
        Ok(ops) => ops,
        Err(code) => return code,
    };
    let outcomes = match ops.cancel(&ids).await {
        Ok(o) => o,
        Err(e) => return crate::fail(&e.into()),
    };
    let mut out = String::new();
    let mut code = ExitCode::SUCCESS;
    for (id, outcome) in outcomes {
        let status = match outcome {
            CancelOutcome::Cancelled => TaskStatus::Cancelled.as_str(),
            CancelOutcome::Requested => {
                eprintln!("mailroom: {id} is running: its worker was asked to stop it");
                TaskStatus::Running.as_str()
            }
            CancelOutcome::AlreadyFinished(s) => {
                eprintln!("mailroom: {id} had already finished ({s}); nothing changed");
                s.as_str()
            }
            CancelOutcome::NotFound => {
                eprintln!(
                    "mailroom: no task with id `{id}`; it was never enqueued or its result was pruned"
                );
                code = ExitCode::from(crate::exit::DATAERR);
                "NOT_FOUND"
            }
        };
        out.push_str(&format!("{id} {status}\n"));
    }
    crate::print_text(&out);
    code
}
