//! Attached messages (`message/rfc822`) go through the HTML pipeline like the message that
//! carries them: read back with mail-parser, a hostile nested body comes out inert, a benign
//! one exactly as the pipeline makes it, and `raw_html` leaves both alone.

use mailroom::html::{self, HtmlOptions};
use mailroom::{Attachment, Email, RenderOptions};

use super::hostile::{active_content, hostile_cases};
use super::pipeline::{legit_options, read};

fn inner(html: &str) -> Email {
    Email::builder()
        .from("mallory@example.net")
        .to("ann@example.com")
        .subject("the original")
        .html(html)
        .build()
        .unwrap()
}

/// Forwards `inner` inside a text-only message and inside an HTML one.
fn outers(inner: &Email) -> [Email; 2] {
    let text = Email::builder()
        .from("ann@example.com")
        .to("bob@example.org")
        .subject("Fwd: the original")
        .text("see attached")
        .attachment(Attachment::message(inner.clone()).with_filename(Some("original.eml".into())))
        .build()
        .unwrap();
    let html = text
        .to_builder()
        .html("<p>see <b>attached</b></p>")
        .build()
        .unwrap();
    [text, html]
}

/// The HTML body of the message attached to the rendered `bytes`, as mail-parser reads it
/// (line ends as in the source: the wire has CRLF).
fn nested_html(bytes: &[u8]) -> String {
    let outer = mail_parser::MessageParser::default().parse(bytes).unwrap();
    let attached = outer
        .attachments()
        .find_map(|a| a.message())
        .expect("an attached message");
    attached
        .body_html(0)
        .expect("an HTML body")
        .replace("\r\n", "\n")
}

#[test]
fn a_hostile_attached_message_comes_out_inert() {
    for (name, source) in hostile_cases() {
        for outer in outers(&inner(&source)) {
            let bytes = outer.render(&RenderOptions::deterministic()).unwrap();
            let body = nested_html(&bytes);
            assert_eq!(
                active_content(&body),
                Vec::<String>::new(),
                "{name}: the attached message kept active content:\n{body}"
            );
            assert!(
                !body.contains("<script") && !body.contains("onclick") && !body.contains("<iframe"),
                "{name}: {body}"
            );
        }
    }
}

#[test]
fn a_benign_attached_message_is_kept_as_the_pipeline_makes_it() {
    let source = read("legit/newsletter.html");
    let expected = html::process_html(&source, &legit_options()).unwrap();
    let options = RenderOptions::deterministic().html(legit_options());
    for outer in outers(&inner(&source)) {
        let bytes = outer.render(&options).unwrap();
        let body = nested_html(&bytes);
        assert_eq!(body.trim_end(), expected.html.trim_end());
        assert!(body.contains(r#"<div class="banner" style="background-color: #1a6;"#));
        // and its images travel inside the attached message, as cid: parts
        let outer = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let attached = outer.attachments().find_map(|a| a.message()).unwrap();
        assert_eq!(attached.attachment_count(), expected.inline_parts.len());
    }
}

#[test]
fn raw_html_leaves_the_attached_message_as_given() {
    let source = read("hostile/scripts.html");
    for outer in outers(&inner(&source)) {
        let bytes = outer
            .render(&RenderOptions::deterministic().raw_html())
            .unwrap();
        assert_eq!(nested_html(&bytes).trim_end(), source.trim_end());
    }
}

#[test]
fn process_treats_an_attached_message_with_the_same_options() {
    let source = read("hostile/handlers.html");
    let [text_only, _] = outers(&inner(&source));
    let processed = html::process(&text_only, &HtmlOptions::default()).unwrap();
    let mailroom::AttachmentBody::Message(nested) = processed.attachments()[0].body() else {
        panic!("the attached message is gone");
    };
    let expected = html::process_html(&source, &HtmlOptions::default()).unwrap();
    assert_eq!(nested.html(), Some(expected.html.as_str()));
    assert_eq!(nested.text(), Some(expected.text.as_str()));
    // processing again changes nothing
    assert_eq!(
        html::process(&processed, &HtmlOptions::default()).unwrap(),
        processed
    );
}
