//! The suite's tasks: [`Echo`], [`SlowBackoff`], [`Progress`], [`Hang`], [`TimeBoxed`] and
//! their [`registry`].

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::tasks::{Registry, RetryPolicy, Task, TaskContext, TaskFailure, TaskId};

/// Arguments of the suite's [`Echo`] task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoArgs {
    /// Returned on success.
    pub value: serde_json::Value,
    /// Attempts 1..=`fail_first` fail.
    pub fail_first: u32,
    /// Those failures are permanent rather than retryable.
    pub permanent: bool,
}

/// Echoes its value, after failing the first `fail_first` attempts (tiny backoff).
#[derive(Debug)]
pub struct Echo;

#[async_trait]
impl Task for Echo {
    const NAME: &'static str = "conformance.echo";
    type Args = EchoArgs;
    type Output = serde_json::Value;

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
            jitter: 0.25,
        }
    }

    async fn run(
        &self,
        ctx: TaskContext,
        args: EchoArgs,
    ) -> Result<serde_json::Value, TaskFailure> {
        if ctx.attempt <= args.fail_first {
            let msg = format!("attempt {} fails on purpose", ctx.attempt);
            return Err(if args.permanent {
                TaskFailure::permanent("on_purpose", msg)
            } else {
                TaskFailure::retry("on_purpose", msg)
            });
        }
        Ok(json!({"value": args.value, "attempt": ctx.attempt, "id": ctx.id.to_string()}))
    }
}

/// Always fails retryably, with a slow policy (1 h base, 2 h cap) whose bounds the suite
/// checks.
#[derive(Debug)]
pub struct SlowBackoff;

/// [`SlowBackoff`]'s policy.
pub const SLOW_POLICY: RetryPolicy = RetryPolicy {
    base: Duration::from_secs(3600),
    max: Duration::from_secs(7200),
    jitter: 0.25,
};

#[async_trait]
impl Task for SlowBackoff {
    const NAME: &'static str = "conformance.slow_backoff";
    type Args = ();
    type Output = ();

    fn retry_policy(&self) -> RetryPolicy {
        SLOW_POLICY
    }

    async fn run(&self, _ctx: TaskContext, _args: ()) -> Result<(), TaskFailure> {
        Err(TaskFailure::retry("transient", "try later"))
    }
}

/// Arguments of the suite's [`Progress`] task: what earlier attempts did, what is left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressArgs {
    /// The attempts that made progress so far.
    pub done: Vec<u32>,
    /// How many more attempts must make progress before the task succeeds.
    pub left: u32,
    /// Give the next attempt arguments that do not decode (to check they are refused).
    pub garble: bool,
}

/// Makes one step of progress per attempt and retries with the progress in its arguments
/// ([`TaskFailure::with_args`]) until none is left; returns the attempts that made it.
#[derive(Debug)]
pub struct Progress;

#[async_trait]
impl Task for Progress {
    const NAME: &'static str = "conformance.progress";
    type Args = ProgressArgs;
    type Output = Vec<u32>;

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
            jitter: 0.0,
        }
    }

    async fn run(&self, ctx: TaskContext, args: ProgressArgs) -> Result<Vec<u32>, TaskFailure> {
        if args.left == 0 {
            return Ok(args.done);
        }
        let mut done = args.done;
        done.push(ctx.attempt);
        let next = if args.garble {
            json!({"done": "not a list"})
        } else {
            serde_json::to_value(ProgressArgs {
                done,
                left: args.left - 1,
                garble: false,
            })
            .unwrap()
        };
        Err(TaskFailure::retry("partial", "made progress; more to do").with_args(next))
    }
}

/// Arguments of the suite's [`Hang`] task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HangArgs {
    /// How long to run, in milliseconds.
    pub ms: u64,
    /// Run on a blocking thread that the worker cannot stop, looking at
    /// [`TaskContext::is_cancelled`] every few milliseconds (a cooperative task), instead of
    /// awaiting a sleep (which the worker stops by dropping the future).
    pub blocking: bool,
}

/// The attempts of [`Hang`] that saw their cancellation, by task id.
static SAW_CANCELLATION: Mutex<Vec<TaskId>> = Mutex::new(Vec::new());

/// `true` once a blocking [`Hang`] of task `id` saw that it was asked to stop.
pub fn saw_cancellation(id: TaskId) -> bool {
    SAW_CANCELLATION
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&id)
}

/// Runs for a while and returns `"done"`: the task the suite cancels while it runs.
#[derive(Debug)]
pub struct Hang;

#[async_trait]
impl Task for Hang {
    const NAME: &'static str = "conformance.hang";
    type Args = HangArgs;
    type Output = String;

    async fn run(&self, ctx: TaskContext, args: HangArgs) -> Result<String, TaskFailure> {
        let run_for = Duration::from_millis(args.ms);
        if !args.blocking {
            tokio::time::sleep(run_for).await;
            return Ok("done".to_owned());
        }
        let stopped = tokio::task::spawn_blocking(move || {
            let end = std::time::Instant::now() + run_for;
            while std::time::Instant::now() < end {
                if ctx.is_cancelled() {
                    SAW_CANCELLATION
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(ctx.id);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        })
        .await
        .map_err(|e| TaskFailure::retry("join", e.to_string()))?;
        Ok(if stopped { "stopped early" } else { "done" }.to_owned())
    }
}

/// [`TimeBoxed`]'s [`Task::TIMEOUT`].
pub const TIME_BOX: Duration = Duration::from_millis(300);

/// Sleeps for its argument (milliseconds) and returns it, within a [`Task::TIMEOUT`] of
/// [`TIME_BOX`] (tiny backoff).
#[derive(Debug)]
pub struct TimeBoxed;

#[async_trait]
impl Task for TimeBoxed {
    const NAME: &'static str = "conformance.time_boxed";
    const TIMEOUT: Option<Duration> = Some(TIME_BOX);
    type Args = u64;
    type Output = u64;

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
            jitter: 0.0,
        }
    }

    async fn run(&self, _ctx: TaskContext, ms: u64) -> Result<u64, TaskFailure> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }
}

/// The suite's task registry.
pub fn registry() -> Registry {
    Registry::new()
        .with(Echo)
        .with(SlowBackoff)
        .with(Progress)
        .with(Hang)
        .with(TimeBoxed)
}
