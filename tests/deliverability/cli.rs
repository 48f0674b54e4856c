//! `mailroom suppress`, `mailroom bounces ingest` and `mailroom worker` honouring the list,
//! as a user runs them.

use std::path::Path;

use crate::send_mail::{run, status, stderr};
use crate::transport::aiosmtpd::{Aiosmtpd, Options};

fn corpus(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/bounces")
        .join(name)
        .display()
        .to_string()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn suppress_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&[
        "suppress",
        "add",
        "--queue",
        &queue,
        "--reason",
        "complaint",
        "--scope",
        "news.example.com",
        "Ann@EXAMPLE.org",
        "bob@example.org",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Ann@example.org news.example.com added\nbob@example.org news.example.com added\n"
    );
    let again = run(&[
        "suppress",
        "add",
        "--queue",
        &queue,
        "bob@example.org",
        "--scope",
        "news.example.com",
    ]);
    assert_eq!(
        stdout(&again),
        "bob@example.org news.example.com already suppressed\n"
    );
    let out = run(&["suppress", "add", "--queue", &queue, "carl@example.org"]);
    assert_eq!(stdout(&out), "carl@example.org global added\n");

    let out = run(&["suppress", "list", "--queue", &queue, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = doc["suppressions"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{doc}");
    let ann = list
        .iter()
        .find(|s| s["address"] == "Ann@example.org")
        .unwrap();
    assert_eq!(ann["scope"], "news.example.com");
    assert_eq!(ann["reason"], "complaint");
    let carl = list
        .iter()
        .find(|s| s["address"] == "carl@example.org")
        .unwrap();
    assert!(carl["scope"].is_null(), "{carl}");
    assert_eq!(carl["reason"], "manual");

    let out = run(&[
        "suppress",
        "remove",
        "--queue",
        &queue,
        "carl@example.org",
        "nobody@example.org",
    ]);
    assert_eq!(
        stdout(&out),
        "carl@example.org global removed\nnobody@example.org global not suppressed\n"
    );
    let text = stdout(&run(&["suppress", "list", "--queue", &queue]));
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.lines()
            .all(|l| l.contains(" news.example.com complaint ")),
        "{text}"
    );
}

#[test]
fn bad_addresses_and_reasons_are_invalid_input_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&[
        "suppress",
        "add",
        "--queue",
        &queue,
        "ok@example.org",
        "not an address",
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("ADDRESS[1]"), "{}", stderr(&out));
    let out = run(&[
        "suppress",
        "add",
        "--queue",
        &queue,
        "--reason",
        "bored",
        "ok@example.org",
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("reason"), "{}", stderr(&out));
    let list = run(&["suppress", "list", "--queue", &queue, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(doc["suppressions"], serde_json::json!([]));
    let out = run(&["suppress", "list", "--queue", "memory:"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[test]
fn bounces_ingest_prints_each_report_and_suppresses_hard_bounces_and_complaints() {
    let dir = tempfile::tempdir().unwrap();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&[
        "bounces",
        "ingest",
        "--queue",
        &queue,
        &corpus("mixed.mbox"),
        &corpus("postfix_delayed.eml"),
        &corpus("yahoo_failure_notice.eml"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "hard nobody@example.org 5.1.1\nignored ann@example.org auto-reply\ncomplaint annoyed@yahoo.com abuse\nsoft slow@example.net 4.4.1\nhard closed.account@yahoo.com 5.0.0\n"
    );
    let list = run(&["suppress", "list", "--queue", &queue, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let mut got: Vec<(String, String)> = doc["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("annoyed@yahoo.com".to_owned(), "complaint".to_owned()),
            (
                "closed.account@yahoo.com".to_owned(),
                "hard-bounce".to_owned()
            ),
            ("nobody@example.org".to_owned(), "hard-bounce".to_owned()),
        ]
    );
    // Three soft bounces (the default threshold) suppress.
    let delayed = corpus("postfix_delayed.eml");
    let out = run(&["bounces", "ingest", "--queue", &queue, &delayed, &delayed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = stdout(&run(&["suppress", "list", "--queue", &queue]));
    assert!(
        list.contains("slow@example.net global soft-bounces "),
        "{list}"
    );

    let junk = dir.path().join("junk.eml");
    std::fs::write(&junk, "").unwrap();
    let out = run(&[
        "bounces",
        "ingest",
        "--queue",
        &queue,
        junk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
}

#[test]
fn the_worker_leaves_suppressed_recipients_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Aiosmtpd::start(Options::default());
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let out = run(&["suppress", "add", "--queue", &queue, "gone@example.org"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let message = dir.path().join("m.json");
    std::fs::write(
        &message,
        r#"{"from": "news@example.com", "to": ["gone@example.org"], "bcc": ["kept@example.org"], "subject": "hi", "text": "x"}"#,
    )
    .unwrap();
    let only = dir.path().join("only.json");
    std::fs::write(
        &only,
        r#"{"from": "news@example.com", "to": ["gone@example.org"], "subject": "nobody", "text": "x"}"#,
    )
    .unwrap();
    let out = run(&[
        "enqueue",
        "--queue",
        &queue,
        message.to_str().unwrap(),
        only.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ids: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    let via = format!("smtp://127.0.0.1:{}?tls=none", server.port);
    let out = run(&["worker", "--queue", &queue, "--via", &via, "--burst"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = status(&queue, &ids[0]);
    assert_eq!(first["status"], "SUCCESSFUL", "{first}");
    assert_eq!(
        first["return_value"]["accepted"],
        serde_json::json!(["kept@example.org"])
    );
    assert_eq!(
        first["return_value"]["suppressed"],
        serde_json::json!(["gone@example.org"])
    );
    let second = status(&queue, &ids[1]);
    assert_eq!(second["status"], "SUCCESSFUL", "{second}");
    assert_eq!(second["attempts"], 1, "{second}");
    assert_eq!(second["return_value"]["accepted"], serde_json::json!([]));
    assert_eq!(
        second["return_value"]["suppressed"],
        serde_json::json!(["gone@example.org"])
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_tos, ["kept@example.org"]);
}
