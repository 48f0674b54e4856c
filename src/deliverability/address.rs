//! The one form a suppressed (or token-bound) address is stored and compared in.

use crate::error::{Error, Result};
use crate::message::Address;

/// `address` as the suppression list stores it: a bare `local@domain` (a display name or
/// angle brackets are dropped), the domain in lowercase ASCII (IDNA: `bücher.example` is
/// `xn--bcher-kva.example`), the local part exactly as given, since only the receiving
/// domain knows whether `Ann` and `ann` are one mailbox (RFC 5321 §2.4).
///
/// ```
/// use mailroom::deliverability::normalize_address;
///
/// assert_eq!(normalize_address("Ann <Ann@BÜCHER.example>")?, "Ann@xn--bcher-kva.example");
/// # Ok::<(), mailroom::Error>(())
/// ```
pub fn normalize_address(address: &str) -> Result<String> {
    normalize_field("address", address)
}

/// [`normalize_address`], naming `field` in the error.
pub(crate) fn normalize_field(field: &str, address: &str) -> Result<String> {
    let parsed = Address::parse(address.trim()).map_err(|e| match e {
        Error::InvalidAddress { reason, .. } => Error::invalid_address(field, reason),
        other => other,
    })?;
    let email = parsed.email();
    let (local, domain) = email
        .rsplit_once('@')
        .ok_or_else(|| Error::invalid_address(field, format!("`{email}` has no `@domain`")))?;
    let ascii = crate::message::ascii_domain(field, domain)?.to_ascii_lowercase();
    Ok(format!("{local}@{ascii}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn domains_fold_local_parts_stay() {
        assert_eq!(normalize_address("a@EXAMPLE.com").unwrap(), "a@example.com");
        assert_eq!(normalize_address("A@example.com").unwrap(), "A@example.com");
        assert_eq!(
            normalize_address("<jürgen@Bücher.Example>").unwrap(),
            "jürgen@xn--bcher-kva.example"
        );
        assert!(normalize_address("not an address").is_err());
    }
}
