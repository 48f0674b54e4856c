//! Idempotency keys: the same task under one key is stored once; different work under it
//! is a conflict, whether stored earlier or within one batch. A key with a unique scope is
//! free again once the scope has lapsed (its first task finished, or its period passed):
//! the next enqueue under it makes a new task, once however many race for it.

use super::*;
use crate::tasks::UniqueScope;

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

/// Enqueues `task` from `n` concurrent callers; returns the ids they got.
async fn race<B: WorkerBackend>(b: &Arc<B>, task: &NewTask, n: usize) -> Vec<TaskId> {
    let calls = (0..n).map(|_| b.enqueue(task.clone()));
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

pub(super) async fn unique_until_finished_frees_the_key_when_the_task_ends<B: WorkerBackend>(
    b: Arc<B>,
) {
    let case = "unique_until_finished_frees_the_key_when_the_task_ends";
    let task = |v: i64| {
        echo(json!(v))
            .idempotency_key("u-1")
            .unique(UniqueScope::UntilFinished)
    };
    let first = b.enqueue(task(1)).await.unwrap();
    // While it has not finished (ready, then running), the key holds as ever.
    assert_eq!(b.enqueue(task(1)).await.unwrap(), first, "{case}");
    assert_conflict(case, b.enqueue(task(2)).await);
    let c = b.claim(&req("w", 10, LEASE, Utc::now())).await.unwrap();
    assert_eq!(c.len(), 1, "{case}");
    assert_eq!(b.enqueue(task(1)).await.unwrap(), first, "{case}");
    assert!(
        b.complete(&c[0].lease, json!("ok")).await.unwrap(),
        "{case}"
    );
    // Finished: the same work under the key is a new task — one, however many race.
    let ids = race(&b, &task(1), 8).await;
    let second = ids[0];
    assert_ne!(
        second, first,
        "{case}: the lapsed key still gave the old task"
    );
    assert!(ids.iter().all(|id| *id == second), "{case}: {ids:?}");
    let old = b.get_result(first).await.unwrap();
    assert_eq!(old.status, TaskStatus::Successful, "{case}");
    assert_eq!(
        old.return_value,
        Some(json!("ok")),
        "{case}: the old result stays"
    );
    assert_eq!(
        old.idempotency_key, None,
        "{case}: the old task keeps the key"
    );
    let new = b.get_result(second).await.unwrap();
    assert_eq!(new.status, TaskStatus::Ready, "{case}");
    assert_eq!(new.idempotency_key.as_deref(), Some("u-1"), "{case}");
    // The new task holds the key in turn, and a batch repeating it gets its id.
    assert_conflict(case, b.enqueue(task(3)).await);
    let batch = b.enqueue_many(vec![task(1), task(1)]).await.unwrap();
    assert_eq!(batch, [second, second], "{case}");
    // A failed task frees its key too; different work may then take it.
    let c = b.claim(&req("w", 10, LEASE, Utc::now())).await.unwrap();
    assert_eq!(c.len(), 1, "{case}: only the new task is ready: {c:?}");
    let error = crate::tasks::AttemptError {
        attempt: 1,
        kind: "k".to_owned(),
        message: "m".to_owned(),
        worker_id: None,
        at: Utc::now(),
    };
    assert!(b.fail(&c[0].lease, error).await.unwrap(), "{case}");
    let third = b.enqueue(task(3)).await.unwrap();
    assert!(third != first && third != second, "{case}");
    // A key without a scope (forever) is never freed by the scoped rule.
    let forever = b
        .enqueue(echo(json!(9)).idempotency_key("u-forever"))
        .await
        .unwrap();
    let c = b.claim(&req("w", 10, LEASE, Utc::now())).await.unwrap();
    for claimed in &c {
        assert!(
            b.complete(&claimed.lease, json!(null)).await.unwrap(),
            "{case}"
        );
    }
    assert_eq!(
        b.enqueue(
            echo(json!(9))
                .idempotency_key("u-forever")
                .unique(UniqueScope::UntilFinished)
        )
        .await
        .unwrap(),
        forever,
        "{case}: the stored task's scope decides, and it holds the key forever"
    );
}

pub(super) async fn unique_for_a_period_frees_the_key_after_it<B: WorkerBackend>(b: Arc<B>) {
    let case = "unique_for_a_period_frees_the_key_after_it";
    let period = Duration::from_secs(3);
    let task = |v: i64| {
        echo(json!(v))
            .idempotency_key("u-2")
            .unique(UniqueScope::For(period))
    };
    let start = tokio::time::Instant::now();
    let first = b.enqueue(task(1)).await.unwrap();
    assert_conflict(case, b.enqueue(task(2)).await);
    // Once the period has passed the key is free, though the first task has not run.
    let give_up = start + Duration::from_secs(60);
    let second = loop {
        let id = b.enqueue(task(1)).await.unwrap();
        if id != first {
            break id;
        }
        assert!(tokio::time::Instant::now() < give_up, "{case}: never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        start.elapsed() >= period,
        "{case}: freed after {:?}, before the period of {period:?}",
        start.elapsed()
    );
    let old = b.get_result(first).await.unwrap();
    assert_eq!(
        old.status,
        TaskStatus::Ready,
        "{case}: the old task still runs"
    );
    assert_eq!(old.idempotency_key, None, "{case}");
    // The new task holds it for a period of its own.
    assert_conflict(case, b.enqueue(task(2)).await);
    assert_eq!(b.enqueue(task(1)).await.unwrap(), second, "{case}");
    assert_eq!(
        b.claim(&req("w", 10, LEASE, Utc::now()))
            .await
            .unwrap()
            .len(),
        2,
        "{case}: both tasks run"
    );
}
