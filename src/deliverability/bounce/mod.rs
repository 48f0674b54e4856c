//! Bounces and complaints: what a report that came back says about a recipient.
//!
//! [`parse_report`] says how each kind of report is classified; [`split_mbox`] cuts an
//! mbox file into its messages.

mod arf;
mod dsn;
mod mbox;
mod text;

use std::fmt;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::error::{Error, Result};

pub use mbox::split_mbox;

/// What a report means for its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BounceKind {
    /// A permanent failure (`5.x.x`): suppress the address.
    Hard,
    /// A transient failure (`4.x.x`): count it; enough in a window suppress.
    Soft,
    /// A feedback-loop complaint (the recipient marked the mail as spam): suppress.
    Complaint,
    /// Not a failure (an auto-reply, a delivery or relay notice, an unrelated message).
    Ignored,
}

impl BounceKind {
    /// `hard`, `soft`, `complaint` or `ignored`, as `mailroom bounces ingest` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
            BounceKind::Complaint => "complaint",
            BounceKind::Ignored => "ignored",
        }
    }
}

impl fmt::Display for BounceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient's outcome, read from a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// What it means.
    pub kind: BounceKind,
    /// The recipient it is about (normalised as the suppression list stores it), when the
    /// report names one.
    pub recipient: Option<String>,
    /// The status: an RFC 3463 code (`5.1.1`) for bounces, the feedback type (`abuse`)
    /// for complaints, what was recognised (`auto-reply`) for ignored reports.
    pub status: String,
    /// The remote server's words (`Diagnostic-Code`), when given.
    pub diagnostic: Option<String>,
}

impl Bounce {
    fn ignored(recipient: Option<String>, status: &str) -> Bounce {
        Bounce {
            kind: BounceKind::Ignored,
            recipient,
            status: status.to_owned(),
            diagnostic: None,
        }
    }
}

/// `KIND ADDRESS STATUS`, `-` for a missing address: the line `mailroom bounces ingest`
/// prints.
impl fmt::Display for Bounce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.kind,
            self.recipient.as_deref().unwrap_or("-"),
            self.status
        )
    }
}

/// Classifies one report (a DSN, an ARF complaint, a non-standard bounce, an auto-reply),
/// read with mail-parser:
///
///
/// - an RFC 3464 delivery status notification (`multipart/report;
///   report-type=delivery-status`, also `message/global-delivery-status`): one [`Bounce`]
///   per recipient block, hard for a permanent failure (`5.x.x`), soft for a transient one
///   (`4.x.x`, or `Action: delayed`), ignored for `delivered`, `relayed` and `expanded`;
/// - an ARF feedback report (RFC 5965, `report-type=feedback-report`): a complaint about
///   `Original-Rcpt-To`, else the recipient of the enclosed original;
/// - the non-standard bounces large receivers and older MTAs send (plain text from
///   `MAILER-DAEMON`, `X-Failed-Recipients`, qmail's "failure notice"): the status code and
///   the recipient read from the text;
/// - auto-replies (RFC 3834 `Auto-Submitted: auto-replied`, `X-Autoreply`, vacation
///   subjects) and everything else: ignored, never suppressed.
///
/// Bytes that are not a mail message are an [`Error::InvalidMessage`] naming `message`.
pub fn parse_report(bytes: &[u8]) -> Result<Vec<Bounce>> {
    let message = MessageParser::default()
        .parse(bytes)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| Error::invalid("message", "is not a mail message (no header found)"))?;
    if let Some(report) = part_of_type(&message, &["message/feedback-report"]) {
        return Ok(vec![arf::complaint(&message, report)]);
    }
    if let Some(status) = part_of_type(
        &message,
        &["message/delivery-status", "message/global-delivery-status"],
    ) {
        let bounces = dsn::recipients(status);
        if !bounces.is_empty() {
            return Ok(bounces);
        }
    }
    Ok(vec![text::classify(&message)])
}

/// The text of the first part of `message` (not inside an enclosed message) whose type is
/// one of `types`.
fn part_of_type<'a>(message: &'a Message<'a>, types: &[&str]) -> Option<&'a str> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let name = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""));
        if !types.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
            return None;
        }
        match &part.body {
            PartType::Message(inner) => std::str::from_utf8(inner.raw_message()).ok(),
            _ => part.text_contents(),
        }
    })
}

/// The header fields of a report block (`Name: value`, folded lines joined), in order,
/// names lowercased. Blocks are separated by empty lines.
fn fields(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

/// A value's address after an optional `rfc822;` type (`Final-Recipient: rfc822; a@b`),
/// normalised; `None` when it is not an address.
fn typed_address(value: &str) -> Option<String> {
    let address = match value.split_once(';') {
        Some((_, address)) => address,
        None => value,
    };
    let address = address.trim();
    super::normalize_address(address).ok().or_else(|| {
        super::normalize_address(address.trim_start_matches('<').trim_end_matches('>')).ok()
    })
}

/// The first RFC 3463 enhanced status code (`5.1.1`) in `text`, its class 2, 4 or 5.
fn enhanced_status(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !matches!(b, b'2' | b'4' | b'5') || bytes.get(i + 1) != Some(&b'.') {
            continue;
        }
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.') {
            continue;
        }
        let rest = &text[i + 2..];
        let subject: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if subject.is_empty() || subject.len() > 3 {
            continue;
        }
        let after = &rest[subject.len()..];
        let Some(after) = after.strip_prefix('.') else {
            continue;
        };
        let detail: String = after.chars().take_while(char::is_ascii_digit).collect();
        let next = after[detail.len()..].chars().next();
        if detail.is_empty()
            || detail.len() > 3
            || next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            continue;
        }
        return Some(format!("{}.{subject}.{detail}", b as char));
    }
    None
}

/// The first SMTP reply code (`550`, `451`) standing alone in `text`, as the enhanced
/// status of its class (`5.0.0`, `4.0.0`).
fn reply_code_status(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(2)).find_map(|i| {
        let code = &bytes[i..i + 3];
        let alone_before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'.';
        let alone_after = bytes
            .get(i + 3)
            .is_none_or(|c| matches!(c, b' ' | b'-' | b':' | b'\r' | b'\n' | b'\t'));
        let valid = matches!(code[0], b'4' | b'5')
            && matches!(code[1], b'0'..=b'5')
            && code[2].is_ascii_digit();
        (valid && alone_before && alone_after).then(|| format!("{}.0.0", code[0] as char))
    })
}

/// Hard for `5.x.x`, soft for `4.x.x`, ignored for `2.x.x`.
fn kind_of_status(status: &str) -> BounceKind {
    match status.as_bytes().first() {
        Some(b'5') => BounceKind::Hard,
        Some(b'4') => BounceKind::Soft,
        _ => BounceKind::Ignored,
    }
}
