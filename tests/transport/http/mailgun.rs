//! Mailgun: `POST /v3/DOMAIN/messages.mime`, checked against what Mailgun's API documents:
//! basic auth `api:KEY`, a `multipart/form-data` body with `to` (every recipient, Bcc
//! included) and `message` (the MIME, as a file); answers `{"id", "message"}`.

use std::time::Duration;

use base64::Engine as _;
use mailroom::Error;
use mailroom::transport::{MailgunTransport, Transport};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

async fn mailgun(answer: ResponseTemplate) -> MockServer {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("api:{KEY}"));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mg.example.com/messages.mime"))
        .and(header("Authorization", format!("Basic {basic}").as_str()))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn transport(server: &MockServer, query: &str) -> MailgunTransport {
    let userinfo = format!("api:{KEY}");
    MailgunTransport::from_url(&url(
        "mailgun",
        &userinfo,
        server,
        &format!("/mg.example.com{query}"),
    ))
    .unwrap()
}

fn queued() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "<20261202020000.1.ABCDEF@mg.example.com>",
        "message": "Queued. Thank you."
    }))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_rendered_mime_goes_as_is_with_every_envelope_recipient() {
    let server = mailgun(queued()).await;
    let rendered = render(&alternative());
    let delivery = transport(&server, "")
        .send_rendered(&rendered)
        .await
        .unwrap();
    assert_eq!(
        delivery.queue_id.as_deref(),
        Some("<20261202020000.1.ABCDEF@mg.example.com>")
    );
    assert_eq!(
        delivery.reply.as_ref().unwrap().message,
        "Queued. Thank you."
    );
    let request = &server.received_requests().await.unwrap()[0];
    let content_type = request
        .headers
        .get("Content-Type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body = &request.body;
    for to in [
        "jurgen@example.org",
        "ana@example.org",
        "hidden@example.org",
    ] {
        let field = format!("Content-Disposition: form-data; name=\"to\"\r\n\r\n{to}\r\n");
        assert!(contains(body, field.as_bytes()), "{to}");
    }
    assert!(contains(
        body,
        b"Content-Disposition: form-data; name=\"message\"; filename=\"message.mime\"\r\nContent-Type: message/rfc822\r\n\r\n"
    ));
    assert!(
        contains(body, rendered.bytes()),
        "the MIME is sent byte for byte"
    );
    assert!(
        !contains(rendered.bytes(), b"hidden@example.org"),
        "Bcc is not in the MIME"
    );
}

#[tokio::test]
async fn documented_errors_are_classified_with_mailguns_message() {
    let server = mailgun(ResponseTemplate::new(401).set_body_string("Forbidden")).await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("Forbidden"),
        "{err}"
    );
    assert!(!err.to_string().contains(KEY));
    let server = mailgun(ResponseTemplate::new(400).set_body_json(
        json!({"message": "to parameter is not a valid address. please check documentation"}),
    ))
    .await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("not a valid address"),
        "{err}"
    );
    let server = mailgun(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "3")
            .set_body_json(json!({"message": "Too many requests"})),
    )
    .await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    let Error::Transient(failure) = &err else {
        panic!("{err}")
    };
    assert_eq!(failure.retry_after, Some(Duration::from_secs(3)));
    let server = mailgun(ResponseTemplate::new(500)).await;
    assert!(
        transport(&server, "")
            .send_rendered(&render(&text_only()))
            .await
            .unwrap_err()
            .is_transient()
    );
    let server = mailgun(queued().set_delay(Duration::from_secs(5))).await;
    let err = transport(&server, "?timeout=300ms")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("timed out"),
        "{err}"
    );
}

#[test]
fn the_url_needs_the_api_user_and_a_domain() {
    for (bad, field) in [
        (
            format!("mailgun://bob:{KEY}@api.mailgun.net/mg.example.com"),
            "transport.user",
        ),
        (
            format!("mailgun://api:{KEY}@api.eu.mailgun.net"),
            "transport.path",
        ),
        (
            format!("mailgun://api:{KEY}@api.mailgun.net/a/b"),
            "transport.path",
        ),
    ] {
        let err = mailroom::transport::from_url(&bad).unwrap_err();
        assert_eq!(err.field(), Some(field), "{bad}: {err}");
        assert!(!err.to_string().contains(KEY), "{err}");
    }
    let t = mailroom::transport::from_url(&format!(
        "mailgun://api:{KEY}@api.eu.mailgun.net/mg.example.com"
    ))
    .unwrap();
    assert!(!format!("{t:?}").contains(KEY));
}
