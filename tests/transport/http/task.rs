//! A `send_mail` task through a provider on a wiremock server: the server's Retry-After
//! is the retry delay; a permanent refusal fails the task at once with the provider's
//! message; the key is in no queue file.

use std::sync::Arc;

use mailroom::send_mail::{self, SendMail};
use mailroom::tasks::{Registry, TaskStatus};
use mailroom::transport::{self, Delivery};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_retried_after_the_servers_delay_then_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"ErrorCode": 429, "Message": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ErrorCode": 0, "Message": "OK", "MessageID": "pm-1", "To": "bob@example.org"}),
        ))
        .mount(&server)
        .await;
    let postmark = transport::from_url(&url("postmark", KEY, &server, "")).unwrap();
    let registry = Registry::new().with(SendMail::new().transport("pm", Arc::clone(&postmark)));
    let dir = tempfile::tempdir().unwrap();
    let backend = queue(dir.path(), &registry).await;
    let id = send_mail::enqueue(backend.as_ref(), &text_only(), "pm")
        .await
        .unwrap();

    work_until_settled(&backend, &registry, id).await;
    let result = backend.get_result(id).await.unwrap();
    assert_eq!(result.status, TaskStatus::Successful, "{result:?}");
    assert_eq!(result.attempts, 2);
    let first = format!("{:?}", result.errors[0]);
    assert!(
        first.contains("429") && first.contains("Rate limit exceeded"),
        "{first}"
    );
    let delivery: Delivery = serde_json::from_value(result.return_value.clone().unwrap()).unwrap();
    assert_eq!(delivery.queue_id.as_deref(), Some("pm-1"));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    drop(backend);
    assert!(
        !files_contain(dir.path(), KEY),
        "the key is in the queue files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_the_task_once_with_the_providers_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"ErrorCode": 300, "Message": "Invalid 'To' address: 'bob@example.org'."}),
        ))
        .mount(&server)
        .await;
    let postmark = transport::from_url(&url("postmark", KEY, &server, "")).unwrap();
    let registry = Registry::new().with(SendMail::new().transport("pm", postmark));
    let dir = tempfile::tempdir().unwrap();
    let backend = queue(dir.path(), &registry).await;
    let id = send_mail::enqueue(backend.as_ref(), &text_only(), "pm")
        .await
        .unwrap();

    work_until_settled(&backend, &registry, id).await;
    let result = backend.get_result(id).await.unwrap();
    assert_eq!(result.status, TaskStatus::Failed, "{result:?}");
    assert_eq!(result.attempts, 1);
    let error = format!("{:?}", result.errors);
    assert!(
        error.contains("Invalid 'To' address") && error.contains("300"),
        "{error}"
    );
    assert!(!error.contains(KEY));
    drop(backend);
    assert!(
        !files_contain(dir.path(), KEY),
        "the key is in the queue files"
    );
}
