//! `mailroom`: render, send, enqueue and work email from the command line, and operate
//! the queue (`tasks list|stats|retry|cancel`, `queue pause|resume|limit`).
//!
//! Exit status follows sysexits, from the error's [`mailroom::ErrorKind`]: 0 success,
//! 64 usage or configuration, 65 invalid input, 69 permanent delivery failure, 74 I/O or
//! storage error, 75 transient failure (see `exit.rs`).

mod check;
mod csp;
mod exit;
mod input;
mod queue;
mod queue_control;
mod render;
mod send;
mod serve;
mod suppress;
mod tasks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use exit::exit_code;

/// Compose, sign, queue and deliver email.
#[derive(Debug, Parser)]
#[command(name = "mailroom", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the message bytes (RFC 5322) to standard output.
    Render(render::RenderArgs),
    /// Print the Content-Security-Policy the message's HTML body renders under.
    Csp(csp::CspArgs),
    /// Deliver messages now; one JSON line per message.
    Send(send::SendArgs),
    /// Store a send_mail task per message; prints one task id per line.
    Enqueue(queue::EnqueueArgs),
    /// Run queued tasks until stopped (SIGTERM/Ctrl-C finish running tasks and exit 0).
    Worker(queue::WorkerArgs),
    /// Print a task's result as JSON.
    Status(queue::StatusArgs),
    /// Look at and steer tasks: list, stats, retry, cancel.
    Tasks {
        #[command(subcommand)]
        command: tasks::TasksCommand,
    },
    /// Steer queues: pause, resume, rate-limit.
    Queue {
        #[command(subcommand)]
        command: queue_control::QueueCommand,
    },
    /// Grade messages against the bulk-sender requirements (exit 1 when one has errors).
    Check(check::CheckArgs),
    /// Add, remove or list suppressed addresses (the queue's database).
    Suppress(suppress::SuppressArgs),
    /// Ingest bounces and complaints: print `KIND ADDRESS STATUS`, suppress hard ones.
    Bounces(suppress::BouncesArgs),
    /// Show the outbox and the template previews in a browser (default http://127.0.0.1:8025/).
    Serve(serve::ServeArgs),
}

/// Reports an error as one sentence on standard error and returns its exit status.
pub(crate) fn fail(err: &mailroom::Error) -> ExitCode {
    eprintln!("mailroom: {}", sentence(err));
    ExitCode::from(exit_code(err))
}

/// The error and its causes as one line: each cause not already part of the text before it
/// is appended after a colon, so "queue error: cannot open the database" gains the reason
/// ("unable to open database file") instead of stopping short of it.
pub(crate) fn sentence(err: &mailroom::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    // One line: a cause that spans lines (a database's multi-line message) is joined.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes one line to standard output.
pub(crate) fn print_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Writes text (already ending in a newline) to standard output.
pub(crate) fn print_text(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Like [`fail`], naming the input (file) the error came from.
pub(crate) fn fail_in(source: &str, err: &mailroom::Error) -> ExitCode {
    eprintln!("mailroom: {source}: {}", sentence(err));
    ExitCode::from(exit_code(err))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    match cli.command {
        Command::Render(args) => render::run(args),
        Command::Csp(args) => csp::run(args),
        Command::Send(args) => block_on(send::run(args)),
        Command::Enqueue(args) => block_on(queue::enqueue(args)),
        Command::Worker(args) => block_on(queue::worker(args)),
        Command::Status(args) => block_on(queue::status(args)),
        Command::Tasks { command } => block_on(tasks::run(command)),
        Command::Queue { command } => block_on(queue_control::run(command)),
        Command::Check(args) => check::run(args),
        Command::Suppress(args) => block_on(suppress::suppress(args)),
        Command::Bounces(args) => block_on(suppress::bounces(args)),
        Command::Serve(args) => block_on(serve::run(args)),
    }
}

/// Logs go to standard error, filtered by `RUST_LOG` (warnings by default), coloured only
/// when standard error is a terminal (a log file or a pipe gets plain text).
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn block_on(future: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(e) => fail(&mailroom::Error::io("tokio runtime", e)),
    }
}
