//! Enqueueing: what a durable backend offers, what it stores and returns, and enqueueing
//! inside a transaction that is rolled back or committed.

use super::*;

pub(super) async fn durable_capabilities<B: WorkerBackend>(b: Arc<B>) {
    let caps = b.capabilities();
    assert!(
        caps.supports_defer && caps.supports_priority && caps.supports_get_result,
        "durable_capabilities: {caps:?}"
    );
    for q in CONFORMANCE_QUEUES {
        assert!(
            b.queues().iter().any(|k| k == q),
            "durable_capabilities: queue `{q}` unknown"
        );
    }
}

pub(super) async fn enqueue_and_get_result<B: WorkerBackend>(b: Arc<B>) {
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
    assert_eq!(&r.args, task.args(), "{case}");
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

pub(super) async fn transactional_enqueue_rolled_back<B: WorkerBackend + TransactionalEnqueue>(
    b: Arc<B>,
) {
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

pub(super) async fn transactional_enqueue_committed<B: WorkerBackend + TransactionalEnqueue>(
    b: Arc<B>,
) {
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
