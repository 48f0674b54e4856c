//! Timeouts: an attempt that runs longer than its task's [`Task::TIMEOUT`], or the
//! per-task [`NewTask::timeout`] that replaces it, is stopped and counts as a retryable
//! failure of kind `timeout`.

use super::*;

fn assert_timed_out(case: &str, r: &TaskResult, attempts: u32, limit: &str) {
    assert_eq!(r.status, TaskStatus::Failed, "{case}: {r:?}");
    assert_eq!(r.attempts, attempts, "{case}: {r:?}");
    assert_eq!(r.errors.len(), attempts as usize, "{case}: {r:?}");
    for e in &r.errors {
        assert_eq!(e.kind, "timeout", "{case}: {r:?}");
        assert!(e.message.contains(limit), "{case}: {}", e.message);
    }
}

pub(super) async fn the_tasks_timeout_stops_an_attempt_and_retries<B: WorkerBackend>(b: Arc<B>) {
    let case = "the_tasks_timeout_stops_an_attempt_and_retries";
    // An hour's sleep against a limit of 300 ms: each attempt is stopped, then retried.
    let slow = b
        .enqueue(TimeBoxed::new_task(&3_600_000).unwrap().max_attempts(2))
        .await
        .unwrap();
    let quick = b.enqueue(TimeBoxed::new_task(&1).unwrap()).await.unwrap();
    let results = work_until_finished(case, &b, &[slow, quick]).await;
    assert_timed_out(case, &results[0], 2, "300 ms");
    assert_eq!(results[1].status, TaskStatus::Successful, "{case}");
    assert_eq!(results[1].return_value, Some(json!(1)), "{case}");
}

pub(super) async fn a_per_task_timeout_replaces_the_tasks_own<B: WorkerBackend>(b: Arc<B>) {
    let case = "a_per_task_timeout_replaces_the_tasks_own";
    // Longer than the task's 300 ms: an attempt of 600 ms succeeds.
    let longer = b
        .enqueue(
            TimeBoxed::new_task(&600)
                .unwrap()
                .timeout(Duration::from_secs(120)),
        )
        .await
        .unwrap();
    // A task without a timeout of its own, given one.
    let given = b
        .enqueue(
            Hang::new_task(&HangArgs {
                ms: 3_600_000,
                blocking: false,
            })
            .unwrap()
            .timeout(Duration::from_millis(250))
            .max_attempts(1),
        )
        .await
        .unwrap();
    let results = work_until_finished(case, &b, &[longer, given]).await;
    assert_eq!(
        results[0].status,
        TaskStatus::Successful,
        "{case}: {:?}",
        results[0]
    );
    assert_eq!(results[0].return_value, Some(json!(600)), "{case}");
    assert_timed_out(case, &results[1], 1, "250 ms");
}

pub(super) async fn the_claim_carries_the_per_task_timeout<B: WorkerBackend>(b: Arc<B>) {
    let case = "the_claim_carries_the_per_task_timeout";
    b.enqueue(echo(json!(1)).timeout(Duration::from_millis(1500)))
        .await
        .unwrap();
    b.enqueue(echo(json!(2))).await.unwrap();
    let claimed = b.claim(&req("w", 2, LEASE, Utc::now())).await.unwrap();
    let timeouts: Vec<_> = claimed.iter().map(|c| c.timeout).collect();
    assert_eq!(
        timeouts,
        [Some(Duration::from_millis(1500)), None],
        "{case}"
    );
}
