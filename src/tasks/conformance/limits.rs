//! Pause and rate limits as claims see them: a paused queue gives nothing (and another
//! queue still does); a rate-limited queue gives as many tasks as its buckets pay for, per
//! key when keyed, and never more than that to concurrent claimers together.

use super::*;
use crate::tasks::RateLimit;

/// A task labelled with `domain`.
fn to_domain(domain: &str, n: usize) -> NewTask {
    echo(json!(format!("{domain}-{n}"))).label("domain", domain)
}

/// A limit that gives no token back while a test runs.
fn per_hour(limit: u32) -> RateLimit {
    RateLimit::new(limit, Duration::from_secs(3600))
}

fn both_queues(worker: &str, limit: usize) -> ClaimRequest {
    ClaimRequest {
        queues: vec!["default".to_owned(), "other".to_owned()],
        ..req(worker, limit, LEASE, Utc::now())
    }
}

pub(super) async fn paused_queues_are_not_claimed<B: WorkerBackend + QueueOperations>(b: Arc<B>) {
    let case = "paused_queues_are_not_claimed";
    b.enqueue_many((0..3).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    b.enqueue(echo(json!("o")).queue("other")).await.unwrap();
    b.pause_queue("default").await.unwrap();
    let got = b.claim(&both_queues("w", 10)).await.unwrap();
    assert_eq!(got.len(), 1, "{case}: only the other queue's task: {got:?}");
    assert_eq!(got[0].queue_name, "other", "{case}");
    b.resume_queue("default").await.unwrap();
    let got = b.claim(&both_queues("w", 10)).await.unwrap();
    assert_eq!(got.len(), 3, "{case}: resumed");
}

pub(super) async fn a_rate_limit_caps_claims<B: WorkerBackend + QueueOperations>(b: Arc<B>) {
    let case = "a_rate_limit_caps_claims";
    b.enqueue_many((0..10).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    b.set_rate_limit("default", Some(&per_hour(4)))
        .await
        .unwrap();
    let first = b.claim(&req("w1", 3, LEASE, Utc::now())).await.unwrap();
    let second = b.claim(&req("w2", 10, LEASE, Utc::now())).await.unwrap();
    assert_eq!(
        (first.len(), second.len()),
        (3, 1),
        "{case}: 4 tokens in all"
    );
    assert!(
        b.claim(&req("w3", 10, LEASE, Utc::now()))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
    b.set_rate_limit("default", None).await.unwrap();
    let rest = b.claim(&req("w3", 10, LEASE, Utc::now())).await.unwrap();
    assert_eq!(rest.len(), 6, "{case}: unlimited again");
}

pub(super) async fn a_keyed_rate_limit_gives_each_key_its_own_bucket<
    B: WorkerBackend + QueueOperations,
>(
    b: Arc<B>,
) {
    let case = "a_keyed_rate_limit_gives_each_key_its_own_bucket";
    // The strict domain's tasks come first in claim order, many of them.
    let mut tasks: Vec<NewTask> = (0..20).map(|n| to_domain("strict.example", n)).collect();
    tasks.extend((0..3).map(|n| to_domain("other.example", n)));
    tasks.push(echo(json!("unlabelled")));
    b.enqueue_many(tasks).await.unwrap();
    b.set_rate_limit("default", Some(&per_hour(2).key_by(["domain"])))
        .await
        .unwrap();
    let got = b.claim(&req("w", 100, LEASE, Utc::now())).await.unwrap();
    let count = |domain: &str| {
        got.iter()
            .filter(|t| {
                t.args["value"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(domain))
            })
            .count()
    };
    assert_eq!(count("strict.example"), 2, "{case}: {got:?}");
    assert_eq!(
        count("other.example"),
        2,
        "{case}: its own bucket, not behind the strict one"
    );
    assert_eq!(
        count("unlabelled"),
        1,
        "{case}: tasks without the label share one bucket"
    );
    assert!(
        b.claim(&req("w", 100, LEASE, Utc::now()))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
}

pub(super) async fn concurrent_claims_never_exceed_the_limit<B: WorkerBackend + QueueOperations>(
    b: Arc<B>,
) {
    let case = "concurrent_claims_never_exceed_the_limit";
    b.enqueue_many((0..100).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    b.set_rate_limit("default", Some(&per_hour(25)))
        .await
        .unwrap();
    let claims = (0..8).map(|i| {
        let b = b.clone();
        tokio::spawn(async move {
            b.claim(&req(&format!("w{i}"), 10, LEASE, Utc::now()))
                .await
                .unwrap()
                .len()
        })
    });
    let mut total = 0;
    for c in futures_util::future::join_all(claims).await {
        total += c.unwrap();
    }
    assert_eq!(
        total, 25,
        "{case}: exactly the limit, across eight claimers"
    );
}

pub(super) async fn a_burst_worker_waits_for_tokens_but_not_for_a_paused_queue<
    B: WorkerBackend + QueueOperations,
>(
    b: Arc<B>,
) {
    let case = "a_burst_worker_waits_for_tokens_but_not_for_a_paused_queue";
    let run = |b: Arc<B>| async move {
        let dynb: Arc<dyn WorkerBackend> = b;
        Worker::builder(dynb, registry())
            .concurrency(4)
            .burst(true)
            .poll_interval(Duration::from_millis(10))
            .build()
            .run(std::future::pending())
            .await
            .unwrap()
    };
    // 8 tasks at 4 per second: the second half waits for tokens, and the worker with it.
    b.enqueue_many((0..8).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    b.set_rate_limit("default", Some(&RateLimit::new(4, Duration::from_secs(1))))
        .await
        .unwrap();
    let report = run(b.clone()).await;
    assert_eq!(report.succeeded, 8, "{case}: {report:?}");
    // A paused queue's task does not keep it running.
    let id = b.enqueue(echo(json!("paused"))).await.unwrap();
    b.pause_queue("default").await.unwrap();
    let report = run(b.clone()).await;
    assert_eq!(report.claimed, 0, "{case}: {report:?}");
    assert_eq!(
        b.get_result(id).await.unwrap().status,
        TaskStatus::Ready,
        "{case}"
    );
}
