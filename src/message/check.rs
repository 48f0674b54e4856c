//! Checks that keep every value inside its header: no line breaks, valid header names.

use crate::error::{Error, Result};

/// Characters that end a line somewhere: CR, LF, NUL, VT, FF, NEL, LINE SEPARATOR,
/// PARAGRAPH SEPARATOR. A value holding one could start a new header in some reader.
pub(crate) fn line_break(c: char) -> Option<&'static str> {
    Some(match c {
        '\r' => "a carriage return (CR)",
        '\n' => "a line feed (LF)",
        '\0' => "a NUL character",
        '\u{0B}' => "a vertical tab (VT)",
        '\u{0C}' => "a form feed (FF)",
        '\u{85}' => "a next-line character (U+0085)",
        '\u{2028}' => "a line separator (U+2028)",
        '\u{2029}' => "a paragraph separator (U+2029)",
        _ => return None,
    })
}

/// Rejects a header value that holds any line-breaking character.
pub(crate) fn reject_line_breaks(field: &str, value: &str) -> Result<()> {
    match value.chars().find_map(line_break) {
        Some(what) => Err(Error::injection(
            field,
            format!("the value contains {what}, which could start a new header; remove it"),
        )),
        None => Ok(()),
    }
}

/// The longest header name accepted: `Name: ` then fits a 78-column line (RFC 5322 §2.1.1
/// recommends 78; a name can never be folded, so a longer one could only be written on an
/// over-long line — past 998 octets, the hard limit, not at all).
pub(crate) const MAX_HEADER_NAME: usize = 76;

/// Rejects a header name outside RFC 5322's `ftext` (printable ASCII except `:`), or longer
/// than [`MAX_HEADER_NAME`].
pub(crate) fn check_header_name(field: &str, name: &str) -> Result<()> {
    reject_line_breaks(field, name)?;
    if name.is_empty() {
        return Err(Error::invalid(field, "is an empty header name"));
    }
    if name.len() > MAX_HEADER_NAME {
        return Err(Error::invalid(
            field,
            format!(
                "is a header name of {} octets; header names are at most {MAX_HEADER_NAME}, so that `Name: ` and a value fit on a line (RFC 5322 §2.1.1)",
                name.len()
            ),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii() && ('!'..='~').contains(&c) && c != ':'))
    {
        return Err(Error::injection(
            field,
            format!(
                "the header name `{}` has `{}`; header names are printable ASCII without `:` or spaces",
                name.escape_default(),
                bad.escape_default()
            ),
        ));
    }
    Ok(())
}

/// Headers that mailroom writes itself from the message's fields; setting them through
/// `headers` would duplicate or contradict those fields.
pub(crate) fn reserved_header_hint(name: &str) -> Option<&'static str> {
    const FIELDS: &[(&str, &str)] = &[
        ("from", "use the `from` field"),
        ("sender", "use the `sender` field"),
        ("to", "use the `to` field"),
        ("cc", "use the `cc` field"),
        (
            "bcc",
            "use the `bcc` field; Bcc is never written into the message",
        ),
        ("reply-to", "use the `reply_to` field"),
        ("subject", "use the `subject` field"),
        ("date", "use the `date` field"),
        ("message-id", "use the `message_id` field"),
        ("mime-version", "mailroom writes MIME-Version itself"),
        (
            "content-type",
            "mailroom chooses the Content-Type from the body and attachments",
        ),
        (
            "content-transfer-encoding",
            "mailroom chooses the transfer encoding",
        ),
        ("content-disposition", "use attachments"),
    ];
    FIELDS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, hint)| *hint)
}

/// A Content-ID or Message-ID body: printable ASCII, no spaces, no angle brackets, quotes or
/// backslashes, and no `=?` (which a reader could decode as an encoded word).
pub(crate) fn check_id(field: &str, id: &str) -> Result<()> {
    reject_line_breaks(field, id)?;
    if id.is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    let forbidden = |c: char| {
        !c.is_ascii_graphic()
            || matches!(
                c,
                '<' | '>' | '"' | '\\' | '(' | ')' | ',' | ';' | '[' | ']'
            )
    };
    if id.contains("=?") {
        // Python's `email` decodes an encoded word even inside a Content-ID: the id would
        // read back as another one, and no longer match its `cid:` reference.
        return Err(Error::invalid(
            field,
            format!(
                "`{id}` has `=?`, which readers may decode as an encoded word; use an id without it"
            ),
        ));
    }
    if let Some(bad) = id.chars().find(|&c| forbidden(c)) {
        return Err(Error::invalid(
            field,
            format!(
                "has `{}`; an id is printable ASCII without spaces, angle brackets, quotes or backslashes",
                bad.escape_default()
            ),
        ));
    }
    Ok(())
}
