//! [`Cancellation`]: how a running attempt learns that it was asked to stop (a cancel
//! request, or its timeout), through its [`TaskContext`](super::TaskContext).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A signal that an attempt should stop: set once, seen by every clone. Cheap to clone (one
/// `Arc`).
///
/// A [`Worker`](super::Worker) sets it when someone cancels the running task (and when the
/// attempt's timeout passes), then drops the task's future at its next `.await`. A task
/// that runs long stretches without awaiting (blocking work, a loop over a large batch) can
/// look at [`TaskContext::is_cancelled`](super::TaskContext::is_cancelled) between steps and
/// return early; one that hands work to another task or thread can pass it a clone and
/// `select!` on [`Cancellation::cancelled`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use mailroom::tasks::Cancellation;
///
/// let signal = Cancellation::new();
/// let seen_by_task = signal.clone();
/// assert!(!seen_by_task.is_cancelled());
/// signal.cancel();
/// seen_by_task.cancelled().await; // returns at once
/// assert!(seen_by_task.is_cancelled());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Cancellation {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl Cancellation {
    /// A signal not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the signal (again is a no-op) and wakes every [`Cancellation::cancelled`] waiter.
    pub fn cancel(&self) {
        if !self.inner.cancelled.swap(true, Ordering::SeqCst) {
            self.inner.notify.notify_waiters();
        }
    }

    /// `true` once the signal is set.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the signal is set (at once if it is).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a `cancel` in between still wakes it.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Two handles are equal when they are clones of one signal.
impl PartialEq for Cancellation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Cancellation {}

impl fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellation")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_another_task_cancels() {
        let signal = Cancellation::new();
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        signal.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the waiter woke")
            .expect("the waiter did not panic");
        assert!(signal.is_cancelled());
        assert_ne!(signal, Cancellation::new());
        assert_eq!(signal, signal.clone());
    }
}
