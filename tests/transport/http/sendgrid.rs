//! SendGrid v3: `POST /v3/mail/send`, checked against the fields SendGrid's API documents:
//! `Authorization: Bearer`, `personalizations` (`to`, `cc`, `bcc` as `{email, name}`),
//! `from`, `reply_to`, `subject`, `content` (`type`, `value`), `attachments` (`content`,
//! `type`, `filename`, `disposition`, `content_id`), `headers`; answers 202 with
//! `X-Message-Id`, errors `{"errors": [{"message", "field", "help"}]}`.

use std::time::Duration;

use base64::Engine as _;
use mailroom::Error;
use mailroom::transport::{SendGridTransport, Transport};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

async fn sendgrid(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .and(header("Authorization", format!("Bearer {KEY}").as_str()))
        .and(header("Content-Type", "application/json"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn transport(server: &MockServer, query: &str) -> SendGridTransport {
    SendGridTransport::from_url(&url("sendgrid", KEY, server, query)).unwrap()
}

fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-abc123")
}

#[tokio::test]
async fn a_text_only_message() {
    let server = sendgrid(accepted()).await;
    let delivery = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap();
    assert_eq!(delivery.queue_id.as_deref(), Some("sg-abc123"));
    assert_eq!(delivery.reply.as_ref().unwrap().code, 202);
    assert_eq!(
        bodies(&server).await,
        [json!({
            "personalizations": [{"to": [{"email": "bob@example.org"}]}],
            "from": {"email": "zoe@example.com"},
            "subject": "hi",
            "content": [{"type": "text/plain", "value": "hello"}],
            "headers": {"Message-ID": "<text-1@example.com>"},
        })]
    );
}

#[tokio::test]
async fn alternative_unicode_bcc_reply_to_headers_and_files() {
    let server = sendgrid(accepted()).await;
    let rendered = render(&alternative());
    transport(&server, "")
        .send_rendered(&rendered)
        .await
        .unwrap();
    assert_eq!(
        bodies(&server).await[0],
        json!({
            "personalizations": [{
                "to": [{"email": "jurgen@example.org", "name": "Jürgen Groß"}],
                "cc": [{"email": "ana@example.org", "name": "Ana"}],
                "bcc": [{"email": "hidden@example.org", "name": "Hidden"}],
            }],
            "from": {"email": "zoe@example.com", "name": "Zoë Müller"},
            "reply_to": {"email": "help@example.com", "name": "Hilfe"},
            "subject": "Ваш заказ готов ✓",
            "content": [
                {"type": "text/plain", "value": "Ihre Bestellung ist fertig."},
                {"type": "text/html", "value": rendered.email().html().unwrap()},
            ],
            "headers": {
                "X-Campaign": "herbst-2026",
                "List-Unsubscribe": "<mailto:unsub@example.com>",
                "Message-ID": "<alt-1@example.com>",
            },
        })
    );

    let server = sendgrid(accepted()).await;
    transport(&server, "")
        .send_rendered(&render(&with_files()))
        .await
        .unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    assert_eq!(
        bodies(&server).await[0]["attachments"],
        json!([
            {"content": b64(b"\x89PNG-bytes"), "type": "image/png", "filename": "logo.png", "disposition": "inline", "content_id": "logo"},
            {"content": b64(b"%PDF-1.4"), "type": "application/pdf", "filename": "rechnung-über.pdf", "disposition": "attachment"},
        ])
    );
}

#[tokio::test]
async fn a_reserved_header_is_refused_by_name() {
    let server = sendgrid(accepted()).await;
    let email = text_only()
        .to_builder()
        .header("X-SG-ID", "mine")
        .build()
        .unwrap();
    let err = transport(&server, "")
        .send_rendered(&render(&email))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
    assert_eq!(err.field(), Some("headers[0]"));
    assert!(bodies(&server).await.is_empty());
}

fn refusal(status: u16, field: Option<&str>, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "errors": [{"message": message, "field": field, "help": null}]
    }))
}

#[tokio::test]
async fn documented_errors_are_classified_with_sendgrids_message() {
    for (status, field, message) in [
        (
            401,
            None,
            "The provided authorization grant is invalid, expired, or revoked",
        ),
        (
            400,
            Some("personalizations.0.to.0.email"),
            "Does not contain a valid address.",
        ),
    ] {
        let server = sendgrid(refusal(status, field, message)).await;
        let err = transport(&server, "")
            .send_rendered(&render(&text_only()))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(err.is_permanent() && text.contains(message), "{text}");
        if let Some(field) = field {
            assert!(text.contains(field), "{text}");
        }
        assert!(!text.contains(KEY) && !format!("{err:?}").contains(KEY));
    }
    let server =
        sendgrid(refusal(429, None, "too many requests").insert_header("Retry-After", "4")).await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    let Error::Transient(failure) = &err else {
        panic!("{err}")
    };
    assert_eq!(failure.retry_after, Some(Duration::from_secs(4)));
    let server = sendgrid(ResponseTemplate::new(503)).await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    let server = sendgrid(accepted().set_delay(Duration::from_secs(5))).await;
    let err = transport(&server, "?timeout=300ms")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("timed out"),
        "{err}"
    );
}
