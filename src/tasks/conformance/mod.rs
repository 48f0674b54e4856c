//! The backend conformance suite: written once, run by every backend (SQLite here,
//! PostgreSQL and outside backends through the `test-util` feature), each case on fresh
//! storage.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn demo() {
//! use mailroom::tasks::conformance::{self, CONFORMANCE_QUEUES};
//! use mailroom::tasks::{SqliteBackend, SqliteOptions};
//!
//! let dir = std::env::temp_dir().join("conformance");
//! let n = std::sync::atomic::AtomicUsize::new(0);
//! conformance::run_all(|| async {
//!     let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     let options = SqliteOptions::new(dir.join(format!("{i}.db"))).queues(CONFORMANCE_QUEUES);
//!     SqliteBackend::connect_with(options).await.unwrap()
//! })
//! .await;
//! # }
//! ```
//!
//! The backend `make_backend` returns must know the queues in [`CONFORMANCE_QUEUES`]. A case
//! that fails panics with its name in the message.
//!
//! The cases are grouped by topic, one file each (as River's driver suite is): validation,
//! enqueue (and transactions), claim, lease, rescue, retry, worker, idempotency (and unique
//! windows), cancel, timeout, prune, operations (the operator's role), limits (pause and
//! rate limits as claims see them);
//! the suite's tasks are in `tasks.rs`. This file holds [`run_all`] and the helpers the
//! cases share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cancel;
mod claim;
mod enqueue;
mod idempotency;
mod lease;
mod limits;
mod operations;
mod prune;
mod rescue;
mod retry;
mod tasks;
mod timeout;
mod validation;
mod worker;

pub use tasks::{
    Echo, EchoArgs, Hang, HangArgs, Progress, ProgressArgs, SLOW_POLICY, SlowBackoff, TIME_BOX,
    TimeBoxed, registry, saw_cancellation,
};
pub use validation::run_validation;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    ClaimRequest, ClaimedTask, Lease, MAX_LEASE_EXPIRIES, NewTask, QueueOperations, Registry, Task,
    TaskBackend, TaskContext, TaskError, TaskFailure, TaskId, TaskResult, TaskStatus,
    TransactionalEnqueue, Worker, WorkerBackend, WorkerBackendExt,
};

/// The queues a backend under test must accept.
pub const CONFORMANCE_QUEUES: [&str; 2] = ["default", "other"];

fn echo(value: serde_json::Value) -> NewTask {
    Echo::new_task(&EchoArgs {
        value,
        fail_first: 0,
        permanent: false,
    })
    .unwrap()
}

fn req(worker: &str, limit: usize, lease: Duration, now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.to_owned(),
        queues: vec!["default".to_owned()],
        limit,
        lease,
        now,
        isolated: false,
        task_names: None,
        routes: None,
    }
}

/// [`req`] for an isolated claim of one task, which may take a suspect.
fn isolated_req(worker: &str, lease: Duration, now: DateTime<Utc>) -> ClaimRequest {
    ClaimRequest {
        isolated: true,
        ..req(worker, 1, lease, now)
    }
}

const LEASE: Duration = Duration::from_secs(30);

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// Runs burst workers until every task in `ids` has finished (or panics after a generous
/// minute, naming the case).
async fn work_until_finished<B: WorkerBackend>(
    case: &str,
    backend: &Arc<B>,
    ids: &[TaskId],
) -> Vec<TaskResult> {
    let dynb: Arc<dyn WorkerBackend> = backend.clone();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        Worker::builder(dynb.clone(), registry())
            .concurrency(4)
            .burst(true)
            .poll_interval(Duration::from_millis(5))
            .build()
            .run(std::future::pending())
            .await
            .unwrap_or_else(|e| panic!("{case}: worker failed: {e}"));
        let mut results = Vec::new();
        for id in ids {
            results.push(backend.get_result(*id).await.unwrap());
        }
        if results.iter().all(|r| r.status.is_finished()) {
            return results;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{case}: tasks did not finish: {results:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_conflict<T: std::fmt::Debug>(case: &str, r: Result<T, TaskError>) {
    match r {
        Err(TaskError::Conflict {
            field: "idempotency_key",
            ..
        }) => {}
        other => panic!("{case}: expected an `idempotency_key` conflict, got {other:?}"),
    }
}

/// Runs every case against fresh backends from `make_backend` (which must know
/// [`CONFORMANCE_QUEUES`]). Panics, naming the case, on the first failure. The cancel cases
/// ask for cancels as an operator does, through [`QueueOperations::cancel`].
pub async fn run_all<B, F, Fut>(make_backend: F)
where
    B: WorkerBackend + TransactionalEnqueue + QueueOperations,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    run_validation(&make_backend).await;
    macro_rules! cases {
        ($($topic:ident::$name:ident),* $(,)?) => {$(
            eprintln!("conformance: {}", stringify!($name));
            $topic::$name(Arc::new(make_backend().await)).await;
        )*};
    }
    cases!(
        enqueue::durable_capabilities,
        enqueue::enqueue_and_get_result,
        claim::ordering,
        claim::queues_are_separate,
        claim::claims_filter_by_task_name_and_route,
        claim::run_after_defers,
        lease::claim_records_the_lease,
        lease::concurrent_claims_never_share_an_attempt,
        lease::completion_is_fenced,
        lease::heartbeat_extends_the_lease,
        rescue::expired_leases_are_rescued,
        rescue::rescue_fails_when_out_of_attempts,
        rescue::repeated_lease_expiries_fail_the_task,
        retry::retry_reschedules,
        retry::retry_carries_new_args,
        retry::worker_passes_progress_to_the_next_attempt,
        worker::worker_runs_tasks,
        worker::worker_retries_then_succeeds,
        worker::retry_backoff_within_bounds,
        worker::permanent_failure_fails_at_once,
        worker::attempts_exhausted_fails,
        idempotency::idempotent_enqueue,
        idempotency::unique_until_finished_frees_the_key_when_the_task_ends,
        idempotency::unique_for_a_period_frees_the_key_after_it,
        cancel::cancel_requests_name_the_workers_own_leases,
        cancel::the_cancelled_outcome_is_fenced,
        cancel::a_cancelled_task_never_runs_again,
        cancel::a_running_task_is_stopped_and_cancelled,
        timeout::the_claim_carries_the_per_task_timeout,
        timeout::the_tasks_timeout_stops_an_attempt_and_retries,
        timeout::a_per_task_timeout_replaces_the_tasks_own,
        prune::pruning,
        enqueue::transactional_enqueue_rolled_back,
        enqueue::transactional_enqueue_committed,
        operations::listing_filters,
        operations::pages_have_no_duplicates_or_gaps_while_enqueuing,
        operations::counts_per_queue_and_status,
        operations::cancel_each_kind_of_task,
        operations::cancel_races_claims_without_losing_a_task,
        operations::retry_by_id_and_by_filter_runs_again,
        operations::queue_settings_are_stored,
        limits::paused_queues_are_not_claimed,
        limits::a_rate_limit_caps_claims,
        limits::a_keyed_rate_limit_gives_each_key_its_own_bucket,
        limits::concurrent_claims_never_exceed_the_limit,
        limits::a_burst_worker_waits_for_tokens_but_not_for_a_paused_queue,
    );
}
