//! Line ends: every text body goes out with CRLF only (a lone CR or LF becomes CRLF), so no
//! bare CR or LF is ever on the wire; attachments keep their exact bytes.

use mail_parser::{MessageParser, MimeHeaders};
use mailroom::{Attachment, Email, RenderOptions};
use serde_json::json;

use super::fixtures::{python_check, python_expectation};

/// Bodies with bare CRs, bare LFs and both; the first is the issue's `hello\r.\r\n`.
const BODIES: [&str; 6] = [
    "hello\r.\r\nworld",
    "one\ntwo\n",
    "mixed\r\nbare cr\rbare lf\nend\r",
    "\r\rstarts with two CRs\n\n",
    "Grüße\raus Köln\n— bis bald\r\n",
    "long line that needs quoted-printable encoding because it runs on and on and on \r.\rx",
];

/// The text a reader gets back: every line end as LF.
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Panics at the first CR not followed by LF or LF not preceded by CR.
fn assert_only_crlf(what: &str, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(
                bytes.get(i + 1),
                Some(&b'\n'),
                "{what}: bare CR at byte {i}"
            ),
            b'\n' => assert!(
                i > 0 && bytes[i - 1] == b'\r',
                "{what}: bare LF at byte {i}"
            ),
            _ => {}
        }
    }
}

fn messages(body: &str) -> Vec<(&'static str, Email)> {
    let base = || {
        Email::builder()
            .from("ann@example.com")
            .to("bob@example.org")
    };
    let inner = base().subject("inner").text(body).build().unwrap();
    vec![
        ("text", base().text(body).build().unwrap()),
        (
            "html",
            base().html(format!("<p>{body}</p>")).build().unwrap(),
        ),
        (
            "alternative",
            base()
                .text(body)
                .html(format!("<p>{body}</p>"))
                .build()
                .unwrap(),
        ),
        (
            "text attachments",
            base()
                .text(body)
                .attach("notes.txt", body.as_bytes().to_vec())
                .attachment(Attachment::inline(
                    "part",
                    "inline.txt",
                    body.as_bytes().to_vec(),
                ))
                .build()
                .unwrap(),
        ),
        (
            "nested message",
            base().text(body).attach_message(inner).build().unwrap(),
        ),
    ]
}

#[test]
fn bare_cr_and_lf_in_bodies_become_crlf_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = Vec::new();
    for (b, body) in BODIES.iter().enumerate() {
        for (name, email) in messages(body) {
            let what = format!("{name} {body:?}");
            for options in [
                RenderOptions::deterministic().raw_html(),
                RenderOptions::deterministic(),
            ] {
                let bytes = email.render(&options).unwrap();
                assert_only_crlf(&what, &bytes);
            }
            let bytes = email
                .render(&RenderOptions::deterministic().raw_html())
                .unwrap();
            let parsed = MessageParser::default().parse(&bytes).unwrap();
            if email.text().is_some() {
                assert_eq!(
                    lf(&parsed.body_text(0).unwrap()),
                    lf(body),
                    "{what}: mail-parser text"
                );
            }
            // Attachments come back byte for byte, bare line ends and all.
            for a in email.attachments() {
                if let Some(want) = a.bytes() {
                    let part = parsed
                        .parts
                        .iter()
                        .find(|p| p.attachment_name() == a.filename())
                        .unwrap();
                    assert_eq!(part.contents(), want, "{what}: {:?}", a.filename());
                }
            }
            let eml = dir
                .path()
                .join(format!("{b}-{}.eml", name.replace(' ', "-")));
            std::fs::write(&eml, &bytes).unwrap();
            let top = match name {
                "text" => "text/plain",
                "html" => "text/html",
                "alternative" => "multipart/alternative",
                _ => "multipart/mixed",
            };
            let mut expect = python_expectation(&email, top);
            for key in ["text", "html"] {
                if let Some(value) = expect[key].as_str() {
                    expect[key] = json!(lf(value));
                }
            }
            if let Some(nested) = expect["nested"].get_mut(0) {
                nested["text"] = json!(lf(body));
            }
            manifest.push(json!({"eml": eml, "expect": expect}));
        }
    }
    python_check(dir.path(), &manifest);
}

#[test]
fn the_issue_example_is_not_on_the_wire() {
    let email = Email::builder()
        .from("ann@example.com")
        .text("hello\r.\r\n")
        .build()
        .unwrap();
    let bytes = email.render(&RenderOptions::deterministic()).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains("hello\r."), "{text:?}");
    assert!(text.ends_with("\r\n\r\nhello\r\n.\r\n"), "{text:?}");
}
