//! Transports send what the caller rendered: one rendering (with the caller's DKIM signer
//! and HTML pipeline) reaches every transport byte for byte, and the `send_mail` worker and
//! the CLI sign with the options their owner gave.

use std::sync::Arc;

use mailroom::send_mail::{self, SendMail};
use mailroom::tasks::{self, Registry, Worker};
use mailroom::testing::SharedBuffer;
use mailroom::transport::{
    ConsoleTransport, FileTransport, MemoryTransport, SmtpTransport, TlsMode, Transport,
};
use mailroom::{Email, Envelope, ErrorKind, RenderOptions, Rendered};

use super::aiosmtpd::{Aiosmtpd, Options};
use crate::html::dkim::{assert_verifies, rsa};

fn email() -> Email {
    Email::builder()
        .from("Zoë Müller <zoe@example.com>")
        .to("Ann <ann@example.org>")
        .bcc("audit@example.net")
        .subject("Ваш заказ готов")
        .text("Your order is ready.")
        .html("<p style=\"color: red\">Your order is <b>ready</b>.</p><script>alert(1)</script>")
        .build()
        .unwrap()
}

fn signed() -> RenderOptions {
    RenderOptions::new().signer(Arc::new(rsa()))
}

#[tokio::test]
async fn one_rendering_reaches_every_transport_byte_for_byte() {
    let rendered = email().prepare(&signed()).unwrap();
    assert_eq!(
        rendered.envelope().to(),
        ["ann@example.org", "audit@example.net"]
    );
    let text = String::from_utf8_lossy(rendered.bytes()).into_owned();
    assert!(
        !text.contains("audit@example.net"),
        "Bcc stays off the headers"
    );
    assert!(!text.contains("<script"), "the HTML pipeline ran: {text}");
    assert!(text.contains(&format!("Message-ID: {}", rendered.message_id())));
    assert_eq!(rendered.email().message_id(), Some(rendered.message_id()));
    assert_verifies("rendered", rendered.bytes(), &[&rsa()]).await;

    let memory = MemoryTransport::new();
    let dir = tempfile::tempdir().unwrap();
    let file = FileTransport::new(dir.path());
    let shown = SharedBuffer::default();
    let console = ConsoleTransport::new().with_stream(shown.clone());
    let server = Aiosmtpd::start(Options::default());
    let smtp = SmtpTransport::builder("127.0.0.1")
        .port(server.port)
        .tls(TlsMode::None)
        .build()
        .unwrap();
    let transports: [&dyn Transport; 4] = [&memory, &file, &console, &smtp];
    for transport in transports {
        let delivery = transport.send_rendered(&rendered).await.unwrap();
        assert_eq!(delivery.message_id.as_deref(), Some(rendered.message_id()));
        assert_eq!(delivery.accepted, rendered.envelope().to(), "{transport:?}");
    }

    let kept = memory.outbox().last().unwrap();
    assert_eq!(kept.bytes(), rendered.bytes());
    assert_eq!(kept.rendered(), &rendered);
    let eml = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "eml"))
        .unwrap();
    assert_eq!(std::fs::read(eml).unwrap(), rendered.bytes());
    assert!(shown.text().starts_with(&text));
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].data, rendered.bytes());
    assert_eq!(received[0].rcpt_tos, rendered.envelope().to());
}

#[tokio::test]
async fn the_same_bytes_go_again_to_the_recipients_named() {
    let rendered = email().prepare(&RenderOptions::new()).unwrap();
    let memory = MemoryTransport::new();
    let again = rendered.only(&["AUDIT@example.net".to_owned()]).unwrap();
    memory.send_rendered(&again).await.unwrap();
    let kept = memory.outbox().last().unwrap();
    assert_eq!(kept.envelope_to(), ["audit@example.net"]);
    assert_eq!(kept.bytes(), rendered.bytes());
    let err = rendered.only(&["eve@example.org".to_owned()]).unwrap_err();
    assert_eq!(err.field(), Some("recipients"), "{err}");
}

#[test]
fn an_envelope_by_hand_is_checked_and_says_when_it_needs_smtputf8() {
    let envelope =
        Envelope::new("", &["a@example.org", "A@example.org", "b@bücher.example"]).unwrap();
    assert_eq!(envelope.from(), "");
    assert_eq!(envelope.to(), ["a@example.org", "b@bücher.example"]);
    assert!(envelope.smtputf8());
    let ascii = Envelope::new("bounce@example.com", &["a@example.org"]).unwrap();
    assert!(!ascii.smtputf8());
    for (from, to, field) in [
        ("a@example.com", vec![], "envelope.to"),
        ("a@example.com", vec!["not an address"], "envelope.to"),
        (
            "a@example.com",
            vec!["b@example.org\r\nRCPT TO:<c@example.org>"],
            "envelope.to",
        ),
        ("no-at-sign", vec!["b@example.org"], "envelope.from"),
    ] {
        let err = Envelope::new(from, &to).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.field().unwrap().starts_with(field),
            "{from} {to:?}: {err}"
        );
    }
}

#[test]
fn a_message_that_needs_smtputf8_is_rendered_with_utf8_headers_whatever_the_options_say() {
    let email = Email::builder()
        .from("zoë@bücher.example")
        .to("a@example.org")
        .subject("Grüße")
        .text("hi")
        .build()
        .unwrap();
    let rendered: Rendered = email
        .prepare(&RenderOptions::new().smtputf8(false))
        .unwrap();
    assert!(rendered.smtputf8());
    assert_eq!(rendered.envelope().from(), "zoë@bücher.example");
    assert!(String::from_utf8_lossy(rendered.bytes()).contains("Subject: Grüße"));
    let ascii = Email::builder()
        .from("a@example.com")
        .to("b@example.org")
        .subject("Grüße")
        .text("hi")
        .build()
        .unwrap();
    let rendered = ascii.prepare(&RenderOptions::new().smtputf8(true)).unwrap();
    assert!(!rendered.smtputf8());
    assert!(rendered.bytes().is_ascii());
}

#[tokio::test]
async fn the_send_mail_worker_renders_with_the_options_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryTransport::new();
    let outbox = memory.outbox();
    let send = SendMail::new()
        .render_options(signed())
        .transport("default", Arc::new(memory));
    let registry = Registry::new().with(send);
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let backend = tasks::connect_worker(&url).await.unwrap();
    send_mail::enqueue(backend.as_ref(), &email(), "default")
        .await
        .unwrap();
    Worker::builder(backend, registry)
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    let sent = outbox.last().unwrap();
    assert_verifies("worker", sent.bytes(), &[&rsa()]).await;
    assert!(!sent.raw().contains("<script"));
}
