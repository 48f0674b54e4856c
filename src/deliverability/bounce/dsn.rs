//! RFC 3464 delivery status notifications: the `message/delivery-status` part.

use super::{
    Bounce, BounceKind, enhanced_status, fields, kind_of_status, reply_code_status, typed_address,
};

/// One [`Bounce`] per recipient block of the delivery-status part `status` (the first
/// block is about the message and is skipped).
pub(super) fn recipients(status: &str) -> Vec<Bounce> {
    let normalised = status.replace("\r\n", "\n");
    normalised
        .split("\n\n")
        .map(fields)
        .filter(|f| {
            f.iter()
                .any(|(n, _)| n == "final-recipient" || n == "original-recipient")
        })
        .map(|block| recipient(&block))
        .collect()
}

fn recipient(block: &[(String, String)]) -> Bounce {
    let get = |name: &str| {
        block
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let address = get("final-recipient")
        .and_then(typed_address)
        .or_else(|| get("original-recipient").and_then(typed_address));
    let action = get("action").unwrap_or("").to_ascii_lowercase();
    let diagnostic = get("diagnostic-code").map(|d| match d.split_once(';') {
        Some((_, text)) => text.trim().to_owned(),
        None => d.to_owned(),
    });
    let status = get("status")
        .and_then(enhanced_status)
        .or_else(|| diagnostic.as_deref().and_then(enhanced_status))
        .or_else(|| diagnostic.as_deref().and_then(reply_code_status));
    let kind = match (action.as_str(), &status) {
        ("delivered" | "relayed" | "expanded", _) => BounceKind::Ignored,
        ("delayed", _) => BounceKind::Soft,
        (_, Some(status)) => kind_of_status(status),
        // `Action: failed` without a usable status: a permanent failure by definition.
        ("failed", None) => BounceKind::Hard,
        _ => BounceKind::Ignored,
    };
    let status = status.unwrap_or_else(|| match kind {
        BounceKind::Hard => "5.0.0".to_owned(),
        BounceKind::Soft => "4.0.0".to_owned(),
        _ => action.clone(),
    });
    Bounce {
        kind,
        recipient: address,
        status,
        diagnostic,
    }
}
