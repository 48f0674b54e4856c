//! Resend: `POST /emails` and `/emails/batch`, checked against the fields Resend's API
//! documents: `Authorization: Bearer`, `Idempotency-Key`, `from`, `to`, `cc`, `bcc`,
//! `reply_to`, `subject`, `text`, `html`, `headers`, `attachments` (`filename`,
//! `content`, `content_type`, `content_id`); answers `{"id"}`, `{"data": [{"id"}]}` and
//! errors `{"statusCode", "name", "message"}`.

use std::time::Duration;

use base64::Engine as _;
use mailroom::transport::{ResendTransport, Transport};
use mailroom::{Email, Error};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

async fn resend(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/emails"))
        .and(header("Authorization", format!("Bearer {KEY}").as_str()))
        .and(header("Content-Type", "application/json"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn transport(server: &MockServer, query: &str) -> ResendTransport {
    ResendTransport::from_url(&url("resend", KEY, server, query)).unwrap()
}

fn ok(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "id": id }))
}

#[tokio::test]
async fn a_text_only_message_with_its_message_id_as_idempotency_key() {
    let server = resend(ok("49a3999c-0ce1-4ea6-ab68-afcd6dc2e794")).await;
    let delivery = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap();
    assert_eq!(
        delivery.queue_id.as_deref(),
        Some("49a3999c-0ce1-4ea6-ab68-afcd6dc2e794")
    );
    assert_eq!(delivery.accepted, ["bob@example.org"]);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers.get("Idempotency-Key").unwrap(),
        "<text-1@example.com>"
    );
    assert_eq!(
        bodies(&server).await,
        [json!({
            "from": "zoe@example.com",
            "to": ["bob@example.org"],
            "subject": "hi",
            "text": "hello",
            "headers": {"Message-ID": "<text-1@example.com>"},
        })]
    );
}

#[tokio::test]
async fn alternative_unicode_bcc_reply_to_headers_and_files() {
    let server = resend(ok("id-2")).await;
    let rendered = render(&alternative());
    transport(&server, "")
        .send_rendered(&rendered)
        .await
        .unwrap();
    assert_eq!(
        bodies(&server).await[0],
        json!({
            "from": "Zoë Müller <zoe@example.com>",
            "to": ["Jürgen Groß <jurgen@example.org>"],
            "cc": ["Ana <ana@example.org>"],
            "bcc": ["Hidden <hidden@example.org>"],
            "reply_to": ["Hilfe <help@example.com>"],
            "subject": "Ваш заказ готов ✓",
            "text": "Ihre Bestellung ist fertig.",
            "html": rendered.email().html().unwrap(),
            "headers": {
                "X-Campaign": "herbst-2026",
                "List-Unsubscribe": "<mailto:unsub@example.com>",
                "Message-ID": "<alt-1@example.com>",
            },
        })
    );

    let server = resend(ok("id-3")).await;
    transport(&server, "")
        .send_rendered(&render(&with_files()))
        .await
        .unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    assert_eq!(
        bodies(&server).await[0]["attachments"],
        json!([
            {"filename": "logo.png", "content": b64(b"\x89PNG-bytes"), "content_type": "image/png", "content_id": "logo"},
            {"filename": "rechnung-über.pdf", "content": b64(b"%PDF-1.4"), "content_type": "application/pdf"},
        ])
    );
}

#[tokio::test]
async fn a_header_given_twice_is_refused_by_name() {
    let server = resend(ok("x")).await;
    let email = text_only()
        .to_builder()
        .header("X-Tag", "a")
        .header("x-tag", "b")
        .build()
        .unwrap();
    let err = transport(&server, "")
        .send_rendered(&render(&email))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
    assert_eq!(err.field(), Some("headers[1]"));
    assert!(bodies(&server).await.is_empty());
}

fn refusal(status: u16, name: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"statusCode": status, "name": name, "message": message}))
}

#[tokio::test]
async fn documented_errors_are_classified_with_resends_message() {
    for (status, name, message) in [
        (403, "invalid_api_key", "API key is invalid"),
        (
            422,
            "validation_error",
            "Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.",
        ),
    ] {
        let server = resend(refusal(status, name, message)).await;
        let err = transport(&server, "")
            .send_rendered(&render(&text_only()))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            err.is_permanent() && text.contains(message) && text.contains(name),
            "{text}"
        );
        assert!(!text.contains(KEY) && !format!("{err:?}").contains(KEY));
    }
    let server = resend(
        refusal(
            429,
            "rate_limit_exceeded",
            "Too many requests. You can only make 2 requests per second.",
        )
        .insert_header("retry-after", "2"),
    )
    .await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    let Error::Transient(failure) = &err else {
        panic!("{err}")
    };
    assert_eq!(failure.retry_after, Some(Duration::from_secs(2)));
    let server = resend(refusal(500, "application_error", "Internal server error")).await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    let server = resend(ok("late").set_delay(Duration::from_secs(5))).await;
    let err = transport(&server, "?timeout=300ms")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("timed out"),
        "{err}"
    );
}

#[tokio::test]
async fn a_batch_goes_to_emails_batch_and_attachments_go_alone() {
    let server = resend(ok("single-1")).await;
    Mock::given(method("POST"))
        .and(path("/emails/batch"))
        .and(header("Authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "b-1"}, {"id": "b-2"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let other = Email::builder()
        .from("zoe@example.com")
        .to("carl@example.org")
        .subject("second")
        .text("two")
        .message_id("<second@example.com>")
        .build()
        .unwrap();
    let results = transport(&server, "")
        .send_batch(&[text_only(), with_files(), other])
        .await;
    let ids: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().unwrap().queue_id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["b-1", "single-1", "b-2"]);
    let requests = server.received_requests().await.unwrap();
    let batch = requests
        .iter()
        .find(|r| r.url.path() == "/emails/batch")
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&batch.body).unwrap();
    assert_eq!(body[0]["to"], json!(["bob@example.org"]));
    assert_eq!(body[1]["to"], json!(["carl@example.org"]));
    assert!(batch.headers.get("Idempotency-Key").is_some());
}
