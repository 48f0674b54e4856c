//! ARF feedback reports (RFC 5965): complaints from a mailbox provider's feedback loop.

use mail_parser::{Message, MimeHeaders, PartType};

use super::{Bounce, BounceKind, fields, typed_address};

/// The complaint in `message`, whose `message/feedback-report` part is `report`: about
/// `Original-Rcpt-To` (or `Removal-Recipient`), else the `To` of the enclosed original.
/// A `not-spam` report is ignored.
pub(super) fn complaint(message: &Message<'_>, report: &str) -> Bounce {
    let report = fields(&report.replace("\r\n", "\n"));
    let get = |name: &str| {
        report
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let feedback_type = get("feedback-type").unwrap_or("abuse").to_ascii_lowercase();
    let recipient = get("original-rcpt-to")
        .or_else(|| get("removal-recipient"))
        .and_then(typed_address)
        .or_else(|| original_recipient(message));
    Bounce {
        kind: if feedback_type == "not-spam" {
            BounceKind::Ignored
        } else {
            BounceKind::Complaint
        },
        recipient,
        status: feedback_type,
        diagnostic: None,
    }
}

/// The first `To` address of the enclosed original (`message/rfc822` or
/// `text/rfc822-headers`).
fn original_recipient(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(inner) => inner
            .to()
            .and_then(|to| to.first())
            .and_then(|a| a.address())
            .and_then(|a| crate::deliverability::normalize_address(a).ok()),
        _ if part
            .content_type()
            .is_some_and(|ct| ct.subtype() == Some("rfc822-headers")) =>
        {
            let headers = fields(&part.text_contents()?.replace("\r\n", "\n"));
            headers
                .iter()
                .find(|(n, _)| n == "to")
                .and_then(|(_, v)| typed_address(v.split(',').next().unwrap_or(v)))
        }
        _ => None,
    })
}
