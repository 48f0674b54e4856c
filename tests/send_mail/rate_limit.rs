//! A rate limit shared by worker processes: `mailroom queue limit` stores it in the queue's
//! database, and three `mailroom worker` processes delivering to a real SMTP server
//! (aiosmtpd) together keep to it — on SQLite and on PostgreSQL — while a limit keyed by
//! recipient domain lets another domain's mail through meanwhile.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{mailroom, run, stderr};
use crate::transport::aiosmtpd::{Aiosmtpd, Options};

/// The limit, the messages held back by it, and the domain the keyed limit lets through.
const RATE: &str = "20/s";
const SLOW: usize = 200;
const FAST: usize = 20;

fn write(dir: &Path, n: usize, domain: &str) -> PathBuf {
    let path = dir.join(format!("{domain}-{n}.json"));
    let json = serde_json::json!({
        "from": "zoe@example.com",
        "to": [format!("r{n}@{domain}")],
        "subject": format!("{domain} {n}"),
        "text": "hi",
        "message_id": format!("<{n}.{domain}@example.com>"),
    });
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

fn worker(queue: &str, via: &str) -> Child {
    mailroom()
        .args([
            "worker",
            "--queue",
            queue,
            "--via",
            via,
            "--concurrency",
            "8",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn three_workers_keep_to_a_shared_limit(queue: &str) {
    let dir = tempfile::tempdir().unwrap();
    let server = Aiosmtpd::start(Options::default());
    let mut files = Vec::new();
    for n in 0..SLOW {
        files.push(write(dir.path(), n, "slow.example"));
    }
    for n in 0..FAST {
        files.push(write(dir.path(), n, "fast.example"));
    }
    let mut args = vec!["enqueue".to_owned(), "--queue".to_owned(), queue.to_owned()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = run(&[
        "queue", "limit", "--queue", queue, "default", RATE, "--key-by", "domain",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let via = format!("smtp://127.0.0.1:{}?tls=none", server.port);
    let started = now_secs();
    let mut workers: Vec<Child> = (0..3).map(|_| worker(queue, &via)).collect();
    let give_up = Instant::now() + Duration::from_secs(180);
    while server.received().len() < SLOW + FAST && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(200));
    }
    // Anything sent twice would arrive now.
    std::thread::sleep(Duration::from_millis(500));
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }

    let received = server.received();
    let mut seen = HashSet::new();
    for r in &received {
        assert_eq!(r.rcpt_tos.len(), 1);
        assert!(
            seen.insert(r.rcpt_tos[0].clone()),
            "{} twice",
            r.rcpt_tos[0]
        );
    }
    assert_eq!(
        received.len(),
        SLOW + FAST,
        "every message delivered once, none lost"
    );

    let mut slow: Vec<f64> = received
        .iter()
        .filter(|r| r.rcpt_tos[0].ends_with("@slow.example"))
        .map(|r| r.at)
        .collect();
    slow.sort_by(f64::total_cmp);
    let fast_last = received
        .iter()
        .filter(|r| r.rcpt_tos[0].ends_with("@fast.example"))
        .map(|r| r.at)
        .fold(f64::MIN, f64::max);
    // 20 at once (a full bucket), then 20 a second: the 200th cannot start before 9 s.
    let took = slow[SLOW - 1] - started;
    assert!(
        took >= 9.0,
        "{SLOW} messages at {RATE} took {took:.2} s, under the 9 s the limit allows"
    );
    // The other domain has its own bucket: it is not queued behind the slow domain.
    assert!(
        fast_last < slow[SLOW / 2],
        "the fast domain's last message ({:.2} s) waited behind the slow domain's ({:.2} s for half)",
        fast_last - started,
        slow[SLOW / 2] - started
    );
}

#[test]
fn three_worker_processes_keep_to_a_shared_rate_limit_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    three_workers_keep_to_a_shared_limit(&queue);
}

#[test]
fn three_worker_processes_keep_to_a_shared_rate_limit_on_postgres() {
    let queue = super::PgQueue::fresh();
    three_workers_keep_to_a_shared_limit(&queue.url);
}
