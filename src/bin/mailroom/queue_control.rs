//! `mailroom queue pause|resume|limit`: per-queue settings stored in the database, so every
//! worker on every machine follows them.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use mailroom::Error;
use mailroom::tasks::RateLimit;

use crate::queue::QueueArg;
use crate::tasks::connect;

/// The `queue` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Stop every worker claiming from queue NAME (running tasks finish).
    Pause(NameArgs),
    /// Let workers claim from queue NAME again.
    Resume(NameArgs),
    /// Limit how many tasks of queue NAME start per second, minute or hour, across every
    /// worker.
    Limit(LimitArgs),
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// The queue name.
    name: String,
}

#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// The queue name.
    name: String,
    /// `N/s`, `N/m`, `N/h`, or `none` to remove the limit.
    rate: String,
    /// A separate limit per value of these task labels (e.g. `transport,domain` for
    /// send_mail: per transport and recipient domain).
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    key_by: Vec<String>,
}

pub(crate) async fn run(command: QueueCommand) -> ExitCode {
    let (url, name) = match &command {
        QueueCommand::Pause(a) | QueueCommand::Resume(a) => (&a.queue.url, &a.name),
        QueueCommand::Limit(a) => (&a.queue.url, &a.name),
    };
    let limit = match &command {
        QueueCommand::Limit(a) => match parse_limit(a) {
            Ok(l) => l,
            Err(e) => return crate::fail(&e),
        },
        _ => None,
    };
    let ops = match connect(url).await {
        Ok(ops) => ops,
        Err(code) => return code,
    };
    let (done, line) = match &command {
        QueueCommand::Pause(_) => (
            ops.pause_queue(name).await,
            format!("queue {name} paused: workers stop claiming from it within a second"),
        ),
        QueueCommand::Resume(_) => (
            ops.resume_queue(name).await,
            format!("queue {name} resumed"),
        ),
        QueueCommand::Limit(_) => (
            ops.set_rate_limit(name, limit.as_ref()).await,
            match &limit {
                Some(l) => format!("queue {name} limited to {l}"),
                None => format!("queue {name} has no rate limit"),
            },
        ),
    };
    match done {
        Ok(()) => {
            crate::print_line(&line);
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e.into()),
    }
}

fn parse_limit(args: &LimitArgs) -> Result<Option<RateLimit>, Error> {
    let key_by: Vec<&str> = args
        .key_by
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    match RateLimit::parse(&args.rate)? {
        None if !key_by.is_empty() => Err(Error::configuration(
            "key-by",
            "`none` removes the limit; it takes no --key-by",
        )),
        None => Ok(None),
        Some(limit) => {
            let limit = limit.key_by(key_by);
            limit.validate()?;
            Ok(Some(limit))
        }
    }
}
