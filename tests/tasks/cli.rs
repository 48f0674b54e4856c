//! `mailroom tasks list|stats|retry|cancel` and `mailroom queue pause|resume|limit`, run as
//! a user runs them (the real binary) against a real SQLite file and a real PostgreSQL
//! schema: the same script on both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;

use crate::send_mail::{delivered_ids, ids, run, stderr, write_messages};

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stdout(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn code(args: &[&str]) -> Option<i32> {
    run(args).status.code()
}

fn listed_ids(page: &Value) -> Vec<String> {
    page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Drains the queue into `outbox` with a burst worker.
fn work(queue: &str, outbox: &Path) {
    let via = format!("file:{}", outbox.display());
    stdout(&["worker", "--queue", queue, "--via", &via, "--burst"]);
}

/// The whole operator's script against `queue` (whose queues are `default` and `mail`).
fn operate(queue: &str, dir: &Path) {
    let q = queue;
    let outbox = dir.join("outbox");
    let files = write_messages(dir, 0..4, "ann@example.org");
    let mut enqueue = vec!["enqueue", "--queue", q];
    enqueue.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = run(&enqueue);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let enqueued = ids(&out);
    assert_eq!(enqueued.len(), 4);

    // Newest first, in pages that follow each other without overlap.
    let all = json(&["tasks", "list", "--queue", q, "--json"]);
    let newest_first: Vec<String> = enqueued.iter().rev().cloned().collect();
    assert_eq!(listed_ids(&all), newest_first);
    assert_eq!(all["next"], Value::Null);
    assert_eq!(all["tasks"][0]["status"], "READY");
    assert_eq!(all["tasks"][0]["task_name"], "send_mail");
    assert_eq!(all["tasks"][0]["queue_name"], "default");
    let first = json(&["tasks", "list", "--queue", q, "--limit", "3", "--json"]);
    let cursor = first["next"].as_str().expect("a next cursor").to_owned();
    let second = json(&[
        "tasks", "list", "--queue", q, "--limit", "3", "--after", &cursor, "--json",
    ]);
    assert_eq!(second["next"], Value::Null);
    let mut paged = listed_ids(&first);
    paged.extend(listed_ids(&second));
    assert_eq!(paged, newest_first);

    // Cancel one ready task and an unknown id: each id with its status; exit 65 for the
    // unknown one.
    let unknown = "01a23521-7053-72da-a8a6-000000000000";
    let out = run(&["tasks", "cancel", "--queue", q, &enqueued[0], unknown]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap(),
        format!("{} CANCELLED\n{unknown} NOT_FOUND\n", enqueued[0])
    );
    assert!(stderr(&out).contains(unknown), "{}", stderr(&out));

    // The worker delivers the others, never the cancelled one.
    work(q, &outbox);
    let mut delivered = delivered_ids(&outbox);
    delivered.sort();
    assert_eq!(
        delivered,
        ["1@example.com", "2@example.com", "3@example.com"]
    );
    let out = run(&["tasks", "cancel", "--queue", q, &enqueued[1]]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap(),
        format!("{} SUCCESSFUL\n", enqueued[1]),
        "cancelling a finished task is a no-op answer"
    );

    let stats = json(&["tasks", "stats", "--queue", q, "--json"]);
    assert_eq!(
        stats,
        serde_json::json!({"default": {"READY": 0, "RUNNING": 0, "SUCCESSFUL": 3, "FAILED": 0, "CANCELLED": 1}})
    );
    let ready = json(&[
        "tasks",
        "list",
        "--queue",
        q,
        "--status",
        "cancelled",
        "--json",
    ]);
    assert_eq!(listed_ids(&ready), [enqueued[0].clone()]);
    let filtered = json(&[
        "tasks",
        "list",
        "--queue",
        q,
        "--status",
        "SUCCESSFUL",
        "--task",
        "send_mail",
        "--queue-name",
        "default",
        "--limit",
        "2",
        "--json",
    ]);
    assert_eq!(
        listed_ids(&filtered),
        [enqueued[3].clone(), enqueued[2].clone()]
    );

    // Retry: by filter it prints the ids it put back; then the worker delivers it.
    assert_eq!(
        stdout(&["tasks", "retry", "--queue", q, "--status", "CANCELLED"]),
        format!("{}\n", enqueued[0])
    );
    let out = run(&["tasks", "retry", "--queue", q, &enqueued[1]]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "a successful task is not retried");
    assert!(stderr(&out).contains("SUCCESSFUL"), "{}", stderr(&out));
    work(q, &outbox);
    assert_eq!(delivered_ids(&outbox).len(), 4, "the retried task ran");

    // Queue settings, shown in the table.
    stdout(&["queue", "pause", "--queue", q, "mail"]);
    stdout(&[
        "queue",
        "limit",
        "--queue",
        q,
        "default",
        "20/s",
        "--key-by",
        "transport,domain",
    ]);
    let table = stdout(&["tasks", "stats", "--queue", q]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("QUEUE"), "{table}");
    let default = lines.iter().find(|l| l.starts_with("default")).unwrap();
    assert!(default.contains("20/s per transport,domain"), "{table}");
    assert_eq!(
        default.split_whitespace().take(6).collect::<Vec<_>>(),
        ["default", "0", "0", "4", "0", "0"],
        "{table}"
    );
    let mail = lines.iter().find(|l| l.starts_with("mail")).unwrap();
    assert!(mail.contains("paused"), "{table}");
    stdout(&["queue", "resume", "--queue", q, "mail"]);
    stdout(&["queue", "limit", "--queue", q, "default", "none"]);
    let table = stdout(&["tasks", "stats", "--queue", q]);
    assert!(
        !table.contains("paused") && !table.contains("20/s"),
        "{table}"
    );
    let human = stdout(&["tasks", "list", "--queue", q, "--limit", "1"]);
    assert!(human.starts_with("ID "), "{human}");
    assert!(
        human.contains(&enqueued[3]) && human.contains("next page: --after t"),
        "{human}"
    );

    // Usage errors (64) name the flag; a bad id is invalid input (65).
    for (args, expected) in [
        (vec!["tasks", "list", "--queue", q, "--status", "bogus"], 64),
        (vec!["tasks", "list", "--queue", q, "--limit", "0"], 64),
        (vec!["tasks", "list", "--queue", q, "--after", "nope"], 64),
        (
            vec![
                "tasks",
                "list",
                "--queue",
                q,
                "--enqueued-after",
                "yesterday",
            ],
            64,
        ),
        (
            vec!["tasks", "retry", "--queue", q, "--status", "READY"],
            64,
        ),
        (vec!["tasks", "retry", "--queue", q], 64),
        (vec!["tasks", "cancel", "--queue", q, "not-an-id"], 65),
        (vec!["queue", "limit", "--queue", q, "default", "fast"], 64),
        (
            vec![
                "queue", "limit", "--queue", q, "default", "none", "--key-by", "domain",
            ],
            64,
        ),
        (vec!["queue", "pause", "--queue", q, "nowhere"], 64),
        (vec!["tasks", "stats", "--queue", "immediate:"], 64),
    ] {
        assert_eq!(
            code(&args),
            Some(expected),
            "{args:?}: {}",
            stderr(&run(&args))
        );
    }
}

#[test]
fn operator_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!(
        "sqlite:{}?queues=default,mail",
        dir.path().join("q.db").display()
    );
    operate(&queue, dir.path());
}

#[cfg(feature = "test-util")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_on_postgres() {
    let Some(url) = super::postgres::pg_url().await else {
        return;
    };
    let schemas = super::postgres::Schemas::new(&url);
    let queue = format!("{url}?schema={}&queues=default,mail", schemas.fresh());
    let dir = tempfile::tempdir().unwrap();
    let q = queue.clone();
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || operate(&q, &path))
        .await
        .unwrap();
    schemas.drop_all().await;
}
