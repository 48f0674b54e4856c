//! `mailroom check` over `fixtures/check/`: each fixture's findings as its `.expected`
//! says, the exit status from their severities, 65 on invalid input; and the rules the
//! fixtures cannot hold (HTML over 102 KB).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailroom::deliverability::{CheckOptions, HTML_CLIP_BYTES, check_message};
use mailroom::{Email, RenderOptions};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/check")
}

fn key() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/dkim/rsa2048.pkcs1.pem")
        .display()
        .to_string()
}

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_fixture_has_the_findings_it_expects_and_the_exit_status_they_give() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "eml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let mut codes_seen = std::collections::HashSet::new();
    for file in &files {
        let path = file.to_str().unwrap();
        let key = key();
        let args: Vec<&str> = if file.extension().unwrap() == "json" {
            vec![
                "--json",
                "--dkim-key",
                &key,
                "--dkim-selector",
                "rsa",
                "--dkim-domain",
                "example.com",
                path,
            ]
        } else {
            vec!["--json", path]
        };
        let out = check(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{path}: not JSON ({e}): {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let findings = doc["messages"][0]["findings"].as_array().unwrap();
        let codes: Vec<&str> = findings
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        let expected = std::fs::read_to_string(file.with_extension("expected")).unwrap();
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(codes, expected, "{path}: {stdout}");
        let has_error = findings.iter().any(|f| f["severity"] == "error");
        assert_eq!(out.status.code(), Some(i32::from(has_error)), "{path}");
        assert_eq!(doc["errors"], u64::from(has_error), "{path}");
        codes_seen.extend(codes.iter().map(|c| (*c).to_owned()));
    }
    for rule in [
        "dkim-missing",
        "dkim-unaligned",
        "unsubscribe-missing",
        "one-click-missing",
        "unsubscribe-unsigned",
        "unsubscribe-not-https",
        "message-id-missing",
        "date-missing",
        "header-line-too-long",
        "text-missing",
        "image-alt-missing",
        "http-link",
    ] {
        assert!(codes_seen.contains(rule), "no fixture finds {rule}");
    }
}

#[test]
fn text_output_names_the_file_and_each_finding() {
    let good = dir().join("good_transactional.json");
    let bad = dir().join("everything_wrong.eml");
    let key = key();
    let out = check(&[
        "--dkim-key",
        &key,
        "--dkim-selector",
        "rsa",
        "--dkim-domain",
        "example.com",
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: ok\n", good.display())
    );
    let out = check(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}: error dkim-missing: ", bad.display())),
        "{stdout}"
    );
    assert!(stdout.contains(": warning http-link: "), "{stdout}");
}

#[test]
fn invalid_input_exits_65_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"from": "a@example.com", "to": ["b@example.org"], "list_unsubscribe": {"url": "http://example.com/u", "one_click": true}}"#,
    )
    .unwrap();
    let out = check(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("list_unsubscribe.one_click"));
    let empty = dir.path().join("empty.eml");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(check(&[empty.to_str().unwrap()]).status.code(), Some(65));
}

#[test]
fn html_over_gmails_clipping_limit_is_a_warning() {
    let paragraph = "<p>Our news, at some length, to fill the message.</p>\n";
    let html = paragraph.repeat(HTML_CLIP_BYTES / paragraph.len() + 10);
    let email = Email::builder()
        .from("news@example.com")
        .to("ann@example.org")
        .text("the news")
        .html(html)
        .build()
        .unwrap();
    let report = check_message(
        &email,
        &RenderOptions::new().raw_html(),
        &CheckOptions::default(),
    )
    .unwrap();
    assert!(
        report.findings.iter().any(|f| f.code == "html-too-large"),
        "{report:?}"
    );
    let small = Email::builder()
        .from("news@example.com")
        .to("ann@example.org")
        .text("the news")
        .html(paragraph)
        .build()
        .unwrap();
    let report = check_message(&small, &RenderOptions::new(), &CheckOptions::default()).unwrap();
    assert!(!report.findings.iter().any(|f| f.code == "html-too-large"));
}

#[test]
fn bulk_can_be_forced_either_way() {
    let file = dir().join("good_transactional.json");
    let key = key();
    let signing = [
        "--dkim-key",
        &key,
        "--dkim-selector",
        "rsa",
        "--dkim-domain",
        "example.com",
    ];
    let mut args = vec!["--json", "--bulk"];
    args.extend(signing);
    args.push(file.to_str().unwrap());
    let out = check(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unsubscribe-missing"));
    let bulk = dir().join("http_unsubscribe.json");
    let mut args = vec!["--not-bulk"];
    args.extend(signing);
    args.push(bulk.to_str().unwrap());
    let out = check(&args);
    // Still an error: an http unsubscribe URL is flagged in all mail.
    assert!(String::from_utf8_lossy(&out.stdout).contains("unsubscribe-not-https"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("one-click-missing"));
}
