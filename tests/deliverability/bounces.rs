//! The corpus in `fixtures/bounces/`: every report classified as its `.expected` says.

use std::path::Path;

use mailroom::deliverability::{BounceKind, parse_report, split_mbox};

fn corpus() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounces");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml" || e == "mbox"))
        .collect();
    files.sort();
    files
}

/// What `mailroom bounces ingest` prints for one file.
pub(crate) fn classify_file(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    split_mbox(&bytes)
        .iter()
        .flat_map(|message| parse_report(message).unwrap())
        .map(|b| b.to_string())
        .collect()
}

#[test]
fn every_report_in_the_corpus_is_classified_as_expected() {
    let files = corpus();
    assert!(files.len() >= 12, "the corpus is missing files: {files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected file", path.display()));
        let expected: Vec<&str> = expected.lines().collect();
        let got = classify_file(path);
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  got      {got:?}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_corpus_covers_every_kind_and_auto_replies_are_ignored() {
    let mut kinds = std::collections::HashSet::new();
    for path in corpus() {
        let bytes = std::fs::read(&path).unwrap();
        for message in split_mbox(&bytes) {
            for bounce in parse_report(&message).unwrap() {
                kinds.insert(bounce.kind);
                let name = path.file_name().unwrap().to_string_lossy();
                if name.starts_with("auto_reply") {
                    assert_eq!(bounce.kind, BounceKind::Ignored, "{name}");
                }
            }
        }
    }
    for kind in [
        BounceKind::Hard,
        BounceKind::Soft,
        BounceKind::Complaint,
        BounceKind::Ignored,
    ] {
        assert!(kinds.contains(&kind), "no {kind} report in the corpus");
    }
}

#[test]
fn bytes_that_are_not_a_message_are_invalid_input() {
    let err = parse_report(b"").unwrap_err();
    assert_eq!(err.kind(), mailroom::ErrorKind::InvalidInput);
    assert_eq!(err.field(), Some("message"));
}
