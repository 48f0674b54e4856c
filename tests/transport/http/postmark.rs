//! Postmark: `POST /email` and `/email/batch`, checked against the fields Postmark's API
//! documents: `X-Postmark-Server-Token`, `From`, `To`, `Cc`, `Bcc`, `Subject`, `TextBody`,
//! `HtmlBody`, `ReplyTo`, `Headers` (`Name`, `Value`), `Attachments` (`Name`, `Content`,
//! `ContentType`, `ContentID` as `cid:…`), `MessageStream`; answers `ErrorCode`,
//! `Message`, `MessageID`, `SubmittedAt`, `To`.

use std::time::Duration;

use base64::Engine as _;
use mailroom::transport::{PostmarkTransport, Transport};
use mailroom::{Attachment, Email, Error};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn ok(id: &str, to: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "To": to, "SubmittedAt": "2026-12-02T02:00:00.0000000-05:00",
        "MessageID": id, "ErrorCode": 0, "Message": "OK"
    }))
}

/// A server that answers `/email` with `answer`, checking method, path, token and types.
async fn postmark(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email"))
        .and(header("X-Postmark-Server-Token", KEY))
        .and(header("Content-Type", "application/json"))
        .and(header("Accept", "application/json"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

fn transport(server: &MockServer, query: &str) -> PostmarkTransport {
    PostmarkTransport::from_url(&url("postmark", KEY, server, query)).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_text_only_message_is_sent_as_postmark_json() {
    let server = postmark(ok(
        "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "bob@example.org",
    ))
    .await;
    let t = transport(&server, "?message_stream=outbound");
    let delivery = t.send_rendered(&render(&text_only())).await.unwrap();
    assert_eq!(delivery.accepted, ["bob@example.org"]);
    assert_eq!(
        delivery.queue_id.as_deref(),
        Some("b7bc2f4a-e38e-4336-af7d-e6c392c2f817")
    );
    assert_eq!(delivery.message_id.as_deref(), Some("<text-1@example.com>"));
    assert_eq!(delivery.reply.as_ref().map(|r| r.code), Some(200));
    assert_eq!(
        bodies(&server).await,
        [json!({
            "From": "zoe@example.com",
            "To": "bob@example.org",
            "Subject": "hi",
            "TextBody": "hello",
            "Headers": [{"Name": "Message-ID", "Value": "<text-1@example.com>"}],
            "MessageStream": "outbound",
        })]
    );
}

#[tokio::test]
async fn alternative_bodies_unicode_names_bcc_reply_to_and_custom_headers() {
    let server = postmark(ok("id-2", "jurgen@example.org")).await;
    let rendered = render(&alternative());
    let delivery = transport(&server, "")
        .send_rendered(&rendered)
        .await
        .unwrap();
    assert_eq!(
        delivery.accepted,
        [
            "jurgen@example.org",
            "ana@example.org",
            "hidden@example.org"
        ]
    );
    let body = &bodies(&server).await[0];
    assert_eq!(
        body,
        &json!({
            "From": "Zoë Müller <zoe@example.com>",
            "To": "Jürgen Groß <jurgen@example.org>",
            "Cc": "Ana <ana@example.org>",
            "Bcc": "Hidden <hidden@example.org>",
            "ReplyTo": "Hilfe <help@example.com>",
            "Subject": "Ваш заказ готов ✓",
            "TextBody": "Ihre Bestellung ist fertig.",
            "HtmlBody": rendered.email().html().unwrap(),
            "Headers": [
                {"Name": "X-Campaign", "Value": "herbst-2026"},
                {"Name": "List-Unsubscribe", "Value": "<mailto:unsub@example.com>"},
                {"Name": "Message-ID", "Value": "<alt-1@example.com>"},
            ],
        })
    );
    assert!(body["HtmlBody"].as_str().unwrap().contains("<b>fertig</b>"));
}

#[tokio::test]
async fn inline_images_and_attachments_carry_type_name_and_content_id() {
    let server = postmark(ok("id-3", "bob@example.org")).await;
    let rendered = render(&with_files());
    transport(&server, "")
        .send_rendered(&rendered)
        .await
        .unwrap();
    let body = &bodies(&server).await[0];
    assert!(
        body["HtmlBody"].as_str().unwrap().contains("cid:logo"),
        "{body}"
    );
    assert_eq!(
        body["Attachments"],
        json!([
            {"Name": "logo.png", "Content": b64(b"\x89PNG-bytes"), "ContentType": "image/png", "ContentID": "cid:logo"},
            {"Name": "rechnung-über.pdf", "Content": b64(b"%PDF-1.4"), "ContentType": "application/pdf"},
        ])
    );
}

#[tokio::test]
async fn an_attached_message_is_refused_by_name_not_dropped() {
    let server = postmark(ok("x", "bob@example.org")).await;
    let email = text_only()
        .to_builder()
        .attachment(Attachment::message(text_only()))
        .build()
        .unwrap();
    let err = transport(&server, "")
        .send_rendered(&render(&email))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
    assert_eq!(err.field(), Some("attachments[0]"));
    assert!(bodies(&server).await.is_empty());
}

/// Postmark's documented error answers: `{"ErrorCode": …, "Message": …}`.
fn refusal(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"ErrorCode": code, "Message": message}))
}

#[tokio::test]
async fn a_bad_token_and_an_invalid_address_are_permanent_with_postmarks_message() {
    for (status, code, message) in [
        (401, 10, "Bad or missing API token"),
        (422, 300, "Invalid 'To' address: 'bob@'."),
        // A 200 whose ErrorCode is not 0 is a failure too.
        (
            200,
            406,
            "You tried to send to a recipient that has been marked as inactive.",
        ),
    ] {
        let server = postmark(refusal(status, code, message)).await;
        let t = transport(&server, "");
        let err = t.send_rendered(&render(&text_only())).await.unwrap_err();
        let text = err.to_string();
        assert!(err.is_permanent(), "{text}");
        assert!(
            text.contains(message) && text.contains(&format!("error code {code}")),
            "{text}"
        );
        assert!(
            !text.contains(KEY) && !format!("{err:?}").contains(KEY),
            "{text}"
        );
        assert!(!format!("{t:?}").contains(KEY));
    }
}

#[tokio::test]
async fn rate_limits_server_errors_and_timeouts_are_transient() {
    let server =
        postmark(refusal(429, 429, "Rate limit exceeded").insert_header("Retry-After", "7")).await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    let Error::Transient(failure) = &err else {
        panic!("{err}")
    };
    assert_eq!(failure.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(failure.code, Some(429));

    let server = postmark(ResponseTemplate::new(500).set_body_string("oops")).await;
    let err = transport(&server, "")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("500"),
        "{err}"
    );

    let server = postmark(ok("late", "bob@example.org").set_delay(Duration::from_secs(5))).await;
    let err = transport(&server, "?timeout=300ms")
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("timed out"),
        "{err}"
    );

    // Nothing listening (port 9, discard, is closed here): a connection failure.
    let err = PostmarkTransport::from_url(&format!("postmark://{KEY}@127.0.0.1:9?tls=none"))
        .unwrap()
        .send_rendered(&render(&text_only()))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && !err.to_string().contains(KEY),
        "{err}"
    );
}

#[tokio::test]
async fn a_batch_is_one_request_with_a_result_per_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/email/batch"))
        .and(header("X-Postmark-Server-Token", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"ErrorCode": 0, "Message": "OK", "MessageID": "m-1", "To": "a@example.org"},
            {"ErrorCode": 406, "Message": "You tried to send to a recipient that has been marked as inactive.", "To": "b@example.org"},
            {"ErrorCode": 0, "Message": "OK", "MessageID": "m-3", "To": "c@example.org"},
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let emails: Vec<Email> = ["a", "b", "c"]
        .iter()
        .map(|who| {
            Email::builder()
                .from("zoe@example.com")
                .to(format!("{who}@example.org").as_str())
                .subject("hi")
                .text("hello")
                .message_id(format!("<{who}@example.com>"))
                .build()
                .unwrap()
        })
        .collect();
    let results = transport(&server, "").send_batch(&emails).await;
    assert_eq!(
        results[0].as_ref().unwrap().queue_id.as_deref(),
        Some("m-1")
    );
    let err = results[1].as_ref().unwrap_err();
    assert!(
        err.is_permanent() && err.to_string().contains("inactive"),
        "{err}"
    );
    assert_eq!(
        results[2].as_ref().unwrap().queue_id.as_deref(),
        Some("m-3")
    );
    let body = &bodies(&server).await[0];
    assert_eq!(body.as_array().unwrap().len(), 3);
    assert_eq!(body[1]["To"], "b@example.org");
}

#[test]
fn urls_name_what_is_wrong_and_never_show_the_token() {
    for (bad, field) in [
        (
            format!("postmark://{KEY}@api.postmarkapp.com?tls=none"),
            "transport.tls",
        ),
        (
            format!("postmark://{KEY}@api.postmarkapp.com?bogus=1"),
            "transport.bogus",
        ),
        (
            format!("postmark://{KEY}@api.postmarkapp.com/some/path"),
            "transport.path",
        ),
        (
            "postmark://api.postmarkapp.com".to_owned(),
            "transport.user",
        ),
    ] {
        let err = mailroom::transport::from_url(&bad).unwrap_err();
        assert_eq!(err.field(), Some(field), "{bad}: {err}");
        assert!(!err.to_string().contains(KEY), "{err}");
    }
    let t = mailroom::transport::from_url(&format!("postmark://{KEY}@api.postmarkapp.com:8443"))
        .unwrap();
    let debug = format!("{t:?}");
    assert!(
        debug.contains("https://api.postmarkapp.com:8443") && !debug.contains(KEY),
        "{debug}"
    );
}
