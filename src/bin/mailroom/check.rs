//! `mailroom check`: messages graded against the bulk-sender requirements.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mailroom::deliverability::{CheckOptions, Report, check_bytes};
use mailroom::{Email, Error, RenderOptions, Signer};

use crate::input::TemplatesArg;

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Print one JSON document (`{"messages": [{"file", "bulk", "findings"}…], "errors": N}`).
    #[arg(long)]
    json: bool,
    /// Take every message as bulk mail (the unsubscribe rules apply), whatever its headers say.
    #[arg(long, conflicts_with = "not_bulk")]
    bulk: bool,
    /// Take no message as bulk mail.
    #[arg(long)]
    not_bulk: bool,
    #[command(flatten)]
    signing: crate::render::SigningArgs,
    #[command(flatten)]
    templates: TemplatesArg,
    /// Message JSON (rendered and signed as `send` would) or RFC 5322 files (`.eml`,
    /// signed when --dkim-key is given); standard input when none.
    files: Vec<PathBuf>,
}

pub(crate) fn run(args: CheckArgs) -> ExitCode {
    let check = match (args.bulk, args.not_bulk) {
        (true, _) => CheckOptions::bulk(true),
        (_, true) => CheckOptions::bulk(false),
        _ => CheckOptions::default(),
    };
    let templates = match args.templates.load() {
        Ok(t) => t,
        Err(e) => return crate::fail(&e),
    };
    let signers = match args.signing.signers() {
        Ok(s) => s,
        Err(e) => return crate::fail(&e),
    };
    let options = signers.iter().fold(RenderOptions::new(), |o, s| {
        o.signer(s.clone() as std::sync::Arc<dyn Signer>)
    });
    let inputs = match read_inputs(&args.files) {
        Ok(inputs) => inputs,
        Err(e) => return crate::fail(&e),
    };
    let mut reports: Vec<(String, Report)> = Vec::with_capacity(inputs.len());
    for (source, bytes) in inputs {
        let report = grade(&bytes, templates.as_ref(), &options, &signers, &check);
        match report {
            Ok(report) => reports.push((source, report)),
            Err(e) => return crate::fail_in(&source, &e),
        }
    }
    let errors = reports.iter().filter(|(_, r)| r.has_errors()).count();
    if args.json {
        let messages: Vec<serde_json::Value> = reports
            .iter()
            .map(|(file, report)| {
                serde_json::json!({"file": file, "bulk": report.bulk, "findings": report.findings})
            })
            .collect();
        let doc = serde_json::json!({"messages": messages, "errors": errors});
        crate::print_line(&doc.to_string());
    } else {
        let mut out = String::new();
        for (file, report) in &reports {
            if report.findings.is_empty() {
                out.push_str(&format!("{file}: ok\n"));
            }
            for f in &report.findings {
                let severity = match f.severity {
                    mailroom::deliverability::Severity::Error => "error",
                    mailroom::deliverability::Severity::Warning => "warning",
                };
                out.push_str(&format!("{file}: {severity} {}: {}\n", f.code, f.message));
            }
        }
        crate::print_text(&out);
    }
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Each file's bytes (standard input when there are none).
fn read_inputs(files: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>, Error> {
    if files.is_empty() {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| Error::io("standard input", e))?;
        return Ok(vec![("standard input".to_owned(), bytes)]);
    }
    files
        .iter()
        .map(|p| {
            let name = p.display().to_string();
            std::fs::read(p)
                .map(|b| (name.clone(), b))
                .map_err(|e| Error::io(name, e))
        })
        .collect()
}

/// Message JSON (first non-blank byte `{`) is rendered with `options`; RFC 5322 bytes are
/// signed by `signers` as they are, then checked.
fn grade(
    bytes: &[u8],
    templates: Option<&mailroom::templates::Templates>,
    options: &RenderOptions,
    signers: &[std::sync::Arc<mailroom::dkim::DkimSigner>],
    check: &CheckOptions,
) -> Result<Report, Error> {
    let is_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_json {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::InvalidMessage {
            field: "json".into(),
            reason: "is not UTF-8 text; message JSON must be UTF-8".into(),
        })?;
        let email = match templates {
            Some(t) => t.email_from_json(text)?,
            None => Email::from_json(text)?,
        };
        return check_bytes(&email.render(options)?, check);
    }
    let mut signed = bytes.to_vec();
    let now = chrono::Utc::now().timestamp();
    for signer in signers {
        let mut header = signer.sign(&signed, now)?;
        header.extend_from_slice(&signed);
        signed = header;
    }
    check_bytes(&signed, check)
}
