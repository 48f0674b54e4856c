//! One-click unsubscribe: the builder and the JSON field write both headers, DKIM signs
//! both (verified by mail-auth and dkimpy), and bad values are refused naming the field.

use std::sync::Arc;

use mailroom::{Email, ErrorKind, ListUnsubscribe, RenderOptions};

use crate::html::dkim::{assert_verifies, dkimpy_results, rsa, signed_header_names};

fn one_click() -> Email {
    Email::builder()
        .from("News <news@example.com>")
        .to("ann@example.org")
        .subject("November news")
        .list_unsubscribe(
            ListUnsubscribe::one_click("https://example.com/unsubscribe/TOKEN?l=news")
                .mailto("unsubscribe@example.com"),
        )
        .text("hello")
        .html("<p>hello</p>")
        .build()
        .unwrap()
}

#[tokio::test]
async fn one_click_headers_are_written_and_signed_and_dkimpy_verifies_them() {
    let signer = Arc::new(rsa());
    let bytes = one_click()
        .render(&RenderOptions::new().signer(signer.clone()))
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("\r\nList-Unsubscribe: <https://example.com/unsubscribe/TOKEN?l=news>,\r\n <mailto:unsubscribe@example.com>\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    let h = signed_header_names(&text);
    for name in ["list-unsubscribe", "list-unsubscribe-post"] {
        assert!(h.iter().any(|n| n == name), "{name} not in h={h:?}");
    }
    assert_verifies("one-click", text.as_bytes(), &[&signer]).await;
    // Either header changed in transit breaks the signature for dkimpy.
    for tampered in [
        text.replacen(
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "List-Unsubscribe-Post: List-Unsubscribe=Nope-Click",
            1,
        ),
        text.replacen("unsubscribe/TOKEN", "unsubscribe/OTHER", 1),
    ] {
        assert_ne!(tampered, text);
        assert_eq!(dkimpy_results(tampered.as_bytes(), &[&signer]), [false]);
    }
}

#[test]
fn the_json_field_writes_the_same_headers_and_reads_back_equal() {
    let json = r#"{"from": "News <news@example.com>", "to": ["ann@example.org"],
        "subject": "November news", "text": "hello", "html": "<p>hello</p>",
        "list_unsubscribe": {"url": "https://example.com/unsubscribe/TOKEN?l=news",
            "mailto": "unsubscribe@example.com", "one_click": true}}"#;
    let email = Email::from_json(json).unwrap();
    assert_eq!(email, one_click());
    assert_eq!(Email::from_json(&email.to_json()).unwrap(), email);
    let mailto_only = Email::from_json(
        r#"{"from": "a@example.com", "to": ["b@example.org"], "list_unsubscribe": {"mailto": "u@example.com"}}"#,
    )
    .unwrap();
    assert_eq!(
        mailto_only.headers(),
        [(
            "List-Unsubscribe".to_owned(),
            "<mailto:u@example.com>".to_owned()
        )]
    );
}

#[test]
fn bad_values_are_refused_naming_the_field() {
    let cases = [
        (
            r#"{"url": "http://example.com/u", "one_click": true}"#,
            "list_unsubscribe.one_click",
        ),
        (
            r#"{"mailto": "u@example.com", "one_click": true}"#,
            "list_unsubscribe.one_click",
        ),
        (
            r#"{"url": "https://example.com/u", "one_click": "yes"}"#,
            "list_unsubscribe.one_click",
        ),
        (r#"{"url": 7}"#, "list_unsubscribe.url"),
        (r#"{"url": "not a url"}"#, "list_unsubscribe.url"),
        (r#"{"url": "ftp://example.com/u"}"#, "list_unsubscribe.url"),
        (
            r#"{"url": "https://example.com/u\r\nBcc: x@evil.example"}"#,
            "list_unsubscribe.url",
        ),
        (r#"{"mailto": "not an address"}"#, "list_unsubscribe.mailto"),
        (
            r#"{"url": "https://example.com/u", "typo": 1}"#,
            "list_unsubscribe.typo",
        ),
        (r#"{}"#, "list_unsubscribe"),
        (r#""https://example.com/u""#, "list_unsubscribe"),
    ];
    for (value, field) in cases {
        let json = format!(
            r#"{{"from": "a@example.com", "to": ["b@example.org"], "list_unsubscribe": {value}}}"#
        );
        let err = Email::from_json(&json).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{value}: {err}");
        assert_eq!(err.field(), Some(field), "{value}: {err}");
    }
    let both = r#"{"from": "a@example.com", "to": ["b@example.org"],
        "headers": [["List-Unsubscribe", "<https://example.com/x>"]],
        "list_unsubscribe": {"url": "https://example.com/u"}}"#;
    assert_eq!(
        Email::from_json(both).unwrap_err().field(),
        Some("headers[0].name")
    );
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_exits_65_on_one_click_without_https() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let json = r#"{"from": "a@example.com", "to": ["b@example.org"], "text": "x",
        "list_unsubscribe": {"url": "http://example.com/u", "one_click": true}}"#;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .arg("render")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("list_unsubscribe.one_click"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
