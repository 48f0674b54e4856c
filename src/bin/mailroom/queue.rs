//! `mailroom enqueue`, `mailroom worker` and `mailroom status`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mailroom::send_mail::{self, DEFAULT_TRANSPORT, SendMail};
use mailroom::tasks::{self, Registry, TaskId, Worker, shutdown_signal};
use mailroom::{Error, transport};

use crate::input::{TemplatesArg, read_valid_messages};

/// `--queue QUEUE_URL`, shared by the queue commands.
#[derive(Debug, Args)]
pub(crate) struct QueueArg {
    /// Queue URL (sqlite:PATH, postgres://..., immediate:, dummy:).
    #[arg(
        long = "queue",
        env = "MAILROOM_QUEUE",
        value_name = "QUEUE_URL",
        hide_env_values = true
    )]
    pub(crate) url: String,
}

#[derive(Debug, Args)]
pub(crate) struct EnqueueArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// The name of the transport the worker delivers through (its --via NAME=URL).
    #[arg(long, default_value = DEFAULT_TRANSPORT, value_name = "NAME")]
    transport: String,
    #[command(flatten)]
    templates: TemplatesArg,
    /// Mail merge: one message per row of this .csv or .jsonl file (`email`, `name` and
    /// fields for the context), from the one templated MESSAGE.json given.
    #[arg(long, value_name = "ROWS")]
    merge: Option<PathBuf>,
    /// The merge's campaign id (default: derived from MESSAGE.json): the same campaign
    /// merged again enqueues nothing new.
    #[arg(long, value_name = "ID", requires = "merge")]
    campaign: Option<String>,
    /// Enqueue the valid rows of a merge and list the skipped lines on standard error,
    /// instead of enqueuing nothing when a row is bad.
    #[arg(long, requires = "merge")]
    skip_invalid: bool,
    /// Message JSON files (standard input when none).
    files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// A transport: `URL` (the default one) or `NAME=URL`; repeat for several.
    #[arg(long = "via", value_name = "[NAME=]TRANSPORT_URL")]
    via: Vec<String>,
    /// How many tasks run at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Exit once no task is ready.
    #[arg(long)]
    burst: bool,
    /// Lease length in seconds: a task whose worker stops heartbeating returns to the queue after it.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    lease: u64,
    #[command(flatten)]
    signing: crate::render::SigningArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    queue: QueueArg,
    /// The task id `mailroom enqueue` printed.
    task_id: String,
}

/// The send_mail task with the transports named by `--via` (and `MAILROOM_TRANSPORT` as the
/// default when no `--via` names it).
fn send_mail_task(via: &[String]) -> Result<SendMail, Error> {
    let mut task = SendMail::new();
    let mut has_default = false;
    for spec in via {
        let (name, url) = match spec.split_once('=') {
            Some((name, url)) if !name.contains(':') && !name.is_empty() => (name, url),
            _ => (DEFAULT_TRANSPORT, spec.as_str()),
        };
        has_default |= name == DEFAULT_TRANSPORT;
        task = task.transport(name, transport::from_url(url)?);
    }
    if !has_default && let Ok(url) = std::env::var(transport::TRANSPORT_ENV) {
        task = task.transport(DEFAULT_TRANSPORT, transport::from_url(&url)?);
    }
    Ok(task)
}

pub(crate) async fn enqueue(args: EnqueueArgs) -> ExitCode {
    // `immediate:` runs tasks inside enqueue, so it needs the task with its transports.
    let registry = match send_mail_task(&[]) {
        Ok(task) => Registry::new().with(task),
        Err(e) => return crate::fail(&e),
    };
    let backend = match tasks::connect(&args.queue.url, &registry).await {
        Ok(b) => b,
        Err(e) => return crate::fail(&e.into()),
    };
    // Every message is read and validated before anything is stored, and all of them are
    // stored in one transaction: a bad file enqueues nothing, so the corrected set can be
    // enqueued again without duplicates.
    let templates = match args.templates.load() {
        Ok(t) => t,
        Err(e) => return crate::fail(&e),
    };
    let emails = if let Some(rows) = &args.merge {
        match merge(&args, rows, templates.as_ref()) {
            Ok(emails) => emails,
            Err(code) => return code,
        }
    } else {
        match read_valid_messages(&args.files, templates.as_ref()) {
            Ok(emails) => emails,
            Err((source, e)) if source.is_empty() => return crate::fail(&e),
            Err((source, e)) => return crate::fail_in(&source, &e),
        }
    };
    match send_mail::enqueue_many(backend.as_ref(), &emails, &args.transport).await {
        Ok(ids) => {
            let mut out = String::with_capacity(ids.len() * 37);
            for id in ids {
                out.push_str(&id.to_string());
                out.push('\n');
            }
            crate::print_text(&out);
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e),
    }
}

/// The messages of a mail merge, one per row; a bad row fails the whole merge (exit 65,
/// naming its line) unless `--skip-invalid`, which reports it and goes on.
fn merge(
    args: &EnqueueArgs,
    rows_path: &std::path::Path,
    templates: Option<&mailroom::templates::Templates>,
) -> Result<Vec<mailroom::Email>, ExitCode> {
    use std::io::IsTerminal;
    let [message_path] = args.files.as_slice() else {
        return Err(crate::fail(&Error::configuration(
            "merge",
            "a merge takes exactly one MESSAGE.json, the template the rows fill",
        )));
    };
    let Some(templates) = templates else {
        return Err(crate::fail(&Error::configuration(
            "templates",
            "a merge needs templates: give --templates DIR (or set MAILROOM_TEMPLATES)",
        )));
    };
    let source = message_path.display().to_string();
    let json =
        std::fs::read_to_string(message_path).map_err(|e| crate::fail(&Error::io(&source, e)))?;
    let rows = mailroom::templates::read_rows(rows_path).map_err(|e| crate::fail(&e))?;
    let campaign = args
        .campaign
        .clone()
        .unwrap_or_else(|| mailroom::templates::default_campaign(&json));
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(rows.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut emails = Vec::with_capacity(rows.len());
    // Rows are filled in chunks so that the bar moves on long merges.
    for chunk in rows.chunks(1000) {
        let filled = templates
            .merge(&json, chunk, &campaign)
            .map_err(|e| crate::fail_in(&source, &e))?;
        for (line, result) in filled {
            match result {
                Ok(email) => emails.push(email),
                Err(e) if args.skip_invalid => {
                    progress.suspend(|| {
                        eprintln!("mailroom: skipped line {line}: {}", crate::sentence(&e));
                    });
                }
                Err(e) => {
                    progress.finish_and_clear();
                    return Err(crate::fail_in(&rows_path.display().to_string(), &e));
                }
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(emails)
}

pub(crate) async fn worker(args: WorkerArgs) -> ExitCode {
    let task = match send_mail_task(&args.via).and_then(|task| {
        let options = args.signing.sign(mailroom::RenderOptions::new())?;
        Ok(task.render_options(options))
    }) {
        Ok(task) => task,
        Err(e) => return crate::fail(&e),
    };
    if task.transport_names().next().is_none() {
        return crate::fail(&Error::configuration(
            "via",
            "give at least one --via [NAME=]TRANSPORT_URL (or set MAILROOM_TRANSPORT)",
        ));
    }
    if args.concurrency == 0 {
        return crate::fail(&Error::configuration("concurrency", "must be at least 1"));
    }
    // The suppression list lives in the task database: every send checks it.
    let task = if args.queue.url.starts_with("sqlite:") || args.queue.url.starts_with("postgres") {
        match mailroom::deliverability::SuppressionStore::connect(&args.queue.url).await {
            Ok(store) => task.suppressions(store),
            Err(e) => return crate::fail(&e),
        }
    } else {
        task
    };
    let registry = Registry::new().with(task.clone());
    // Only a durable queue can be worked: `immediate:` and `dummy:` are refused here.
    let backend = match tasks::connect_worker(&args.queue.url).await {
        Ok(b) => b,
        Err(e) => return crate::fail(&e.into()),
    };
    let worker = Worker::builder(Arc::clone(&backend), registry)
        .concurrency(args.concurrency)
        .lease(Duration::from_secs(args.lease.max(1)))
        .burst(args.burst)
        .routes(task.routes())
        .build();
    let outcome = worker.run(shutdown_signal()).await;
    task.close().await;
    match outcome {
        Ok(report) => {
            tracing::info!(?report, "worker stopped");
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e.into()),
    }
}

pub(crate) async fn status(args: StatusArgs) -> ExitCode {
    let id: TaskId = match args.task_id.parse() {
        Ok(id) => id,
        Err(_) => {
            return crate::fail(&Error::InvalidMessage {
                field: "TASK_ID".into(),
                reason: format!(
                    "`{}` is not a task id as printed by `mailroom enqueue`",
                    args.task_id
                ),
            });
        }
    };
    let backend = match tasks::connect(&args.queue.url, &Registry::new()).await {
        Ok(b) => b,
        Err(e) => return crate::fail(&e.into()),
    };
    match backend.get_result(id).await {
        Ok(result) => {
            crate::print_line(&serde_json::to_string_pretty(&result).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e.into()),
    }
}
