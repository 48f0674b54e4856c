//! The example templates as whole messages: rendered deterministically (insta snapshots),
//! read back by mail-parser and Python's `email` package, MJML compiled, the HTML pipeline
//! applied, and the message JSON's `template` field through `send_mail`.

use std::sync::Arc;

use mail_parser::MessageParser;
use mailroom::send_mail::{self, SendMail};
use mailroom::tasks::{self, Registry, Worker};
use mailroom::transport::MemoryTransport;
use mailroom::{Email, ErrorKind, RenderOptions};
use serde_json::json;

use super::{examples, sample_context};
use crate::render::fixtures::{check_with_mail_parser, python_check, python_expectation};

const EXAMPLES: [&str; 3] = ["order.html", "password_reset.html", "newsletter.mjml"];

fn example_email(name: &str) -> Email {
    examples()
        .email(name, &sample_context(name))
        .unwrap()
        .from("Bücher & Co <orders@shop.example>")
        .to("Zoë Müller <zoe@example.org>")
        .build()
        .unwrap()
}

#[test]
fn the_example_templates_render_and_read_back_with_zero_defects() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = Vec::new();
    for name in EXAMPLES {
        let rendered = example_email(name)
            .prepare(&RenderOptions::deterministic())
            .unwrap();
        // What was written: the message after the HTML pipeline, as the bytes carry it.
        let written = rendered.email();
        let parsed = MessageParser::default().parse(rendered.bytes()).unwrap();
        check_with_mail_parser(name, written, &parsed);
        let text = String::from_utf8(rendered.bytes().to_vec()).unwrap();
        insta::assert_snapshot!(format!("template_{name}"), text);
        let eml = dir.path().join(format!("{name}.eml"));
        std::fs::write(&eml, rendered.bytes()).unwrap();
        let top = if written.attachments().is_empty() {
            "multipart/alternative"
        } else {
            "multipart/related"
        };
        manifest.push(json!({"eml": eml, "expect": python_expectation(written, top)}));
    }
    python_check(dir.path(), &manifest);
}

#[test]
fn the_order_template_fills_subject_text_and_escaped_html() {
    let email = example_email("order.html");
    assert_eq!(
        email.subject(),
        Some("Order A-1042 confirmed: 2 items, € 48.50")
    );
    let text = email.text().unwrap();
    assert!(text.starts_with("Thank you, Zoë Müller!"), "{text}");
    assert!(
        text.contains("2 x Notebook <A5>"),
        "text is not escaped: {text}"
    );
    assert!(
        text.ends_with("https://shop.example"),
        "the layout's text footer: {text}"
    );
    let html = email.html().unwrap();
    assert!(html.contains("Notebook &lt;A5&gt;"), "{html}");
    assert!(html.contains("Füller &amp; Tinte"), "{html}");
}

#[test]
fn an_mjml_template_is_compiled_to_html() {
    let email = example_email("newsletter.mjml");
    let html = email.html().unwrap();
    assert!(!html.contains("<mj-"), "{html}");
    assert!(!html.contains("<mjml"), "{html}");
    assert!(html.contains("<table"), "{html}");
    assert!(html.contains("Ten novels for long evenings"), "{html}");
    assert!(
        email.text().is_none(),
        "no text block: the pipeline makes the alternative"
    );
    let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
    let parsed = MessageParser::default().parse(rendered.bytes()).unwrap();
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("Ten novels for long evenings")
    );
    assert!(parsed.body_html(0).unwrap().contains("Ten novels"));
}

#[test]
fn a_template_cannot_smuggle_a_script_past_the_pipeline() {
    let t = mailroom::templates::Templates::new()
        .with_template(
            "evil.html",
            "{% block subject %}s{% endblock %}{% block html %}<p onclick=\"x()\">{{ v }}</p><script>alert(1)</script>{{ raw | safe }}{% endblock %}",
        )
        .unwrap();
    let email = t
        .email(
            "evil.html",
            &json!({"v": "<script>alert(2)</script>", "raw": "<img src=\"https://cdn.example/a.png\" onerror=alert(3)>"}),
        )
        .unwrap()
        .from("a@example.com")
        .to("b@example.org")
        .build()
        .unwrap();
    let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
    let parsed = MessageParser::default().parse(rendered.bytes()).unwrap();
    let html = parsed.body_html(0).unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("onerror"), "{html}");
    assert!(!html.contains("onclick"), "{html}");
}

#[test]
fn message_json_names_a_template_and_its_context() {
    let t = examples();
    let json = std::fs::read_to_string(super::examples_dir().join("order_message.json")).unwrap();
    let email = t.email_from_json(&json).unwrap();
    assert_eq!(
        email.subject(),
        Some("Order A-1042 confirmed: 2 items, € 48.50")
    );
    assert_eq!(email.to()[0].email(), "zoe@example.org");

    let err = Email::from_json(&json).unwrap_err();
    assert_eq!(err.field(), Some("template"), "{err}");
    let with_subject = json.replacen("\"template\"", "\"subject\": \"x\", \"template\"", 1);
    let err = t.email_from_json(&with_subject).unwrap_err();
    assert_eq!(err.field(), Some("subject"), "{err}");
    let context_alone = r#"{"from": "a@example.com", "to": ["b@example.org"], "subject": "s", "text": "t", "context": {}}"#;
    assert_eq!(
        Email::from_json(context_alone).unwrap_err().field(),
        Some("context")
    );
    let not_object = r#"{"from": "a@example.com", "to": ["b@example.org"], "template": "order.html", "context": [1]}"#;
    assert_eq!(
        t.email_from_json(not_object).unwrap_err().field(),
        Some("context")
    );
    let undefined = r#"{"from": "a@example.com", "to": ["b@example.org"], "template": "order.html", "context": {}}"#;
    let err = t.email_from_json(undefined).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("order.html line"), "{err}");
}

#[tokio::test]
async fn a_templated_message_is_rendered_at_enqueue_and_the_worker_needs_no_templates() {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryTransport::new();
    let outbox = memory.outbox();
    let registry = Registry::new().with(SendMail::new().transport("default", Arc::new(memory)));
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let backend = tasks::connect_worker(&url).await.unwrap();
    let email = example_email("password_reset.html");
    send_mail::enqueue(backend.as_ref(), &email, "default")
        .await
        .unwrap();
    Worker::builder(backend, registry)
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    let sent = outbox.last().unwrap();
    assert_eq!(sent.subject(), Some("Reset your Bücher & Co password"));
    assert!(
        sent.raw().contains("reset?token=3Dabc123") || sent.raw().contains("reset?token=abc123")
    );
}
