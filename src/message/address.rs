//! Email addresses: parsing, validation, IDNA and the RFC 5322 text form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::message::check::reject_line_breaks;

/// One mailbox: an optional display name and an address (`local@domain`).
///
/// The display name and the address are kept exactly as given (Unicode domains stay
/// Unicode); rendering converts the domain to punycode unless the message is written for
/// an SMTPUTF8 transport.
///
/// ```
/// use mailroom::Address;
///
/// let a: Address = "\"Müller, Zoë\" <zoe@bücher.example>".parse()?;
/// assert_eq!(a.name(), Some("Müller, Zoë"));
/// assert_eq!(a.email(), "zoe@bücher.example");
/// assert_eq!(a.ascii_email()?, "zoe@xn--bcher-kva.example");
/// assert_eq!(a.to_string(), "\"Müller, Zoë\" <zoe@bücher.example>");
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address {
    name: Option<String>,
    email: String,
    /// Byte index of the `@` that separates local part and domain.
    at: usize,
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl Address {
    /// Builds an address from a display name and an addr-spec (`local@domain`), validating both.
    pub fn new(name: Option<&str>, email: &str) -> Result<Self> {
        Self::from_parts("address", name, email)
    }

    /// Parses `Name <a@b>`, `"Quoted, Name" <a@b>`, `<a@b>` or a bare `a@b`.
    pub fn parse(input: &str) -> Result<Self> {
        Self::parse_field("address", input)
    }

    pub(crate) fn from_parts(field: &str, name: Option<&str>, email: &str) -> Result<Self> {
        if let Some(name) = name {
            reject_line_breaks(&format!("{field}.name"), name)?;
        }
        reject_line_breaks(&format!("{field}.email"), email)?;
        let at = validate_addr_spec(field, email)?;
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        Ok(Address {
            name,
            email: email.to_owned(),
            at,
        })
    }

    pub(crate) fn parse_field(field: &str, input: &str) -> Result<Self> {
        reject_line_breaks(field, input)?;
        let input = input.trim();
        if input.is_empty() {
            return Err(Error::invalid_address(field, "the address is empty"));
        }
        if let Some(open) = angle_start(input) {
            let Some(inner) = input[open + 1..].strip_suffix('>') else {
                return Err(Error::invalid_address(
                    field,
                    format!("`{input}` has text after the closing `>`"),
                ));
            };
            let name = parse_display_name(field, input[..open].trim())?;
            let at = validate_addr_spec(field, inner)?;
            return Ok(Address {
                name,
                email: inner.to_owned(),
                at,
            });
        }
        if input.contains(['<', '>']) {
            return Err(Error::invalid_address(
                field,
                format!("`{input}` has an unbalanced `<` or `>`"),
            ));
        }
        let at = validate_addr_spec(field, input)?;
        Ok(Address {
            name: None,
            email: input.to_owned(),
            at,
        })
    }

    /// The display name, as given (unquoted).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The address (`local@domain`), as given.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        &self.email[..self.at]
    }

    /// The part after the `@`, as given (may be Unicode).
    pub fn domain(&self) -> &str {
        &self.email[self.at + 1..]
    }

    /// `true` when the local part has non-ASCII characters, which only an SMTPUTF8
    /// transport can carry.
    pub fn needs_smtputf8(&self) -> bool {
        !self.local_part().is_ascii()
    }

    /// The domain in ASCII: punycode (IDNA) for Unicode domains.
    pub fn ascii_domain(&self) -> Result<String> {
        ascii_domain("address", self.domain())
    }

    /// The address with its domain in ASCII; an error if the local part is not ASCII
    /// (such an address needs SMTPUTF8 and cannot be written otherwise).
    pub fn ascii_email(&self) -> Result<String> {
        self.ascii_email_for("address")
    }

    pub(crate) fn ascii_email_for(&self, field: &str) -> Result<String> {
        if self.needs_smtputf8() {
            return Err(Error::invalid_address(
                field,
                format!(
                    "`{}` has a non-ASCII local part, which needs SMTPUTF8; render with smtputf8 or use an ASCII address",
                    self.email
                ),
            ));
        }
        if self.domain().is_ascii() {
            return Ok(self.email.clone());
        }
        Ok(format!(
            "{}@{}",
            self.local_part(),
            ascii_domain(field, self.domain())?
        ))
    }

    /// A copy with another display name.
    pub fn with_name(&self, name: Option<&str>) -> Result<Self> {
        Self::from_parts("address", name, &self.email)
    }
}

impl FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Address::parse(s)
    }
}

impl TryFrom<&str> for Address {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    /// The RFC 5322 text (Unicode kept): `Name <a@b>`, the name quoted when it needs it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => f.write_str(&self.email),
            Some(name) => {
                write_phrase(f, name)?;
                write!(f, " <{}>", self.email)
            }
        }
    }
}

/// Writes a display name as an atom sequence when it can, else as a quoted string.
fn write_phrase(f: &mut impl fmt::Write, name: &str) -> fmt::Result {
    let plain = name
        .split(' ')
        .all(|word| !word.is_empty() && word.chars().all(|c| !c.is_ascii() || is_atext(c)));
    if plain {
        return f.write_str(name);
    }
    f.write_char('"')?;
    for c in name.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

pub(crate) fn phrase_string(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    let _ = write_phrase(&mut out, name);
    out
}

/// Position of the `<` that opens the angle address, outside any quoted string: the last
/// one when the input ends with `>`, else the first (so `Name <a@b> tail` is reported as
/// text after the address).
fn angle_start(input: &str) -> Option<usize> {
    let (mut in_quotes, mut escaped) = (false, false);
    let (mut first, mut last) = (None, None);
    for (i, c) in input.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => {
                first = first.or(Some(i));
                last = Some(i);
            }
            _ => {}
        }
    }
    if input.ends_with('>') { last } else { first }
}

fn parse_display_name(field: &str, raw: &str) -> Result<Option<String>> {
    if raw.is_empty() {
        return Ok(None);
    }
    if let Some(body) = raw.strip_prefix('"') {
        let Some(body) = body.strip_suffix('"') else {
            return Err(Error::invalid_address(
                field,
                format!("the display name `{raw}` has an unterminated quoted string"),
            ));
        };
        let mut name = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next) => name.push(next),
                    None => {
                        return Err(Error::invalid_address(
                            field,
                            "the display name ends with a lone backslash",
                        ));
                    }
                },
                '"' => {
                    return Err(Error::invalid_address(
                        field,
                        format!("the display name `{raw}` has an unescaped `\"` inside quotes"),
                    ));
                }
                c => name.push(c),
            }
        }
        let name = name.trim().to_owned();
        return Ok(if name.is_empty() { None } else { Some(name) });
    }
    if let Some(bad) = raw.chars().find(|c| {
        matches!(
            c,
            '"' | '<' | '>' | '@' | ',' | ';' | ':' | '\\' | '[' | ']' | '(' | ')'
        )
    }) {
        return Err(Error::invalid_address(
            field,
            format!("the display name `{raw}` has `{bad}`; put the name in double quotes"),
        ));
    }
    Ok(Some(raw.to_owned()))
}

/// RFC 5322 `atext`: the characters of an unquoted atom.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// Validates `local@domain`; returns the index of the separating `@`.
fn validate_addr_spec(field: &str, spec: &str) -> Result<usize> {
    let Some(at) = spec.rfind('@') else {
        return Err(Error::invalid_address(
            field,
            format!("`{spec}` has no `@`; an address looks like `name@example.com`"),
        ));
    };
    let (local, domain) = (&spec[..at], &spec[at + 1..]);
    if local.is_empty() {
        return Err(Error::invalid_address(
            field,
            format!("`{spec}` has an empty local part"),
        ));
    }
    if local.len() > 64 {
        return Err(Error::invalid_address(
            field,
            format!("the local part of `{spec}` is longer than 64 octets"),
        ));
    }
    validate_local_part(field, spec, local)?;
    validate_domain(field, spec, domain)?;
    Ok(at)
}

fn validate_local_part(field: &str, spec: &str, local: &str) -> Result<()> {
    if let Some(inner) = local.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Err(Error::invalid_address(
                field,
                format!("the local part of `{spec}` has an unterminated quoted string"),
            ));
        };
        let mut escaped = false;
        for c in inner.chars() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' => escaped = true,
                '"' => {
                    return Err(Error::invalid_address(
                        field,
                        format!("the local part of `{spec}` has an unescaped `\"`"),
                    ));
                }
                c if c.is_control() => {
                    return Err(Error::invalid_address(
                        field,
                        format!("the local part of `{spec}` has a control character"),
                    ));
                }
                _ => {}
            }
        }
        if escaped {
            return Err(Error::invalid_address(
                field,
                format!("the local part of `{spec}` ends with a lone backslash"),
            ));
        }
        return Ok(());
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(Error::invalid_address(
                field,
                format!(
                    "the local part of `{spec}` has an empty dot-separated part (`..`, or a dot at either end)"
                ),
            ));
        }
        if let Some(bad) = atom.chars().find(|&c| {
            if c.is_ascii() {
                !is_atext(c)
            } else {
                c.is_control() || c.is_whitespace()
            }
        }) {
            return Err(Error::invalid_address(
                field,
                format!(
                    "the local part of `{spec}` has `{}`, which needs quoting",
                    bad.escape_default()
                ),
            ));
        }
    }
    Ok(())
}

fn validate_domain(field: &str, spec: &str, domain: &str) -> Result<()> {
    if domain.is_empty() {
        return Err(Error::invalid_address(
            field,
            format!("`{spec}` has an empty domain"),
        ));
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let Some(literal) = literal.strip_suffix(']') else {
            return Err(Error::invalid_address(
                field,
                format!("the domain literal of `{spec}` is not closed"),
            ));
        };
        let ok = match literal.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => literal.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        if !ok {
            return Err(Error::invalid_address(
                field,
                format!("the domain literal of `{spec}` is not an IPv4 or `IPv6:` address"),
            ));
        }
        return Ok(());
    }
    ascii_domain(field, domain).map(|_| ())
}

/// Converts a domain to its ASCII (punycode) form, validating it.
pub(crate) fn ascii_domain(field: &str, domain: &str) -> Result<String> {
    if domain.starts_with('[') {
        return Ok(domain.to_owned());
    }
    let ascii = idna::domain_to_ascii_strict(domain).map_err(|_| {
        Error::invalid_address(
            field,
            format!("`{domain}` is not a valid domain name (IDNA)"),
        )
    })?;
    if ascii.is_empty() || ascii.len() > 253 {
        return Err(Error::invalid_address(
            field,
            format!("`{domain}` is not a valid domain name length"),
        ));
    }
    for label in ascii.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(Error::invalid_address(
                field,
                format!("`{domain}` has an invalid label `{label}`"),
            ));
        }
    }
    Ok(ascii)
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The JSON forms an address may take: a string or `{"name": ..., "email": ...}`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum AddressJson {
    Text(String),
    Parts {
        #[serde(default)]
        name: Option<String>,
        email: String,
    },
}

impl AddressJson {
    pub(crate) fn into_address(self, field: &str) -> Result<Address> {
        match self {
            AddressJson::Text(text) => Address::parse_field(field, &text),
            AddressJson::Parts { name, email } => {
                Address::from_parts(field, name.as_deref(), &email)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        AddressJson::deserialize(deserializer)?
            .into_address("address")
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let a = Address::parse("Zoë Müller <zoe@example.com>").unwrap();
        assert_eq!(a.name(), Some("Zoë Müller"));
        assert_eq!(a.email(), "zoe@example.com");
        let b = Address::parse("\"Doe, Jane\" <jane@example.com>").unwrap();
        assert_eq!(b.name(), Some("Doe, Jane"));
        let c = Address::parse("plain@example.com").unwrap();
        assert_eq!(c.name(), None);
        let d = Address::parse("<angle@example.com>").unwrap();
        assert_eq!(d.email(), "angle@example.com");
        let e = Address::parse("\"a\\\"b\" <q@example.com>").unwrap();
        assert_eq!(e.name(), Some("a\"b"));
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a..b@example.com",
            "a b@example.com",
            "Doe, Jane <j@example.com>",
            "x@-bad-.example",
            "<a@b> tail",
            "a@[1.2.3]",
        ] {
            let err = Address::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidAddress { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn idna_and_smtputf8() {
        let a = Address::parse("jurgen@bücher.example").unwrap();
        assert_eq!(a.ascii_email().unwrap(), "jurgen@xn--bcher-kva.example");
        let u = Address::parse("jürgen@example.com").unwrap();
        assert!(u.needs_smtputf8());
        assert!(matches!(u.ascii_email(), Err(Error::InvalidAddress { .. })));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "\"Doe, Jane\" <jane@example.com>",
            "Zoë <zoe@bücher.example>",
            "a@b.example",
            "\"q\\\"x\" <a@b.example>",
        ] {
            let a = Address::parse(text).unwrap();
            assert_eq!(Address::parse(&a.to_string()).unwrap(), a, "{text}");
        }
    }
}
