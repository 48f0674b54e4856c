//! Validation cases every backend must pass, durable or not.

use super::*;

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
    // Errors name the field at fault.
    let err = b.enqueue(echo(json!(1)).queue("nope")).await.unwrap_err();
    assert_eq!(err.field(), Some("queue_name"), "{case}");
    if caps.supports_get_result {
        let missing = b.get_result(TaskId::new()).await;
        assert!(
            matches!(missing, Err(TaskError::NotFound { .. })),
            "{case}: {missing:?}"
        );
    }
}
