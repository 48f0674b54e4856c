//! `mailroom send --via postmark://…` and `mailroom worker --via NAME=postmark://…`
//! against wiremock: the program accepts the URLs, exits 69 on a permanent refusal and 75
//! on a transient one, and shows the key nowhere, not even in TRACE logs.

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::send_mail::{ids, mailroom, status, stderr, write_messages};

async fn answering(status: u16, body: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_via_a_provider_exits_0_69_or_75_and_never_shows_the_key() {
    let ok = answering(
        200,
        json!({"ErrorCode": 0, "Message": "OK", "MessageID": "pm-9"}),
    )
    .await;
    let refused = answering(
        422,
        json!({"ErrorCode": 300, "Message": "Invalid 'To' address"}),
    )
    .await;
    let later = answering(503, json!({"ErrorCode": 100, "Message": "Maintenance"})).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_messages(dir.path(), 0..1, "bob@example.org")[0]
        .display()
        .to_string();
    let urls: Vec<String> = [&ok, &refused, &later]
        .iter()
        .map(|s| url("postmark", KEY, s, ""))
        .collect();
    let outs = tokio::task::spawn_blocking(move || {
        urls.iter()
            .map(|u| {
                mailroom()
                    .env("RUST_LOG", "trace")
                    .args(["send", "--via", u, &file])
                    .output()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(outs[0].status.code(), Some(0), "{}", stderr(&outs[0]));
    let line: serde_json::Value = serde_json::from_slice(&outs[0].stdout).unwrap();
    assert_eq!(line["queue_id"], "pm-9");
    assert_eq!(outs[1].status.code(), Some(69), "{}", stderr(&outs[1]));
    assert!(
        stderr(&outs[1]).contains("Invalid 'To' address"),
        "{}",
        stderr(&outs[1])
    );
    assert_eq!(outs[2].status.code(), Some(75), "{}", stderr(&outs[2]));
    assert!(
        stderr(&outs[2]).contains("Maintenance"),
        "{}",
        stderr(&outs[2])
    );
    for out in &outs {
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out));
        assert!(!all.contains(KEY), "the key is in the output: {all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_delivers_through_a_named_provider_and_the_queue_holds_no_key() {
    let ok = answering(
        200,
        json!({"ErrorCode": 0, "Message": "OK", "MessageID": "pm-10"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_messages(dir.path(), 0..1, "bob@example.org")[0]
        .display()
        .to_string();
    let queue = format!("sqlite:{}", dir.path().join("q.db").display());
    let via = format!("pm={}", url("postmark", KEY, &ok, ""));
    let (result, worker) = tokio::task::spawn_blocking(move || {
        let out = mailroom()
            .args(["enqueue", "--queue", &queue, "--transport", "pm", &file])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let id = ids(&out).remove(0);
        let worker = mailroom()
            .env("RUST_LOG", "trace")
            .args(["worker", "--queue", &queue, "--via", &via, "--burst"])
            .output()
            .unwrap();
        (status(&queue, &id), worker)
    })
    .await
    .unwrap();
    assert_eq!(worker.status.code(), Some(0), "{}", stderr(&worker));
    assert!(
        !stderr(&worker).contains(KEY),
        "the key is in the worker's TRACE logs"
    );
    assert_eq!(result["status"], "SUCCESSFUL", "{result}");
    assert!(
        !files_contain(dir.path(), KEY),
        "the key is in the queue files"
    );
}
