//! Cancelling a task that a worker *process* is running, from another process (`mailroom
//! tasks cancel`): the worker stops the attempt before its side effect, records
//! `CANCELLED`, and no worker runs the task again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::worker_process::{lines, sigterm, spawn_worker};
use mailroom::tasks::{NewTask, SqliteBackend, SqliteOptions, TaskBackend, TaskId, TaskStatus};

/// Polls until `done` holds for the task (or panics after two generous minutes).
async fn wait_for(
    backend: &dyn TaskBackend,
    id: TaskId,
    what: &str,
    done: impl Fn(TaskStatus) -> bool,
) -> mailroom::tasks::TaskResult {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = backend.get_result(id).await.unwrap();
        if done(r.status) {
            return r;
        }
        assert!(tokio::time::Instant::now() < give_up, "never {what}: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `mailroom tasks cancel` on the running task, from a process of its own, and checks
/// its answer: the task is still RUNNING, its worker asked to stop it.
pub(crate) fn cancel_from_the_command_line(url: &str, id: TaskId) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(["tasks", "cancel", "--queue", url, &id.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(printed.trim(), format!("{id} RUNNING"), "{printed}");
}

/// The checks both backends share, once the cancel was requested.
pub(crate) async fn assert_cancelled_and_never_rerun(
    backend: &dyn TaskBackend,
    id: TaskId,
    out: &std::path::Path,
    mut worker: std::process::Child,
    url: &str,
) {
    let r = wait_for(backend, id, "finished", |s| s.is_finished()).await;
    assert_eq!(r.status, TaskStatus::Cancelled, "{r:?}");
    assert_eq!(r.attempts, 1, "{r:?}");
    assert!(r.finished_at.is_some(), "{r:?}");
    assert_eq!(
        r.errors.last().map(|e| e.kind.as_str()),
        Some("cancelled"),
        "{r:?}"
    );
    assert!(
        lines(out).is_empty(),
        "the cancelled attempt ran its side effect"
    );
    // The worker has nothing left to finish: SIGTERM ends it at once, with status 0.
    sigterm(&worker);
    let status = worker.wait().unwrap();
    assert!(status.success(), "{status}");
    // Another worker finds nothing to run.
    let mut again = spawn_worker(url, out, &["--burst", "--poll-ms", "20"]);
    let _guard = crate::KillOnDrop(vec![again.id()]);
    assert!(again.wait().unwrap().success());
    let after = backend.get_result(id).await.unwrap();
    assert_eq!(
        (after.status, after.attempts),
        (TaskStatus::Cancelled, 1),
        "{after:?}"
    );
    assert!(lines(out).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_another_process_stops_a_worker_processes_task() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tasks.db");
    let out = dir.path().join("side-effects.txt");
    let url = format!("sqlite:{}", db.display());
    let backend = SqliteBackend::connect_with(SqliteOptions::new(&db))
        .await
        .unwrap();
    // Ten minutes' sleep before the side effect.
    let id = backend
        .enqueue(NewTask::new("append", serde_json::json!({"n": 1})))
        .await
        .unwrap();
    let worker = spawn_worker(&url, &out, &["--sleep-ms", "600000", "--poll-ms", "20"]);
    let _guard = crate::KillOnDrop(vec![worker.id()]);
    wait_for(&backend, id, "started", |s| s == TaskStatus::Running).await;

    cancel_from_the_command_line(&url, id);

    assert_cancelled_and_never_rerun(&backend, id, &out, worker, &url).await;
}
