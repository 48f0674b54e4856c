//! Cancelling a running task: the worker learns of the request, stops the attempt (the
//! task sees it in its context) and records `CANCELLED`, fenced by the lease; a cancelled
//! task never runs again, whether its attempt failed retryably or its worker died first.

use super::*;

/// Asks for the cancel of `id` the way an operator does ([`QueueOperations::cancel`]);
/// `true` when the task was running, so that its worker was asked to stop it.
async fn request_cancel<B: QueueOperations + ?Sized>(b: &B, id: TaskId) -> bool {
    let answers = b.cancel(&[id]).await.unwrap();
    matches!(
        answers.as_slice(),
        [(_, crate::tasks::CancelOutcome::Requested)]
    )
}
use crate::tasks::{AttemptError, Outcome, OutcomeKind, QueueOperations};

fn hang(ms: u64, blocking: bool) -> NewTask {
    Hang::new_task(&HangArgs { ms, blocking }).unwrap()
}

/// The outcomes a worker's hooks saw, by task.
#[derive(Debug, Default)]
struct SeenOutcomes(std::sync::Mutex<Vec<(TaskId, &'static str, bool)>>);

impl crate::tasks::Hooks for SeenOutcomes {
    fn finished(&self, task: &ClaimedTask, outcome: &OutcomeKind, applied: bool) {
        let kind = match outcome {
            OutcomeKind::Succeeded { .. } => "succeeded",
            OutcomeKind::Retry { .. } => "retry",
            OutcomeKind::Failed { .. } => "failed",
            OutcomeKind::Cancelled { .. } => "cancelled",
        };
        self.0.lock().unwrap().push((task.lease.id, kind, applied));
    }
}

/// A worker running in the background until the returned sender is dropped or sent to.
fn background_worker<B: WorkerBackend>(
    b: &Arc<B>,
    hooks: Arc<SeenOutcomes>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<crate::tasks::WorkerReport>,
) {
    let dynb: Arc<dyn WorkerBackend> = b.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::builder(dynb, registry())
        .hooks(hooks)
        .concurrency(4)
        .poll_interval(Duration::from_millis(10))
        .shutdown_timeout(Duration::from_secs(30))
        .build();
    let handle = tokio::spawn(async move {
        worker
            .run(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    (stop, handle)
}

/// Polls `id` until `done` holds for its result (or panics after a generous minute).
pub(super) async fn wait_for<B: TaskBackend>(
    case: &str,
    b: &Arc<B>,
    id: TaskId,
    what: &str,
    done: impl Fn(&TaskResult) -> bool,
) -> TaskResult {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = b.get_result(id).await.unwrap();
        if done(&r) {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{case}: task never {what}: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_cancelled(case: &str, r: &TaskResult) {
    assert_eq!(r.status, TaskStatus::Cancelled, "{case}: {r:?}");
    assert!(r.finished_at.is_some(), "{case}: no finish time: {r:?}");
    assert_eq!(r.attempts, 1, "{case}: {r:?}");
    let last = r.errors.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.attempt),
        ("cancelled", 1),
        "{case}"
    );
    assert!(r.return_value.is_none(), "{case}: {r:?}");
}

pub(super) async fn a_running_task_is_stopped_and_cancelled<B: WorkerBackend + QueueOperations>(
    b: Arc<B>,
) {
    let case = "a_running_task_is_stopped_and_cancelled";
    // An hour's sleep (the future is dropped) and a blocking loop that only stops because
    // it looks at its context.
    let sleeper = b.enqueue(hang(3_600_000, false)).await.unwrap();
    let blocking = b.enqueue(hang(3_600_000, true)).await.unwrap();
    let bystander = b.enqueue(hang(50, false)).await.unwrap();
    let hooks = Arc::new(SeenOutcomes::default());
    let (stop, worker) = background_worker(&b, hooks.clone());
    for id in [sleeper, blocking] {
        wait_for(case, &b, id, "started", |r| r.status == TaskStatus::Running).await;
        assert!(request_cancel(&*b, id).await, "{case}");
    }
    for id in [sleeper, blocking] {
        let r = wait_for(case, &b, id, "was cancelled", |r| r.status.is_finished()).await;
        assert_cancelled(case, &r);
    }
    assert!(
        saw_cancellation(blocking),
        "{case}: the cooperative task never saw its cancellation"
    );
    let r = wait_for(case, &b, bystander, "finished", |r| r.status.is_finished()).await;
    assert_eq!(r.status, TaskStatus::Successful, "{case}: {r:?}");
    let _ = stop.send(());
    let report = worker.await.unwrap();
    assert_eq!(report.cancelled, 2, "{case}: {report:?}");
    assert_eq!(report.succeeded, 1, "{case}: {report:?}");
    let mut seen = hooks.0.lock().unwrap().clone();
    seen.sort();
    let mut want = vec![
        (sleeper, "cancelled", true),
        (blocking, "cancelled", true),
        (bystander, "succeeded", true),
    ];
    want.sort();
    assert_eq!(seen, want, "{case}: what the hooks saw");
    // Never again: another worker finds nothing to run.
    let dynb: Arc<dyn WorkerBackend> = b.clone();
    let again = Worker::builder(dynb, registry())
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!(again.claimed, 0, "{case}: {again:?}");
    for id in [sleeper, blocking] {
        assert_cancelled(case, &b.get_result(id).await.unwrap());
    }
}

pub(super) async fn cancel_requests_name_the_workers_own_leases<
    B: WorkerBackend + QueueOperations,
>(
    b: Arc<B>,
) {
    let case = "cancel_requests_name_the_workers_own_leases";
    b.enqueue_many((0..3).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    let now = Utc::now();
    let mine = b.claim(&req("w1", 2, LEASE, now)).await.unwrap();
    let theirs = b.claim(&req("w2", 1, LEASE, now)).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (2, 1), "{case}");
    assert!(b.cancel_requests("w1").await.unwrap().is_empty(), "{case}");
    assert!(request_cancel(&*b, mine[1].lease.id).await, "{case}");
    assert!(request_cancel(&*b, theirs[0].lease.id).await, "{case}");
    assert_eq!(
        b.cancel_requests("w1").await.unwrap(),
        vec![mine[1].lease.clone()],
        "{case}"
    );
    assert_eq!(
        b.cancel_requests("w2").await.unwrap(),
        vec![theirs[0].lease.clone()],
        "{case}"
    );
    // A finished task is no longer a request.
    assert!(
        b.complete(&theirs[0].lease, json!(null)).await.unwrap(),
        "{case}"
    );
    assert!(b.cancel_requests("w2").await.unwrap().is_empty(), "{case}");
    // Only running tasks take a request.
    assert!(!request_cancel(&*b, theirs[0].lease.id).await, "{case}");
}

fn cancelled_error(attempt: u32) -> AttemptError {
    AttemptError {
        attempt,
        kind: "cancelled".to_owned(),
        message: "stopped".to_owned(),
        worker_id: Some("w".to_owned()),
        at: Utc::now(),
    }
}

pub(super) async fn the_cancelled_outcome_is_fenced<B: WorkerBackend + QueueOperations>(b: Arc<B>) {
    let case = "the_cancelled_outcome_is_fenced";
    let id = b.enqueue(echo(json!(1))).await.unwrap();
    let c = b
        .claim(&req("w", 1, LEASE, Utc::now()))
        .await
        .unwrap()
        .remove(0);
    assert!(request_cancel(&*b, id).await, "{case}");
    let outcome = |lease: Lease| Outcome {
        lease,
        at: Utc::now(),
        kind: OutcomeKind::Cancelled {
            error: cancelled_error(1),
        },
    };
    let stale = [
        Lease {
            attempt: 2,
            ..c.lease.clone()
        },
        Lease {
            worker_id: "other".to_owned(),
            ..c.lease.clone()
        },
    ];
    for lease in stale {
        assert_eq!(
            b.finish(&[outcome(lease)]).await.unwrap(),
            [false],
            "{case}"
        );
    }
    assert_eq!(
        b.get_result(id).await.unwrap().status,
        TaskStatus::Running,
        "{case}"
    );
    assert_eq!(
        b.finish(&[outcome(c.lease.clone())]).await.unwrap(),
        [true],
        "{case}"
    );
    let r = b.get_result(id).await.unwrap();
    assert_cancelled(case, &r);
    assert_eq!(r.worker_ids, ["w"], "{case}");
    // Applied once only.
    assert_eq!(
        b.finish(&[outcome(c.lease)]).await.unwrap(),
        [false],
        "{case}"
    );
}

pub(super) async fn a_cancelled_task_never_runs_again<B: WorkerBackend + QueueOperations>(
    b: Arc<B>,
) {
    let case = "a_cancelled_task_never_runs_again";
    // Its attempt failed retryably before the worker saw the request.
    let failed = b.enqueue(echo(json!(1))).await.unwrap();
    let c = b
        .claim(&req("w", 1, LEASE, Utc::now()))
        .await
        .unwrap()
        .remove(0);
    assert!(request_cancel(&*b, failed).await, "{case}");
    let error = AttemptError {
        kind: "transient".to_owned(),
        ..cancelled_error(1)
    };
    assert!(
        WorkerBackendExt::retry(&*b, &c.lease, error, Utc::now())
            .await
            .unwrap(),
        "{case}"
    );
    let r = b.get_result(failed).await.unwrap();
    assert_eq!(r.status, TaskStatus::Cancelled, "{case}: {r:?}");
    assert!(r.finished_at.is_some(), "{case}: {r:?}");
    assert_eq!(r.errors.len(), 1, "{case}: the attempt's error is kept");
    // Its worker died before it saw the request: the rescuer cancels it.
    let orphan = b.enqueue(echo(json!(2))).await.unwrap();
    let t0 = Utc::now();
    let c = b
        .claim(&req("w", 1, Duration::from_secs(1), t0))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c.lease.id, orphan, "{case}");
    assert!(request_cancel(&*b, orphan).await, "{case}");
    let report = b
        .rescue_expired(t0 + secs(5), MAX_LEASE_EXPIRIES)
        .await
        .unwrap();
    assert_eq!(
        (report.retried, report.failed),
        (0, 1),
        "{case}: {report:?}"
    );
    let r = b.get_result(orphan).await.unwrap();
    assert_eq!(r.status, TaskStatus::Cancelled, "{case}: {r:?}");
    assert!(r.finished_at.is_some(), "{case}: {r:?}");
    assert!(
        b.claim(&isolated_req("w", LEASE, t0 + secs(10)))
            .await
            .unwrap()
            .is_empty(),
        "{case}: a cancelled task was claimed"
    );
}
