//! The operator's role ([`QueueOperations`]): listings with filters and keyset pages,
//! counts, cancel (of ready, running, finished and unknown tasks, and against concurrent
//! claims), retry (by id and by filter, really running again), and the stored queue
//! settings.

use std::collections::HashSet;

use super::*;
use crate::tasks::{CancelOutcome, MAX_PAGE, RateLimit, RetrySelection, TaskFilter};

fn failing(permanent: bool) -> NewTask {
    Echo::new_task(&EchoArgs {
        value: json!("f"),
        fail_first: 1,
        permanent,
    })
    .unwrap()
}

fn ids_of(page: &crate::tasks::TaskPage) -> Vec<TaskId> {
    page.tasks.iter().map(|t| t.id).collect()
}

/// Waits until the clock has moved past `t`, so that times recorded next are later.
async fn clock_passes(t: DateTime<Utc>) -> DateTime<Utc> {
    while Utc::now() <= t {
        tokio::task::yield_now().await;
    }
    Utc::now()
}

/// Every page of `filter`, `limit` at a time.
async fn all_pages<B: QueueOperations>(b: &B, filter: &TaskFilter, limit: usize) -> Vec<TaskId> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = b.list_tasks(filter, limit, after).await.unwrap();
        assert!(page.tasks.len() <= limit);
        out.extend(ids_of(&page));
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

pub(super) async fn listing_filters<B: WorkerBackend + QueueOperations>(b: Arc<B>) {
    let case = "listing_filters";
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(b.enqueue(echo(json!(i))).await.unwrap());
    }
    let other = b.enqueue(echo(json!("o")).queue("other")).await.unwrap();
    let progress = b
        .enqueue(
            Progress::new_task(&ProgressArgs {
                done: vec![],
                left: 0,
                garble: false,
            })
            .unwrap(),
        )
        .await
        .unwrap();
    // Claim the three oldest of `default`: finish one, fail one, leave one running.
    let now = Utc::now();
    let claimed = b.claim(&req("w", 3, LEASE, now)).await.unwrap();
    assert_eq!(claimed.len(), 3, "{case}");
    assert!(b.complete(&claimed[0].lease, json!(1)).await.unwrap());
    let first_finish = b.get_result(claimed[0].lease.id).await.unwrap();
    let between = clock_passes(first_finish.finished_at.unwrap()).await;
    let err = crate::tasks::AttemptError {
        attempt: 1,
        kind: "permanent".into(),
        message: "no".into(),
        worker_id: Some("w".into()),
        at: now,
    };
    assert!(b.fail(&claimed[1].lease, err).await.unwrap());

    let all = b
        .list_tasks(&TaskFilter::default(), 100, None)
        .await
        .unwrap();
    let mut newest_first = ids.clone();
    newest_first.push(other);
    newest_first.push(progress);
    newest_first.reverse();
    assert_eq!(ids_of(&all), newest_first, "{case}: newest first");
    assert_eq!(all.next, None, "{case}: one page holds all");

    let by = |f: TaskFilter| {
        let b = b.clone();
        async move { ids_of(&b.list_tasks(&f, 100, None).await.unwrap()) }
    };
    let status = |s: &[TaskStatus]| TaskFilter {
        statuses: s.to_vec(),
        ..TaskFilter::default()
    };
    assert_eq!(
        by(status(&[TaskStatus::Successful])).await,
        [claimed[0].lease.id],
        "{case}"
    );
    assert_eq!(
        by(status(&[TaskStatus::Running, TaskStatus::Failed])).await,
        [claimed[2].lease.id, claimed[1].lease.id],
        "{case}: several statuses, newest first"
    );
    let ready = by(status(&[TaskStatus::Ready])).await;
    assert_eq!(ready, [progress, other, ids[5], ids[4], ids[3]], "{case}");
    assert_eq!(
        by(TaskFilter {
            queue_name: Some("other".into()),
            ..TaskFilter::default()
        })
        .await,
        [other],
        "{case}: by queue"
    );
    assert_eq!(
        by(TaskFilter {
            statuses: vec![TaskStatus::Ready],
            queue_name: Some("default".into()),
            ..TaskFilter::default()
        })
        .await,
        [progress, ids[5], ids[4], ids[3]],
        "{case}: by status and queue"
    );
    assert_eq!(
        by(TaskFilter {
            task_name: Some(Progress::NAME.into()),
            ..TaskFilter::default()
        })
        .await,
        [progress],
        "{case}: by task name"
    );
    assert!(
        by(TaskFilter {
            queue_name: Some("nowhere".into()),
            ..TaskFilter::default()
        })
        .await
        .is_empty(),
        "{case}"
    );
    // Finish times: unfinished tasks match neither side.
    assert_eq!(
        by(TaskFilter {
            finished_before: Some(between),
            ..TaskFilter::default()
        })
        .await,
        [claimed[0].lease.id],
        "{case}: finished before"
    );
    assert_eq!(
        by(TaskFilter {
            finished_after: Some(between),
            ..TaskFilter::default()
        })
        .await,
        [claimed[1].lease.id],
        "{case}: finished after"
    );
    // Enqueue times.
    let last_old = b.get_result(progress).await.unwrap().enqueued_at;
    let cut = clock_passes(last_old).await;
    let late = b.enqueue(echo(json!("late"))).await.unwrap();
    assert_eq!(
        by(TaskFilter {
            enqueued_after: Some(cut),
            ..TaskFilter::default()
        })
        .await,
        [late],
        "{case}: enqueued after"
    );
    assert_eq!(
        by(TaskFilter {
            enqueued_before: Some(cut),
            ..TaskFilter::default()
        })
        .await,
        newest_first,
        "{case}: enqueued before"
    );
    // Each listed task is its full result.
    let one = b
        .list_tasks(&status(&[TaskStatus::Failed]), 1, None)
        .await
        .unwrap();
    assert_eq!(
        one.tasks[0],
        b.get_result(claimed[1].lease.id).await.unwrap(),
        "{case}"
    );
    for bad in [0, MAX_PAGE + 1] {
        match b.list_tasks(&TaskFilter::default(), bad, None).await {
            Err(TaskError::Invalid { field: "limit", .. }) => {}
            other => panic!("{case}: limit {bad}: {other:?}"),
        }
    }
}

pub(super) async fn pages_have_no_duplicates_or_gaps_while_enqueuing<
    B: WorkerBackend + QueueOperations,
>(
    b: Arc<B>,
) {
    let case = "pages_have_no_duplicates_or_gaps_while_enqueuing";
    let mut old = Vec::new();
    for chunk in 0..5 {
        let batch = (0..10).map(|i| echo(json!(chunk * 10 + i))).collect();
        old.extend(b.enqueue_many(batch).await.unwrap());
    }
    // A few fail, so a status filter pages through a mix too.
    let now = Utc::now();
    for c in b.claim(&req("w", 12, LEASE, now)).await.unwrap() {
        let err = crate::tasks::AttemptError {
            attempt: 1,
            kind: "permanent".into(),
            message: "no".into(),
            worker_id: Some("w".into()),
            at: now,
        };
        assert!(b.fail(&c.lease, err).await.unwrap());
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let enqueuer = {
        let (b, stop) = (b.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                b.enqueue(echo(json!(format!("new {n}")))).await.unwrap();
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        })
    };
    let mut expected = old.clone();
    expected.reverse();
    for filter in [
        TaskFilter::default(),
        TaskFilter {
            statuses: vec![TaskStatus::Ready, TaskStatus::Failed],
            ..TaskFilter::default()
        },
        TaskFilter {
            queue_name: Some("default".into()),
            ..TaskFilter::default()
        },
    ] {
        for limit in [1, 7, 50] {
            let listed = all_pages(b.as_ref(), &filter, limit).await;
            let unique: HashSet<TaskId> = listed.iter().copied().collect();
            assert_eq!(
                unique.len(),
                listed.len(),
                "{case}: a task listed twice ({filter:?}, {limit})"
            );
            let olds: Vec<TaskId> = listed.iter().copied().filter(|i| old.contains(i)).collect();
            assert_eq!(
                olds, expected,
                "{case}: the tasks there before are all listed once, newest first ({filter:?}, {limit})"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let added = enqueuer.await.unwrap();
    assert!(added > 0, "{case}: the enqueuer ran meanwhile");
}

pub(super) async fn counts_per_queue_and_status<B: WorkerBackend + QueueOperations>(b: Arc<B>) {
    let case = "counts_per_queue_and_status";
    let empty = b.count_tasks().await.unwrap();
    assert!(empty.counts.is_empty() && empty.exact, "{case}: {empty:?}");
    for i in 0..5 {
        b.enqueue(echo(json!(i))).await.unwrap();
    }
    for i in 0..2 {
        b.enqueue(echo(json!(i)).queue("other")).await.unwrap();
    }
    let now = Utc::now();
    let claimed = b.claim(&req("w", 2, LEASE, now)).await.unwrap();
    assert!(b.complete(&claimed[0].lease, json!(1)).await.unwrap());
    let cancel = b.enqueue(echo(json!("c")).queue("other")).await.unwrap();
    b.cancel(&[cancel]).await.unwrap();
    let counts = b.count_tasks().await.unwrap();
    assert!(counts.exact && counts.estimated.is_empty(), "{case}");
    let expected: std::collections::BTreeMap<String, std::collections::BTreeMap<TaskStatus, u64>> =
        [
            (
                "default".to_owned(),
                [
                    (TaskStatus::Ready, 3),
                    (TaskStatus::Running, 1),
                    (TaskStatus::Successful, 1),
                ]
                .into_iter()
                .collect(),
            ),
            (
                "other".to_owned(),
                [(TaskStatus::Ready, 2), (TaskStatus::Cancelled, 1)]
                    .into_iter()
                    .collect(),
            ),
        ]
        .into_iter()
        .collect();
    assert_eq!(counts.counts, expected, "{case}");
    assert!(!counts.is_estimated("default", TaskStatus::Ready), "{case}");
}

pub(super) async fn cancel_each_kind_of_task<B: WorkerBackend + QueueOperations>(b: Arc<B>) {
    let case = "cancel_each_kind_of_task";
    let running = b.enqueue(echo(json!("r"))).await.unwrap();
    let now = Utc::now();
    let c = b.claim(&req("w", 1, LEASE, now)).await.unwrap().remove(0);
    assert_eq!(c.lease.id, running, "{case}");
    let finished = b.enqueue(echo(json!("f"))).await.unwrap();
    let c = b
        .claim(&req("w", 1, LEASE, Utc::now()))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(c.lease.id, finished, "{case}");
    assert!(b.complete(&c.lease, json!(1)).await.unwrap());
    let ready2 = b.enqueue(echo(json!(1))).await.unwrap();
    let later = b
        .enqueue(echo(json!(2)).run_after(now + secs(3600)))
        .await
        .unwrap();
    let done = b.enqueue(echo(json!(3))).await.unwrap();
    let unknown = TaskId::new();
    let out = b
        .cancel(&[ready2, later, running, finished, unknown])
        .await
        .unwrap();
    assert_eq!(
        out,
        [
            (ready2, CancelOutcome::Cancelled),
            (later, CancelOutcome::Cancelled),
            (running, CancelOutcome::Requested),
            (
                finished,
                CancelOutcome::AlreadyFinished(TaskStatus::Successful)
            ),
            (unknown, CancelOutcome::NotFound),
        ],
        "{case}"
    );
    for id in [ready2, later] {
        let r = b.get_result(id).await.unwrap();
        assert_eq!(r.status, TaskStatus::Cancelled, "{case}");
        assert!(
            r.finished_at.is_some(),
            "{case}: a cancelled task is finished"
        );
        assert_eq!(r.attempts, 0, "{case}");
    }
    let r = b.get_result(running).await.unwrap();
    assert_eq!(r.status, TaskStatus::Running, "{case}: the worker stops it");
    let asked = r.cancel_requested_at.expect("a cancel request is recorded");
    // Asking again answers the same and keeps the first request's time.
    assert_eq!(
        b.cancel(&[running]).await.unwrap(),
        [(running, CancelOutcome::Requested)],
        "{case}"
    );
    assert_eq!(
        b.get_result(running).await.unwrap().cancel_requested_at,
        Some(asked),
        "{case}"
    );
    assert_eq!(
        b.cancel(&[ready2]).await.unwrap(),
        [(
            ready2,
            CancelOutcome::AlreadyFinished(TaskStatus::Cancelled)
        )],
        "{case}: cancelling twice is a no-op"
    );
    // The cancelled tasks never run: the queue's only ready task is `done`.
    let rest = b
        .claim(&req("w", 10, LEASE, now + secs(7200)))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|c| c.lease.id).collect::<Vec<_>>(),
        [done],
        "{case}: a cancelled task was claimed"
    );
    assert!(b.cancel(&[]).await.unwrap().is_empty(), "{case}");
}

pub(super) async fn cancel_races_claims_without_losing_a_task<
    B: WorkerBackend + QueueOperations,
>(
    b: Arc<B>,
) {
    let case = "cancel_races_claims_without_losing_a_task";
    let ids = b
        .enqueue_many((0..200).map(|i| echo(json!(i))).collect())
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let claimer = {
        let (b, stop) = (b.clone(), stop.clone());
        tokio::spawn(async move {
            let mut claimed = HashSet::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for c in b.claim(&req("w", 3, LEASE, Utc::now())).await.unwrap() {
                    claimed.insert(c.lease.id);
                }
                tokio::task::yield_now().await;
            }
            claimed
        })
    };
    let mut outcomes = Vec::new();
    for chunk in ids.chunks(7) {
        outcomes.extend(b.cancel(chunk).await.unwrap());
        tokio::task::yield_now().await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut claimed = claimer.await.unwrap();
    // Whatever is still claimable now must not be a cancelled task either.
    for c in b.claim(&req("w", 500, LEASE, Utc::now())).await.unwrap() {
        claimed.insert(c.lease.id);
    }
    assert_eq!(outcomes.len(), ids.len(), "{case}");
    for (id, outcome) in outcomes {
        let r = b.get_result(id).await.unwrap();
        match outcome {
            CancelOutcome::Cancelled => {
                assert!(
                    !claimed.contains(&id),
                    "{case}: a cancelled task was claimed"
                );
                assert_eq!(r.status, TaskStatus::Cancelled, "{case}");
            }
            CancelOutcome::Requested => {
                assert!(claimed.contains(&id), "{case}: requested but never claimed");
                assert_eq!(r.status, TaskStatus::Running, "{case}");
                assert!(r.cancel_requested_at.is_some(), "{case}: request lost");
            }
            other => panic!("{case}: {id}: {other:?}"),
        }
    }
}

pub(super) async fn retry_by_id_and_by_filter_runs_again<B: WorkerBackend + QueueOperations>(
    b: Arc<B>,
) {
    let case = "retry_by_id_and_by_filter_runs_again";
    // One attempt only, failing for good: a retry must give it a second.
    let failed = b.enqueue(failing(true).max_attempts(1)).await.unwrap();
    let failed_too = b.enqueue(failing(true).max_attempts(1)).await.unwrap();
    let ok = b.enqueue(echo(json!("ok"))).await.unwrap();
    let results = work_until_finished(case, &b, &[failed, failed_too, ok]).await;
    assert_eq!(results[0].status, TaskStatus::Failed, "{case}");
    assert_eq!(results[0].errors.len(), 1, "{case}");
    let cancelled = b.enqueue(echo(json!("c")).queue("other")).await.unwrap();
    b.cancel(&[cancelled]).await.unwrap();

    // By id: only FAILED and CANCELLED ones move; an unknown id is skipped.
    let retried = b
        .retry(&RetrySelection::Ids(vec![
            ok,
            failed,
            TaskId::new(),
            failed,
        ]))
        .await
        .unwrap();
    assert_eq!(retried, [failed], "{case}");
    let r = b.get_result(failed).await.unwrap();
    assert_eq!(r.status, TaskStatus::Ready, "{case}");
    assert_eq!(
        r.errors, results[0].errors,
        "{case}: the error history stays"
    );
    assert!(r.max_attempts > r.attempts, "{case}: {r:?}");
    assert!(
        r.finished_at.is_none() && r.cancel_requested_at.is_none(),
        "{case}"
    );
    assert!(r.run_after <= Utc::now(), "{case}: runs at once");
    assert_eq!(
        b.get_result(ok).await.unwrap().status,
        TaskStatus::Successful,
        "{case}"
    );

    // By filter: statuses other than FAILED and CANCELLED are refused.
    let bad = TaskFilter {
        statuses: vec![TaskStatus::Ready],
        ..TaskFilter::default()
    };
    match b.retry(&RetrySelection::Filter(bad)).await {
        Err(TaskError::Invalid {
            field: "status", ..
        }) => {}
        other => panic!("{case}: {other:?}"),
    }
    let by_queue = TaskFilter {
        statuses: vec![TaskStatus::Cancelled],
        queue_name: Some("other".into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        b.retry(&RetrySelection::Filter(by_queue.clone()))
            .await
            .unwrap(),
        [cancelled],
        "{case}"
    );
    let by_name = TaskFilter {
        statuses: vec![TaskStatus::Failed],
        task_name: Some(Echo::NAME.into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        b.retry(&RetrySelection::Filter(by_name.clone()))
            .await
            .unwrap(),
        [failed_too],
        "{case}"
    );
    assert!(
        b.retry(&RetrySelection::Filter(by_name))
            .await
            .unwrap()
            .is_empty(),
        "{case}: nothing left to retry"
    );

    // A worker runs them again: the second attempt of each succeeds.
    let results = work_until_finished(case, &b, &[failed, failed_too, cancelled]).await;
    for r in &results[..2] {
        assert_eq!(r.status, TaskStatus::Successful, "{case}: {r:?}");
        assert_eq!(r.attempts, 2, "{case}");
        assert_eq!(r.errors.len(), 1, "{case}: the first failure is kept");
    }
    assert_eq!(
        results[2].status,
        TaskStatus::Successful,
        "{case}: the cancelled task ran"
    );
}

pub(super) async fn queue_settings_are_stored<B: WorkerBackend + QueueOperations>(b: Arc<B>) {
    let case = "queue_settings_are_stored";
    assert!(b.queue_settings().await.unwrap().is_empty(), "{case}");
    b.pause_queue("other").await.unwrap();
    b.pause_queue("other").await.unwrap();
    let s = b.queue_settings().await.unwrap();
    assert_eq!(s.len(), 1, "{case}");
    assert_eq!(s[0].queue_name, "other");
    let paused_at = s[0].paused_at.expect("paused");
    assert_eq!(s[0].rate_limit, None, "{case}");
    let limit = RateLimit::new(20, Duration::from_secs(1)).key_by(["transport", "domain"]);
    b.set_rate_limit("other", Some(&limit)).await.unwrap();
    b.set_rate_limit("default", Some(&RateLimit::new(5, Duration::from_secs(60))))
        .await
        .unwrap();
    let s = b.queue_settings().await.unwrap();
    assert_eq!(s.len(), 2, "{case}");
    let (default, other) = (&s[0], &s[1]);
    assert_eq!(default.queue_name, "default", "{case}: sorted by name");
    assert_eq!(default.paused_at, None, "{case}");
    assert_eq!(
        default.rate_limit,
        Some(RateLimit::new(5, Duration::from_secs(60))),
        "{case}"
    );
    assert_eq!(other.rate_limit, Some(limit), "{case}");
    assert_eq!(
        other.paused_at,
        Some(paused_at),
        "{case}: pausing again keeps the first time"
    );
    b.resume_queue("other").await.unwrap();
    b.set_rate_limit("other", None).await.unwrap();
    let s = b.queue_settings().await.unwrap();
    assert_eq!(
        (s[1].paused_at, s[1].rate_limit.clone()),
        (None, None),
        "{case}"
    );
    for r in [
        b.pause_queue("nowhere").await,
        b.resume_queue("nowhere").await,
        b.set_rate_limit("nowhere", None).await,
    ] {
        match r {
            Err(TaskError::Invalid {
                field: "queue_name",
                ..
            }) => {}
            other => panic!("{case}: {other:?}"),
        }
    }
    let zero = RateLimit::new(0, Duration::from_secs(1));
    match b.set_rate_limit("default", Some(&zero)).await {
        Err(TaskError::Invalid { field: "rate", .. }) => {}
        other => panic!("{case}: {other:?}"),
    }
}
