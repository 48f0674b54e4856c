//! A small worker process on any task backend, for the multi-process tests and benchmarks:
//! runs `append` tasks, each of which appends `N ATTEMPT WORKER` as one line to a file (a
//! real side effect that survives the process being killed), `noop` tasks, or `abort`
//! tasks, which abort the whole process (a poison task, as a stack overflow would be).
//!
//! ```text
//! task_worker enqueue QUEUE_URL COUNT [--noop]
//! task_worker work QUEUE_URL OUT [--concurrency N] [--lease-ms MS] [--sleep-ms MS] [--poll-ms MS] [--burst] [--periodic CRON]
//! ```
//!
//! With `--periodic CRON`, the worker also runs the schedule `tick`, which enqueues a `noop`
//! task at every slot of `CRON` (as every worker given it does: each slot once).
//!
//! `QUEUE_URL` is a queue URL: `sqlite:PATH`, or (feature `postgres`)
//! `postgres://postgres@127.0.0.1/test?schema=jobs`. `work`
//! stops on SIGTERM or Ctrl-C after finishing its running tasks (or, with `--burst`, when
//! no task is left), prints how many tasks it ran, and exits 0.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use mailroom::tasks::{
    self, NewTask, Periodic, Registry, Task, TaskContext, TaskFailure, Worker, shutdown_signal,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct AppendArgs {
    n: u64,
}

struct Append {
    out: std::path::PathBuf,
    sleep: Duration,
}

#[async_trait::async_trait]
impl Task for Append {
    const NAME: &'static str = "append";
    type Args = AppendArgs;
    type Output = u64;

    async fn run(&self, ctx: TaskContext, args: AppendArgs) -> Result<u64, TaskFailure> {
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        let line = format!(
            "{} {} {}\n",
            args.n,
            ctx.attempt,
            ctx.worker_id.unwrap_or_default()
        );
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.out)
            .map_err(|e| TaskFailure::retry("io", e.to_string()))?;
        // One write of one short line: O_APPEND keeps lines from different processes whole.
        file.write_all(line.as_bytes())
            .map_err(|e| TaskFailure::retry("io", e.to_string()))?;
        Ok(args.n)
    }
}

/// Does nothing: the benchmark's task.
struct Noop;

#[async_trait::async_trait]
impl Task for Noop {
    const NAME: &'static str = "noop";
    type Args = u64;
    type Output = ();

    async fn run(&self, _ctx: TaskContext, _n: u64) -> Result<(), TaskFailure> {
        Ok(())
    }
}

/// Aborts the process, as a task that overflows its thread's stack does: no unwinding, no
/// outcome, every task beside it killed.
struct Abort;

#[async_trait::async_trait]
impl Task for Abort {
    const NAME: &'static str = "abort";
    type Args = ();
    type Output = ();

    async fn run(&self, _ctx: TaskContext, _args: ()) -> Result<(), TaskFailure> {
        std::process::abort()
    }
}

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let usage = "usage: task_worker enqueue QUEUE_URL COUNT [--noop] | work QUEUE_URL OUT [--concurrency N] [--lease-ms MS] [--sleep-ms MS] [--poll-ms MS] [--burst] [--periodic CRON]";
    let (cmd, url) = match (args.first(), args.get(1)) {
        (Some(c), Some(u)) => (c.as_str(), u),
        _ => return Err(usage.to_owned()),
    };
    // Both commands take a durable queue (sqlite:PATH or postgres://...), which a worker
    // can pull from.
    let backend = tasks::connect_worker(url)
        .await
        .map_err(|e| e.to_string())?;
    match cmd {
        "enqueue" => {
            let count: u64 = args.get(2).and_then(|c| c.parse().ok()).ok_or(usage)?;
            let noop = args.iter().any(|a| a == "--noop");
            let tasks: Vec<NewTask> = (0..count)
                .map(|n| {
                    if noop {
                        NewTask::new(Noop::NAME, serde_json::json!(n))
                    } else {
                        NewTask::new(Append::NAME, serde_json::json!({ "n": n }))
                    }
                })
                .collect();
            let ids = backend
                .enqueue_many(tasks)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", ids.len());
            Ok(())
        }
        "work" => {
            let out = args.get(2).ok_or(usage)?.into();
            let concurrency = flag(&args, "--concurrency", 8)?;
            let lease = Duration::from_millis(flag(&args, "--lease-ms", 30_000)?);
            let sleep = Duration::from_millis(flag(&args, "--sleep-ms", 0)?);
            let poll = Duration::from_millis(flag(&args, "--poll-ms", 20)?);
            let burst = args.iter().any(|a| a == "--burst");
            let registry = Registry::new()
                .with(Append { out, sleep })
                .with(Noop)
                .with(Abort);
            let mut builder = Worker::builder(backend, registry)
                .concurrency(usize::try_from(concurrency).map_err(|e| e.to_string())?)
                .lease(lease)
                .poll_interval(poll)
                .burst(burst);
            if let Some(i) = args.iter().position(|a| a == "--periodic") {
                let cron = args
                    .get(i + 1)
                    .ok_or("--periodic needs a cron expression")?;
                let schedule = Periodic::new("tick", cron, NewTask::new(Noop::NAME, 0.into()))
                    .map_err(|e| e.to_string())?;
                builder = builder.periodic(schedule);
            }
            let report = builder
                .build()
                .run(shutdown_signal())
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", report.claimed);
            Ok(())
        }
        _ => Err(usage.to_owned()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("task_worker: {e}");
            ExitCode::from(64)
        }
    }
}
