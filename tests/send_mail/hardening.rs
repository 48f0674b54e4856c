//! Issue 9's command-line cases: what a hostile input or an unlucky operator does to
//! `enqueue`, `worker` and the input readers, and what they must answer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{delivered_ids, ids, mailroom, run, status, stderr, write_messages};

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

#[test]
fn logs_to_a_pipe_carry_no_terminal_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let queue = queue_url(dir.path());
    let files = write_messages(dir.path(), 0..1, "bob@example.org");
    let out = run(&[
        "enqueue",
        "--queue",
        &queue,
        "--transport",
        "elsewhere",
        &files[0].display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The worker lacks `elsewhere`, so it logs a warning: on a pipe, as plain text.
    let out = run(&["worker", "--queue", &queue, "--via", "dummy:", "--burst"]);
    let log = stderr(&out);
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
