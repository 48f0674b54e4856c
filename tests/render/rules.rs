//! The message model's validation and the renderer's encoding rules, one rule per test.

use mail_parser::{MessageParser, MimeHeaders};
use mailroom::{Attachment, Email, EmailBuilder, Error, RenderOptions};

fn base() -> EmailBuilder {
    Email::builder()
        .from("ann@example.com")
        .to("bob@example.org")
}

/// The renderer alone: the HTML pipeline (tested in tests/html) is switched off.
fn render(email: &Email) -> String {
    String::from_utf8(
        email
            .render(&RenderOptions::deterministic().raw_html())
            .unwrap(),
    )
    .unwrap()
}

fn header_block(text: &str) -> &str {
    text.split("\r\n\r\n").next().unwrap()
}

/// The unfolded value of the first top-level header `name`.
fn header(text: &str, name: &str) -> Option<String> {
    let block = header_block(text);
    let mut lines = block.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if let Some(value) = line.strip_prefix(&format!("{name}: ")) {
            let mut v = value.to_owned();
            while lines
                .peek()
                .is_some_and(|l| l.starts_with(' ') || l.starts_with('\t'))
            {
                v.push_str(lines.next().unwrap());
            }
            return Some(v);
        }
    }
    None
}

const LINE_BREAKS: [(char, &str); 8] = [
    ('\r', "CR"),
    ('\n', "LF"),
    ('\0', "NUL"),
    ('\u{0B}', "VT"),
    ('\u{0C}', "FF"),
    ('\u{85}', "NEL"),
    ('\u{2028}', "LS"),
    ('\u{2029}', "PS"),
];

fn assert_injection(result: Result<Email, Error>, field: &str, what: &str) {
    match result {
        Err(Error::HeaderInjection { field: f, .. }) => assert_eq!(f, field, "{what}"),
        other => panic!("{what}: expected header injection in {field}, got {other:?}"),
    }
}

#[test]
fn every_line_break_is_rejected_in_every_header_field() {
    for (c, label) in LINE_BREAKS {
        let evil = format!("x{c}Bcc: victim@evil.example");
        assert_injection(base().subject(&evil).build(), "subject", label);
        assert_injection(
            base().header("X-Test", &evil).build(),
            "headers[0].value",
            label,
        );
        assert_injection(
            base().header(format!("X{c}Y"), "v").build(),
            "headers[0].name",
            label,
        );
        assert_injection(
            base().to(format!("\"Bob{c}\" <bob@example.org>")).build(),
            "to[1]",
            label,
        );
        assert_injection(
            base()
                .cc((format!("Carol{c}"), "carol@example.org"))
                .build(),
            "cc[0].name",
            label,
        );
        assert_injection(
            base().bcc(format!("dave{c}@example.org")).build(),
            "bcc[0]",
            label,
        );
        assert_injection(
            Email::builder().from(format!("ann@example.com{c}")).build(),
            "from",
            label,
        );
        assert_injection(
            base().reply_to(format!("R <r@example.org>{c}")).build(),
            "reply_to[0]",
            label,
        );
        assert_injection(
            base().attach(format!("a{c}.pdf"), b"x".to_vec()).build(),
            "attachments[0].filename",
            label,
        );
        assert_injection(
            base()
                .html("<img src=cid:x>")
                .inline(format!("logo{c}"), "logo.png", vec![1])
                .build(),
            "attachments[0].content_id",
            label,
        );
        assert_injection(
            base()
                .attachment(
                    Attachment::new("a.txt", b"x".to_vec())
                        .with_content_type(format!("text/plain{c}X: y")),
                )
                .build(),
            "attachments[0].content_type",
            label,
        );
        assert_injection(
            base().message_id(format!("<a{c}b@example.com>")).build(),
            "message_id",
            label,
        );
    }
}

#[test]
fn injection_through_json_is_rejected_with_the_field() {
    let json = r#"{"from": "ann@example.com", "to": ["bob@example.org"], "headers": [["X-A", "ok"], ["X-B", "bad\r\nBcc: x@evil.example"]]}"#;
    assert!(
        matches!(Email::from_json(json), Err(Error::HeaderInjection { field, .. }) if field == "headers[1].value")
    );
    let json = "{\"from\": \"ann@example.com\", \"subject\": \"a\\u2028b\"}";
    assert!(
        matches!(Email::from_json(json), Err(Error::HeaderInjection { field, .. }) if field == "subject")
    );
}

#[test]
fn header_names_follow_rfc_5322() {
    for bad in ["X Bad", "X:Bad", "Ünicode", "X\tTab", ""] {
        let err = base().header(bad, "v").build().unwrap_err();
        assert_eq!(err.field(), Some("headers[0].name"), "{bad:?}: {err}");
    }
    assert!(base().header("X-Good_Name.1!", "v").build().is_ok());
}

#[test]
fn structural_headers_cannot_be_set_as_extra_headers() {
    for name in [
        "From",
        "to",
        "BCC",
        "Subject",
        "Content-Type",
        "MIME-Version",
        "Message-ID",
        "Date",
    ] {
        let err = base().header(name, "v").build().unwrap_err();
        assert!(matches!(err, Error::InvalidMessage { .. }), "{name}: {err}");
        assert_eq!(err.field(), Some("headers[0].name"));
    }
}

#[test]
fn extra_headers_keep_order_and_repeat() {
    let email = base()
        .header("X-Tag", "one")
        .header("X-Other", "two")
        .header("X-Tag", "three")
        .build()
        .unwrap();
    let text = render(&email);
    let block = header_block(&text);
    let one = block.find("X-Tag: one").unwrap();
    let two = block.find("X-Other: two").unwrap();
    let three = block.find("X-Tag: three").unwrap();
    assert!(one < two && two < three, "{block}");
}

#[test]
fn from_is_required() {
    let err = Email::builder().to("bob@example.org").build().unwrap_err();
    assert!(
        matches!(err, Error::InvalidMessage { ref field, .. } if field == "from"),
        "{err}"
    );
    let err = Email::from_json(r#"{"to": ["bob@example.org"]}"#).unwrap_err();
    assert_eq!(err.field(), Some("from"));
    let err = Email::from_json(r#"{"from": ""}"#).unwrap_err();
    assert!(
        matches!(err, Error::InvalidAddress { ref field, .. } if field == "from"),
        "{err}"
    );
}

#[test]
fn json_errors_name_the_field() {
    assert_eq!(
        Email::from_json("{not json").unwrap_err().field(),
        Some("json")
    );
    assert_eq!(
        Email::from_json(r#"{"from": "a@example.com", "colour": 1}"#)
            .unwrap_err()
            .field(),
        Some("colour")
    );
    let err = Email::from_json(r#"{"from": "a@example.com", "to": ["ok@example.org", "broken"]}"#)
        .unwrap_err();
    assert_eq!(err.field(), Some("to[1]"));
    let err = Email::from_json(r#"{"from": "a@example.com", "attachments": [{"filename": "a.bin", "content_base64": "!!"}]}"#).unwrap_err();
    assert_eq!(err.field(), Some("attachments[0].content_base64"));
    let err = Email::from_json(r#"{"from": "a@example.com", "date": "yesterday"}"#).unwrap_err();
    assert_eq!(err.field(), Some("date"));
    let err = Email::from_json(r#"{"from": "a@example.com", "attachments": [{"filename": "f.eml", "message": {"from": "x@example.com", "to": ["bad"]}}]}"#)
        .unwrap_err();
    assert_eq!(err.field(), Some("attachments[0].message.to[0]"));
}

#[test]
fn addresses_as_objects_and_strings_mix() {
    let email = Email::from_json(r#"{"from": {"name": "Zoë, the Author", "email": "zoe@example.com"}, "to": ["Bob <bob@example.org>", {"email": "c@example.org"}]}"#).unwrap();
    assert_eq!(email.from().name(), Some("Zoë, the Author"));
    assert_eq!(email.to()[1].name(), None);
    let again = Email::from_json(&email.to_json()).unwrap();
    assert_eq!(again, email);
}

#[test]
fn idna_domains_become_punycode_and_stay_unicode_with_smtputf8() {
    let email = base().to("Jürgen <jurgen@bücher.example>").build().unwrap();
    let ascii = render(&email);
    assert!(
        header(&ascii, "To")
            .unwrap()
            .contains("<jurgen@xn--bcher-kva.example>"),
        "{ascii}"
    );
    let utf8 = String::from_utf8(
        email
            .render(&RenderOptions::deterministic().smtputf8(true))
            .unwrap(),
    )
    .unwrap();
    let to = header(&utf8, "To").unwrap();
    assert!(to.contains("Jürgen <jurgen@bücher.example>"), "{to}");
    let parsed = MessageParser::default().parse(utf8.as_bytes()).unwrap();
    let addr = parsed.to().unwrap().iter().nth(1).unwrap();
    assert_eq!(
        (addr.name(), addr.address()),
        (Some("Jürgen"), Some("jurgen@bücher.example"))
    );
}

#[test]
fn non_ascii_local_part_needs_smtputf8_and_is_never_mangled() {
    let email = base().cc("jürgen@example.com").build().unwrap();
    assert!(email.needs_smtputf8());
    let err = email.to_bytes().unwrap_err();
    assert!(
        matches!(err, Error::InvalidAddress { ref field, ref reason } if field == "cc[0]" && reason.contains("SMTPUTF8")),
        "{err}"
    );
    let utf8 =
        String::from_utf8(email.render(&RenderOptions::new().smtputf8(true)).unwrap()).unwrap();
    assert!(header(&utf8, "Cc").unwrap().contains("jürgen@example.com"));
}

#[test]
fn smtputf8_writes_raw_utf8_subject_readable_by_parsers() {
    let email = base().subject("Ваш заказ готов").text("x").build().unwrap();
    let utf8 = String::from_utf8(
        email
            .render(&RenderOptions::deterministic().smtputf8(true))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header(&utf8, "Subject").as_deref(), Some("Ваш заказ готов"));
    let parsed = MessageParser::default().parse(utf8.as_bytes()).unwrap();
    assert_eq!(parsed.subject(), Some("Ваш заказ готов"));
    let ascii = render(&email);
    assert!(header(&ascii, "Subject").unwrap().starts_with("=?utf-8?"));
}

#[test]
fn long_subjects_fold_into_encoded_words_that_never_split_a_character() {
    let subject = "Ünïcødé ".repeat(10) + &"日本語".repeat(15) + " 🎉🎉🎉 end";
    let email = base().subject(&subject).build().unwrap();
    let text = render(&email);
    let block = header_block(&text);
    let start = block.find("Subject: ").unwrap();
    let mut lines = vec![];
    for (i, line) in block[start..].split("\r\n").enumerate() {
        if i > 0 && !line.starts_with(' ') {
            break;
        }
        lines.push(line);
    }
    assert!(lines.len() > 2, "expected folding: {lines:?}");
    for line in &lines {
        assert!(line.len() <= 78, "{line}");
        for word in line.split_whitespace().filter(|w| w.starts_with("=?")) {
            assert!(word.len() <= 75, "encoded word over 75 chars: {word}");
            // Each encoded word decodes to whole UTF-8 characters on its own.
            let raw = format!("Subject: {word}\r\n\r\n");
            let parsed = MessageParser::default().parse(raw.as_bytes()).unwrap();
            let decoded = parsed.subject().unwrap();
            assert!(!decoded.contains('\u{FFFD}'), "{word} splits a character");
        }
    }
    assert_eq!(
        MessageParser::default()
            .parse(text.as_bytes())
            .unwrap()
            .subject(),
        Some(subject.as_str())
    );
}

#[test]
fn non_ascii_headers_are_encoded_word_by_word() {
    let cases = [
        // (subject, display name, words that must stay readable)
        (
            "Grüße aus Köln — bis bald",
            "Zoë Smith",
            vec!["aus", "bis", "bald", "Smith"],
        ),
        (
            "Your order #42 ✓ shipped",
            "Jürgen O'Brien-Müller",
            vec!["Your", "order", "#42", "shipped"],
        ),
        (
            "=?utf-8?Q?fake?= und echt ä",
            "Ann (Ärztin) Lee",
            vec!["und", "echt", "Ann", "Lee"],
        ),
        ("Ünïcødé   spaced\tout", "Zoë  Two  Spaces", vec![]),
    ];
    for (subject, name, readable) in cases {
        let email = base()
            .subject(subject)
            .to((name, "z@example.org"))
            .cc(("Doe, John", "john@example.org"))
            .build()
            .unwrap();
        let text = render(&email);
        for line in header_block(&text).split("\r\n") {
            assert!(line.len() <= 78, "{line}");
        }
        let subject_line = header(&text, "Subject").unwrap();
        let to_line = header(&text, "To").unwrap();
        for word in &readable {
            assert!(
                subject_line.split(' ').any(|w| w == *word)
                    || to_line.split(' ').any(|w| w == *word),
                "`{word}` should stay readable: {subject_line} / {to_line}"
            );
        }
        assert!(
            !subject_line.contains("=?utf-8?Q?fake"),
            "text that looks like an encoded word must be encoded: {subject_line}"
        );
        let parsed = MessageParser::default().parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some(subject));
        let to: Vec<_> = parsed
            .to()
            .unwrap()
            .iter()
            .map(|a| (a.name(), a.address()))
            .collect();
        assert_eq!(
            to,
            [
                (None, Some("bob@example.org")),
                (Some(name), Some("z@example.org"))
            ]
        );
        assert_eq!(
            parsed.cc().unwrap().first().unwrap().name(),
            Some("Doe, John")
        );
    }
}

#[test]
fn long_display_names_fold_and_read_back() {
    let name =
        "Ein sehr langer Anzeigename, mit Komma und Ümläuten, der über die Zeilengrenze hinausgeht";
    let email = base().cc((name, "long@example.com")).build().unwrap();
    let text = render(&email);
    for line in header_block(&text).split("\r\n") {
        assert!(line.len() <= 78, "{line}");
    }
    let parsed = MessageParser::default().parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.cc().unwrap().first().unwrap().name(), Some(name));
}

#[test]
fn filenames_use_rfc_2231() {
    let email = base()
        .attach("rechnung-über.pdf", b"%PDF".to_vec())
        .build()
        .unwrap();
    let text = render(&email);
    assert!(
        text.contains("filename*=UTF-8''rechnung-%C3%BCber.pdf"),
        "{text}"
    );
    let long = "Réunion d'équipe - résumé des décisions du trimestre et prochaines étapes (version finale).pdf";
    let email = base().attach(long, b"%PDF".to_vec()).build().unwrap();
    let text = render(&email);
    assert!(
        text.contains("filename*0*=UTF-8''") && text.contains("filename*1*="),
        "{text}"
    );
    let parsed = MessageParser::default().parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.attachment(0).unwrap().attachment_name(), Some(long));
}

fn transfer_encoding_of_text(body: &str) -> String {
    let email = base().text(body).build().unwrap();
    let text = render(&email);
    header(&text, "Content-Transfer-Encoding").unwrap()
}

#[test]
fn body_encoding_is_7bit_when_possible_else_the_shorter_of_qp_and_base64() {
    assert_eq!(
        transfer_encoding_of_text("short ascii lines\nonly\n"),
        "7bit"
    );
    assert_eq!(
        transfer_encoding_of_text(&"long line ".repeat(20)),
        "quoted-printable"
    );
    assert_eq!(
        transfer_encoding_of_text("Mostly ASCII with one café in it.\n"),
        "quoted-printable"
    );
    assert_eq!(
        transfer_encoding_of_text("Полностью кириллический текст сообщения, без латиницы.\n"),
        "base64"
    );
    assert_eq!(
        transfer_encoding_of_text("trailing space \nnext\n"),
        "quoted-printable"
    );
}

#[test]
fn no_line_exceeds_998_octets_and_every_line_ends_in_crlf() {
    let body = "x".repeat(5000) + "\n" + &"é".repeat(3000);
    let email = base()
        .text(&body)
        .html(format!("<p>{}</p>", "y".repeat(4000)))
        .build()
        .unwrap();
    let bytes = email.render(&RenderOptions::deterministic()).unwrap();
    for line in bytes.split(|b| *b == b'\n') {
        assert!(line.len() <= 999, "line of {} octets", line.len());
    }
    assert!(!bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n"), body);
}

#[test]
fn date_and_message_id_are_added_when_absent() {
    let email = base().text("x").build().unwrap();
    let a = String::from_utf8(email.to_bytes().unwrap()).unwrap();
    let b = String::from_utf8(email.to_bytes().unwrap()).unwrap();
    let (id_a, id_b) = (
        header(&a, "Message-ID").unwrap(),
        header(&b, "Message-ID").unwrap(),
    );
    assert!(
        id_a.starts_with('<') && id_a.ends_with("@example.com>"),
        "{id_a}"
    );
    assert_ne!(id_a, id_b, "fresh Message-IDs must differ");
    let date = header(&a, "Date").unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc2822(&date).is_ok(),
        "{date}"
    );
}

#[test]
fn date_header_has_rfc_5322_form_and_keeps_the_offset() {
    let date = chrono::DateTime::parse_from_rfc3339("2026-11-21T10:00:00+05:30").unwrap();
    let email = base().date(date).build().unwrap();
    let text = render(&email);
    assert_eq!(
        header(&text, "Date").as_deref(),
        Some("Sat, 21 Nov 2026 10:00:00 +0530")
    );
}

#[test]
fn deterministic_rendering_depends_on_seed_and_content_only() {
    let email = base()
        .subject("s")
        .text("t")
        .attach("a.bin", vec![1, 2, 3])
        .build()
        .unwrap();
    let one = email.render(&RenderOptions::deterministic()).unwrap();
    assert_eq!(one, email.render(&RenderOptions::deterministic()).unwrap());
    let other_seed = email
        .render(&RenderOptions::deterministic().seed(7))
        .unwrap();
    assert_ne!(one, other_seed);
    let changed = base()
        .subject("s")
        .text("t!")
        .attach("a.bin", vec![1, 2, 3])
        .build()
        .unwrap();
    let changed = changed.render(&RenderOptions::deterministic()).unwrap();
    assert_ne!(one, changed);
    let text = String::from_utf8(one).unwrap();
    let changed = String::from_utf8(changed).unwrap();
    assert_ne!(header(&text, "Message-ID"), header(&changed, "Message-ID"));
    // Boundaries differ too, not only the changed body.
    let boundary = |t: &str| {
        t.split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(boundary(&text), boundary(&changed));
}

#[test]
fn bcc_is_delivered_but_never_written() {
    let email = base()
        .cc("carol@example.org")
        .bcc("secret@example.net")
        .build()
        .unwrap();
    let text = render(&email);
    assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
    assert!(!text.contains("secret@example.net"));
    let recipients: Vec<&str> = email.recipients().iter().map(|a| a.email()).collect();
    assert_eq!(
        recipients,
        ["bob@example.org", "carol@example.org", "secret@example.net"]
    );
}

#[test]
fn body_contains_checks_every_body_like_django() {
    let email = base()
        .text("hello world")
        .html("<p>hello world</p>")
        .build()
        .unwrap();
    assert!(email.body_contains("hello"));
    let email = base().text("hello").html("<p>bye</p>").build().unwrap();
    assert!(!email.body_contains("hello"));
    assert!(!base().build().unwrap().body_contains(""));
}

#[test]
fn attached_messages_are_7bit_message_rfc822() {
    let inner = Email::builder()
        .from("carol@example.org")
        .to("ann@example.com")
        .subject("Inner ✓")
        .text("inner body")
        .build()
        .unwrap();
    let email = base()
        .text("outer")
        .attach_message(inner.clone())
        .build()
        .unwrap();
    let text = render(&email);
    assert!(text.contains("Content-Type: message/rfc822\r\n"), "{text}");
    assert!(text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
    let parsed = MessageParser::default().parse(text.as_bytes()).unwrap();
    let nested = parsed.attachment(0).unwrap().message().unwrap();
    assert_eq!(nested.subject(), Some("Inner ✓"));
    assert_eq!(nested.body_text(0).as_deref(), Some("inner body"));
}

#[test]
fn attachments_from_files_guess_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    let email = base().attach_file(&path).build().unwrap();
    assert_eq!(email.attachments()[0].filename(), Some("report.csv"));
    assert_eq!(email.attachments()[0].content_type(), "text/csv");
    let err = base()
        .attach_file(dir.path().join("missing.pdf"))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(
        Attachment::new("blob", vec![0]).content_type(),
        "application/octet-stream"
    );
}

#[test]
fn inline_parts_need_unique_bracketless_content_ids() {
    let err = base()
        .html("x")
        .inline("<logo>", "l.png", vec![1])
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("attachments[0].content_id"));
    let err = base()
        .html("x")
        .inline("logo", "a.png", vec![1])
        .inline("logo", "b.png", vec![2])
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("attachments[1].content_id"));
}

#[test]
fn message_ids_must_be_bracketed_addr_specs() {
    assert_eq!(
        base()
            .message_id("no-brackets@example.com")
            .build()
            .unwrap_err()
            .field(),
        Some("message_id")
    );
    assert_eq!(
        base().message_id("<no-at>").build().unwrap_err().field(),
        Some("message_id")
    );
    let email = base().message_id("<fixed@example.com>").build().unwrap();
    assert_eq!(
        header(&render(&email), "Message-ID").as_deref(),
        Some("<fixed@example.com>")
    );
}

#[test]
#[cfg(feature = "html")] // without it an HTML body is sent as given (`render` docs)
fn html_bodies_go_through_the_csp_safe_pipeline_unless_raw_html_is_asked() {
    let email = base()
        .html("<p onclick=\"steal()\">Hi</p><script>steal()</script>")
        .build()
        .unwrap();
    let processed =
        String::from_utf8(email.render(&RenderOptions::deterministic()).unwrap()).unwrap();
    let parsed = MessageParser::default()
        .parse(processed.as_bytes())
        .unwrap();
    let html = parsed.body_html(0).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("onclick"),
        "{html}"
    );
    assert!(html.contains("Hi"));
    assert!(
        parsed.body_text(0).unwrap().contains("Hi"),
        "a text alternative is generated"
    );
    let raw = render(&email);
    assert!(
        raw.contains("<script>steal()</script>"),
        "raw_html writes the body as given"
    );
}
