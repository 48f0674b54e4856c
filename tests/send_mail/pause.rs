//! Pause and resume across worker processes: once `mailroom queue pause` has returned, no
//! worker process claims from the queue (within a second), and `resume` lets them all go
//! on — on SQLite and on PostgreSQL, with real `mailroom worker` processes.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{delivered_ids, mailroom, run, stderr, write_messages};

fn worker(queue: &str, via: &str) -> Child {
    mailroom()
        .args(["worker", "--queue", queue, "--via", via])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn enqueue(queue: &str, files: &[std::path::PathBuf]) {
    let mut args = vec!["enqueue".to_owned(), "--queue".to_owned(), queue.to_owned()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn wait_for(n: usize, outbox: &std::path::Path) -> Vec<String> {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let ids = delivered_ids(outbox);
        if ids.len() >= n || Instant::now() > give_up {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn two_workers_stop_claiming_from_a_paused_queue(queue: &str) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let via = format!("file:{}", outbox.display());
    let mut workers = [worker(queue, &via), worker(queue, &via)];
    // The workers are up and delivering.
    enqueue(queue, &write_messages(dir.path(), 0..5, "a@example.org"));
    assert_eq!(wait_for(5, &outbox).len(), 5);

    let out = run(&["queue", "pause", "--queue", queue, "default"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // "Within a second": after that, nothing more is claimed from the queue.
    std::thread::sleep(Duration::from_millis(1200));
    enqueue(queue, &write_messages(dir.path(), 5..25, "a@example.org"));
    std::thread::sleep(Duration::from_secs(2));
    let during = delivered_ids(&outbox);
    assert_eq!(during.len(), 5, "delivered while paused: {during:?}");

    let out = run(&["queue", "resume", "--queue", queue, "default"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = wait_for(25, &outbox);
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let mut unique = after.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (after.len(), unique.len()),
        (25, 25),
        "each delivered once: {after:?}"
    );
}

#[test]
fn two_worker_processes_stop_claiming_from_a_paused_queue_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    two_workers_stop_claiming_from_a_paused_queue(&queue);
}

#[test]
fn two_worker_processes_stop_claiming_from_a_paused_queue_on_postgres() {
    let queue = super::PgQueue::fresh();
    two_workers_stop_claiming_from_a_paused_queue(&queue.url);
}
