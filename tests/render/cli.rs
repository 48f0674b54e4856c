//! `mailroom render` as a user runs it: exit codes and one-sentence errors naming the field.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn mailroom(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn renders_a_fixture_file_deterministically() {
    let file = super::fixtures::fixture_dir().join("contract_example.json");
    let a = mailroom(&["render", "--deterministic", file.to_str().unwrap()], "");
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let b = mailroom(
        &["render", "--deterministic"],
        &std::fs::read_to_string(&file).unwrap(),
    );
    assert_eq!(
        a.stdout, b.stdout,
        "file and standard input must render the same"
    );
    let text = String::from_utf8(a.stdout).unwrap();
    assert!(text.starts_with("From: "));
    assert!(text.contains("Message-ID: <order-12345@example.com>"));
}

#[test]
fn smtputf8_flag_writes_utf8_headers() {
    let out = mailroom(
        &["render", "--smtputf8"],
        r#"{"from": "zoe@example.com", "to": ["jürgen@bücher.example"], "subject": "Grüße"}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Subject: Grüße\r\n"));
    assert!(text.contains("jürgen@bücher.example"));
}

#[test]
fn bad_input_exits_65_with_one_sentence_naming_the_field() {
    let cases = [
        ("{not json", "`json`"),
        (r#"{"from": "a@example.com", "subjekt": "x"}"#, "`subjekt`"),
        (r#"{"from": "a@example.com", "to": ["nobody"]}"#, "`to[0]`"),
        (r#"{"from": ""}"#, "`from`"),
        (r#"{"to": ["b@example.com"]}"#, "`from`"),
        (
            r#"{"from": "a@example.com", "subject": "hi\r\nBcc: x@evil.example"}"#,
            "`subject`",
        ),
        (
            r#"{"from": "a@example.com", "to": ["jürgen@example.com"]}"#,
            "SMTPUTF8",
        ),
    ];
    for (input, needle) in cases {
        let out = mailroom(&["render"], input);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(65), "{input}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{input}: nothing may be written on error"
        );
        assert!(err.contains(needle), "{input}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{input}: one sentence: {err}"
        );
    }
}

#[test]
fn usage_errors_exit_64_and_missing_files_74() {
    assert_eq!(
        mailroom(&["render", "--no-such-flag"], "").status.code(),
        Some(64)
    );
    let out = mailroom(&["render", "/nonexistent/message.json"], "");
    assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
}

#[test]
fn csp_prints_the_policy_of_the_body_as_sent() {
    let out = mailroom(
        &["csp"],
        r#"{"from": "a@example.com", "html": "<style>p { color: red }</style><p style=\"margin: 0\">x</p><img src=\"data:image/png;base64,iVBORw0KGgo=\">"}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let policy = String::from_utf8(out.stdout).unwrap();
    let policy = policy.trim();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(
        policy.contains("img-src cid:"),
        "data: images are sent as cid: parts: {policy}"
    );
    assert!(
        policy.contains("style-src-attr 'unsafe-hashes' 'sha256-"),
        "{policy}"
    );
    assert!(!policy.contains("script"), "{policy}");
}

#[test]
fn render_signs_with_every_dkim_key_and_dkimpy_verifies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = super::fixtures::fixture_dir().join("contract_example.json");
    let dkim = root.join("fixtures/dkim");
    let rsa = dkim.join("rsa2048.pkcs1.pem");
    let ed = dkim.join("ed25519.pem");
    let out = mailroom(
        &[
            "render",
            "--dkim-key",
            rsa.to_str().unwrap(),
            "--dkim-selector",
            "rsa",
            "--dkim-domain",
            "example.com",
            "--dkim-key",
            ed.to_str().unwrap(),
            "--dkim-selector",
            "ed",
            "--dkim-domain",
            "example.com",
            fixture.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        out.stdout
            .windows(16)
            .filter(|w| w == b"DKIM-Signature: ")
            .count(),
        2
    );
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("signed.eml");
    std::fs::write(&eml, &out.stdout).unwrap();
    let verify = Command::new("python3")
        .arg(dkim.join("verify.py"))
        .arg(&eml)
        .arg(format!(
            "rsa._domainkey.example.com={}",
            dkim.join("rsa2048.txt").display()
        ))
        .arg(format!(
            "ed._domainkey.example.com={}",
            dkim.join("ed25519.txt").display()
        ))
        .output()
        .expect("python3 with dkimpy is required");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "dkimpy: {report}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert_eq!(report.matches(" pass").count(), 2, "{report}");

    let mismatched = mailroom(
        &[
            "render",
            "--dkim-key",
            rsa.to_str().unwrap(),
            fixture.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(
        mismatched.status.code(),
        Some(64),
        "{}",
        stderr(&mismatched)
    );
    assert!(
        stderr(&mismatched).contains("dkim"),
        "{}",
        stderr(&mismatched)
    );
}

#[test]
fn a_dkim_domain_or_selector_that_is_not_a_name_is_a_usage_error() {
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dkim/ed25519.pem");
    let message = r#"{"from": "a@example.com", "text": "x"}"#;
    for (domain, selector, field) in [
        ("example.com; l=0", "s", "dkim_domain"),
        ("example.com", "s; l=0", "dkim_selector"),
    ] {
        let out = mailroom(
            &[
                "render",
                "--dkim-key",
                key.to_str().unwrap(),
                "--dkim-selector",
                selector,
                "--dkim-domain",
                domain,
            ],
            message,
        );
        assert_eq!(out.status.code(), Some(64), "{domain}: {}", stderr(&out));
        assert!(stderr(&out).contains(field), "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "nothing is rendered");
    }
}
