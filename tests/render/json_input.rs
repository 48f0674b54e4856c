//! Message JSON read strictly: a wrong type or a repeated key names the field at fault.

use mailroom::{Email, Error};

/// `{"from": ..., <rest>}` with `rest` spliced in.
fn with(rest: &str) -> String {
    format!(
        r#"{{"from": "ann@example.com"{}{rest}}}"#,
        if rest.is_empty() { "" } else { ", " }
    )
}

fn field_of(json: &str) -> String {
    match Email::from_json(json) {
        Err(e @ Error::InvalidMessage { .. }) | Err(e @ Error::InvalidAddress { .. }) => {
            e.field().unwrap().to_owned()
        }
        other => panic!("{json}: expected an invalid-message error, got {other:?}"),
    }
}

#[test]
fn wrong_types_name_the_field() {
    let message = r#"{"from": "x@example.com", "subject": 1}"#;
    let cases: &[(&str, &str)] = &[
        (r#""subject": 1"#, "subject"),
        (r#""subject": ["a"]"#, "subject"),
        (r#""text": true"#, "text"),
        (r#""html": {}"#, "html"),
        (r#""to": "bob@example.org""#, "to"),
        (r#""to": ["bob@example.org", 7]"#, "to[1]"),
        (r#""cc": {}"#, "cc"),
        (r#""bcc": [null]"#, "bcc[0]"),
        (r#""reply_to": 1"#, "reply_to"),
        (r#""sender": 1"#, "sender"),
        (
            r#""to": [{"name": 1, "email": "b@example.org"}]"#,
            "to[0].name",
        ),
        (
            r#""to": [{"name": "B", "email": ["b@example.org"]}]"#,
            "to[0].email",
        ),
        (r#""to": [{"name": "B"}]"#, "to[0].email"),
        (
            r#""to": [{"email": "b@example.org", "mail": "x"}]"#,
            "to[0].mail",
        ),
        (r#""headers": {}"#, "headers"),
        (r#""headers": [["X-A", "1"], ["X-B"]]"#, "headers[1]"),
        (r#""headers": [["X-A", 1]]"#, "headers[0]"),
        (r#""headers": ["X-A: 1"]"#, "headers[0]"),
        (r#""attachments": {}"#, "attachments"),
        (r#""attachments": ["a.pdf"]"#, "attachments[0]"),
        (
            r#""attachments": [{"filename": "a.bin", "content_base64": 12}]"#,
            "attachments[0].content_base64",
        ),
        (
            r#""attachments": [{"filename": 1, "content_base64": "AA=="}]"#,
            "attachments[0].filename",
        ),
        (
            r#""attachments": [{"filename": "a", "content_base64": "AA==", "inline": "yes"}]"#,
            "attachments[0].inline",
        ),
        (
            r#""attachments": [{"filename": "a", "content_base64": "AA==", "content_id": 5}]"#,
            "attachments[0].content_id",
        ),
        (
            r#""attachments": [{"message": "not an object"}]"#,
            "attachments[0].message",
        ),
        (
            &format!(r#""attachments": [{{"message": {message}}}]"#),
            "attachments[0].message.subject",
        ),
        (r#""date": 20261121"#, "date"),
        (r#""message_id": 1"#, "message_id"),
    ];
    for (rest, field) in cases {
        assert_eq!(field_of(&with(rest)), *field, "{rest}");
    }
    assert_eq!(field_of(r#"{"from": 1}"#), "from");
    assert_eq!(field_of("[]"), "json");
    assert_eq!(field_of("\"a@example.com\""), "json");
    // Still fine: null for an absent optional value.
    Email::from_json(&with(r#""sender": null, "subject": null, "date": null"#)).unwrap();
}

#[test]
fn repeated_keys_are_refused_with_their_path() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"from": "a@example.com", "subject": "a", "subject": "b"}"#,
            "subject",
        ),
        (
            r#"{"from": "a@example.com", "from": "b@example.com"}"#,
            "from",
        ),
        (
            r#"{"from": "a@example.com", "to": [{"email": "b@example.org", "email": "c@example.org"}]}"#,
            "to[0].email",
        ),
        (
            r#"{"from": {"name": "A", "name": "B", "email": "a@example.com"}}"#,
            "from.name",
        ),
        (
            r#"{"from": "a@example.com", "attachments": [{"filename": "a.pdf", "filename": "a.exe", "content_base64": "AA=="}]}"#,
            "attachments[0].filename",
        ),
        (
            r#"{"from": "a@example.com", "attachments": [{"message": {"from": "x@example.com", "subject": "1", "subject": "2"}}]}"#,
            "attachments[0].message.subject",
        ),
    ];
    for (json, field) in cases {
        assert_eq!(field_of(json), *field, "{json}");
        let err = Email::from_json(json).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        // The serde path refuses them too.
        assert!(serde_json::from_str::<Email>(json).is_err(), "{json}");
    }
    // The same key in two different objects is not a repeat.
    Email::from_json(r#"{"from": {"name": "A", "email": "a@example.com"}, "to": [{"name": "B", "email": "b@example.org"}]}"#).unwrap();
}

#[test]
fn header_names_are_printable_ascii_without_colon_and_at_most_76_octets() {
    let long = "X-".to_owned() + &"a".repeat(74);
    assert!(
        Email::builder()
            .from("a@example.com")
            .header(&long, "v")
            .build()
            .is_ok()
    );
    for bad in [
        "X-".to_owned() + &"a".repeat(75),
        "X-".to_owned() + &"a".repeat(997),
        "X-".to_owned() + &"a".repeat(100_000),
        "X:Y".to_owned(),
        "X Y".to_owned(),
        "X\u{7f}Y".to_owned(),
        "Xé".to_owned(),
    ] {
        let err = Email::builder()
            .from("a@example.com")
            .header(&bad, "v")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), Some("headers[0].name"), "{bad:.20}: {err}");
        let json = with(&format!(
            r#""headers": [[{}, "v"]]"#,
            serde_json::to_string(&bad).unwrap()
        ));
        assert_eq!(field_of_any(&json), "headers[0].name", "{bad:.20}");
    }
}

fn field_of_any(json: &str) -> String {
    Email::from_json(json)
        .unwrap_err()
        .field()
        .unwrap()
        .to_owned()
}
