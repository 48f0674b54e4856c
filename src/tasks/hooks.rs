//! Callbacks on a task's life: [`Hooks`] (enqueued, started, finished) and
//! [`WithHooks`], a backend wrapper that calls `enqueued`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Capabilities, ClaimRequest, ClaimedTask, Lease, NewTask, Outcome, OutcomeKind, RescueReport,
    TaskBackend, TaskError, TaskId, TaskResult, WorkerBackend,
};

/// Callbacks on a task's life. Every method has an empty default. `started` and `finished`
/// are called by a [`Worker`](super::Worker) given the hooks with
/// [`WorkerBuilder::hooks`](super::WorkerBuilder::hooks); `enqueued` by a backend wrapped in
/// [`WithHooks`]. Keep them quick: they run on the worker's loop.
pub trait Hooks: Send + Sync + fmt::Debug + 'static {
    /// Tasks were stored (`ids[i]` is the id of `tasks[i]`; a repeated idempotency key gives
    /// the stored task's id).
    fn enqueued(&self, _ids: &[TaskId], _tasks: &[NewTask]) {}
    /// A task was claimed and is about to run.
    fn started(&self, _task: &ClaimedTask) {}
    /// An attempt ended; `applied` is `false` when the backend rejected the outcome because
    /// the lease was no longer held (the task was rescued and may run again elsewhere).
    fn finished(&self, _task: &ClaimedTask, _outcome: &OutcomeKind, _applied: bool) {}
}

/// A backend that calls [`Hooks::enqueued`] after each successful enqueue. It plays the
/// roles its inner backend plays: a [`WorkerBackend`] when that is one.
#[derive(Debug)]
pub struct WithHooks<B> {
    inner: B,
    hooks: Vec<Arc<dyn Hooks>>,
}

impl<B: TaskBackend> WithHooks<B> {
    /// Wraps `inner`, calling `hooks` on enqueue.
    pub fn new(inner: B, hooks: Arc<dyn Hooks>) -> Self {
        WithHooks {
            inner,
            hooks: vec![hooks],
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

#[async_trait]
impl<B: TaskBackend> TaskBackend for WithHooks<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        let copy = tasks.clone();
        let ids = self.inner.enqueue_many(tasks).await?;
        for h in &self.hooks {
            h.enqueued(&ids, &copy);
        }
        Ok(ids)
    }

    async fn get_result(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        self.inner.get_result(id).await
    }
}

#[async_trait]
impl<B: WorkerBackend> WorkerBackend for WithHooks<B> {
    fn queues(&self) -> &[String] {
        self.inner.queues()
    }

    async fn claim(&self, req: &ClaimRequest) -> Result<Vec<ClaimedTask>, TaskError> {
        self.inner.claim(req).await
    }

    async fn heartbeat(
        &self,
        leases: &[Lease],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, TaskError> {
        self.inner.heartbeat(leases, lease, now).await
    }

    async fn finish(&self, outcomes: &[Outcome]) -> Result<Vec<bool>, TaskError> {
        self.inner.finish(outcomes).await
    }

    async fn cancel_requests(&self, worker_id: &str) -> Result<Vec<Lease>, TaskError> {
        self.inner.cancel_requests(worker_id).await
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        max_lease_expiries: u32,
    ) -> Result<RescueReport, TaskError> {
        self.inner.rescue_expired(now, max_lease_expiries).await
    }

    async fn prune(&self, finished_before: DateTime<Utc>) -> Result<u64, TaskError> {
        self.inner.prune(finished_before).await
    }

    async fn held_back_by_rate_limits(&self, req: &ClaimRequest) -> Result<bool, TaskError> {
        self.inner.held_back_by_rate_limits(req).await
    }

    async fn wait_for_tasks(&self, queues: &[String], timeout: Duration) {
        self.inner.wait_for_tasks(queues, timeout).await;
    }
}
