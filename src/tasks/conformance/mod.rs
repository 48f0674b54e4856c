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
//!     SqliteBackend::open(options).await.unwrap()
//! })
//! .await;
//! # }
//! ```
//!
//! The backend `make_backend` returns must know the queues in [`CONFORMANCE_QUEUES`]. A case
//! that fails panics with its name in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    ClaimRequest, ClaimedTask, Lease, MAX_LEASE_EXPIRIES, NewTask, Registry, RetryPolicy, Task,
    TaskBackend, TaskContext, TaskError, TaskFailure, TaskId, TaskResult, TaskStatus,
    TransactionalEnqueue, Worker,
};

/// The queues a backend under test must accept.
pub const CONFORMANCE_QUEUES: [&str; 2] = ["default", "other"];

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
async fn work_until_finished<B: TaskBackend>(
    case: &str,
    backend: &Arc<B>,
    ids: &[TaskId],
) -> Vec<TaskResult> {
    let dynb: Arc<dyn TaskBackend> = backend.clone();
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

fn assert_invalid(case: &str, r: Result<TaskId, TaskError>, field: &str) {
    match r {
        Err(TaskError::Invalid { field: f, .. }) if f == field => {}
        other => panic!("{case}: expected an invalid `{field}` error, got {other:?}"),
    }
}

/// Validation cases every backend must pass, durable or not.
pub async fn run_validation<B, F, Fut>(make_backend: F)
where
    B: TaskBackend,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    let case = "validation";
    eprintln!("conformance: {case}");
    let b = make_backend().await;
    let caps = b.capabilities();
    assert_invalid(
        case,
        b.enqueue(echo(json!(1)).priority(101)).await,
        "priority",
    );
    assert_invalid(
        case,
        b.enqueue(echo(json!(1)).priority(-101)).await,
        "priority",
    );
    assert_invalid(
        case,
        b.enqueue(echo(json!(1)).queue("no-such-queue")).await,
        "queue_name",
    );
    assert_invalid(
        case,
        b.enqueue(echo(json!(1)).max_attempts(0)).await,
        "max_attempts",
    );
    assert_invalid(
        case,
        b.enqueue(echo(json!(1)).idempotency_key("")).await,
        "idempotency_key",
    );
    assert_invalid(case, b.enqueue(echo(json!(1)).route("")).await, "route");
    let run_after = b
        .enqueue(echo(json!(1)).run_after(Utc::now() + secs(60)))
        .await;
    if caps.supports_defer {
        run_after.unwrap_or_else(|e| panic!("{case}: run_after refused: {e}"));
    } else {
        assert_invalid(case, run_after, "run_after");
    }
    let edge = b.enqueue(echo(json!(1)).priority(100)).await;
    let low = b.enqueue(echo(json!(1)).priority(-100)).await;
    if caps.supports_priority {
        edge.unwrap_or_else(|e| panic!("{case}: priority 100 refused: {e}"));
        low.unwrap_or_else(|e| panic!("{case}: priority -100 refused: {e}"));
    } else {
        assert_invalid(case, edge, "priority");
    }
    // Arguments that do not survive a JSON round trip (NaN becomes null).
    #[derive(Serialize, Deserialize)]
    struct Float {
        x: f64,
    }
    struct FloatTask;
    #[async_trait]
    impl Task for FloatTask {
        const NAME: &'static str = "conformance.float";
        type Args = Float;
        type Output = ();
        async fn run(&self, _: TaskContext, _: Float) -> Result<(), TaskFailure> {
            Ok(())
        }
    }
    match FloatTask::new_task(&Float { x: f64::NAN }) {
        Err(e) => assert_eq!(e.field(), Some("args"), "{case}: {e}"),
        Ok(t) => panic!("{case}: NaN arguments accepted: {t:?}"),
    }
    // A batch with one invalid task stores nothing.
    let batch = b
        .enqueue_many(vec![
            echo(json!("ok")).idempotency_key("batch-1"),
            echo(json!("bad")).priority(500),
        ])
        .await;
    assert!(
        matches!(
            batch,
            Err(TaskError::Invalid {
                field: "priority",
                ..
            })
        ),
        "{case}: {batch:?}"
    );
    // Its key is free: the first task was not stored.
    b.enqueue(echo(json!("other")).idempotency_key("batch-1"))
        .await
        .unwrap_or_else(|e| panic!("{case}: the refused batch stored a task: {e}"));
    // The same key for different work is a conflict on every backend.
    let clash = b
        .enqueue(echo(json!("else")).idempotency_key("batch-1"))
        .await;
    assert!(
        matches!(
            clash,
            Err(TaskError::Conflict {
                field: "idempotency_key",
                ..
            })
        ),
        "{case}: {clash:?}"
    );
    // Errors convert into the crate's error, naming the field.
    let err: crate::Error = b
        .enqueue(echo(json!(1)).queue("nope"))
        .await
        .unwrap_err()
        .into();
    assert_eq!(err.field(), Some("queue_name"), "{case}");
    if caps.supports_get_result {
        let missing = b.get_result(TaskId::new()).await;
        assert!(
            matches!(missing, Err(TaskError::NotFound { .. })),
            "{case}: {missing:?}"
        );
    }
}

/// Runs every case against fresh backends from `make_backend` (which must know
/// [`CONFORMANCE_QUEUES`]). Panics, naming the case, on the first failure.
pub async fn run_all<B, F, Fut>(make_backend: F)
where
    B: TaskBackend + TransactionalEnqueue,
    F: Fn() -> Fut,
    Fut: Future<Output = B>,
{
    run_validation(&make_backend).await;
    macro_rules! cases {
        ($($name:ident),* $(,)?) => {$(
            eprintln!("conformance: {}", stringify!($name));
            $name(Arc::new(make_backend().await)).await;
        )*};
    }
    cases!(
        durable_capabilities,
        enqueue_and_get_result,
        ordering,
        queues_are_separate,
        claims_filter_by_task_name_and_route,
        run_after_defers,
        claim_records_the_lease,
        concurrent_claims_never_share_an_attempt,
        completion_is_fenced,
        heartbeat_extends_the_lease,
        expired_leases_are_rescued,
        rescue_fails_when_out_of_attempts,
        repeated_lease_expiries_fail_the_task,
        retry_reschedules,
        retry_carries_new_args,
        worker_passes_progress_to_the_next_attempt,
        worker_runs_tasks,
        worker_retries_then_succeeds,
        retry_backoff_within_bounds,
        permanent_failure_fails_at_once,
        attempts_exhausted_fails,
        idempotent_enqueue,
        pruning,
        transactional_enqueue_rolled_back,
        transactional_enqueue_committed,
    );
}

async fn durable_capabilities<B: TaskBackend>(b: Arc<B>) {
    let caps = b.capabilities();
    assert!(
        caps.supports_defer
            && caps.supports_priority
            && caps.supports_get_result
            && caps.supports_worker,
        "durable_capabilities: {caps:?}"
    );
    for q in CONFORMANCE_QUEUES {
        assert!(
            b.queues().iter().any(|k| k == q),
            "durable_capabilities: queue `{q}` unknown"
        );
    }
}

async fn enqueue_and_get_result<B: TaskBackend>(b: Arc<B>) {
    let case = "enqueue_and_get_result";
    let before = Utc::now() - secs(1);
    let task = echo(json!({"k": ["é", 1, null]}))
        .priority(7)
        .max_attempts(3);
    let id = b.enqueue(task.clone()).await.unwrap();
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.id, id, "{case}");
    assert_eq!(r.task_name, Echo::NAME, "{case}");
    assert_eq!(r.queue_name, "default", "{case}");
    assert_eq!(r.priority, 7, "{case}");
    assert_eq!(r.args, task.args, "{case}");
    assert_eq!(r.status, TaskStatus::Ready, "{case}");
    assert_eq!(r.attempts, 0, "{case}");
    assert_eq!(r.max_attempts, 3, "{case}");
    assert!(
        r.enqueued_at >= before && r.enqueued_at <= Utc::now() + secs(1),
        "{case}: {r:?}"
    );
    assert_eq!(r.run_after, r.enqueued_at, "{case}");
    assert!(
        r.started_at.is_none() && r.finished_at.is_none() && r.last_attempted_at.is_none(),
        "{case}"
    );
    assert!(
        r.worker_ids.is_empty() && r.errors.is_empty() && r.return_value.is_none(),
        "{case}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["status"], "READY", "{case}");
    let ids = b
        .enqueue_many((0..250).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    assert_eq!(ids.len(), 250, "{case}");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        250,
        "{case}: ids repeat"
    );
    assert_eq!(
        b.get_result(ids[249]).await.unwrap().args["value"],
        json!(249),
        "{case}"
    );
    assert!(
        b.enqueue_many(Vec::new()).await.unwrap().is_empty(),
        "{case}"
    );
    assert!(
        matches!(
            b.get_result(TaskId::new()).await,
            Err(TaskError::NotFound { .. })
        ),
        "{case}"
    );
}

async fn claim_all<B: TaskBackend>(b: &B, worker: &str, now: DateTime<Utc>) -> Vec<ClaimedTask> {
    let mut out = Vec::new();
    loop {
        let got = b.claim(&req(worker, 1, LEASE, now)).await.unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

async fn ordering<B: TaskBackend>(b: Arc<B>) {
    let case = "ordering";
    let now = Utc::now();
    let t = |name: &str| echo(json!(name));
    // Enqueue order: a, b, c, d, e, f.
    let tasks = vec![
        t("a").priority(0),
        t("b").priority(10).run_after(now - secs(10)),
        t("c").priority(10).run_after(now - secs(20)),
        t("d").priority(-5),
        t("e").priority(0),
        t("f").priority(10).run_after(now - secs(20)),
    ];
    b.enqueue_many(tasks).await.unwrap();
    let order: Vec<String> = claim_all(b.as_ref(), "w", now + secs(1))
        .await
        .into_iter()
        .map(|c| c.args["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        ["c", "f", "b", "a", "e", "d"],
        "{case}: priority desc, then run_after, then enqueue order"
    );
    // A batch claim returns the same order.
    b.enqueue_many(vec![t("x").priority(-1), t("y").priority(1), t("z")])
        .await
        .unwrap();
    let batch = b.claim(&req("w", 10, LEASE, now + secs(2))).await.unwrap();
    let order: Vec<&str> = batch
        .iter()
        .map(|c| c.args["value"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["y", "z", "x"], "{case}: batch claim order");
}

async fn queues_are_separate<B: TaskBackend>(b: Arc<B>) {
    let case = "queues_are_separate";
    let other = b
        .enqueue(echo(json!("other")).queue("other"))
        .await
        .unwrap();
    let def = b.enqueue(echo(json!("default"))).await.unwrap();
    let got = b.claim(&req("w", 10, LEASE, Utc::now())).await.unwrap();
    assert_eq!(
        got.iter().map(|c| c.lease.id).collect::<Vec<_>>(),
        [def],
        "{case}"
    );
    let mut both = req("w", 10, LEASE, Utc::now());
    both.queues = vec!["default".into(), "other".into()];
    let got = b.claim(&both).await.unwrap();
    assert_eq!(
        got.iter().map(|c| c.lease.id).collect::<Vec<_>>(),
        [other],
        "{case}"
    );
    assert_eq!(got[0].queue_name, "other", "{case}");
}

async fn claims_filter_by_task_name_and_route<B: TaskBackend>(b: Arc<B>) {
    let case = "claims_filter_by_task_name_and_route";
    // A worker claims only the tasks its registry holds and the routes it serves.
    let plain = b.enqueue(echo(json!("plain"))).await.unwrap();
    let smtp = b.enqueue(echo(json!("smtp")).route("smtp")).await.unwrap();
    let ses = b.enqueue(echo(json!("ses")).route("ses")).await.unwrap();
    let slow = b
        .enqueue(SlowBackoff::new_task(&()).unwrap())
        .await
        .unwrap();
    let dynb: Arc<dyn TaskBackend> = b.clone();
    let report = Worker::builder(dynb, Registry::new().with(Echo))
        .routes(["smtp"])
        .burst(true)
        .poll_interval(Duration::from_millis(5))
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.claimed, 2, "{case}: {report:?}");
    for (id, status) in [
        (plain, TaskStatus::Successful),
        (smtp, TaskStatus::Successful),
        (ses, TaskStatus::Ready),
        (slow, TaskStatus::Ready),
    ] {
        let r = b.get_result(id).await.unwrap();
        assert_eq!(r.status, status, "{case}: {r:?}");
        if status == TaskStatus::Ready {
            assert_eq!(
                r.attempts, 0,
                "{case}: claimed by a worker that cannot run it"
            );
        }
    }
    let now = Utc::now();
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let claim = |names: Option<&[&str]>, routes: Option<&[&str]>| ClaimRequest {
        task_names: names.map(strings),
        routes: routes.map(strings),
        ..req("w", 10, LEASE, now)
    };
    let ids = |claimed: Vec<ClaimedTask>| claimed.iter().map(|c| c.lease.id).collect::<Vec<_>>();
    assert!(
        b.claim(&claim(Some(&[]), None)).await.unwrap().is_empty(),
        "{case}: no names, no tasks"
    );
    assert!(
        b.claim(&claim(Some(&["nope"]), None))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
    // No route served: only tasks without a route.
    assert_eq!(
        ids(b.claim(&claim(None, Some(&[]))).await.unwrap()),
        [slow],
        "{case}"
    );
    assert_eq!(
        ids(b
            .claim(&claim(Some(&[Echo::NAME, "x"]), Some(&["smtp", "ses"])))
            .await
            .unwrap()),
        [ses],
        "{case}"
    );
}

async fn run_after_defers<B: TaskBackend>(b: Arc<B>) {
    let case = "run_after_defers";
    let now = Utc::now();
    let later = now + secs(3600);
    let id = b.enqueue(echo(json!(1)).run_after(later)).await.unwrap();
    assert_eq!(
        b.get_result(id).await.unwrap().run_after.timestamp_micros(),
        later.timestamp_micros(),
        "{case}"
    );
    assert!(
        b.claim(&req("w", 10, LEASE, now)).await.unwrap().is_empty(),
        "{case}: claimed before run_after"
    );
    assert!(
        b.claim(&req("w", 10, LEASE, later - secs(1)))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
    let got = b
        .claim(&req("w", 10, LEASE, later + secs(1)))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "{case}: not claimed after run_after");
    assert_eq!(got[0].lease.id, id, "{case}");
}

async fn claim_records_the_lease<B: TaskBackend>(b: Arc<B>) {
    let case = "claim_records_the_lease";
    let ids = b
        .enqueue_many((0..5).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    let now = Utc::now();
    let got = b.claim(&req("w1", 3, LEASE, now)).await.unwrap();
    assert_eq!(got.len(), 3, "{case}: limit");
    for c in &got {
        assert_eq!(c.lease.worker_id, "w1", "{case}");
        assert_eq!(c.lease.attempt, 1, "{case}");
        assert_eq!(c.task_name, Echo::NAME, "{case}");
        assert!(
            (c.lease_expires_at - (now + secs(30)))
                .num_milliseconds()
                .abs()
                < 2,
            "{case}: {c:?}"
        );
        let r = b.get_result(c.lease.id).await.unwrap();
        assert_eq!(r.status, TaskStatus::Running, "{case}");
        assert_eq!(r.attempts, 1, "{case}");
        assert_eq!(r.worker_ids, ["w1"], "{case}");
        assert!(
            r.started_at.is_some() && r.last_attempted_at.is_some(),
            "{case}"
        );
    }
    let rest = b.claim(&req("w2", 10, LEASE, now)).await.unwrap();
    assert_eq!(rest.len(), 2, "{case}: a claimed task was claimed again");
    let all: HashSet<TaskId> = got.iter().chain(&rest).map(|c| c.lease.id).collect();
    assert_eq!(all, ids.into_iter().collect(), "{case}");
    assert!(
        b.claim(&req("w3", 10, LEASE, now))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
}

async fn concurrent_claims_never_share_an_attempt<B: TaskBackend>(b: Arc<B>) {
    let case = "concurrent_claims_never_share_an_attempt";
    let n = 300;
    b.enqueue_many((0..n).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    let mut handles = Vec::new();
    for w in 0..6 {
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = b
                    .claim(&req(&format!("w{w}"), 7, LEASE, Utc::now()))
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.lease));
            }
        }));
    }
    let mut seen = HashSet::new();
    for h in handles {
        for lease in h.await.unwrap() {
            assert!(seen.insert(lease.id), "{case}: {} claimed twice", lease.id);
            assert_eq!(lease.attempt, 1, "{case}");
        }
    }
    assert_eq!(seen.len(), n, "{case}");
}

async fn completion_is_fenced<B: TaskBackend>(b: Arc<B>) {
    let case = "completion_is_fenced";
    let id = b.enqueue(echo(json!(1))).await.unwrap();
    let c = b
        .claim(&req("w1", 1, LEASE, Utc::now()))
        .await
        .unwrap()
        .remove(0);
    let wrong_worker = Lease {
        worker_id: "intruder".into(),
        ..c.lease.clone()
    };
    let wrong_attempt = Lease {
        attempt: 2,
        ..c.lease.clone()
    };
    assert!(
        !b.complete(&wrong_worker, json!("x")).await.unwrap(),
        "{case}: another worker's completion applied"
    );
    assert!(
        !b.complete(&wrong_attempt, json!("x")).await.unwrap(),
        "{case}: another attempt's completion applied"
    );
    let err = super::AttemptError {
        attempt: 1,
        kind: "k".into(),
        message: "m".into(),
        worker_id: None,
        at: Utc::now(),
    };
    assert!(!b.fail(&wrong_worker, err.clone()).await.unwrap(), "{case}");
    assert!(
        !b.retry(&wrong_attempt, err.clone(), Utc::now())
            .await
            .unwrap(),
        "{case}"
    );
    assert_eq!(
        b.get_result(id).await.unwrap().status,
        TaskStatus::Running,
        "{case}"
    );
    assert!(
        b.complete(&c.lease, json!({"ok": true})).await.unwrap(),
        "{case}: the holder's completion was rejected"
    );
    assert!(
        !b.complete(&c.lease, json!("again")).await.unwrap(),
        "{case}: a second completion applied"
    );
    assert!(
        !b.fail(&c.lease, err).await.unwrap(),
        "{case}: a failure after completion applied"
    );
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Successful, "{case}");
    assert_eq!(r.return_value, Some(json!({"ok": true})), "{case}");
    assert!(r.finished_at.is_some(), "{case}");
    assert!(r.errors.is_empty(), "{case}");
}

async fn heartbeat_extends_the_lease<B: TaskBackend>(b: Arc<B>) {
    let case = "heartbeat_extends_the_lease";
    let id = b.enqueue(echo(json!(1))).await.unwrap();
    let now = Utc::now();
    let c = b
        .claim(&req("w1", 1, Duration::from_secs(10), now))
        .await
        .unwrap()
        .remove(0);
    let stranger = Lease {
        worker_id: "w2".into(),
        ..c.lease.clone()
    };
    let held = b
        .heartbeat(&[c.lease.clone(), stranger], Duration::from_secs(3600), now)
        .await
        .unwrap();
    assert_eq!(held, [true, false], "{case}");
    let report = b
        .rescue_expired(now + secs(60), MAX_LEASE_EXPIRIES)
        .await
        .unwrap();
    assert_eq!(
        report.retried + report.failed,
        0,
        "{case}: a renewed lease was rescued"
    );
    assert_eq!(
        b.get_result(id).await.unwrap().status,
        TaskStatus::Running,
        "{case}"
    );
    let report = b
        .rescue_expired(now + secs(3700), MAX_LEASE_EXPIRIES)
        .await
        .unwrap();
    assert_eq!(report.retried, 1, "{case}");
    assert_eq!(
        b.heartbeat(&[c.lease], Duration::from_secs(10), now)
            .await
            .unwrap(),
        [false],
        "{case}: a rescued lease renewed"
    );
}

async fn expired_leases_are_rescued<B: TaskBackend>(b: Arc<B>) {
    let case = "expired_leases_are_rescued";
    let id = b.enqueue(echo(json!(1))).await.unwrap();
    let keep = b.enqueue(echo(json!(2))).await.unwrap();
    let now = Utc::now();
    let first = b
        .claim(&req("dead", 1, Duration::from_secs(5), now))
        .await
        .unwrap()
        .remove(0);
    let second = b
        .claim(&req("alive", 1, Duration::from_secs(600), now))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((first.lease.id, second.lease.id), (id, keep), "{case}");
    assert_eq!(
        b.rescue_expired(now + secs(1), MAX_LEASE_EXPIRIES)
            .await
            .unwrap()
            .retried,
        0,
        "{case}: rescued before expiry"
    );
    let report = b
        .rescue_expired(now + secs(6), MAX_LEASE_EXPIRIES)
        .await
        .unwrap();
    assert_eq!((report.retried, report.failed), (1, 0), "{case}");
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Ready, "{case}");
    assert_eq!(r.errors.len(), 1, "{case}");
    assert_eq!(r.errors[0].kind, "lease_expired", "{case}");
    assert_eq!(r.errors[0].attempt, 1, "{case}");
    assert_eq!(r.errors[0].worker_id.as_deref(), Some("dead"), "{case}");
    assert_eq!(
        b.get_result(keep).await.unwrap().status,
        TaskStatus::Running,
        "{case}"
    );
    // The dead worker's late completion is rejected; the new holder's is accepted.
    assert!(
        b.claim(&req("new", 1, LEASE, now + secs(7)))
            .await
            .unwrap()
            .is_empty(),
        "{case}: an ordinary claim took a suspect"
    );
    let again = b
        .claim(&isolated_req("new", LEASE, now + secs(7)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.lease.attempt, 2, "{case}");
    assert_eq!(again.lease_expiries, 1, "{case}");
    assert!(
        !b.complete(&first.lease, json!("late")).await.unwrap(),
        "{case}: a stale completion applied"
    );
    assert!(
        b.complete(&again.lease, json!("new")).await.unwrap(),
        "{case}"
    );
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.worker_ids, ["dead", "new"], "{case}");
    assert_eq!(r.return_value, Some(json!("new")), "{case}");
    assert_eq!(r.attempts, 2, "{case}");
}

async fn rescue_fails_when_out_of_attempts<B: TaskBackend>(b: Arc<B>) {
    let case = "rescue_fails_when_out_of_attempts";
    let id = b.enqueue(echo(json!(1)).max_attempts(1)).await.unwrap();
    let now = Utc::now();
    b.claim(&req("dead", 1, Duration::from_secs(1), now))
        .await
        .unwrap();
    let report = b
        .rescue_expired(now + secs(2), MAX_LEASE_EXPIRIES)
        .await
        .unwrap();
    assert_eq!((report.retried, report.failed), (0, 1), "{case}");
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Failed, "{case}");
    assert!(r.finished_at.is_some(), "{case}");
    assert_eq!(r.errors[0].kind, "lease_expired", "{case}");
    assert!(
        b.claim(&req("w", 1, LEASE, now + secs(3)))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
}

async fn repeated_lease_expiries_fail_the_task<B: TaskBackend>(b: Arc<B>) {
    let case = "repeated_lease_expiries_fail_the_task";
    // Ten attempts allowed, but each attempt's worker dies: after MAX_LEASE_EXPIRIES
    // expiries the rescuer fails the task instead of letting it kill more workers.
    let id = b.enqueue(echo(json!(1))).await.unwrap();
    let bystander = b.enqueue(echo(json!(2))).await.unwrap();
    let mut now = Utc::now();
    for n in 1..=MAX_LEASE_EXPIRIES {
        let claimed = b
            .claim(&isolated_req("crashing", Duration::from_secs(5), now))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{case}: expiry {n}");
        assert_eq!(claimed[0].lease.id, id, "{case}: expiry {n}");
        assert_eq!(claimed[0].lease_expiries, n - 1, "{case}: expiry {n}");
        now += secs(10);
        let report = b.rescue_expired(now, MAX_LEASE_EXPIRIES).await.unwrap();
        let want = if n < MAX_LEASE_EXPIRIES {
            (1, 0)
        } else {
            (0, 1)
        };
        assert_eq!((report.retried, report.failed), want, "{case}: expiry {n}");
        // The suspect is claimed by isolated claims only; others still take the bystander.
        if n == 1 {
            let other = b.claim(&req("w", 10, LEASE, now)).await.unwrap().remove(0);
            assert_eq!(other.lease.id, bystander, "{case}");
            assert_eq!(other.lease_expiries, 0, "{case}");
            assert!(b.complete(&other.lease, json!(2)).await.unwrap(), "{case}");
        }
    }
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Failed, "{case}: {r:?}");
    assert!(r.finished_at.is_some(), "{case}");
    assert_eq!(r.attempts, MAX_LEASE_EXPIRIES, "{case}");
    assert!(r.attempts < r.max_attempts, "{case}");
    assert_eq!(r.errors.len(), MAX_LEASE_EXPIRIES as usize, "{case}");
    assert!(
        r.errors.iter().all(|e| e.kind == "lease_expired"),
        "{case}: {r:?}"
    );
    let last = &r.errors[r.errors.len() - 1].message;
    assert!(
        last.contains(&format!(
            "ended without an outcome {MAX_LEASE_EXPIRIES} times"
        )) && last.contains("failing it"),
        "{case}: {last}"
    );
    assert!(
        !r.errors[0].message.contains("failing it"),
        "{case}: {:?}",
        r.errors[0]
    );
    assert!(
        b.claim(&isolated_req("w", LEASE, now))
            .await
            .unwrap()
            .is_empty(),
        "{case}: a failed task was claimed"
    );
    // The limit is the caller's: with 1, the first expiry fails the task.
    let once = b.enqueue(echo(json!(3))).await.unwrap();
    b.claim(&req("crashing", 1, Duration::from_secs(5), now))
        .await
        .unwrap();
    let report = b.rescue_expired(now + secs(10), 1).await.unwrap();
    assert_eq!((report.retried, report.failed), (0, 1), "{case}");
    let r = b.get_result(once).await.unwrap();
    assert_eq!(r.status, TaskStatus::Failed, "{case}");
    assert!(
        r.errors[0]
            .message
            .contains("ended without an outcome 1 times"),
        "{case}: {:?}",
        r.errors
    );
}

async fn retry_reschedules<B: TaskBackend>(b: Arc<B>) {
    let case = "retry_reschedules";
    let id = b.enqueue(echo(json!(1))).await.unwrap();
    let now = Utc::now();
    let c = b.claim(&req("w", 1, LEASE, now)).await.unwrap().remove(0);
    let at = now + secs(100);
    let err = super::AttemptError {
        attempt: 1,
        kind: "transient".into(),
        message: "451 later".into(),
        worker_id: Some("w".into()),
        at: now,
    };
    assert!(b.retry(&c.lease, err.clone(), at).await.unwrap(), "{case}");
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Ready, "{case}");
    assert_eq!(
        r.run_after.timestamp_micros(),
        at.timestamp_micros(),
        "{case}"
    );
    assert_eq!(r.errors.len(), 1, "{case}");
    assert_eq!(
        (r.errors[0].kind.as_str(), r.errors[0].message.as_str()),
        ("transient", "451 later"),
        "{case}"
    );
    assert!(r.finished_at.is_none(), "{case}");
    assert!(
        b.claim(&req("w", 1, LEASE, now + secs(99)))
            .await
            .unwrap()
            .is_empty(),
        "{case}: retried early"
    );
    let c2 = b
        .claim(&req("w", 1, LEASE, now + secs(101)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c2.lease.attempt, 2, "{case}");
    assert!(
        b.fail(&c2.lease, super::AttemptError { attempt: 2, ..err })
            .await
            .unwrap(),
        "{case}"
    );
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Failed, "{case}");
    assert_eq!(
        r.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [1, 2],
        "{case}"
    );
}

async fn retry_carries_new_args<B: TaskBackend>(b: Arc<B>) {
    let case = "retry_carries_new_args";
    let id = b
        .enqueue(echo(json!("v1")).idempotency_key("progress"))
        .await
        .unwrap();
    let now = Utc::now();
    let c = b.claim(&req("w", 1, LEASE, now)).await.unwrap().remove(0);
    let err = super::AttemptError {
        attempt: 1,
        kind: "partial".into(),
        message: "some done".into(),
        worker_id: Some("w".into()),
        at: now,
    };
    let outcome = |lease: Lease, args: serde_json::Value| super::Outcome {
        lease,
        at: now,
        kind: super::OutcomeKind::Retry {
            error: err.clone(),
            run_after: now,
            args: Some(args),
        },
    };
    // Fenced: a stale holder's arguments are not stored.
    let stale = Lease {
        worker_id: "other".into(),
        ..c.lease.clone()
    };
    assert_eq!(
        b.finish(&[outcome(stale, json!({"value": "stale"}))])
            .await
            .unwrap(),
        [false],
        "{case}"
    );
    assert_eq!(
        b.get_result(id).await.unwrap().args["value"],
        json!("v1"),
        "{case}: a stale outcome replaced the arguments"
    );
    let v2 = json!({"value": "v2", "fail_first": 0, "permanent": false});
    assert_eq!(
        b.finish(&[outcome(c.lease.clone(), v2.clone())])
            .await
            .unwrap(),
        [true],
        "{case}"
    );
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.args, v2, "{case}");
    assert_eq!(r.status, TaskStatus::Ready, "{case}");
    // The idempotency key still matches the task as it was enqueued, not its progress.
    assert_eq!(
        b.enqueue(echo(json!("v1")).idempotency_key("progress"))
            .await
            .unwrap(),
        id,
        "{case}"
    );
    assert!(
        matches!(
            b.enqueue(echo(json!("v2")).idempotency_key("progress"))
                .await,
            Err(TaskError::Conflict { .. })
        ),
        "{case}"
    );
    // The next attempt receives them.
    let c2 = b
        .claim(&req("w", 1, LEASE, now + secs(1)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!((c2.lease.attempt, &c2.args), (2, &v2), "{case}");
    // A final failure stores them too (for a manual retry); without new arguments the
    // stored ones stay.
    let v3 = json!({"value": "v3", "fail_first": 0, "permanent": false});
    let failed = super::Outcome {
        lease: c2.lease.clone(),
        at: now,
        kind: super::OutcomeKind::Failed {
            error: err.clone(),
            args: Some(v3.clone()),
        },
    };
    assert_eq!(b.finish(&[failed]).await.unwrap(), [true], "{case}");
    let r = b.get_result(id).await.unwrap();
    assert_eq!((r.status, &r.args), (TaskStatus::Failed, &v3), "{case}");
    assert_eq!(
        b.enqueue(echo(json!("v1")).idempotency_key("progress"))
            .await
            .unwrap(),
        id,
        "{case}: the second replacement lost the enqueued arguments"
    );
    let plain = b.enqueue(echo(json!("kept"))).await.unwrap();
    let c = b
        .claim(&req("w", 1, LEASE, now + secs(2)))
        .await
        .unwrap()
        .remove(0);
    assert!(b.retry(&c.lease, err, now).await.unwrap(), "{case}");
    assert_eq!(
        b.get_result(plain).await.unwrap().args["value"],
        json!("kept"),
        "{case}"
    );
}

async fn worker_passes_progress_to_the_next_attempt<B: TaskBackend>(b: Arc<B>) {
    let case = "worker_passes_progress_to_the_next_attempt";
    let args = ProgressArgs {
        done: Vec::new(),
        left: 3,
        garble: false,
    };
    let id = b.enqueue(Progress::new_task(&args).unwrap()).await.unwrap();
    let garbled = b
        .enqueue(
            Progress::new_task(&ProgressArgs {
                garble: true,
                ..args
            })
            .unwrap(),
        )
        .await
        .unwrap();
    let results = work_until_finished(case, &b, &[id, garbled]).await;
    let r = &results[0];
    assert_eq!(r.status, TaskStatus::Successful, "{case}: {r:?}");
    assert_eq!(r.attempts, 4, "{case}");
    assert_eq!(
        r.return_value,
        Some(json!([1, 2, 3])),
        "{case}: each attempt saw the progress of the ones before"
    );
    assert_eq!(
        r.args,
        json!({"done": [1, 2, 3], "left": 0, "garble": false}),
        "{case}"
    );
    // Arguments that would not decode fail the task at once, and are not stored.
    let r = &results[1];
    assert_eq!(r.status, TaskStatus::Failed, "{case}: {r:?}");
    assert_eq!(r.attempts, 1, "{case}");
    assert_eq!(r.errors[0].kind, "invalid_next_args", "{case}: {r:?}");
    assert_eq!(r.args["garble"], json!(true), "{case}");
}

async fn worker_runs_tasks<B: TaskBackend>(b: Arc<B>) {
    let case = "worker_runs_tasks";
    let ids = b
        .enqueue_many((0..40).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    let results = work_until_finished(case, &b, &ids).await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.status, TaskStatus::Successful, "{case}: {r:?}");
        assert_eq!(
            r.return_value.as_ref().unwrap()["value"],
            json!(i),
            "{case}"
        );
        assert_eq!(
            r.return_value.as_ref().unwrap()["id"],
            json!(r.id.to_string()),
            "{case}: context id"
        );
        assert_eq!(r.attempts, 1, "{case}");
        assert_eq!(r.worker_ids.len(), 1, "{case}");
        assert!(r.finished_at.unwrap() >= r.started_at.unwrap(), "{case}");
    }
}

async fn worker_retries_then_succeeds<B: TaskBackend>(b: Arc<B>) {
    let case = "worker_retries_then_succeeds";
    let id = b
        .enqueue(
            Echo::new_task(&EchoArgs {
                value: json!("v"),
                fail_first: 2,
                permanent: false,
            })
            .unwrap(),
        )
        .await
        .unwrap();
    let r = work_until_finished(case, &b, &[id]).await.remove(0);
    assert_eq!(r.status, TaskStatus::Successful, "{case}: {r:?}");
    assert_eq!(r.attempts, 3, "{case}");
    assert_eq!(r.errors.len(), 2, "{case}");
    assert_eq!(
        r.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [1, 2],
        "{case}"
    );
    assert!(r.errors.iter().all(|e| e.kind == "on_purpose"), "{case}");
    assert_eq!(r.return_value.unwrap()["attempt"], json!(3), "{case}");
}

async fn retry_backoff_within_bounds<B: TaskBackend>(b: Arc<B>) {
    let case = "retry_backoff_within_bounds";
    let id = b
        .enqueue(SlowBackoff::new_task(&()).unwrap())
        .await
        .unwrap();
    let dynb: Arc<dyn TaskBackend> = b.clone();
    Worker::builder(dynb, registry())
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Ready, "{case}: {r:?}");
    assert_eq!(r.attempts, 1, "{case}");
    assert_eq!(r.errors.len(), 1, "{case}");
    let (low, high) = SLOW_POLICY.bounds(1);
    let at = r.errors[0].at;
    let earliest =
        at + chrono::Duration::from_std(low).unwrap() - chrono::Duration::milliseconds(1);
    let latest = at + chrono::Duration::from_std(high).unwrap() + chrono::Duration::milliseconds(1);
    assert!(
        r.run_after >= earliest && r.run_after <= latest,
        "{case}: run_after {} not within {earliest}..={latest}",
        r.run_after
    );
}

async fn permanent_failure_fails_at_once<B: TaskBackend>(b: Arc<B>) {
    let case = "permanent_failure_fails_at_once";
    let id = b
        .enqueue(
            Echo::new_task(&EchoArgs {
                value: json!(1),
                fail_first: 5,
                permanent: true,
            })
            .unwrap(),
        )
        .await
        .unwrap();
    let r = work_until_finished(case, &b, &[id]).await.remove(0);
    assert_eq!(r.status, TaskStatus::Failed, "{case}");
    assert_eq!(r.attempts, 1, "{case}");
    assert_eq!(r.errors.len(), 1, "{case}");
    assert_eq!(r.errors[0].kind, "on_purpose", "{case}");
    assert!(r.errors[0].message.contains("attempt 1"), "{case}");
    assert!(r.return_value.is_none(), "{case}");
}

async fn attempts_exhausted_fails<B: TaskBackend>(b: Arc<B>) {
    let case = "attempts_exhausted_fails";
    let task = Echo::new_task(&EchoArgs {
        value: json!(1),
        fail_first: 100,
        permanent: false,
    })
    .unwrap()
    .max_attempts(3);
    let id = b.enqueue(task).await.unwrap();
    let r = work_until_finished(case, &b, &[id]).await.remove(0);
    assert_eq!(r.status, TaskStatus::Failed, "{case}");
    assert_eq!(r.attempts, 3, "{case}");
    assert_eq!(r.errors.len(), 3, "{case}");
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

async fn idempotent_enqueue<B: TaskBackend>(b: Arc<B>) {
    let case = "idempotent_enqueue";
    let a = b
        .enqueue(echo(json!("first")).idempotency_key("order-1"))
        .await
        .unwrap();
    let again = b
        .enqueue(echo(json!("first")).idempotency_key("order-1"))
        .await
        .unwrap();
    assert_eq!(a, again, "{case}: a repeated key made a new task");
    // The same key for different work is an error, not a silent dedupe to the first task.
    let different = b
        .enqueue(echo(json!("second")).idempotency_key("order-1"))
        .await;
    assert_conflict(case, different);
    let other_task = b
        .enqueue(
            SlowBackoff::new_task(&())
                .unwrap()
                .idempotency_key("order-1"),
        )
        .await;
    assert_conflict(case, other_task);
    let err: crate::Error = b
        .enqueue(echo(json!("third")).idempotency_key("order-1"))
        .await
        .unwrap_err()
        .into();
    assert_eq!(err.field(), Some("idempotency_key"), "{case}: {err}");
    assert_eq!(
        b.get_result(a).await.unwrap().args["value"],
        json!("first"),
        "{case}"
    );
    assert_eq!(
        b.get_result(a).await.unwrap().idempotency_key.as_deref(),
        Some("order-1"),
        "{case}"
    );
    let batch = b
        .enqueue_many(vec![
            echo(json!(1)).idempotency_key("order-2"),
            echo(json!(2)),
            echo(json!(1)).idempotency_key("order-2"),
            echo(json!("first")).idempotency_key("order-1"),
        ])
        .await
        .unwrap();
    assert_eq!(batch[0], batch[2], "{case}: a key repeated within a batch");
    assert_eq!(batch[3], a, "{case}");
    assert_ne!(batch[0], batch[1], "{case}");
    // A batch with one conflict stores nothing, whether it clashes with a stored task or
    // within the batch.
    let clash_stored = b
        .enqueue_many(vec![
            echo(json!("new")).idempotency_key("order-3"),
            echo(json!(5)),
            echo(json!("other")).idempotency_key("order-1"),
        ])
        .await;
    assert_conflict(case, clash_stored);
    let clash_within = b
        .enqueue_many(vec![
            echo(json!(7)).idempotency_key("order-4"),
            echo(json!(6)),
            echo(json!(8)).idempotency_key("order-4"),
        ])
        .await;
    assert_conflict(case, clash_within);
    let claimed = b.claim(&req("w", 100, LEASE, Utc::now())).await.unwrap();
    assert_eq!(
        claimed.len(),
        3,
        "{case}: duplicates or a conflicting batch were stored: {claimed:?}"
    );
    // The keys of the refused batches are free.
    for key in ["order-3", "order-4"] {
        let id = b
            .enqueue(echo(json!("later")).idempotency_key(key))
            .await
            .unwrap_or_else(|e| panic!("{case}: `{key}` was taken by a refused batch: {e}"));
        assert!(claimed.iter().all(|c| c.lease.id != id), "{case}");
    }
    // The key still holds once the task has finished.
    let c = claimed.iter().find(|c| c.lease.id == a).unwrap();
    assert!(b.complete(&c.lease, json!(null)).await.unwrap(), "{case}");
    assert_eq!(
        b.enqueue(echo(json!("first")).idempotency_key("order-1"))
            .await
            .unwrap(),
        a,
        "{case}"
    );
    assert_conflict(
        case,
        b.enqueue(echo(json!("x")).idempotency_key("order-1")).await,
    );
}

async fn pruning<B: TaskBackend>(b: Arc<B>) {
    let case = "pruning";
    let done = b.enqueue(echo(json!(1))).await.unwrap();
    let failed = b.enqueue(echo(json!(2))).await.unwrap();
    let waiting = b
        .enqueue(echo(json!(3)).run_after(Utc::now() + secs(3600)))
        .await
        .unwrap();
    let running = b.enqueue(echo(json!(4))).await.unwrap();
    let now = Utc::now();
    let claimed = b
        .claim(&req("w", 3, Duration::from_secs(7200), now))
        .await
        .unwrap();
    let lease = |id| {
        claimed
            .iter()
            .find(|c| c.lease.id == id)
            .unwrap()
            .lease
            .clone()
    };
    assert!(b.complete(&lease(done), json!(1)).await.unwrap(), "{case}");
    let err = super::AttemptError {
        attempt: 1,
        kind: "k".into(),
        message: "m".into(),
        worker_id: None,
        at: now,
    };
    assert!(b.fail(&lease(failed), err).await.unwrap(), "{case}");
    assert_eq!(
        b.prune(now - secs(3600)).await.unwrap(),
        0,
        "{case}: pruned results younger than the retention"
    );
    assert_eq!(b.prune(Utc::now() + secs(60)).await.unwrap(), 2, "{case}");
    assert!(
        matches!(b.get_result(done).await, Err(TaskError::NotFound { .. })),
        "{case}"
    );
    assert!(
        matches!(b.get_result(failed).await, Err(TaskError::NotFound { .. })),
        "{case}"
    );
    assert_eq!(
        b.get_result(waiting).await.unwrap().status,
        TaskStatus::Ready,
        "{case}"
    );
    assert_eq!(
        b.get_result(running).await.unwrap().status,
        TaskStatus::Running,
        "{case}"
    );
    // The pruner job prunes by retention.
    let dynb: Arc<dyn TaskBackend> = b.clone();
    assert_eq!(
        super::maintenance::pruner::prune_once(dynb.as_ref(), Duration::from_secs(60))
            .await
            .unwrap(),
        0,
        "{case}"
    );
}

async fn transactional_enqueue_rolled_back<B: TransactionalEnqueue>(b: Arc<B>) {
    let case = "transactional_enqueue_rolled_back";
    let ids = b
        .enqueue_in_new_transaction(vec![echo(json!(1)), echo(json!(2))], false)
        .await
        .unwrap();
    assert_eq!(ids.len(), 2, "{case}");
    for id in ids {
        assert!(
            matches!(b.get_result(id).await, Err(TaskError::NotFound { .. })),
            "{case}: a rolled-back task exists"
        );
    }
    assert!(
        b.claim(&req("w", 10, LEASE, Utc::now()))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
    // Validation still applies inside a transaction.
    let bad = b
        .enqueue_in_new_transaction(vec![echo(json!(1)).priority(1000)], true)
        .await;
    assert!(
        matches!(
            bad,
            Err(TaskError::Invalid {
                field: "priority",
                ..
            })
        ),
        "{case}: {bad:?}"
    );
}

async fn transactional_enqueue_committed<B: TransactionalEnqueue>(b: Arc<B>) {
    let case = "transactional_enqueue_committed";
    let ids = b
        .enqueue_in_new_transaction(
            vec![echo(json!("tx")), echo(json!("tx2")).idempotency_key("k")],
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        b.get_result(ids[0]).await.unwrap().status,
        TaskStatus::Ready,
        "{case}"
    );
    let results = work_until_finished(case, &b, &ids).await;
    assert!(
        results.iter().all(|r| r.status == TaskStatus::Successful),
        "{case}: {results:?}"
    );
    let again = b
        .enqueue_in_new_transaction(vec![echo(json!("tx2")).idempotency_key("k")], true)
        .await
        .unwrap();
    assert_eq!(again[0], ids[1], "{case}: idempotency inside a transaction");
    let clash = b
        .enqueue_in_new_transaction(
            vec![echo(json!("tx4")), echo(json!("tx3")).idempotency_key("k")],
            true,
        )
        .await;
    assert_conflict(case, clash);
}
