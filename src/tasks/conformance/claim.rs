//! Claiming: claim order (priority, then run time, then enqueue order), queues kept apart,
//! filters by task name and route, and deferred tasks.

use super::*;

async fn claim_all<B: WorkerBackend>(b: &B, worker: &str, now: DateTime<Utc>) -> Vec<ClaimedTask> {
    let mut out = Vec::new();
    loop {
        let got = b.claim(&req(worker, 1, LEASE, now)).await.unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

pub(super) async fn ordering<B: WorkerBackend>(b: Arc<B>) {
    let case = "ordering";
    let now = Utc::now();
    let t = |name: &str| echo(json!(name));
    // Enqueue order: a, b, c, d, e, f.
    let tasks = vec![
        t("a").priority(0),
        t("b").priority(10).run_after(now - secs(10)),
        t("c").priority(10).run_after(now - secs(20)),
        t("d").priority(-5),
        t("e").priority(0),
        t("f").priority(10).run_after(now - secs(20)),
    ];
    b.enqueue_many(tasks).await.unwrap();
    let order: Vec<String> = claim_all(b.as_ref(), "w", now + secs(1))
        .await
        .into_iter()
        .map(|c| c.args["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        ["c", "f", "b", "a", "e", "d"],
        "{case}: priority desc, then run_after, then enqueue order"
    );
    // A batch claim returns the same order.
    b.enqueue_many(vec![t("x").priority(-1), t("y").priority(1), t("z")])
        .await
        .unwrap();
    let batch = b.claim(&req("w", 10, LEASE, now + secs(2))).await.unwrap();
    let order: Vec<&str> = batch
        .iter()
        .map(|c| c.args["value"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["y", "z", "x"], "{case}: batch claim order");
}

pub(super) async fn queues_are_separate<B: WorkerBackend>(b: Arc<B>) {
    let case = "queues_are_separate";
    let other = b
        .enqueue(echo(json!("other")).queue("other"))
        .await
        .unwrap();
    let def = b.enqueue(echo(json!("default"))).await.unwrap();
    let got = b.claim(&req("w", 10, LEASE, Utc::now())).await.unwrap();
    assert_eq!(
        got.iter().map(|c| c.lease.id).collect::<Vec<_>>(),
        [def],
        "{case}"
    );
    let mut both = req("w", 10, LEASE, Utc::now());
    both.queues = vec!["default".into(), "other".into()];
    let got = b.claim(&both).await.unwrap();
    assert_eq!(
        got.iter().map(|c| c.lease.id).collect::<Vec<_>>(),
        [other],
        "{case}"
    );
    assert_eq!(got[0].queue_name, "other", "{case}");
}

pub(super) async fn claims_filter_by_task_name_and_route<B: WorkerBackend>(b: Arc<B>) {
    let case = "claims_filter_by_task_name_and_route";
    // A worker claims only the tasks its registry holds and the routes it serves.
    let plain = b.enqueue(echo(json!("plain"))).await.unwrap();
    let smtp = b.enqueue(echo(json!("smtp")).route("smtp")).await.unwrap();
    let ses = b.enqueue(echo(json!("ses")).route("ses")).await.unwrap();
    let slow = b
        .enqueue(SlowBackoff::new_task(&()).unwrap())
        .await
        .unwrap();
    let dynb: Arc<dyn WorkerBackend> = b.clone();
    let report = Worker::builder(dynb, Registry::new().with(Echo))
        .routes(["smtp"])
        .burst(true)
        .poll_interval(Duration::from_millis(5))
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.claimed, 2, "{case}: {report:?}");
    for (id, status) in [
        (plain, TaskStatus::Successful),
        (smtp, TaskStatus::Successful),
        (ses, TaskStatus::Ready),
        (slow, TaskStatus::Ready),
    ] {
        let r = b.get_result(id).await.unwrap();
        assert_eq!(r.status, status, "{case}: {r:?}");
        if status == TaskStatus::Ready {
            assert_eq!(
                r.attempts, 0,
                "{case}: claimed by a worker that cannot run it"
            );
        }
    }
    let now = Utc::now();
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let claim = |names: Option<&[&str]>, routes: Option<&[&str]>| ClaimRequest {
        task_names: names.map(strings),
        routes: routes.map(strings),
        ..req("w", 10, LEASE, now)
    };
    let ids = |claimed: Vec<ClaimedTask>| claimed.iter().map(|c| c.lease.id).collect::<Vec<_>>();
    assert!(
        b.claim(&claim(Some(&[]), None)).await.unwrap().is_empty(),
        "{case}: no names, no tasks"
    );
    assert!(
        b.claim(&claim(Some(&["nope"]), None))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
    // No route served: only tasks without a route.
    assert_eq!(
        ids(b.claim(&claim(None, Some(&[]))).await.unwrap()),
        [slow],
        "{case}"
    );
    assert_eq!(
        ids(b
            .claim(&claim(Some(&[Echo::NAME, "x"]), Some(&["smtp", "ses"])))
            .await
            .unwrap()),
        [ses],
        "{case}"
    );
}

pub(super) async fn run_after_defers<B: WorkerBackend>(b: Arc<B>) {
    let case = "run_after_defers";
    let now = Utc::now();
    let later = now + secs(3600);
    let id = b.enqueue(echo(json!(1)).run_after(later)).await.unwrap();
    assert_eq!(
        b.get_result(id).await.unwrap().run_after.timestamp_micros(),
        later.timestamp_micros(),
        "{case}"
    );
    assert!(
        b.claim(&req("w", 10, LEASE, now)).await.unwrap().is_empty(),
        "{case}: claimed before run_after"
    );
    assert!(
        b.claim(&req("w", 10, LEASE, later - secs(1)))
            .await
            .unwrap()
            .is_empty(),
        "{case}"
    );
    let got = b
        .claim(&req("w", 10, LEASE, later + secs(1)))
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "{case}: not claimed after run_after");
    assert_eq!(got[0].lease.id, id, "{case}");
}
