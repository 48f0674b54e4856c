//! Idempotency keys: the same task under one key is stored once; different work under it
//! is a conflict, whether stored earlier or within one batch.

use super::*;

pub(super) async fn idempotent_enqueue<B: WorkerBackend>(b: Arc<B>) {
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
    let err = b
        .enqueue(echo(json!("third")).idempotency_key("order-1"))
        .await
        .unwrap_err();
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
