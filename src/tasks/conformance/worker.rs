//! Finishing through a real worker: success, retries then success, backoff within the
//! policy's bounds, permanent failure, exhausted attempts.

use super::*;

pub(super) async fn worker_runs_tasks<B: WorkerBackend>(b: Arc<B>) {
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

pub(super) async fn worker_retries_then_succeeds<B: WorkerBackend>(b: Arc<B>) {
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

pub(super) async fn retry_backoff_within_bounds<B: WorkerBackend>(b: Arc<B>) {
    let case = "retry_backoff_within_bounds";
    let id = b
        .enqueue(SlowBackoff::new_task(&()).unwrap())
        .await
        .unwrap();
    let dynb: Arc<dyn WorkerBackend> = b.clone();
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

pub(super) async fn permanent_failure_fails_at_once<B: WorkerBackend>(b: Arc<B>) {
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

pub(super) async fn attempts_exhausted_fails<B: WorkerBackend>(b: Arc<B>) {
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
