//! A `send_mail` task through each provider on a wiremock server: the server's
//! Retry-After is the retry delay and the next attempt delivers; a permanent refusal
//! fails the task at once with the provider's message; the key is in no queue file.

use std::sync::Arc;

use mailroom::send_mail::{self, SendMail};
use mailroom::tasks::{Registry, TaskStatus};
use mailroom::transport;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

/// One provider: how its URL is written, where it posts, its success answer and a
/// documented refusal with the text the task result must show.
struct Provider {
    scheme: &'static str,
    userinfo: String,
    path_query: &'static str,
    path: &'static str,
    ok: ResponseTemplate,
    refusal: (u16, Value),
    refusal_text: &'static str,
}

fn providers() -> Vec<Provider> {
    vec![
        Provider {
            scheme: "postmark",
            userinfo: KEY.to_owned(),
            path_query: "",
            path: "/email",
            ok: ResponseTemplate::new(200)
                .set_body_json(json!({"ErrorCode": 0, "Message": "OK", "MessageID": "pm-1"})),
            refusal: (
                422,
                json!({"ErrorCode": 300, "Message": "Invalid 'To' address: 'bob@example.org'."}),
            ),
            refusal_text: "Invalid 'To' address",
        },
        Provider {
            scheme: "resend",
            userinfo: KEY.to_owned(),
            path_query: "",
            path: "/emails",
            ok: ResponseTemplate::new(200).set_body_json(json!({"id": "re-1"})),
            refusal: (
                422,
                json!({"statusCode": 422, "name": "validation_error", "message": "Invalid `to` field."}),
            ),
            refusal_text: "Invalid `to` field.",
        },
        Provider {
            scheme: "sendgrid",
            userinfo: KEY.to_owned(),
            path_query: "",
            path: "/v3/mail/send",
            ok: ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-1"),
            refusal: (
                400,
                json!({"errors": [{"message": "Does not contain a valid address.", "field": "personalizations.0.to.0.email", "help": null}]}),
            ),
            refusal_text: "Does not contain a valid address.",
        },
        Provider {
            scheme: "mailgun",
            userinfo: format!("api:{KEY}"),
            path_query: "/mg.example.com",
            path: "/v3/mg.example.com/messages.mime",
            ok: ResponseTemplate::new(200).set_body_json(
                json!({"id": "<mg-1@mg.example.com>", "message": "Queued. Thank you."}),
            ),
            refusal: (
                400,
                json!({"message": "to parameter is not a valid address. please check documentation"}),
            ),
            refusal_text: "to parameter is not a valid address",
        },
        Provider {
            scheme: "ses",
            userinfo: format!("AKIDEXAMPLE:{KEY}"),
            path_query: "?region=eu-west-1",
            path: "/v2/email/outbound-emails",
            ok: ResponseTemplate::new(200).set_body_json(json!({"MessageId": "ses-1"})),
            refusal: (400, json!({"message": "Email address is not verified."})),
            refusal_text: "Email address is not verified.",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_retried_after_the_servers_delay_then_delivered() {
    for p in providers() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(p.path))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .set_body_json(
                        json!({"message": "Rate limit exceeded", "Message": "Rate limit exceeded"}),
                    ),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(p.path))
            .respond_with(p.ok)
            .mount(&server)
            .await;
        let via = transport::from_url(&url(p.scheme, &p.userinfo, &server, p.path_query)).unwrap();
        let registry = Registry::new().with(SendMail::new().transport("api", Arc::clone(&via)));
        let dir = tempfile::tempdir().unwrap();
        let backend = queue(dir.path(), &registry).await;
        let id = send_mail::enqueue(backend.as_ref(), &text_only(), "api")
            .await
            .unwrap();

        work_until_settled(&backend, &registry, id).await;
        let result = backend.get_result(id).await.unwrap();
        assert_eq!(
            result.status,
            TaskStatus::Successful,
            "{}: {result:?}",
            p.scheme
        );
        assert_eq!(result.attempts, 2, "{}", p.scheme);
        let first = format!("{:?}", result.errors[0]);
        assert!(
            first.contains("429") && first.contains("Rate limit exceeded"),
            "{}: {first}",
            p.scheme
        );
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            2,
            "{}",
            p.scheme
        );
        drop(backend);
        assert!(
            !files_contain(dir.path(), KEY),
            "{}: the key is in the queue files",
            p.scheme
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_the_task_once_with_the_providers_message() {
    for p in providers() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(p.path))
            .respond_with(ResponseTemplate::new(p.refusal.0).set_body_json(p.refusal.1))
            .mount(&server)
            .await;
        let via = transport::from_url(&url(p.scheme, &p.userinfo, &server, p.path_query)).unwrap();
        let registry = Registry::new().with(SendMail::new().transport("api", via));
        let dir = tempfile::tempdir().unwrap();
        let backend = queue(dir.path(), &registry).await;
        let id = send_mail::enqueue(backend.as_ref(), &text_only(), "api")
            .await
            .unwrap();

        work_until_settled(&backend, &registry, id).await;
        let result = backend.get_result(id).await.unwrap();
        assert_eq!(
            result.status,
            TaskStatus::Failed,
            "{}: {result:?}",
            p.scheme
        );
        assert_eq!(result.attempts, 1, "{}", p.scheme);
        let error = format!("{:?}", result.errors);
        assert!(error.contains(p.refusal_text), "{}: {error}", p.scheme);
        assert!(!error.contains(KEY), "{}", p.scheme);
        drop(backend);
        assert!(
            !files_contain(dir.path(), KEY),
            "{}: the key is in the queue files",
            p.scheme
        );
    }
}
