//! One attempt of a claimed task, as the worker runs it: the task's future, stopped when
//! the task is cancelled or its timeout passes, with panics caught.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use crate::tasks::task::ErasedTask;
use crate::tasks::{TaskContext, TaskFailure};

/// How an attempt ended, before it becomes an outcome.
#[derive(Debug)]
pub(super) enum Ending {
    /// The task returned (or panicked, a retryable failure of kind `panic`).
    Returned(Result<serde_json::Value, TaskFailure>),
    /// The task was cancelled while it ran: its future was dropped (or it returned after
    /// seeing the cancellation; what it returned is ignored).
    Cancelled,
    /// The attempt ran past its timeout: its future was dropped.
    TimedOut(Duration),
}

/// Runs `runner` on `args` until it returns, its `ctx.cancellation` is set (by the
/// worker's cancel check) or `timeout` passes — then drops its future at once. A timeout
/// sets the cancellation too, for work the task handed elsewhere.
pub(super) async fn run(
    runner: Arc<dyn ErasedTask>,
    ctx: TaskContext,
    args: serde_json::Value,
    timeout: Option<Duration>,
) -> Ending {
    let cancel = ctx.cancellation.clone();
    let attempt = AssertUnwindSafe(runner.run_json(ctx, args)).catch_unwind();
    let deadline = async {
        match timeout {
            Some(limit) => {
                tokio::time::sleep(limit).await;
                limit
            }
            None => std::future::pending().await,
        }
    };
    // The attempt first: a task that is ready at once (most are) costs no timer or waiter
    // registration beyond its own poll.
    tokio::select! {
        biased;
        returned = attempt => {
            if cancel.is_cancelled() {
                return Ending::Cancelled;
            }
            Ending::Returned(returned.unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the task panicked".to_owned());
                Err(TaskFailure::retry("panic", msg))
            }))
        }
        () = cancel.cancelled() => Ending::Cancelled,
        limit = deadline => {
            cancel.cancel();
            Ending::TimedOut(limit)
        }
    }
}
