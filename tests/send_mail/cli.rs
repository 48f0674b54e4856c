//! `send`, `enqueue`, `worker`, `status`: exit codes, results, idempotency, retries.

use serde_json::Value;

use super::{delivered_ids, ids, run, status, stderr, write_messages};
use crate::transport::aiosmtpd::{Aiosmtpd, Options};
use crate::transport::fake_server::{FakeServer, Script};

#[test]
fn enqueue_then_worker_delivers_through_a_real_smtp_server_and_status_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Aiosmtpd::start(Options::default());
    let files = write_messages(dir.path(), 0..3, "bob@example.org");
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let mut args = vec!["enqueue", "--queue", &queue, "--transport", "relay"];
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let task_ids = ids(&out);
    assert_eq!(task_ids.len(), 3);

    let via = format!("relay=smtp://127.0.0.1:{}", server.port);
    let out = run(&["worker", "--queue", &queue, "--via", &via, "--burst"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    for id in &task_ids {
        let result = status(&queue, id);
        assert_eq!(result["status"], "SUCCESSFUL", "{result}");
        assert_eq!(result["attempts"], 1);
        assert_eq!(result["return_value"]["accepted"][0], "bob@example.org");
    }
    let received = server.received();
    assert_eq!(received.len(), 3);
    let mut subjects: Vec<String> = received
        .iter()
        .map(|r| {
            mail_parser::MessageParser::default()
                .parse(&r.data)
                .unwrap()
                .subject()
                .unwrap()
                .to_owned()
        })
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Nachricht 0", "Nachricht 1", "Nachricht 2"]);
}

#[test]
fn the_same_message_enqueued_twice_is_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_messages(dir.path(), 0..1, "bob@example.org");
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let file = files[0].display().to_string();
    let first = ids(&run(&["enqueue", "--queue", &queue, &file]));
    let second = ids(&run(&["enqueue", "--queue", &queue, &file]));
    assert_eq!(first, second, "the Message-ID is the idempotency key");
    let outbox = dir.path().join("outbox");
    let out = run(&[
        "worker",
        "--queue",
        &queue,
        "--via",
        &format!("file:{}", outbox.display()),
        "--burst",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(delivered_ids(&outbox), ["0@example.com"]);
}

#[test]
fn a_permanent_rejection_fails_at_once_with_the_server_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = Aiosmtpd::start(Options {
        reject: vec!["nobody@example.org"],
        ..Options::default()
    });
    let files = write_messages(dir.path(), 0..1, "nobody@example.org");
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let id = ids(&run(&[
        "enqueue",
        "--queue",
        &queue,
        &files[0].display().to_string(),
    ]))
    .remove(0);
    let out = run(&[
        "worker",
        "--queue",
        &queue,
        "--via",
        &format!("smtp://127.0.0.1:{}", server.port),
        "--burst",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result = status(&queue, &id);
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["attempts"], 1, "permanent failures are not retried");
    let error = result["errors"][0].to_string();
    assert!(
        error.contains("550") && error.contains("no such user"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_later() {
    let server = FakeServer::start(Script {
        after_data: Some("451 4.3.0 try again later"),
        ..Script::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let files = write_messages(dir.path(), 0..1, "bob@example.org");
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let url = server.url("tls=none");
    let file = files[0].display().to_string();
    let (queue2, url2) = (queue.clone(), url.clone());
    let result = tokio::task::spawn_blocking(move || {
        let id = ids(&run(&["enqueue", "--queue", &queue2, &file])).remove(0);
        let out = run(&["worker", "--queue", &queue2, "--via", &url2, "--burst"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        status(&queue2, &id)
    })
    .await
    .unwrap();
    assert_eq!(result["status"], "READY", "waiting for its retry: {result}");
    assert_eq!(result["attempts"], 1);
    let error = result["errors"][0].to_string();
    assert!(
        error.contains("451") && error.contains("transient"),
        "{error}"
    );
    assert!(
        result["run_after"].as_str().unwrap() > result["last_attempted_at"].as_str().unwrap(),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_exits_69_on_permanent_and_75_on_transient_failures() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(Script {
        reject_rcpt: vec!["bob@example.org"],
        ..Script::default()
    })
    .await;
    let files = write_messages(dir.path(), 0..1, "bob@example.org");
    let file = files[0].display().to_string();
    let permanent = server.url("tls=none");
    let transient = FakeServer::start(Script {
        after_data: Some("451 4.3.0 later"),
        ..Script::default()
    })
    .await
    .url("tls=none");
    let outbox = format!("file:{}", dir.path().join("out").display());
    let (p, t, f) = tokio::task::spawn_blocking(move || {
        (
            run(&["send", "--via", &permanent, &file]),
            run(&["send", "--via", &transient, &file]),
            run(&["send", "--via", &outbox, &file]),
        )
    })
    .await
    .unwrap();
    assert_eq!(p.status.code(), Some(69), "{}", stderr(&p));
    assert!(stderr(&p).contains("550"), "{}", stderr(&p));
    assert_eq!(t.status.code(), Some(75), "{}", stderr(&t));
    assert_eq!(f.status.code(), Some(0), "{}", stderr(&f));
    let line: Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(line["message_id"], "<0@example.com>");
    assert_eq!(line["accepted"][0], "bob@example.org");
    let refused = run(&[
        "send",
        "--via",
        "smtp://127.0.0.1:9?tls=none",
        &files[0].display().to_string(),
    ]);
    assert_eq!(
        refused.status.code(),
        Some(75),
        "connection refused is transient: {}",
        stderr(&refused)
    );
}

#[test]
fn a_worker_without_the_named_transport_leaves_the_task_to_one_that_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_messages(dir.path(), 0..1, "bob@example.org");
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let id = ids(&run(&[
        "enqueue",
        "--queue",
        &queue,
        "--transport",
        "bulk",
        &files[0].display().to_string(),
    ]))
    .remove(0);
    let out = run(&["worker", "--queue", &queue, "--via", "dummy:", "--burst"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result = status(&queue, &id);
    assert_eq!(result["status"], "READY", "{result}");
    assert_eq!(
        result["attempts"], 0,
        "a worker without the transport does not claim the task: {result}"
    );

    // The operator starts a worker that has the transport: it delivers the task.
    let outbox = dir.path().join("outbox");
    let via = format!("bulk=file:{}", outbox.display());
    let out = run(&["worker", "--queue", &queue, "--via", &via, "--burst"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result = status(&queue, &id);
    assert_eq!(result["status"], "SUCCESSFUL", "{result}");
    assert_eq!(result["attempts"], 1, "{result}");
    assert_eq!(delivered_ids(&outbox), ["0@example.com"]);
}

#[test]
fn queue_rows_hold_no_transport_url_or_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_messages(dir.path(), 0..1, "bob@example.org");
    let db = dir.path().join("q.db");
    let queue = format!("sqlite:{}", db.display());
    let out = mailroom_with_env(
        &[
            "enqueue",
            "--queue",
            &queue,
            &files[0].display().to_string(),
        ],
        "smtp://ann:hunter2@mail.example.com",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bytes = std::fs::read(&db).unwrap();
    let wal = std::fs::read(dir.path().join("q.db-wal")).unwrap_or_default();
    for haystack in [&bytes, &wal] {
        assert!(
            !haystack.windows(7).any(|w| w == b"hunter2"),
            "a credential reached the queue"
        );
        assert!(
            !haystack.windows(16).any(|w| w == b"mail.example.com"),
            "a transport URL reached the queue"
        );
    }
}

fn mailroom_with_env(args: &[&str], transport: &str) -> std::process::Output {
    super::mailroom()
        .args(args)
        .env("MAILROOM_TRANSPORT", transport)
        .output()
        .unwrap()
}

#[test]
fn status_of_an_unknown_or_malformed_id_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&["status", "--queue", &queue, "not-an-id"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("TASK_ID"));
}

#[test]
fn send_via_console_prints_the_message_then_its_result_line() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_messages(dir.path(), 0..1, "bob@example.org");
    let out = run(&["send", "--via", "console:", &files[0].display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let separator = format!("\n{}\n", "-".repeat(79));
    let (message, result) = stdout
        .split_once(&separator)
        .unwrap_or_else(|| panic!("no separator in {stdout}"));
    let parsed = mail_parser::MessageParser::default()
        .parse(message.as_bytes())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Nachricht 0"));
    assert_eq!(parsed.message_id(), Some("0@example.com"));
    assert!(message.contains("\r\n\r\nbody 0"), "{message}");
    let result: Value = serde_json::from_str(result.trim_end()).unwrap();
    assert_eq!(result["message_id"], "<0@example.com>", "{result}");
    assert_eq!(result["accepted"][0], "bob@example.org", "{result}");
}

/// `cargo build` (default features) gives a `mailroom` whose `--queue` opens every URL
/// scheme `tasks::connect` knows (`sqlite:` and `postgres://`), not one that answers "the
/// postgres backend is not compiled in": the `cli` feature turns on every backend, and is
/// a default feature. (This suite runs with all features, so it reads the manifest.)
#[test]
fn the_default_cli_build_opens_every_queue_backend() {
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
    )
    .unwrap();
    let feature = |name: &str| -> Vec<String> {
        let line = manifest
            .lines()
            .find(|l| l.starts_with(&format!("{name} = [")))
            .unwrap_or_else(|| panic!("no `{name}` feature in Cargo.toml"));
        line.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let default = feature("default");
    let cli = feature("cli");
    assert!(default.contains(&"cli".to_owned()), "default: {default:?}");
    for backend in ["sqlite", "postgres"] {
        assert!(
            cli.contains(&backend.to_owned()),
            "cli lacks {backend}: {cli:?}"
        );
        assert!(
            default.contains(&backend.to_owned()),
            "default lacks {backend}: {default:?}"
        );
    }
}

/// dkimpy's verdict on each `.eml` file in `dir`: the number of passing signatures each.
fn dkimpy_passes(dir: &std::path::Path) -> Vec<usize> {
    let dkim = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dkim");
    let mut passes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let verify = std::process::Command::new("python3")
            .arg(dkim.join("verify.py"))
            .arg(&path)
            .arg(format!(
                "rsa._domainkey.example.com={}",
                dkim.join("rsa2048.txt").display()
            ))
            .output()
            .expect("python3 with dkimpy is required");
        let report = String::from_utf8_lossy(&verify.stdout);
        passes.push(report.matches(" pass").count());
    }
    passes
}

#[test]
fn send_and_worker_sign_every_message_with_the_dkim_keys_given() {
    let dir = tempfile::tempdir().unwrap();
    let key =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dkim/rsa2048.pkcs1.pem");
    let key = key.to_str().unwrap();
    let signing = [
        "--dkim-key",
        key,
        "--dkim-selector",
        "rsa",
        "--dkim-domain",
        "example.com",
    ];
    let files = write_messages(dir.path(), 0..2, "bob@example.org");
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();

    let sent = dir.path().join("sent");
    let via = format!("file:{}", sent.display());
    let mut args = vec!["send", "--via", &via];
    args.extend(signing);
    args.push(&paths[0]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(dkimpy_passes(&sent), [1]);

    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&["enqueue", "--queue", &queue, &paths[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let worked = dir.path().join("worked");
    let via = format!("file:{}", worked.display());
    let mut args = vec!["worker", "--queue", &queue, "--via", &via, "--burst"];
    args.extend(signing);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(dkimpy_passes(&worked), [1]);
    assert_eq!(delivered_ids(&worked), ["1@example.com"]);

    // Without keys, nothing is signed: the count above comes from the flags.
    let plain = dir.path().join("plain");
    let via = format!("file:{}", plain.display());
    let out = run(&["send", "--via", &via, &paths[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(dkimpy_passes(&plain), [0]);
}
