//! Finishing with a retry: rescheduling, new arguments carried to the next attempt, and a
//! worker passing progress along.

use super::*;

pub(super) async fn retry_reschedules<B: WorkerBackend>(b: Arc<B>) {
    let case = "retry_reschedules";
    let id = b.enqueue(echo(json!(1))).await.unwrap();
    let now = Utc::now();
    let c = b.claim(&req("w", 1, LEASE, now)).await.unwrap().remove(0);
    let at = now + secs(100);
    let err = crate::tasks::AttemptError {
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
        b.fail(&c2.lease, crate::tasks::AttemptError { attempt: 2, ..err })
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

pub(super) async fn retry_carries_new_args<B: WorkerBackend>(b: Arc<B>) {
    let case = "retry_carries_new_args";
    let id = b
        .enqueue(echo(json!("v1")).idempotency_key("progress"))
        .await
        .unwrap();
    let now = Utc::now();
    let c = b.claim(&req("w", 1, LEASE, now)).await.unwrap().remove(0);
    let err = crate::tasks::AttemptError {
        attempt: 1,
        kind: "partial".into(),
        message: "some done".into(),
        worker_id: Some("w".into()),
        at: now,
    };
    let outcome = |lease: Lease, args: serde_json::Value| crate::tasks::Outcome {
        lease,
        at: now,
        kind: crate::tasks::OutcomeKind::Retry {
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
    let failed = crate::tasks::Outcome {
        lease: c2.lease.clone(),
        at: now,
        kind: crate::tasks::OutcomeKind::Failed {
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

pub(super) async fn worker_passes_progress_to_the_next_attempt<B: WorkerBackend>(b: Arc<B>) {
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
