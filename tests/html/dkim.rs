//! DKIM: every signature verifies with mail-auth's verifier (keys from memory, no DNS) and
//! with Python's dkimpy, across message shapes, key types and canonicalizations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};
use mailroom::dkim::{Canonicalization, DkimAlgorithm, DkimSigner};
use mailroom::{Attachment, Email, RenderOptions};

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dkim")
        .join(name)
}

pub(crate) fn rsa() -> DkimSigner {
    DkimSigner::from_pem_file(fixture("rsa2048.pkcs1.pem"), "example.com", "rsa").unwrap()
}

fn ed25519() -> DkimSigner {
    DkimSigner::from_pem_file(fixture("ed25519.pem"), "example.com", "ed").unwrap()
}

/// The messages of every MIME shape the renderer makes, with Unicode headers.
fn messages() -> Vec<(&'static str, Email)> {
    let base = || {
        Email::builder()
            .from("Zoë Müller <zoe@example.com>")
            .to("Jürgen <jurgen@bücher.example>")
            .cc("Ann <ann@example.org>")
            .reply_to("support@example.com")
            .subject("Ваш заказ готов — 注文 ✓")
            .header("List-Unsubscribe", "<https://example.com/u/1>")
            .header("X-Campaign", "fall")
    };
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    vec![
        (
            "text",
            base()
                .text("Your order is ready.\r\n\r\n\r\n")
                .build()
                .unwrap(),
        ),
        (
            "alternative",
            base()
                .text("ready")
                .html("<p>ready  </p>\n\n")
                .build()
                .unwrap(),
        ),
        (
            "related",
            base()
                .html("<p><img src=\"cid:logo\"></p>")
                .inline("logo", "logo.png", png.clone())
                .build()
                .unwrap(),
        ),
        (
            "mixed",
            base()
                .text("see attached")
                .html("<p>see <img src=\"cid:logo\"></p>")
                .inline("logo", "logo.png", png)
                .attachment(Attachment::new(
                    "rechnung-über.pdf",
                    b"%PDF-1.4 ...".to_vec(),
                ))
                .build()
                .unwrap(),
        ),
    ]
}

#[derive(Default)]
struct Keys(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for Keys {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }
    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }
    fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// mail-auth's verdict on every signature, the public keys preloaded in its resolver cache.
async fn mail_auth_results(message: &[u8], signers: &[&DkimSigner]) -> Vec<bool> {
    let keys = Keys::default();
    for s in signers {
        let record = DomainKey::parse(s.dns_record().as_bytes()).unwrap();
        let txt = Txt::DomainKey(Arc::new(record));
        keys.insert(
            format!("{}.", s.dns_name()).into(),
            txt.clone(),
            std::time::Instant::now(),
        );
        keys.insert(s.dns_name().into(), txt, std::time::Instant::now());
    }
    let authenticator = MessageAuthenticator::new_cloudflare().unwrap();
    let parsed = AuthenticatedMessage::parse(message).unwrap();
    let outputs = authenticator
        .verify_dkim(Parameters::new(&parsed).with_txt_cache(&keys))
        .await;
    outputs
        .iter()
        .map(|o| matches!(o.result(), DkimResult::Pass))
        .collect()
}

/// dkimpy's verdict on every signature (`fixtures/dkim/verify.py`), keys served by dnsfunc.
pub(crate) fn dkimpy_results(message: &[u8], signers: &[&DkimSigner]) -> Vec<bool> {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("message.eml");
    std::fs::write(&eml, message).unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(fixture("verify.py")).arg(&eml);
    for (i, s) in signers.iter().enumerate() {
        let txt = dir.path().join(format!("key{i}.txt"));
        std::fs::write(&txt, s.dns_record()).unwrap();
        cmd.arg(format!("{}={}", s.dns_name(), txt.display()));
    }
    let out = cmd
        .output()
        .expect("python3 must be installed (see .ci/setup.d/40-html.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "dkimpy is missing (pip install dkimpy): {stderr}"
    );
    let results: Vec<bool> = stdout.lines().map(|l| l.ends_with(" pass")).collect();
    assert!(
        !results.is_empty(),
        "dkimpy found no signature: {stdout}{stderr}"
    );
    results
}

pub(crate) async fn assert_verifies(name: &str, message: &[u8], signers: &[&DkimSigner]) {
    let count = message
        .windows(16)
        .filter(|w| w == b"DKIM-Signature: ")
        .count();
    assert_eq!(count, signers.len(), "{name}: one signature per signer");
    assert_eq!(
        mail_auth_results(message, signers).await,
        vec![true; signers.len()],
        "{name}: mail-auth"
    );
    assert_eq!(
        dkimpy_results(message, signers),
        vec![true; signers.len()],
        "{name}: dkimpy\n{}",
        String::from_utf8_lossy(message)
    );
}

#[tokio::test]
async fn rsa_signatures_verify_for_every_message_shape() {
    let signer = Arc::new(rsa());
    for (name, email) in messages() {
        let bytes = email
            .render(&RenderOptions::new().signer(signer.clone()))
            .unwrap();
        assert_verifies(name, &bytes, &[&signer]).await;
    }
}

#[tokio::test]
async fn ed25519_signatures_verify_for_every_message_shape() {
    let signer = Arc::new(ed25519());
    assert_eq!(signer.algorithm(), DkimAlgorithm::Ed25519Sha256);
    for (name, email) in messages() {
        let bytes = email
            .render(&RenderOptions::new().signer(signer.clone()))
            .unwrap();
        assert_verifies(name, &bytes, &[&signer]).await;
    }
}

#[tokio::test]
async fn rsa_and_ed25519_together_both_verify() {
    let (r, e) = (Arc::new(rsa()), Arc::new(ed25519()));
    for (name, email) in messages() {
        let bytes = email
            .render(&RenderOptions::new().signer(r.clone()).signer(e.clone()))
            .unwrap();
        assert_verifies(name, &bytes, &[&e, &r]).await;
    }
}

#[tokio::test]
async fn simple_and_mixed_canonicalizations_verify() {
    for (h, b) in [
        (Canonicalization::Simple, Canonicalization::Simple),
        (Canonicalization::Relaxed, Canonicalization::Simple),
        (Canonicalization::Simple, Canonicalization::Relaxed),
    ] {
        let signer = Arc::new(rsa().canonicalization(h, b));
        for (name, email) in messages() {
            let bytes = email
                .render(&RenderOptions::new().signer(signer.clone()))
                .unwrap();
            assert_verifies(&format!("{name} {h:?}/{b:?}"), &bytes, &[&signer]).await;
        }
    }
}

#[tokio::test]
async fn pkcs8_rsa_keys_sign_like_pkcs1_keys() {
    let pkcs8 = DkimSigner::from_pem(
        &std::fs::read(fixture("rsa2048.pkcs8.pem")).unwrap(),
        "example.com",
        "rsa",
    )
    .unwrap();
    assert_eq!(pkcs8.dns_record(), rsa().dns_record());
    let email = messages().remove(1).1;
    let signer = Arc::new(pkcs8);
    let bytes = email
        .render(&RenderOptions::new().signer(signer.clone()))
        .unwrap();
    assert_verifies("pkcs8", &bytes, &[&signer]).await;
}

#[tokio::test]
async fn tampering_breaks_the_signature_in_both_verifiers() {
    let signer = Arc::new(rsa());
    let email = messages().remove(1).1;
    let bytes = email
        .render(&RenderOptions::new().signer(signer.clone()))
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    for tampered in [
        text.replacen("ready", "READY", 1),
        text.replacen("From: ", "From: Mallory <m@evil.example>\r\nFrom: ", 1),
    ] {
        assert_ne!(tampered, text);
        assert_eq!(
            mail_auth_results(tampered.as_bytes(), &[&signer]).await,
            [false]
        );
        assert_eq!(dkimpy_results(tampered.as_bytes(), &[&signer]), [false]);
    }
}

#[test]
fn signed_headers_are_the_present_ones_with_from_oversigned() {
    let email = Email::builder()
        .from("a@example.com")
        .to("b@example.org")
        .subject("hi")
        .text("x")
        .build()
        .unwrap();
    let bytes = email
        .render(&RenderOptions::deterministic().signer(Arc::new(rsa())))
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let sig: String = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .split("DKIM-Signature:")
        .nth(1)
        .unwrap()
        .split("\r\nFrom:")
        .next()
        .unwrap()
        .replace("\r\n\t", "");
    assert!(sig.contains("c=relaxed/relaxed"), "{sig}");
    let h = sig
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_ascii_lowercase();
    let mut names: Vec<&str> = h.split(':').collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "content-type",
            "date",
            "from",
            "from",
            "message-id",
            "mime-version",
            "subject",
            "to"
        ],
        "{sig}"
    );
}

#[tokio::test]
async fn deterministic_rendering_fixes_t_and_the_whole_signature() {
    let date = chrono::DateTime::parse_from_rfc3339("2025-03-01T10:00:00+01:00").unwrap();
    let email = messages()
        .remove(3)
        .1
        .to_builder()
        .date(date)
        .build()
        .unwrap();
    let signer = Arc::new(rsa());
    let options = RenderOptions::deterministic().signer(signer.clone());
    let one = email.render(&options).unwrap();
    let two = email.render(&options).unwrap();
    assert_eq!(one, two);
    let text = String::from_utf8_lossy(&one);
    assert!(
        text.replace("\r\n\t", " ")
            .contains(&format!("t={};", date.timestamp())),
        "{text}"
    );
    assert_verifies("deterministic", &one, &[&signer]).await;
}

#[test]
fn dns_records_match_the_keys_openssl_derives() {
    let read = |n: &str| {
        std::fs::read_to_string(fixture(n))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(rsa().dns_record(), read("rsa2048.txt"));
    assert_eq!(ed25519().dns_record(), read("ed25519.txt"));
    assert_eq!(rsa().dns_name(), "rsa._domainkey.example.com");
}

#[test]
fn bad_keys_and_names_are_configuration_errors() {
    let err = DkimSigner::from_pem(b"not a key", "example.com", "s").unwrap_err();
    assert_eq!(err.field(), Some("dkim_key"));
    let pem = std::fs::read(fixture("ed25519.pem")).unwrap();
    assert_eq!(
        DkimSigner::from_pem(&pem, "not a domain", "s")
            .unwrap_err()
            .field(),
        Some("dkim_domain")
    );
    assert_eq!(
        DkimSigner::from_pem(&pem, "example.com", "a b")
            .unwrap_err()
            .field(),
        Some("dkim_selector")
    );
    let err = DkimSigner::from_pem_file(fixture("missing.pem"), "example.com", "s").unwrap_err();
    assert!(matches!(err, mailroom::Error::Io { .. }));
    let debug = format!("{:?}", ed25519());
    assert!(
        !debug.contains("PRIVATE") && debug.contains("example.com"),
        "{debug}"
    );
    assert_eq!(
        DkimSigner::from_pem(&pem, "bücher.example", "s")
            .unwrap()
            .domain(),
        "xn--bcher-kva.example"
    );
}

/// The README's example: a processed HTML body (its policy embedded, images as cid: parts)
/// signed with RSA and Ed25519, verified by both verifiers.
#[cfg(feature = "html")]
#[tokio::test]
async fn a_processed_html_message_signed_twice_verifies() {
    use mailroom::html::{self, HtmlOptions};
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/html/legit");
    let email = Email::builder()
        .from("Zoë Müller <zoe@example.com>")
        .to("ann@example.org")
        .subject("Herbst-Neuigkeiten 🍂")
        .html(std::fs::read_to_string(fixtures.join("newsletter.html")).unwrap())
        .build()
        .unwrap();
    let email = html::process(&email, &HtmlOptions::default().base_dir(&fixtures)).unwrap();
    let (r, e) = (Arc::new(rsa()), Arc::new(ed25519()));
    let bytes = email
        .render(&RenderOptions::new().signer(r.clone()).signer(e.clone()))
        .unwrap();
    assert!(
        email
            .html()
            .unwrap()
            .contains("<meta http-equiv=\"Content-Security-Policy\"")
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("multipart/related"), "{text}");
    assert_verifies("processed html", &bytes, &[&e, &r]).await;
}

/// RFC 6532 UTF-8 headers (SMTPUTF8 rendering) sign and verify too.
#[tokio::test]
async fn utf8_headers_verify() {
    let (r, e) = (Arc::new(rsa()), Arc::new(ed25519()));
    let email = Email::builder()
        .from("Zoë Müller <zoë@bücher.example>")
        .to("Jürgen <jürgen@bücher.example>")
        .subject("Ваш заказ готов — 注文 ✓")
        .text("ready")
        .html("<p>ready</p>")
        .build()
        .unwrap();
    let bytes = email
        .render(
            &RenderOptions::new()
                .smtputf8(true)
                .signer(r.clone())
                .signer(e.clone()),
        )
        .unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("Subject: Ваш заказ готов"));
    assert_verifies("smtputf8", &bytes, &[&e, &r]).await;
}

/// The `h=` tag of the first DKIM-Signature, lowercased, its names in order.
pub(crate) fn signed_header_names(text: &str) -> Vec<String> {
    signature_tag(text, "h")
        .to_ascii_lowercase()
        .split(':')
        .map(|s| s.trim().to_owned())
        .collect()
}

/// The value of tag `name` in the first DKIM-Signature, unfolded.
fn signature_tag(text: &str, name: &str) -> String {
    let sig = text.split("DKIM-Signature:").nth(1).unwrap();
    let mut lines = sig.split("\r\n");
    let mut sig = lines.next().unwrap().to_owned();
    for line in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        sig.push_str(line);
    }
    let mut folded = sig.split(';').map(str::trim);
    folded
        .find_map(|tag| tag.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

/// The `t=` tag of the first DKIM-Signature.
fn signature_time(text: &str) -> i64 {
    signature_tag(text, "t").parse().unwrap()
}

#[tokio::test]
async fn a_future_date_does_not_put_t_in_the_future() {
    let date = (chrono::Utc::now() + chrono::Duration::days(2)).fixed_offset();
    let email = messages()
        .remove(0)
        .1
        .to_builder()
        .date(date)
        .build()
        .unwrap();
    let (r, e) = (Arc::new(rsa()), Arc::new(ed25519()));
    let before = chrono::Utc::now().timestamp();
    let bytes = email
        .render(&RenderOptions::new().signer(r.clone()).signer(e.clone()))
        .unwrap();
    let after = chrono::Utc::now().timestamp();
    let t = signature_time(&String::from_utf8_lossy(&bytes));
    assert!(
        (before..=after).contains(&t),
        "t={t} is not the signing time"
    );
    assert_verifies("dated in two days", &bytes, &[&e, &r]).await;
}

#[tokio::test]
async fn bodies_with_bare_cr_and_lf_verify() {
    let (r, e) = (Arc::new(rsa()), Arc::new(ed25519()));
    for body in ["hello\r.\r\nworld", "one\ntwo\rthree\r\n\r", "\r\r\n\n"] {
        let email = Email::builder()
            .from("ann@example.com")
            .to("bob@example.org")
            .text(body)
            .html(format!("<p>{body}</p>"))
            .attach("notes.txt", body.as_bytes().to_vec())
            .build()
            .unwrap();
        for canonicalization in [Canonicalization::Relaxed, Canonicalization::Simple] {
            let simple = Arc::new(rsa().canonicalization(canonicalization, canonicalization));
            let bytes = email
                .render(&RenderOptions::new().signer(simple.clone()))
                .unwrap();
            assert_verifies(
                &format!("{body:?} {canonicalization:?}"),
                &bytes,
                &[&simple],
            )
            .await;
        }
        let bytes = email
            .render(&RenderOptions::new().signer(r.clone()).signer(e.clone()))
            .unwrap();
        assert_verifies(&format!("{body:?}"), &bytes, &[&e, &r]).await;
    }
}

#[tokio::test]
async fn sender_and_one_click_unsubscribe_are_signed() {
    let email = Email::builder()
        .from("ann@example.com")
        .sender("bounces@example.com")
        .to("bob@example.org")
        .subject("news")
        .header("List-Unsubscribe", "<https://example.com/u/1>")
        .header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        .text("x")
        .build()
        .unwrap();
    let signer = Arc::new(rsa());
    let bytes = email
        .render(&RenderOptions::new().signer(signer.clone()))
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let names = signed_header_names(&text);
    for name in ["sender", "list-unsubscribe", "list-unsubscribe-post"] {
        assert!(names.iter().any(|n| n == name), "{name} not in h={names:?}");
    }
    assert_verifies("sender", text.as_bytes(), &[&signer]).await;
    for tampered in [
        text.replacen(
            "Sender: <bounces@example.com>",
            "Sender: <mallory@evil.example>",
            1,
        ),
        text.replacen(
            "List-Unsubscribe: <https://example.com/u/1>",
            "List-Unsubscribe: <https://evil.example/u/1>",
            1,
        ),
    ] {
        assert_ne!(
            tampered, text,
            "the header to tamper with is missing:\n{text}"
        );
        assert_eq!(
            mail_auth_results(tampered.as_bytes(), &[&signer]).await,
            [false]
        );
        assert_eq!(dkimpy_results(tampered.as_bytes(), &[&signer]), [false]);
    }
}

#[test]
fn domains_and_selectors_that_are_not_names_are_configuration_errors() {
    let pem = std::fs::read(fixture("ed25519.pem")).unwrap();
    for domain in [
        "example.com; l=0",
        "example.com;l=0",
        "example.com l=0",
        "example..com",
        "-bad.example",
        "exa_mple.com",
        "",
        "com",
    ] {
        let err = DkimSigner::from_pem(&pem, domain, "s").unwrap_err();
        assert!(
            matches!(err, mailroom::Error::Configuration { ref field, .. } if field == "dkim_domain"),
            "{domain:?}: {err}"
        );
    }
    for selector in ["s; l=0", "s;t=1", "", "a..b", "s=1"] {
        let err = DkimSigner::from_pem(&pem, "example.com", selector).unwrap_err();
        assert!(
            matches!(err, mailroom::Error::Configuration { ref field, .. } if field == "dkim_selector"),
            "{selector:?}: {err}"
        );
    }
}
