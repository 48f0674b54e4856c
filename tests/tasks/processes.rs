//! Crash safety and concurrency with real worker processes (`examples/task_worker.rs`) on
//! one SQLite file: SIGKILL mid-run loses nothing; several workers never run one attempt
//! twice; SIGTERM finishes running tasks and exits 0; a task that aborts its worker process
//! is failed after a few crashes and takes no other task down twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use mailroom::tasks::{
    MAX_LEASE_EXPIRIES, NewTask, SqliteBackend, SqliteOptions, TaskBackend, TaskId, TaskStatus,
};

use super::worker_process::{lines, sigterm, spawn_worker};

/// A worker process on the SQLite file `db`.
fn spawn(db: &Path, out: &Path, extra: &[&str]) -> Child {
    spawn_worker(&format!("sqlite:{}", db.display()), out, extra)
}

async fn enqueue(backend: &SqliteBackend, count: u64) -> Vec<TaskId> {
    let tasks = (0..count)
        .map(|n| NewTask::new("append", serde_json::json!({ "n": n })))
        .collect();
    backend.enqueue_many(tasks).await.unwrap()
}

async fn wait_for_lines(out: &Path, at_least: usize) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    while lines(out).len() < at_least {
        assert!(
            tokio::time::Instant::now() < give_up,
            "workers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_all_successful(backend: &SqliteBackend, ids: &[TaskId]) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let mut pending = 0;
        for id in ids {
            if backend.get_result(*id).await.unwrap().status != TaskStatus::Successful {
                pending += 1;
            }
        }
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{pending} tasks never completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn running_ids(backend: &SqliteBackend, ids: &[TaskId]) -> HashSet<u64> {
    let mut running = HashSet::new();
    for id in ids {
        let r = backend.get_result(*id).await.unwrap();
        if r.status == TaskStatus::Running {
            running.insert(r.args["n"].as_u64().unwrap());
        }
    }
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_no_task() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.db");
    let out = dir.path().join("side-effects.txt");
    let backend = SqliteBackend::connect_with(SqliteOptions::new(&db))
        .await
        .unwrap();
    let total = 400;
    let ids = enqueue(&backend, total).await;
    let args = [
        "--concurrency",
        "8",
        "--lease-ms",
        "1000",
        "--sleep-ms",
        "5",
    ];

    // Two runs killed with SIGKILL part-way through; note what was RUNNING at each kill.
    let mut running_at_kills = HashSet::new();
    for stop_after in [60, 200] {
        let t = std::time::Instant::now();
        let mut child = spawn(&db, &out, &args);
        let _guard = crate::KillOnDrop(vec![child.id()]);
        let _guard = crate::KillOnDrop(vec![child.id()]);
        wait_for_lines(&out, stop_after).await;
        eprintln!("run to {stop_after} lines: {:?}", t.elapsed());
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let running = running_ids(&backend, &ids).await;
        running_at_kills.extend(running);
    }
    assert!(
        lines(&out).len() < total as usize,
        "the kills came too late to test anything"
    );

    // A third worker finishes the run (after the dead workers' leases expire), then stops
    // gracefully on SIGTERM.
    let t = std::time::Instant::now();
    let mut child = spawn(&db, &out, &args);
    let _guard = crate::KillOnDrop(vec![child.id()]);
    wait_all_successful(&backend, &ids).await;
    eprintln!("final run: {:?}", t.elapsed());
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM should end the worker with status 0, got {status}"
    );

    let mut by_n: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for (n, attempt, _) in lines(&out) {
        by_n.entry(n).or_default().push(attempt);
    }
    assert_eq!(by_n.len(), total as usize, "some tasks never ran");
    for (n, attempts) in &by_n {
        if attempts.len() > 1 {
            assert!(
                running_at_kills.contains(n),
                "task {n} ran twice ({attempts:?}) but was not running at a kill"
            );
            let distinct: HashSet<_> = attempts.iter().collect();
            assert_eq!(
                distinct.len(),
                attempts.len(),
                "task {n} ran one attempt twice: {attempts:?}"
            );
        }
    }
    let duplicated = by_n.values().filter(|a| a.len() > 1).count();
    eprintln!(
        "running at the kills: {}, ran twice: {duplicated}",
        running_at_kills.len()
    );
    assert!(
        !running_at_kills.is_empty(),
        "no task was running at a kill"
    );
    for id in &ids {
        let r = backend.get_result(*id).await.unwrap();
        assert_eq!(r.status, TaskStatus::Successful);
        assert_eq!(r.return_value, Some(r.args["n"].clone()));
        assert_eq!(r.worker_ids.len() as u32, r.attempts);
        if r.attempts > 1 {
            assert!(r.errors.iter().all(|e| e.kind == "lease_expired"), "{r:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_worker_processes_never_run_one_attempt_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.db");
    let out = dir.path().join("side-effects.txt");
    let backend = SqliteBackend::connect_with(SqliteOptions::new(&db))
        .await
        .unwrap();
    let total = 300;
    let ids = enqueue(&backend, total).await;
    let args = ["--concurrency", "4", "--sleep-ms", "2", "--burst"];
    let children: Vec<Child> = (0..3).map(|_| spawn(&db, &out, &args)).collect();
    let _guard = crate::KillOnDrop(children.iter().map(Child::id).collect());
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
    }
    wait_all_successful(&backend, &ids).await;
    let lines = lines(&out);
    let mut seen: HashMap<(u64, u32), String> = HashMap::new();
    for (n, attempt, worker) in &lines {
        if let Some(first) = seen.insert((*n, *attempt), worker.clone()) {
            panic!("task {n} attempt {attempt} ran twice: by {first} and {worker}");
        }
    }
    // Nobody died, so every task ran exactly once.
    assert_eq!(lines.len(), total as usize);
    let workers: HashSet<&str> = lines.iter().map(|(_, _, w)| w.as_str()).collect();
    eprintln!("{} worker processes shared the run", workers.len());
    for id in &ids {
        let r = backend.get_result(*id).await.unwrap();
        assert_eq!(r.attempts, 1);
        assert_eq!(r.worker_ids.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_aborts_its_worker_is_failed_and_the_others_run_once() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.db");
    let out = dir.path().join("side-effects.txt");
    let backend = SqliteBackend::connect_with(SqliteOptions::new(&db))
        .await
        .unwrap();
    // Good tasks first, then the poison: the first worker runs them side by side, and the
    // poison's abort kills the good ones mid-sleep, before their side effect.
    let good = enqueue(&backend, 3).await;
    let poison = backend
        .enqueue(NewTask::new("abort", serde_json::Value::Null))
        .await
        .unwrap();
    assert_eq!(backend.get_result(poison).await.unwrap().max_attempts, 10);
    let args = [
        "--concurrency",
        "4",
        "--lease-ms",
        "2000",
        "--sleep-ms",
        "1000",
    ];

    // Restart the worker each time the poison kills it, until the poison has failed.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut crashes = 0;
    'restarts: loop {
        let mut child = spawn(&db, &out, &args);
        let _guard = crate::KillOnDrop(vec![child.id()]);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_eq!(
                    status.signal(),
                    Some(6),
                    "the worker should have died of the poison's abort: {status}"
                );
                crashes += 1;
                assert!(
                    crashes <= MAX_LEASE_EXPIRIES,
                    "the poison crashed {crashes} workers"
                );
                continue 'restarts;
            }
            let poisoned = backend.get_result(poison).await.unwrap().status == TaskStatus::Failed;
            let mut all_good = true;
            for id in &good {
                all_good &= backend.get_result(*id).await.unwrap().status == TaskStatus::Successful;
            }
            if poisoned && all_good {
                sigterm(&child);
                let status = child.wait().unwrap();
                assert!(
                    status.success(),
                    "SIGTERM should end the worker with 0: {status}"
                );
                break 'restarts;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "after {crashes} crashes: poison failed {poisoned}, good tasks done {all_good}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        crashes, MAX_LEASE_EXPIRIES,
        "one crash per allowed lease expiry"
    );

    let r = backend.get_result(poison).await.unwrap();
    assert_eq!(r.status, TaskStatus::Failed, "{r:?}");
    assert_eq!(r.attempts, MAX_LEASE_EXPIRIES, "{r:?}");
    assert_eq!(r.errors.len(), MAX_LEASE_EXPIRIES as usize, "{r:?}");
    assert!(r.errors.iter().all(|e| e.kind == "lease_expired"), "{r:?}");
    let last = &r.errors[r.errors.len() - 1].message;
    assert!(
        last.contains(&format!(
            "ended without an outcome {MAX_LEASE_EXPIRIES} times"
        )),
        "{last}"
    );

    // The good tasks were killed once beside the poison, then ran alone: each ran its side
    // effect exactly once and succeeded.
    let mut runs: BTreeMap<u64, usize> = BTreeMap::new();
    for (n, _, _) in lines(&out) {
        *runs.entry(n).or_default() += 1;
    }
    assert_eq!(
        runs,
        (0..3).map(|n| (n, 1)).collect(),
        "side effects per good task"
    );
    for id in &good {
        let r = backend.get_result(*id).await.unwrap();
        assert_eq!(r.status, TaskStatus::Successful, "{r:?}");
        assert!(
            r.errors.len() <= 1,
            "killed beside the poison more than once: {r:?}"
        );
    }
}
