//! Rescue: expired leases are retried or failed, and a task whose leases keep expiring is
//! failed after `MAX_LEASE_EXPIRIES`.

use super::*;

pub(super) async fn expired_leases_are_rescued<B: WorkerBackend>(b: Arc<B>) {
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

pub(super) async fn rescue_fails_when_out_of_attempts<B: WorkerBackend>(b: Arc<B>) {
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

pub(super) async fn repeated_lease_expiries_fail_the_task<B: WorkerBackend>(b: Arc<B>) {
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
