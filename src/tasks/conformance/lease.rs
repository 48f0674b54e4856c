//! Leases: what a claim records, concurrent claims that never share an attempt, fenced
//! completions, and heartbeats that extend a lease.

use super::*;

pub(super) async fn claim_records_the_lease<B: WorkerBackend>(b: Arc<B>) {
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

pub(super) async fn concurrent_claims_never_share_an_attempt<B: WorkerBackend>(b: Arc<B>) {
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

pub(super) async fn completion_is_fenced<B: WorkerBackend>(b: Arc<B>) {
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
    let err = crate::tasks::AttemptError {
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

pub(super) async fn heartbeat_extends_the_lease<B: WorkerBackend>(b: Arc<B>) {
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
