//! Pruning: finished tasks older than the cut-off are deleted; the rest stay.

use super::*;

pub(super) async fn pruning<B: WorkerBackend>(b: Arc<B>) {
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
    let err = crate::tasks::AttemptError {
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
    let dynb: Arc<dyn WorkerBackend> = b.clone();
    assert_eq!(
        crate::tasks::maintenance::pruner::prune_once(dynb.as_ref(), Duration::from_secs(60))
            .await
            .unwrap(),
        0,
        "{case}"
    );
}
