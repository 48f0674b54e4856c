//! Reports without a machine-readable part: auto-replies, and the plain-text bounces of
//! large receivers and older MTAs, whose status code and recipient are in the text.

use mail_parser::{HeaderValue, Message};

use super::{Bounce, enhanced_status, kind_of_status, reply_code_status};
use crate::deliverability::normalize_address;

/// Subjects of bounces that carry no delivery-status part.
const BOUNCE_SUBJECTS: [&str; 10] = [
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "failure notice",
    "returned mail",
    "delivery failure",
    "mail delivery failure",
    "delivery has failed",
    "could not be delivered",
];

/// Senders of bounces: the local parts MTAs use.
const BOUNCE_SENDERS: [&str; 3] = ["mailer-daemon", "postmaster", "mail-daemon"];

/// Subjects of auto-replies.
const AUTO_REPLY_SUBJECTS: [&str; 6] = [
    "out of office",
    "out of the office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "vacation",
];

/// An auto-reply is ignored; a bounce is read from its text; anything else is ignored.
pub(super) fn classify(message: &Message<'_>) -> Bounce {
    let from = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .map(str::to_owned);
    let subject = message.subject().unwrap_or("").to_ascii_lowercase();
    let from_daemon = from.as_deref().is_some_and(|f| {
        let local = f.split('@').next().unwrap_or("").to_ascii_lowercase();
        BOUNCE_SENDERS.contains(&local.as_str())
    });
    let failed_header = header_text(message, "X-Failed-Recipients");
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    // Bounces carry `Auto-Submitted: auto-replied` too (RFC 3834 §5), so the signs of a
    // bounce are looked at first; an auto-reply comes from a person's address.
    if !(from_daemon || bounce_subject || failed_header.is_some()) {
        let status = if is_auto_reply(message, &subject) {
            "auto-reply"
        } else {
            "not-a-report"
        };
        return Bounce::ignored(from.and_then(|f| normalize_address(&f).ok()), status);
    }
    let body: String = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .collect::<Vec<_>>()
        .join("\n");
    // The text up to the enclosed original, where the original's own addresses start.
    let body = cut_original(&body);
    let recipient = failed_header
        .as_deref()
        .and_then(|h| normalize_address(h.split(',').next().unwrap_or(h)).ok())
        .or_else(|| first_recipient(body, from.as_deref()));
    let lower = body.to_ascii_lowercase();
    let status = enhanced_status(body)
        .or_else(|| reply_code_status(body))
        .or_else(|| {
            if lower.contains("permanent") || lower.contains("does not exist") {
                Some("5.0.0".to_owned())
            } else if lower.contains("temporar")
                || lower.contains("will continue trying")
                || lower.contains("delayed")
            {
                Some("4.0.0".to_owned())
            } else {
                None
            }
        });
    match status {
        Some(status) => Bounce {
            kind: kind_of_status(&status),
            recipient,
            diagnostic: diagnostic_line(body, &status),
            status,
        },
        None => Bounce::ignored(recipient, "unrecognised"),
    }
}

fn header_text(message: &Message<'_>, name: &str) -> Option<String> {
    match message.header(name)? {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(list) => list.first().map(ToString::to_string),
        _ => message.header_raw(name).map(|s| s.trim().to_owned()),
    }
}

fn is_auto_reply(message: &Message<'_>, subject: &str) -> bool {
    let auto_submitted = header_text(message, "Auto-Submitted")
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("auto-replied"));
    let flagged = ["X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"]
        .iter()
        .any(|h| message.header(*h).is_some() && !h.ends_with("Suppress"))
        || header_text(message, "Precedence")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("auto_reply"));
    let subject_says =
        AUTO_REPLY_SUBJECTS.iter().any(|s| subject.contains(s)) || subject.starts_with("auto:");
    auto_submitted || flagged || subject_says
}

/// `body` up to the enclosed copy of the original message, when the bounce quotes it.
fn cut_original(body: &str) -> &str {
    const MARKERS: [&str; 6] = [
        "------ This is a copy of the message",
        "--- Below this line is a copy of the message",
        "----- Original message -----",
        "------ Original message ------",
        "Original message headers:",
        "--- Original Message ---",
    ];
    MARKERS
        .iter()
        .filter_map(|m| body.find(m))
        .min()
        .map_or(body, |end| &body[..end])
}

/// The first address in `text` that is not the bounce's own sender, nor a postmaster.
fn first_recipient(text: &str, from: Option<&str>) -> Option<String> {
    let trim = |c: char| !(c.is_alphanumeric() || "@.-_+=".contains(c));
    text.split(|c: char| c.is_whitespace() || "<>()[]\"',;".contains(c))
        .map(|w| w.trim_matches(trim))
        .filter(|w| {
            w.contains('@')
                && !w.starts_with('@')
                && !w.ends_with('@')
                && w.rsplit('@').next().is_some_and(|d| d.contains('.'))
        })
        .filter(|w| from.is_none_or(|f| !f.eq_ignore_ascii_case(w)))
        .filter(|w| {
            let local = w.split('@').next().unwrap_or("").to_ascii_lowercase();
            !BOUNCE_SENDERS.contains(&local.as_str())
        })
        .find_map(|w| normalize_address(w).ok())
}

/// The line of `body` that holds `status` (or its reply code), as the diagnostic.
fn diagnostic_line(body: &str, status: &str) -> Option<String> {
    let code = &status[..1];
    body.lines()
        .map(str::trim)
        .find(|l| l.contains(status) || l.starts_with(code) && l.len() > 3)
        .map(str::to_owned)
}
