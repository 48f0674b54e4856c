//! The backend role traits — [`TaskBackend`] (the client role every backend plays) and
//! [`WorkerBackend`] (the worker role of durable backends) — and the values that cross them.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AttemptError, TaskError, TaskId, TaskResult};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;

#[cfg(feature = "sqlite")]
pub(super) mod sqlite;

#[cfg(feature = "postgres")]
pub(super) mod postgres;

pub(super) mod dummy;
pub(super) mod immediate;
mod new_task;
pub(super) mod operations;

pub use new_task::{MAX_TIMEOUT, NewTask, UniqueScope, is_label_name};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod operator;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod rate;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod settings;

/// The lowest priority a task may have.
pub const MIN_PRIORITY: i32 = -100;
/// The highest priority a task may have.
pub const MAX_PRIORITY: i32 = 100;
/// The queue tasks go to unless told otherwise.
pub const DEFAULT_QUEUE: &str = "default";

/// How many times a task's lease may expire (its worker died or hung without an outcome)
/// before the rescuer fails it, whatever attempts remain: a task whose attempts keep
/// crashing the worker process (a stack overflow, an abort, an out-of-memory kill) is failed
/// instead of taking a worker down on each of its attempts. The default of
/// [`WorkerBuilder::max_lease_expiries`](super::WorkerBuilder::max_lease_expiries).
pub const MAX_LEASE_EXPIRIES: u32 = 3;

/// What a backend's client side can do (Django's `supports_*` flags). Whether a worker can
/// pull from it is not a flag but a type: backends that can be worked implement
/// [`WorkerBackend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Tasks may carry a `run_after` time.
    pub supports_defer: bool,
    /// Tasks may carry a priority other than 0.
    pub supports_priority: bool,
    /// [`TaskBackend::get_result`] works.
    pub supports_get_result: bool,
}

impl Capabilities {
    /// Everything supported: a durable queue backend.
    pub const DURABLE: Capabilities = Capabilities {
        supports_defer: true,
        supports_priority: true,
        supports_get_result: true,
    };

    /// Builds a capability set (the struct is `#[non_exhaustive]`).
    pub const fn new(
        supports_defer: bool,
        supports_priority: bool,
        supports_get_result: bool,
    ) -> Self {
        Capabilities {
            supports_defer,
            supports_priority,
            supports_get_result,
        }
    }
}

/// The queues a queue URL's `queues=a,b` parameter lists (blanks dropped; none is an error).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn queue_list(list: &str) -> Result<Vec<String>, TaskError> {
    let queues: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .collect();
    if queues.is_empty() {
        return Err(TaskError::configuration(
            "queue",
            "`queues=` lists no queue",
        ));
    }
    Ok(queues)
}

/// The message of a `lease_expired` error when the task goes back to `READY`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const LEASE_EXPIRED: &str =
    "the worker stopped renewing its lease (it died or hung); the lease expired";

/// The message of the `lease_expired` error that fails a task whose lease expired `limit`
/// times.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn lease_expired_too_often(limit: u32) -> String {
    format!(
        "the task's attempts ended without an outcome {limit} times (the worker died or hung \
         each time); failing it whatever attempts remain"
    )
}

/// Checks that `task`, whose idempotency key `key` is already taken by the stored task
/// `stored` (its id, name and arguments), is the same task: a repeat gets the stored id, a
/// different task with the key is a conflict.
pub(crate) fn same_keyed_task(
    key: &str,
    stored: (TaskId, &str, &serde_json::Value),
    task: &NewTask,
) -> Result<TaskId, TaskError> {
    let (id, name, args) = stored;
    let what = if name != task.task_name {
        format!("task `{name}`")
    } else if args != task.args() {
        "different arguments".to_owned()
    } else {
        return Ok(id);
    };
    Err(TaskError::Conflict {
        field: "idempotency_key",
        reason: format!(
            "`{key}` is already used by task {id} with {what}; enqueue different work under a new key (the same task under the same key gets that task's id)"
        ),
    })
}

/// Puts claimed tasks (each with its enqueue sequence number) in the order every backend
/// claims in: highest priority first, then earliest `run_after`, then enqueue order.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn in_claim_order(mut claimed: Vec<(i64, ClaimedTask)>) -> Vec<ClaimedTask> {
    claimed.sort_by(|(sa, a), (sb, b)| {
        b.priority
            .cmp(&a.priority)
            .then(a.run_after.cmp(&b.run_after))
            .then(sa.cmp(sb))
    });
    claimed.into_iter().map(|(_, c)| c).collect()
}

/// Which attempt of which task a worker holds. Every write about a running task is fenced by
/// the whole lease: it applies only while the task is `RUNNING` under this worker and attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// The task.
    pub id: TaskId,
    /// The worker holding it.
    pub worker_id: String,
    /// The attempt it holds (1-based).
    pub attempt: u32,
}

/// A request to claim up to `limit` ready tasks.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The claiming worker's id (recorded in the task and its `worker_ids`).
    pub worker_id: String,
    /// The queues to claim from.
    pub queues: Vec<String>,
    /// At most this many tasks.
    pub limit: usize,
    /// How long the lease lasts without a heartbeat.
    pub lease: Duration,
    /// "Now": tasks with `run_after <= now` are ready; leases expire at `now + lease`.
    pub now: DateTime<Utc>,
    /// An isolated claim: the caller runs what it gets with nothing else beside it. Only
    /// isolated claims take *suspects*, tasks whose lease expired before
    /// ([`ClaimedTask::lease_expiries`] > 0): one of them may be what crashed its last
    /// worker, so it must not take other tasks down with it again. Ordinary claims skip
    /// them.
    pub isolated: bool,
    /// Claim only tasks of these names (`None`: any name). A worker passes the names its
    /// [`Registry`](super::Registry) holds, so it never takes a task it cannot run.
    pub task_names: Option<Vec<String>>,
    /// Claim only tasks without a route or with one of these ([`NewTask::route`]); `None`:
    /// any route.
    pub routes: Option<Vec<String>>,
}

impl ClaimRequest {
    /// When the leases of this claim expire: `now + lease`.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn lease_expiry(&self) -> Result<DateTime<Utc>, TaskError> {
        let lease = chrono::Duration::from_std(self.lease)
            .map_err(|e| TaskError::storage("lease too long", e))?;
        Ok(self.now + lease)
    }
}

/// A task a worker has claimed, with its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    /// The lease to present when finishing it.
    pub lease: Lease,
    /// The registered task name.
    pub task_name: String,
    /// The queue it came from.
    pub queue_name: String,
    /// Its priority.
    pub priority: i32,
    /// Its JSON arguments.
    pub args: serde_json::Value,
    /// How many attempts it may have in all.
    pub max_attempts: u32,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// The `run_after` it was ready at.
    pub run_after: DateTime<Utc>,
    /// When the lease expires unless extended by a heartbeat.
    pub lease_expires_at: DateTime<Utc>,
    /// How many earlier attempts ended without an outcome (their lease expired); a task
    /// with any is a *suspect*, run alone (see [`ClaimRequest::isolated`]).
    pub lease_expiries: u32,
    /// The longest this attempt may run ([`NewTask::timeout`]; `None`: the task's own
    /// [`Task::TIMEOUT`](super::Task::TIMEOUT)).
    pub timeout: Option<Duration>,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeKind {
    /// Success: store the return value, status `SUCCESSFUL`.
    Succeeded {
        /// The JSON return value.
        return_value: serde_json::Value,
    },
    /// A retryable failure: record the error, status `READY` again from `run_after`.
    Retry {
        /// The error of this attempt.
        error: AttemptError,
        /// When the next attempt may start.
        run_after: DateTime<Utc>,
        /// New arguments for the next attempt, replacing the stored ones
        /// ([`TaskFailure::with_args`](super::TaskFailure::with_args)).
        args: Option<serde_json::Value>,
    },
    /// A final failure: record the error, status `FAILED`.
    Failed {
        /// The error of this attempt.
        error: AttemptError,
        /// New arguments replacing the stored ones, for a later manual retry.
        args: Option<serde_json::Value>,
    },
    /// The task was cancelled while this attempt ran ([`WorkerBackend::cancel_requests`])
    /// and the worker stopped it: record the error (kind `cancelled`), status `CANCELLED`.
    Cancelled {
        /// The entry for this attempt in the task's errors.
        error: AttemptError,
    },
}

/// The end of one attempt, fenced by its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The lease the worker holds.
    pub lease: Lease,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// How it ended.
    pub kind: OutcomeKind,
}

/// What a rescue pass did with expired leases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RescueReport {
    /// Tasks returned to `READY`.
    pub retried: u64,
    /// Tasks marked `FAILED` because they had no attempts left or their lease expired
    /// `max_lease_expiries` times.
    pub failed: u64,
}

/// The client role every backend plays (immediate, dummy, SQLite, PostgreSQL): enqueue
/// tasks and read their results. Object safe: use `Arc<dyn TaskBackend>`.
///
/// A backend a [`Worker`](super::Worker) can pull from also implements [`WorkerBackend`];
/// one that cannot (it runs tasks at enqueue, or never) does not, so giving it to a worker
/// does not compile.
#[async_trait]
pub trait TaskBackend: Send + Sync + fmt::Debug + 'static {
    /// A short name: `sqlite`, `postgres`, `immediate`, `dummy`.
    fn name(&self) -> &'static str;

    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;

    /// Validates and stores `tasks` atomically (all or none), returning their ids in order.
    /// A task whose idempotency key is already stored (or earlier in `tasks`) gets that
    /// task's id if it is the same task (name and arguments); if it is not, the whole call
    /// fails with [`TaskError::Conflict`] and stores nothing.
    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError>;

    /// Validates and stores one task.
    async fn enqueue(&self, task: NewTask) -> Result<TaskId, TaskError> {
        let ids = self.enqueue_many(vec![task]).await?;
        ids.into_iter().next().ok_or_else(|| TaskError::Storage {
            message: "enqueue returned no id".to_owned(),
            source: None,
        })
    }

    /// The task's current result. [`TaskError::NotFound`] when there is none.
    async fn get_result(&self, id: TaskId) -> Result<TaskResult, TaskError>;
}

/// The worker role of a durable backend (SQLite, PostgreSQL): the storage side of a
/// [`Worker`](super::Worker) — claim ready tasks under a lease, renew leases, record
/// outcomes, rescue expired leases and prune old results. Object safe: use
/// `Arc<dyn WorkerBackend>`, which upcasts to `Arc<dyn TaskBackend>` for clients.
#[async_trait]
pub trait WorkerBackend: TaskBackend {
    /// The queue names this backend accepts (the queues a worker works by default).
    fn queues(&self) -> &[String];

    /// Claims up to `req.limit` ready tasks (status `READY`, `run_after <= now`, in
    /// `req.queues`), highest priority first, then earliest `run_after`, then enqueue order.
    /// Each claim increments the attempt and records the worker and lease expiry.
    async fn claim(&self, req: &ClaimRequest) -> Result<Vec<ClaimedTask>, TaskError>;

    /// Extends each lease to `now + lease`; `false` for a lease no longer held.
    async fn heartbeat(
        &self,
        leases: &[Lease],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, TaskError>;

    /// Records how attempts ended; per outcome, `true` if applied, `false` if the lease was
    /// no longer held (a stale completion, rejected). A [`OutcomeKind::Retry`] of a task
    /// whose cancel was requested meanwhile makes it `CANCELLED`, not `READY`: a cancelled
    /// task never runs again.
    async fn finish(&self, outcomes: &[Outcome]) -> Result<Vec<bool>, TaskError>;

    /// The leases held by `worker_id` whose tasks someone asked to cancel while they run
    /// (a `RUNNING` task with a cancel request, see
    /// [`QueueOperations::cancel`](super::QueueOperations::cancel)). A worker asks about once a
    /// second while it holds leases, stops those attempts and finishes them with
    /// [`OutcomeKind::Cancelled`]. The default, for a backend that stores no cancel
    /// requests, is none.
    async fn cancel_requests(&self, worker_id: &str) -> Result<Vec<Lease>, TaskError> {
        let _ = worker_id;
        Ok(Vec::new())
    }

    /// Returns every `RUNNING` task whose lease expired before `now` to `READY` (run at
    /// once), recording a `lease_expired` error and counting the expiry
    /// ([`ClaimedTask::lease_expiries`]). A task with no attempts left, or whose lease has
    /// now expired `max_lease_expiries` times, goes to `FAILED` instead (the message of its
    /// last `lease_expired` error says which); one whose cancel was requested goes to
    /// `CANCELLED` (counted as failed).
    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        max_lease_expiries: u32,
    ) -> Result<RescueReport, TaskError>;

    /// Deletes `SUCCESSFUL`, `FAILED` and `CANCELLED` tasks that finished before `finished_before`;
    /// returns how many.
    async fn prune(&self, finished_before: DateTime<Utc>) -> Result<u64, TaskError>;

    /// Whether a claim like `req` found nothing only because of rate limits: some task it
    /// would take is `READY` in a rate-limited (and not paused) queue, waiting for a token.
    /// A burst worker keeps waiting instead of exiting then. The default (a backend without
    /// rate limits) is `false`.
    async fn held_back_by_rate_limits(&self, req: &ClaimRequest) -> Result<bool, TaskError> {
        let _ = req;
        Ok(false)
    }

    /// Waits until tasks may have been enqueued on `queues` or `timeout` passes, whichever
    /// comes first; an idle worker calls this between polls. The default just sleeps;
    /// the PostgreSQL backend wakes on `LISTEN`/`NOTIFY`.
    async fn wait_for_tasks(&self, queues: &[String], timeout: Duration) {
        let _ = queues;
        tokio::time::sleep(timeout).await;
    }
}

/// Test shortcuts over [`WorkerBackend::finish`] for one attempt at the current time
/// (feature `test-util`): the conformance suite and tests use them; a worker reports
/// outcomes in batches through `finish`.
#[cfg(any(test, feature = "test-util"))]
#[async_trait]
pub trait WorkerBackendExt: WorkerBackend {
    /// Marks the attempt successful (fenced by `lease`).
    async fn complete(
        &self,
        lease: &Lease,
        return_value: serde_json::Value,
    ) -> Result<bool, TaskError> {
        let o = Outcome {
            lease: lease.clone(),
            at: Utc::now(),
            kind: OutcomeKind::Succeeded { return_value },
        };
        Ok(self.finish(&[o]).await?.first().copied().unwrap_or(false))
    }

    /// Marks the task failed for good (fenced by `lease`).
    async fn fail(&self, lease: &Lease, error: AttemptError) -> Result<bool, TaskError> {
        let o = Outcome {
            lease: lease.clone(),
            at: Utc::now(),
            kind: OutcomeKind::Failed { error, args: None },
        };
        Ok(self.finish(&[o]).await?.first().copied().unwrap_or(false))
    }

    /// Returns the task to `READY` from `run_after` (fenced by `lease`).
    async fn retry(
        &self,
        lease: &Lease,
        error: AttemptError,
        run_after: DateTime<Utc>,
    ) -> Result<bool, TaskError> {
        let o = Outcome {
            lease: lease.clone(),
            at: Utc::now(),
            kind: OutcomeKind::Retry {
                error,
                run_after,
                args: None,
            },
        };
        Ok(self.finish(&[o]).await?.first().copied().unwrap_or(false))
    }
}

#[cfg(any(test, feature = "test-util"))]
impl<B: WorkerBackend + ?Sized> WorkerBackendExt for B {}

/// The conformance suite's hook into a backend's transactional enqueue (feature
/// `test-util`): open a transaction on the backend's own storage, enqueue `tasks` through
/// the same code path that callers use with their own transaction (e.g.
/// `SqliteBackend::enqueue_in`), then commit or roll back.
#[cfg(any(test, feature = "test-util"))]
#[async_trait]
pub trait TransactionalEnqueue: TaskBackend {
    /// Enqueues `tasks` inside a fresh transaction, then commits (`commit == true`) or
    /// rolls back.
    async fn enqueue_in_new_transaction(
        &self,
        tasks: Vec<NewTask>,
        commit: bool,
    ) -> Result<Vec<TaskId>, TaskError>;
}
