//! The name mailroom gives itself in `EHLO`: checked, because it goes on the wire as is.
//!
//! RFC 5321 §4.1.1.1 and §4.1.3: `EHLO` takes a `Domain` (dot-separated labels of
//! letters, digits and inner hyphens) or an `address-literal` (`[192.0.2.1]`,
//! `[IPv6:2001:db8::1]`, `[tag:content]`). Anything else, above all CR, LF, spaces and
//! other control characters that would let a `helo=` value open a second command, is a
//! configuration error naming the field.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};

/// The longest domain RFC 5321 §4.5.3.1.2 allows.
const MAX_DOMAIN: usize = 255;
/// The longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// Checks `name` as an `EHLO` argument; errors name `field` (e.g. `smtp.helo`) and never
/// repeat a value holding control characters.
pub(crate) fn check(name: &str, field: &str) -> Result<()> {
    let fail = |why: &str| Err(Error::configuration(field, why.to_owned()));
    if name.is_empty() {
        return fail("is empty; give this machine's domain name, e.g. `mail.example.com`");
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return fail(
            "holds a line break, a space or another control character (it would go on the wire as a separate SMTP command); give a domain name such as `mail.example.com`",
        );
    }
    if !name.is_ascii() {
        return fail(
            "is not ASCII; give the domain in its punycode form (`xn--...`) or an address literal such as `[192.0.2.1]`",
        );
    }
    if let Some(literal) = name.strip_prefix('[') {
        return match literal.strip_suffix(']') {
            Some(inner) if is_address_literal(inner) => Ok(()),
            _ => Err(Error::configuration(
                field,
                format!(
                    "`{name}` is not an address literal; use `[192.0.2.1]`, `[IPv6:2001:db8::1]` or a domain name"
                ),
            )),
        };
    }
    if is_domain(name) {
        Ok(())
    } else {
        Err(Error::configuration(
            field,
            format!(
                "`{name}` is not a domain name (letters, digits and inner hyphens in dot-separated labels, RFC 5321 §4.1.2); use e.g. `mail.example.com` or an address literal such as `[192.0.2.1]`"
            ),
        ))
    }
}

/// RFC 5321 `Domain`: `sub-domain *("." sub-domain)`, each `Let-dig [Ldh-str]`.
fn is_domain(name: &str) -> bool {
    name.len() <= MAX_DOMAIN && name.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// The inside of an RFC 5321 `address-literal`.
fn is_address_literal(inner: &str) -> bool {
    if inner.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let Some((tag, content)) = inner.split_once(':') else {
        return false;
    };
    if tag.eq_ignore_ascii_case("IPv6") {
        return content.parse::<Ipv6Addr>().is_ok();
    }
    // General-address-literal: Standardized-tag ":" 1*dcontent (%d33-90 / %d94-126).
    is_label(tag) && !content.is_empty() && content.bytes().all(|b| matches!(b, 33..=90 | 94..=126))
}

/// This machine's host name when it is a valid `EHLO` domain, else `[127.0.0.1]` (what
/// lettre sends when the OS names no host).
pub(crate) fn default_name() -> String {
    // lettre's ClientId::default() asks the OS for the host name (feature `hostname`).
    match lettre::transport::smtp::extension::ClientId::default() {
        lettre::transport::smtp::extension::ClientId::Domain(name) if check(&name, "").is_ok() => {
            name
        }
        _ => "[127.0.0.1]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_literals() {
        for good in [
            "localhost",
            "mail.example.com",
            "xn--bcher-kva.example",
            "a-b.c1",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
            "[ipv6:::1]",
            "[x-tag:stuff]",
        ] {
            assert!(check(good, "smtp.helo").is_ok(), "{good}");
        }
        for bad in [
            "",
            "x\r\nMAIL FROM:<a@b>",
            "x\nRSET",
            "x\rRSET",
            "a b",
            "a\tb",
            "a\0b",
            "a\u{85}b",
            "bücher.example",
            "-a.example",
            "a-.example",
            "a..example",
            ".example",
            "example.",
            "a_b.example",
            "a@b",
            "[192.0.2.1",
            "[999.0.2.1]",
            "[IPv6:zz]",
            "[]",
            "[tag:]",
            "[tag:a]b]",
            &"a".repeat(64),
            &format!("{}.x", "a.".repeat(130)),
        ] {
            let err = check(bad, "smtp.helo").unwrap_err();
            assert_eq!(err.field(), Some("smtp.helo"), "{bad:?}");
            assert!(!err.to_string().contains('\r') && !err.to_string().contains('\n'));
        }
    }

    #[test]
    fn the_default_is_valid() {
        assert!(check(&default_name(), "smtp.helo").is_ok());
    }
}
