//! The top-level header block.

use std::borrow::Cow;

use mail_builder::headers::HeaderType;
use mail_builder::headers::address::Address as MbAddress;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;

use super::Ids;
use super::words::{self, Context, Segment};
use crate::error::Result;
use crate::message::{Address, Email, phrase_string};

pub(crate) type Headers<'a> = Vec<(Cow<'a, str>, HeaderType<'a>)>;

/// From, Sender, To, Cc, Reply-To, Subject, Date, Message-ID, the extra headers, MIME-Version.
/// Bcc is never written.
pub(crate) fn top_level<'a>(email: &'a Email, smtputf8: bool, ids: &Ids) -> Result<Headers<'a>> {
    let mut headers: Headers<'a> = Vec::with_capacity(10 + email.headers.len());
    headers.push((
        "From".into(),
        addresses("From", "from", std::slice::from_ref(&email.from), smtputf8)?,
    ));
    if let Some(sender) = &email.sender {
        headers.push((
            "Sender".into(),
            addresses("Sender", "sender", std::slice::from_ref(sender), smtputf8)?,
        ));
    }
    for (name, list, field) in [
        ("To", &email.to, "to"),
        ("Cc", &email.cc, "cc"),
        ("Reply-To", &email.reply_to, "reply_to"),
    ] {
        if !list.is_empty() {
            headers.push((name.into(), addresses(name, field, list, smtputf8)?));
        }
    }
    if let Some(subject) = &email.subject {
        headers.push(("Subject".into(), unstructured("Subject", subject, smtputf8)));
    }
    headers.push((
        "Date".into(),
        HeaderType::Raw(Raw::new(ids.date.to_rfc2822())),
    ));
    headers.push((
        "Message-ID".into(),
        HeaderType::MessageId(MessageId::new(ids.message_id.clone())),
    ));
    for (name, value) in &email.headers {
        headers.push((
            Cow::Borrowed(name.as_str()),
            unstructured(name, value, smtputf8),
        ));
    }
    headers.push(("MIME-Version".into(), HeaderType::Raw(Raw::new("1.0"))));
    Ok(headers)
}

/// Unstructured text: UTF-8 as it is when UTF-8 headers are allowed and every run of the
/// text folds under the line limit; otherwise non-ASCII words become encoded words, word
/// by word, leaving ASCII words readable. Text whose spacing the word-by-word form would
/// not keep exactly (tabs, runs of spaces) is encoded whole by mail-builder.
pub(crate) fn unstructured<'a>(name: &str, value: &'a str, smtputf8: bool) -> HeaderType<'a> {
    let foldable = value.split([' ', '\t']).all(|word| word.len() < 900);
    if smtputf8 && !value.is_ascii() && foldable {
        HeaderType::Raw(Raw::new(value))
    } else if !value.is_ascii() && words::splits_cleanly(value) {
        HeaderType::Raw(Raw::new(words::header_value(
            &[Segment::Words(value, Context::Text)],
            name.len() + 2,
        )))
    } else {
        HeaderType::Text(Text::new(value))
    }
}

/// An address list for the header `header`, from the message field `field` (named in
/// errors). ASCII mode: punycode domains, encoded-word names (a non-ASCII local part is an
/// error naming the field). SMTPUTF8 mode: raw UTF-8 where anything is non-ASCII.
fn addresses<'a>(
    header: &str,
    field: &str,
    list: &'a [Address],
    smtputf8: bool,
) -> Result<HeaderType<'a>> {
    if smtputf8
        && list
            .iter()
            .any(|a| !a.email().is_ascii() || a.name().is_some_and(|n| !n.is_ascii()))
    {
        let text = list
            .iter()
            .map(|a| match a.name() {
                Some(name) => format!("{} <{}>", phrase_string(name), a.email()),
                None => format!("<{}>", a.email()),
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Ok(HeaderType::Raw(Raw::new(text)));
    }
    let mut items = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let at = if list.len() == 1 && !matches!(field, "to" | "cc" | "reply_to") {
            field.to_owned()
        } else {
            format!("{field}[{i}]")
        };
        items.push((a.name(), a.ascii_email_for(&at)?));
    }
    let word_by_word = items
        .iter()
        .any(|(name, _)| name.is_some_and(|n| !n.is_ascii()))
        && items
            .iter()
            .all(|(name, _)| name.is_none_or(words::splits_cleanly));
    if word_by_word {
        // Non-ASCII display names, word by word; ASCII names quoted as needed.
        let quoted: Vec<Option<String>> = items
            .iter()
            .map(|(name, _)| name.filter(|n| n.is_ascii()).map(phrase_string))
            .collect();
        let angles: Vec<String> = items
            .iter()
            .enumerate()
            .map(|(i, (_, email))| {
                let comma = if i + 1 < items.len() { "," } else { "" };
                format!("<{email}>{comma}")
            })
            .collect();
        let mut segments = Vec::with_capacity(items.len() * 2);
        for (((name, _), quoted), angle) in items.iter().zip(&quoted).zip(&angles) {
            match (name, quoted) {
                (_, Some(quoted)) => segments.push(Segment::Plain(quoted)),
                (Some(name), None) => segments.push(Segment::Words(name, Context::Phrase)),
                (None, None) => {}
            }
            segments.push(Segment::Plain(angle));
        }
        let column = header.len() + 2;
        return Ok(HeaderType::Raw(Raw::new(words::header_value(
            &segments, column,
        ))));
    }
    let mut items: Vec<MbAddress<'a>> = items
        .into_iter()
        .map(|(name, email)| MbAddress::new_address(name, email))
        .collect();
    Ok(HeaderType::Address(if items.len() == 1 {
        items.remove(0)
    } else {
        MbAddress::new_list(items)
    }))
}
