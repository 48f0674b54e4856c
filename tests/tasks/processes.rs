//! Crash safety and concurrency with real worker processes (`examples/task_worker.rs`) on
//! one SQLite file: SIGKILL mid-run loses nothing; several workers never run one attempt
//! twice; SIGTERM finishes running tasks and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use mailroom::tasks::{NewTask, SqliteBackend, SqliteOptions, TaskBackend, TaskId, TaskStatus};

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
    let backend = SqliteBackend::open(SqliteOptions::new(&db)).await.unwrap();
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
    let backend = SqliteBackend::open(SqliteOptions::new(&db)).await.unwrap();
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
