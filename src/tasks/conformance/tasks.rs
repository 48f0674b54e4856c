//! The suite's tasks: [`Echo`], [`SlowBackoff`], [`Progress`] and their [`registry`].

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::tasks::{Registry, RetryPolicy, Task, TaskContext, TaskFailure};

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

/// The suite's task registry.
pub fn registry() -> Registry {
    Registry::new().with(Echo).with(SlowBackoff).with(Progress)
}
