//! Text that looks like an RFC 2047 encoded word (`=?utf-8?q?...?=`) is encoded, so that
//! every reader (mail-parser and Python's `email`) reads back exactly the characters given,
//! in every header a caller fills: subject, extra headers, display names, file names.

use mail_parser::MessageParser;
use mailroom::{Attachment, Email, RenderOptions};
use serde_json::json;

use super::fixtures::{check_with_mail_parser, python_check, python_expectation};

/// Values that decoders would turn into something else if written as they are.
const LOOKALIKES: [&str; 7] = [
    "=?utf-8?q?=0D=0ABcc:_evil@x.com?=",
    "=?utf-8?q?support=40paypal=2Ecom?=",
    "=?utf-8?q?evil=2Eexe?=",
    "mid=?utf-8?q?word?=text and =?utf-8?b?YQ==?=",
    // spacing that word-by-word encoding cannot keep: encoded whole
    "=?utf-8?q?two?=  spaces\tand a tab",
    " =?utf-8?q?padded?= ",
    "Grüße =?utf-8?q?=C3=A4?= ä",
];

fn message(value: &str, with_name: bool) -> Email {
    let name = |n: &str| {
        if with_name {
            n.to_owned()
        } else {
            value.to_owned()
        }
    };
    let mut builder = Email::builder()
        .from((value, "ann@example.com"))
        .sender((value, "bounces@example.com"))
        .to((value, "bob@example.org"))
        .to(("Plain Name", "carol@example.org"))
        .cc((name("Zoë"), "zoe@example.org"))
        .reply_to((value, "reply@example.com"))
        .subject(value)
        .header("X-Note", value)
        .text("body");
    let filename = format!("{}.txt", value.trim());
    if !filename.trim().is_empty() {
        builder = builder.attachment(
            Attachment::new(filename, b"data".to_vec()).with_content_type("application/pdf"),
        );
    }
    builder.build().unwrap()
}

#[test]
fn lookalike_encoded_words_read_back_exactly_in_both_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = Vec::new();
    for (i, value) in LOOKALIKES.iter().enumerate() {
        for smtputf8 in [false, true] {
            for with_name in [false, true] {
                let email = message(value, with_name);
                let options = RenderOptions::deterministic().raw_html().smtputf8(smtputf8);
                let bytes = email.render(&options).unwrap();
                let what = format!("{value:?} smtputf8={smtputf8}");
                let parsed = MessageParser::default().parse(&bytes).unwrap();
                check_with_mail_parser(&what, &email, &parsed);
                // Read as unstructured text (mail-parser keeps unknown headers raw by default).
                let as_text = MessageParser::default()
                    .header_text(mail_parser::HeaderName::Other("X-Note".into()))
                    .parse(&bytes)
                    .unwrap();
                assert_eq!(
                    as_text.header("X-Note").and_then(|h| h.as_text()),
                    Some(*value),
                    "{what}: X-Note"
                );
                let text = String::from_utf8(bytes.clone()).unwrap();
                let header_block = text.split("\r\n\r\n").next().unwrap();
                for line in header_block.split("\r\n") {
                    assert!(line.len() <= 78, "{what}: {line}");
                }
                let eml = dir.path().join(format!("{i}-{smtputf8}-{with_name}.eml"));
                std::fs::write(&eml, &bytes).unwrap();
                let mut expect = python_expectation(&email, "multipart/mixed");
                expect["headers"] = json!([["X-Note", value]]);
                manifest.push(json!({"eml": eml, "expect": expect, "utf8": smtputf8}));
            }
        }
    }
    python_check(dir.path(), &manifest);
}

#[test]
fn the_issue_examples_are_not_written_raw() {
    let email = message(LOOKALIKES[0], true);
    let text = String::from_utf8(email.render(&RenderOptions::deterministic()).unwrap()).unwrap();
    for raw in LOOKALIKES[..3].iter() {
        assert!(!text.contains(raw), "{raw} is on the wire as is:\n{text}");
    }
    let email = message(LOOKALIKES[2], true);
    let text = String::from_utf8(email.render(&RenderOptions::deterministic()).unwrap()).unwrap();
    assert!(
        text.contains("filename*=utf-8''%3D%3Futf-8%3Fq%3Fevil%3D2Eexe%3F%3D.txt"),
        "{text}"
    );
}

/// Structured headers (URLs) are not text: an `=?` in a List-Unsubscribe URL stays as it is.
#[test]
fn urls_in_structured_headers_are_written_as_given() {
    let url = "<https://example.com/u/dGVzdA==?l=1>";
    let email = Email::builder()
        .from("ann@example.com")
        .header("List-Unsubscribe", url)
        .build()
        .unwrap();
    let text = String::from_utf8(email.render(&RenderOptions::deterministic()).unwrap()).unwrap();
    assert!(
        text.contains(&format!("List-Unsubscribe: {url}\r\n")),
        "{text}"
    );
}

/// An id cannot be encoded, and Python's `email` decodes an encoded word inside a
/// Content-ID: an id holding `=?` is refused, naming the field.
#[test]
fn ids_that_look_encoded_are_refused() {
    let err = Email::builder()
        .from("ann@example.com")
        .html("<img src=\"cid:=?utf-8?q?x?=\">")
        .inline("=?utf-8?q?x?=", "x.png", vec![1])
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("attachments[0].content_id"), "{err}");
    let err = Email::builder()
        .from("ann@example.com")
        .message_id("<=?utf-8?q?x?=@example.com>")
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("message_id"), "{err}");
}

/// A content type is written as given, so an encoded word in its parameters (a `name`
/// that Python would read as the file name) is refused; the file name has its own field.
#[test]
fn content_types_that_hold_an_encoded_word_are_refused() {
    let err = Email::builder()
        .from("ann@example.com")
        .attachment(
            Attachment::new("report.pdf", b"%PDF".to_vec())
                .with_filename(None)
                .with_content_type("application/pdf; name=\"=?utf-8?q?evil=2Eexe?=\""),
        )
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("attachments[0].content_type"), "{err}");
}
