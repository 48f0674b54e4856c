//! Issue 9's command-line cases: what a hostile input or an unlucky operator does to
//! `enqueue`, `worker` and the input readers, and what they must answer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{delivered_ids, ids, mailroom, run, status, stderr, write_messages};
use crate::transport::fake_server::{FakeServer, Script};

fn queue_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("q.db").display())
}

fn enqueue(queue: &str, files: &[PathBuf]) -> std::process::Output {
    let mut args = vec!["enqueue".to_owned(), "--queue".to_owned(), queue.to_owned()];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

fn drain(queue: &str, outbox: &Path) {
    let via = format!("file:{}", outbox.display());
    let out = run(&["worker", "--queue", queue, "--via", &via, "--burst"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn enqueue_of_several_files_stores_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let queue = queue_url(dir.path());
    let outbox = dir.path().join("outbox");
    // Three messages without a Message-ID: a partial enqueue followed by a corrected
    // retry would send the first one twice (each enqueue generates a fresh id).
    let files: Vec<PathBuf> = (0..3)
        .map(|n| {
            let path = dir.path().join(format!("m{n}.json"));
            let to = if n == 1 {
                "not an address"
            } else {
                "bob@example.org"
            };
            let json = serde_json::json!({
                "from": "zoe@example.com", "to": [to], "subject": format!("m{n}"), "text": "hi",
            });
            std::fs::write(&path, json.to_string()).unwrap();
            path
        })
        .collect();

    let out = enqueue(&queue, &files);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("m1.json") && stderr(&out).contains("to[0]"),
        "the error names the file and the field: {}",
        stderr(&out)
    );
    assert!(
        ids(&out).is_empty(),
        "no task id is printed when nothing was stored"
    );
    drain(&queue, &outbox);
    assert!(
        delivered_ids(&outbox).is_empty(),
        "the valid first file must not have been enqueued"
    );

    // The corrected set is enqueued whole, and each message delivered exactly once.
    let fixed = serde_json::json!({
        "from": "zoe@example.com", "to": ["carol@example.org"], "subject": "m1", "text": "hi",
    });
    std::fs::write(&files[1], fixed.to_string()).unwrap();
    let out = enqueue(&queue, &files);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let task_ids = ids(&out);
    assert_eq!(task_ids.len(), 3, "one task id per file, in order");
    drain(&queue, &outbox);
    assert_eq!(delivered_ids(&outbox).len(), 3);
    for id in &task_ids {
        assert_eq!(status(&queue, id)["status"], "SUCCESSFUL");
    }
}

#[test]
fn message_json_that_is_not_utf8_is_invalid_input_not_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = b"{\"from\": \"zo\xff@example.com\", \"to\": [\"b@example.org\"]}";

    let mut child = mailroom()
        .args(["render"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("UTF-8"), "{}", stderr(&out));

    let file = dir.path().join("latin1.json");
    std::fs::write(&file, bytes).unwrap();
    let queue = queue_url(dir.path());
    let out = enqueue(&queue, &[file]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("latin1.json"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_carry_no_terminal_colour_codes() {
    let server = FakeServer::start(Script {
        after_data: Some("451 4.3.0 try again later"),
        ..Script::default()
    })
    .await;
    let url = server.url("tls=none");
    let log = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let queue = queue_url(dir.path());
        let files = write_messages(dir.path(), 0..1, "bob@example.org");
        let out = enqueue(&queue, &files);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // The 451 makes the worker log a warning: on a pipe, as plain text.
        let out = run(&["worker", "--queue", &queue, "--via", &url, "--burst"]);
        stderr(&out)
    })
    .await
    .unwrap();
    assert!(log.contains("WARN"), "the worker logged its retry: {log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escape codes: {log:?}");
}

/// A tmpfs of a few KiB, so writing a message to it fails with ENOSPC; unmounted on drop.
struct FullDisk {
    dir: tempfile::TempDir,
}

impl FullDisk {
    fn mount() -> FullDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8k", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount(8) runs (the tests run as root, as CI does)");
        assert!(status.success(), "mounting a small tmpfs needs root");
        FullDisk { dir }
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_behind_file_is_retried_not_failed() {
    let disk = FullDisk::mount();
    let dir = tempfile::tempdir().unwrap();
    let queue = queue_url(dir.path());
    // A body larger than the file system: the write runs out of space.
    let path = dir.path().join("big.json");
    let json = serde_json::json!({
        "from": "zoe@example.com", "to": ["bob@example.org"], "subject": "big",
        "text": "x".repeat(64 * 1024),
    });
    std::fs::write(&path, json.to_string()).unwrap();
    let id = ids(&enqueue(&queue, &[path])).remove(0);
    drain(&queue, disk.dir.path());
    let result = status(&queue, &id);
    assert_eq!(result["status"], "READY", "ENOSPC is retried: {result}");
    assert_eq!(result["errors"][0]["kind"], "io", "{result}");
    assert!(
        result["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{result}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(disk.dir.path()).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "no partial file is left behind: {leftovers:?}"
    );
}

#[test]
fn a_poison_html_message_fails_alone_and_the_messages_beside_it_are_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let queue = queue_url(dir.path());
    let outbox = dir.path().join("outbox");
    let mut files = write_messages(dir.path(), 0..3, "bob@example.org");
    // The message that overflowed a worker thread's stack: a style sheet, then 3,000
    // unclosed elements (~18 KB).
    let poison = dir.path().join("poison.json");
    let html = format!("<style>a{{}}</style>{}", "<span>".repeat(3000));
    let json = serde_json::json!({
        "from": "zoe@example.com", "to": ["bob@example.org"], "subject": "poison",
        "html": html, "message_id": "<poison@example.com>",
    });
    std::fs::write(&poison, json.to_string()).unwrap();
    files.insert(1, poison);

    let task_ids = ids(&enqueue(&queue, &files));
    assert_eq!(task_ids.len(), 4);
    let via = format!("file:{}", outbox.display());
    let out = run(&[
        "worker",
        "--queue",
        &queue,
        "--via",
        &via,
        "--burst",
        "--concurrency",
        "4",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the worker survives: {}",
        stderr(&out)
    );

    let poisoned = status(&queue, &task_ids[1]);
    assert_eq!(poisoned["status"], "FAILED", "{poisoned}");
    assert_eq!(poisoned["attempts"], 1, "invalid input is not retried");
    let error = poisoned["errors"][0]["message"].as_str().unwrap();
    assert!(error.contains("html") && error.contains("nest"), "{error}");
    for id in [&task_ids[0], &task_ids[2], &task_ids[3]] {
        let result = status(&queue, id);
        assert_eq!(result["status"], "SUCCESSFUL", "{result}");
        assert_eq!(result["attempts"], 1, "{result}");
    }
    let mut delivered = delivered_ids(&outbox);
    delivered.sort();
    assert_eq!(
        delivered,
        ["0@example.com", "1@example.com", "2@example.com"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_recipient_is_retried_alone_with_the_same_message() {
    let server = FakeServer::start(Script {
        greylist_rcpt: vec!["b@example.org"],
        reject_rcpt: vec!["c@example.org"],
        ..Script::default()
    })
    .await;
    let url = server.url("tls=none");
    let messages = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let queue = queue_url(dir.path());
        let path = dir.path().join("m.json");
        let json = serde_json::json!({
            "from": "zoe@example.com", "to": ["a@example.org", "b@example.org"],
            "bcc": ["c@example.org"], "subject": "greylisted", "text": "hi",
        });
        std::fs::write(&path, json.to_string()).unwrap();
        let id = ids(&enqueue(&queue, &[path])).remove(0);

        let out = run(&["worker", "--queue", &queue, "--via", &url, "--burst"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let first = status(&queue, &id);
        assert_eq!(
            first["status"], "READY",
            "the deferred recipient is retried: {first}"
        );
        assert_eq!(first["errors"][0]["kind"], "deferred", "{first}");
        let error = first["errors"][0]["message"].as_str().unwrap();
        assert!(
            error.contains("b@example.org") && error.contains("451"),
            "{error}"
        );

        // Burst workers until the retry's backoff has passed (bounded; no timing asserted).
        for _ in 0..100 {
            let out = run(&["worker", "--queue", &queue, "--via", &url, "--burst"]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            if status(&queue, &id)["status"] != "READY" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let done = status(&queue, &id);
        assert_eq!(done["status"], "SUCCESSFUL", "{done}");
        assert_eq!(done["attempts"], 2, "{done}");
        let value = &done["return_value"];
        assert_eq!(
            value["accepted"],
            serde_json::json!(["a@example.org", "b@example.org"]),
            "{done}"
        );
        assert_eq!(value["deferred"], serde_json::json!([]), "{done}");
        assert_eq!(value["rejected"][0]["recipient"], "c@example.org", "{done}");
        assert_eq!(value["rejected"][0]["code"], 550, "{done}");
    })
    .await;
    messages.unwrap();

    // Two transactions: the first to a (b deferred, c refused), the second to b alone,
    // carrying the very same message: same Message-ID, same Date, same bytes.
    assert_eq!(
        server.messages(),
        [
            vec!["a@example.org".to_owned()],
            vec!["b@example.org".to_owned()]
        ]
    );
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0], bodies[1],
        "the retry sends the identical message"
    );
    assert!(bodies[0].contains("Message-ID: <"), "{}", bodies[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_exits_75_when_a_recipient_is_deferred() {
    let server = FakeServer::start(Script {
        greylist_rcpt: vec!["b@example.org"],
        ..Script::default()
    })
    .await;
    let url = server.url("tls=none");
    let out = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let json = serde_json::json!({
            "from": "zoe@example.com", "to": ["a@example.org", "b@example.org"],
            "subject": "greylisted", "text": "hi",
        });
        std::fs::write(&path, json.to_string()).unwrap();
        run(&["send", "--via", &url, &path.display().to_string()])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["accepted"], serde_json::json!(["a@example.org"]));
    assert_eq!(line["deferred"][0]["recipient"], "b@example.org");
    assert_eq!(line["deferred"][0]["code"], 451);
    assert!(stderr(&out).contains("b@example.org"), "{}", stderr(&out));
}

#[test]
fn a_different_message_under_a_queued_message_id_is_refused_not_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let queue = queue_url(dir.path());
    let files = write_messages(dir.path(), 0..2, "bob@example.org");
    let first = ids(&enqueue(&queue, &files));
    assert_eq!(first.len(), 2);
    assert_eq!(
        ids(&enqueue(&queue, &files)),
        first,
        "the same messages again get the same task ids"
    );

    // Same Message-ID, other content: refused, and nothing of the batch is stored.
    let changed = serde_json::json!({
        "from": "Zoë <zoe@example.com>", "to": ["bob@example.org"],
        "subject": "Nachricht 1", "text": "a different body", "message_id": "<1@example.com>",
    });
    std::fs::write(&files[1], changed.to_string()).unwrap();
    let extra = write_messages(dir.path(), 2..3, "bob@example.org");
    let out = enqueue(&queue, &[extra[0].clone(), files[1].clone()]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("message_id"), "{}", stderr(&out));
    let outbox = dir.path().join("outbox");
    drain(&queue, &outbox);
    let mut delivered = delivered_ids(&outbox);
    delivered.sort();
    assert_eq!(
        delivered,
        ["0@example.com", "1@example.com"],
        "the first body of <1@…> only, and not the batch's other message"
    );
}
