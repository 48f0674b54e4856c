//! `mailroom tasks list`: tasks newest first, a page at a time (`--after` the `next` of the
//! previous page).

use std::process::ExitCode;

use clap::Args;
use mailroom::tasks::{TaskCursor, TaskFilter, TaskStatus};

use super::{connect, parse_statuses, parse_time, table, when};
use crate::queue::QueueArg;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// Only tasks with this status (READY, RUNNING, SUCCESSFUL, FAILED, CANCELLED); repeat
    /// for several.
    #[arg(long = "status", value_name = "S")]
    statuses: Vec<String>,
    /// Only tasks of this name (e.g. send_mail).
    #[arg(long = "task", value_name = "NAME")]
    task: Option<String>,
    /// Only tasks of this queue name.
    #[arg(long = "queue-name", value_name = "Q")]
    queue_name: Option<String>,
    /// Only tasks enqueued at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    enqueued_after: Option<String>,
    /// Only tasks enqueued before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    enqueued_before: Option<String>,
    /// Only tasks finished at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    finished_after: Option<String>,
    /// Only tasks finished before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    finished_before: Option<String>,
    /// Tasks per page (1 to 1000).
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Start after this cursor: the `next` the previous page printed.
    #[arg(long, value_name = "CURSOR")]
    after: Option<String>,
    /// Print `{"tasks": [...], "next": CURSOR-or-null}` instead of a table.
    #[arg(long)]
    json: bool,
}

impl ListArgs {
    fn filter(&self) -> Result<TaskFilter, ExitCode> {
        Ok(TaskFilter {
            statuses: parse_statuses(&self.statuses)?,
            task_name: self.task.clone(),
            queue_name: self.queue_name.clone(),
            enqueued_after: parse_time("enqueued-after", self.enqueued_after.as_deref())?,
            enqueued_before: parse_time("enqueued-before", self.enqueued_before.as_deref())?,
            finished_after: parse_time("finished-after", self.finished_after.as_deref())?,
            finished_before: parse_time("finished-before", self.finished_before.as_deref())?,
        })
    }
}

pub(crate) async fn run(args: ListArgs) -> ExitCode {
    let filter = match args.filter() {
        Ok(f) => f,
        Err(code) => return code,
    };
    let after = match args
        .after
        .as_deref()
        .map(str::parse::<TaskCursor>)
        .transpose()
    {
        Ok(a) => a,
        Err(e) => return crate::fail(&e.into()),
    };
    let ops = match connect(&args.queue.url).await {
        Ok(ops) => ops,
        Err(code) => return code,
    };
    let page = match ops.list_tasks(&filter, args.limit, after).await {
        Ok(page) => page,
        Err(e) => return crate::fail(&e.into()),
    };
    if args.json {
        crate::print_line(&serde_json::to_string(&page).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if page.tasks.is_empty() {
        crate::print_line("no tasks");
        return ExitCode::SUCCESS;
    }
    let rows: Vec<Vec<String>> = page
        .tasks
        .iter()
        .map(|t| {
            let status = match (t.status, t.cancel_requested_at) {
                (TaskStatus::Running, Some(_)) => "RUNNING (cancel requested)".to_owned(),
                (s, _) => s.to_string(),
            };
            vec![
                t.id.to_string(),
                t.task_name.clone(),
                t.queue_name.clone(),
                status,
                format!("{}/{}", t.attempts, t.max_attempts),
                when(Some(t.enqueued_at)),
                when(t.finished_at),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID", "TASK", "QUEUE", "STATUS", "ATTEMPTS", "ENQUEUED", "FINISHED",
        ],
        &rows,
        &[4],
    );
    if let Some(next) = page.next {
        out.push_str(&format!("next page: --after {next}\n"));
    }
    crate::print_text(&out);
    ExitCode::SUCCESS
}
