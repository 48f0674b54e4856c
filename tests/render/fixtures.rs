//! Every message in fixtures/messages/ is rendered deterministically, snapshot-tested, and
//! read back by two independent parsers (mail-parser here, Python's `email` package with
//! `policy=default`) which must recover the original values with zero defects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mailroom::{Address, AttachmentBody, Email, RenderOptions};
use serde_json::{Value, json};

pub(crate) fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/messages")
}

/// Every fixture message, by file stem, sorted.
pub(crate) fn fixtures() -> BTreeMap<String, Email> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let email =
                Email::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.insert(
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                email,
            );
        }
    }
    assert!(out.len() >= 12, "fixtures missing: {:?}", out.keys());
    out
}

/// The MIME tree each fixture must produce, written by hand from the structure rules.
fn expected_structure(name: &str) -> &'static str {
    match name {
        "text_only" | "long_lines" | "sender_replyto" => "text/plain",
        "html_only" => "text/html",
        "alternative" => "multipart/alternative(text/plain,text/html)",
        "related" => "multipart/related(text/html,image/png)",
        "related_alternative" => {
            "multipart/alternative(text/plain,multipart/related(text/html,image/png))"
        }
        "mixed" => "multipart/mixed(text/plain,application/pdf,text/plain)",
        "attachment_only" => "multipart/mixed(application/octet-stream)",
        "contract_example" => {
            "multipart/mixed(multipart/alternative(text/plain,multipart/related(text/html,image/png)),application/pdf)"
        }
        "long_unicode" => "multipart/mixed(text/plain,application/pdf)",
        "rfc822" => "multipart/mixed(text/plain,message/rfc822)",
        other => panic!("no expected structure for fixture {other}"),
    }
}

fn structure(message: &mail_parser::Message<'_>, id: u32) -> String {
    let part = message.part(id).unwrap();
    let ct = part.content_type().unwrap();
    let mut s = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default());
    if let PartType::Multipart(children) = &part.body {
        let inner: Vec<String> = children.iter().map(|c| structure(message, *c)).collect();
        s.push_str(&format!("({})", inner.join(",")));
    }
    s
}

fn parser_addresses(list: Option<&mail_parser::Address<'_>>) -> Vec<(Option<String>, String)> {
    list.map(|a| {
        a.iter()
            .map(|x| {
                (
                    x.name().map(str::to_owned),
                    x.address().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

fn our_addresses(list: &[Address]) -> Vec<(Option<String>, String)> {
    list.iter()
        .map(|a| (a.name().map(str::to_owned), a.ascii_email().unwrap()))
        .collect()
}

/// (file name, content type, decoded bytes, Content-ID) of one attachment or inline part.
type PartSummary = (Option<String>, Option<String>, Vec<u8>, Option<String>);

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Checks one parsed message (or nested message) against the Email it came from.
pub(crate) fn check_with_mail_parser(name: &str, email: &Email, parsed: &mail_parser::Message<'_>) {
    assert_eq!(
        parser_addresses(parsed.from()),
        our_addresses(std::slice::from_ref(email.from())),
        "{name}: from"
    );
    assert_eq!(
        parser_addresses(parsed.sender()),
        our_addresses(email.sender().map(std::slice::from_ref).unwrap_or_default()),
        "{name}: sender"
    );
    assert_eq!(
        parser_addresses(parsed.to()),
        our_addresses(email.to()),
        "{name}: to"
    );
    assert_eq!(
        parser_addresses(parsed.cc()),
        our_addresses(email.cc()),
        "{name}: cc"
    );
    assert_eq!(
        parser_addresses(parsed.reply_to()),
        our_addresses(email.reply_to()),
        "{name}: reply-to"
    );
    assert!(parsed.bcc().is_none(), "{name}: Bcc must never be written");
    assert_eq!(parsed.subject(), email.subject(), "{name}: subject");
    if let Some(id) = email.message_id() {
        assert_eq!(
            parsed.message_id().map(|m| format!("<{m}>")),
            Some(id.to_owned()),
            "{name}: message-id"
        );
    }
    if let Some(date) = email.date() {
        assert_eq!(
            parsed.date().map(|d| d.to_timestamp()),
            Some(date.timestamp()),
            "{name}: date"
        );
    }
    let mut texts = Vec::new();
    let mut htmls = Vec::new();
    let mut attachments = Vec::new();
    let mut nested = Vec::new();
    for part in parsed
        .parts
        .iter()
        .skip(usize::from(parsed.parts.len() > 1))
    {
        let disposition = part.content_disposition().map(|d| d.ctype().to_owned());
        match &part.body {
            PartType::Text(t) if disposition.is_none() => texts.push(t.to_string()),
            PartType::Html(h) if disposition.is_none() => htmls.push(h.to_string()),
            PartType::Message(m) => nested.push(m.clone()),
            PartType::Multipart(_) => {}
            _ => attachments.push((
                part.attachment_name().map(str::to_owned),
                part.content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default())),
                part.contents().to_vec(),
                part.content_id().map(str::to_owned),
            )),
        }
    }
    if parsed.parts.len() == 1 {
        // A single-part message: the root is the body.
        texts.clear();
        htmls.clear();
        match &parsed.parts[0].body {
            PartType::Text(t) => texts.push(t.to_string()),
            PartType::Html(h) => htmls.push(h.to_string()),
            _ => {}
        }
    }
    assert_eq!(
        texts.first().map(|t| crlf(t)),
        email.text().map(crlf),
        "{name}: text body"
    );
    assert_eq!(
        htmls.first().map(|t| crlf(t)),
        email.html().map(crlf),
        "{name}: html body"
    );
    let want: Vec<_> = email
        .attachments()
        .iter()
        .filter_map(|a| match a.body() {
            AttachmentBody::Bytes(b) => Some((
                a.filename().map(str::to_owned),
                Some(a.content_type().to_owned()),
                b.to_vec(),
                a.content_id().map(str::to_owned),
            )),
            AttachmentBody::Message(_) => None,
        })
        .collect();
    // Inline parts sit in multipart/related before the attachments: compare as sets.
    let set = |v: Vec<PartSummary>| v.into_iter().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        set(attachments),
        set(want),
        "{name}: attachments (exact bytes)"
    );
    let inner: Vec<&Email> = email
        .attachments()
        .iter()
        .filter_map(|a| match a.body() {
            AttachmentBody::Message(m) => Some(m.as_ref()),
            AttachmentBody::Bytes(_) => None,
        })
        .collect();
    assert_eq!(nested.len(), inner.len(), "{name}: nested messages");
    for (parsed_inner, email_inner) in nested.iter().zip(inner) {
        check_with_mail_parser(&format!("{name}/nested"), email_inner, parsed_inner);
    }
}

/// What Python must read back, in the shape check_with_python.py expects.
pub(crate) fn python_expectation(email: &Email, content_type: &str) -> Value {
    let addrs = |l: &[Address]| -> Value {
        l.iter()
            .map(|a| json!([a.name(), a.ascii_email().unwrap()]))
            .collect::<Vec<_>>()
            .into()
    };
    let attachments: Vec<Value> = email
        .attachments()
        .iter()
        .filter_map(|a| {
            a.bytes().map(|b| {
                // Attachments keep their exact bytes, line ends included.
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                json!([
                    a.filename(),
                    a.content_type(),
                    hex,
                    a.is_inline(),
                    a.content_id().map(|c| format!("<{c}>"))
                ])
            })
        })
        .collect();
    let nested: Vec<Value> = email
        .attachments()
        .iter()
        .filter_map(|a| match a.body() {
            AttachmentBody::Message(m) => Some(python_expectation(
                m,
                if m.attachments().is_empty() {
                    "text/plain"
                } else {
                    "multipart/mixed"
                },
            )),
            AttachmentBody::Bytes(_) => None,
        })
        .collect();
    json!({
        "from": addrs(std::slice::from_ref(email.from())),
        "sender": addrs(email.sender().map(std::slice::from_ref).unwrap_or_default()),
        "to": addrs(email.to()),
        "cc": addrs(email.cc()),
        "reply_to": addrs(email.reply_to()),
        "subject": email.subject(),
        "text": email.text(),
        "html": email.html(),
        "content_type": content_type,
        "headers": email.headers(),
        "attachments": sorted_values(attachments),
        "nested": nested,
    })
}

fn sorted_values(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

fn check_line_rules(name: &str, bytes: &[u8]) {
    for (i, w) in bytes.windows(2).enumerate() {
        if w[1] == b'\n' {
            assert_eq!(w[0], b'\r', "{name}: bare LF at byte {}", i + 1);
        }
    }
    assert_ne!(bytes.first(), Some(&b'\n'));
    let text = String::from_utf8_lossy(bytes);
    for line in text.split("\r\n") {
        assert!(line.len() <= 998, "{name}: line over 998 octets");
    }
    let header_block = text.split("\r\n\r\n").next().unwrap();
    for line in header_block.split("\r\n") {
        assert!(
            line.len() <= 78,
            "{name}: header line over 78 columns: {line:?}"
        );
        assert!(
            line.is_ascii(),
            "{name}: non-ASCII header in ASCII mode: {line:?}"
        );
    }
    assert!(
        bytes.is_ascii(),
        "{name}: default rendering must be 7-bit clean"
    );
}

#[test]
fn every_fixture_renders_parses_back_and_matches_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = Vec::new();
    for (name, email) in fixtures() {
        // JSON round trip is exact.
        let again = Email::from_json(&email.to_json()).unwrap();
        assert_eq!(again, email, "{name}: JSON round trip");
        let via_serde: Email =
            serde_json::from_str(&serde_json::to_string(&email).unwrap()).unwrap();
        assert_eq!(via_serde, email, "{name}: serde round trip");

        let bytes = email
            .render(&RenderOptions::deterministic().raw_html())
            .unwrap();
        check_line_rules(&name, &bytes);
        assert_eq!(
            bytes,
            email
                .render(&RenderOptions::deterministic().raw_html())
                .unwrap(),
            "{name}: deterministic"
        );

        let parsed = MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(
            structure(&parsed, 0),
            expected_structure(&name),
            "{name}: MIME structure"
        );
        check_with_mail_parser(&name, &email, &parsed);

        let text = String::from_utf8(bytes.clone()).unwrap();
        insta::assert_snapshot!(name.clone(), text);

        let eml = dir.path().join(format!("{name}.eml"));
        std::fs::write(&eml, &bytes).unwrap();
        let top = expected_structure(&name)
            .split('(')
            .next()
            .unwrap()
            .to_owned();
        manifest.push(json!({"eml": eml, "expect": python_expectation(&email, &top)}));
    }
    python_check(dir.path(), &manifest);
}

/// Runs check_with_python.py over `manifest` (written into `dir`): every message must read
/// back as expected with zero defects.
pub(crate) fn python_check(dir: &Path, manifest: &[Value]) {
    let manifest_path = dir.join("manifest.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render/check_with_python.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&manifest_path)
        .output()
        .expect("python3 is required for the interop test (Python's email package)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Python's email package disagrees:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        manifest.len(),
        "{report}"
    );
}
