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
/// text folds under the line limit; otherwise non-ASCII words, and words a decoder could
/// take for an encoded word (`=?`), become encoded words, word by word, leaving the other
/// words readable. Text whose spacing the word-by-word form would not keep exactly (tabs,
/// runs of spaces) is encoded whole.
///
/// The structured headers of [`is_structured`] are the exception: RFC 2047 does not apply
/// to them, so an `=?` in them (a URL may hold one) is written as given.
pub(crate) fn unstructured<'a>(name: &str, value: &'a str, smtputf8: bool) -> HeaderType<'a> {
    let list_header = name.len() > 5 && name[..5].eq_ignore_ascii_case("list-");
    if list_header && value.is_ascii() {
        // Written as given: mail-builder's text writer would encode a long URL list
        // (`=?us-ascii?Q?<https://…?=`), which no reader takes for URLs.
        return HeaderType::Raw(Raw::new(fold_list(name, value)));
    }
    let looks_encoded = words::looks_encoded(value) && !is_structured(name);
    let foldable = value.split([' ', '\t']).all(|word| word.len() < 900);
    if smtputf8 && !value.is_ascii() && foldable && !looks_encoded {
        HeaderType::Raw(Raw::new(value))
    } else if (looks_encoded || !value.is_ascii()) && words::splits_cleanly(value) {
        HeaderType::Raw(Raw::new(words::header_value(
            &[Segment::Words(value, Context::Text)],
            name.len() + 2,
        )))
    } else if looks_encoded {
        HeaderType::Raw(Raw::new(words::header_value(
            &[Segment::Encoded(value)],
            name.len() + 2,
        )))
    } else {
        HeaderType::Text(Text::new(value))
    }
}

/// Extra headers whose values are structured (URLs in angle brackets, message ids, fixed
/// tokens), not text: no reader decodes encoded words in them, and encoding would break
/// them (a List-Unsubscribe URL may well hold `=?`).
fn is_structured(name: &str) -> bool {
    const NAMES: [&str; 10] = [
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Help",
        "List-Subscribe",
        "List-Post",
        "List-Owner",
        "List-Archive",
        "Archived-At",
        "In-Reply-To",
        "References",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// A structured list value (`<url>, <mailto:…>`) folded after its commas where the line
/// would pass 78 columns; an entry is never split (an over-long one stays on its line).
fn fold_list(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut column = name.len() + 2;
    for (i, entry) in value.split(", ").enumerate() {
        if i > 0 {
            if column + 2 + entry.len() > 78 {
                out.push_str(",\r\n ");
                column = 1;
            } else {
                out.push_str(", ");
                column += 2;
            }
        }
        out.push_str(entry);
        column += entry.len();
    }
    out
}

/// A display name as header segments: as it is (quoted where it must be) when it is ASCII
/// and nothing in it looks like an encoded word; otherwise encoded, word by word where the
/// spacing allows, else whole.
fn name_segment<'n>(name: &'n str, quoted: &'n Option<String>) -> Segment<'n> {
    match quoted {
        Some(quoted) => Segment::Plain(quoted),
        None if words::splits_cleanly(name) => Segment::Words(name, Context::Phrase),
        None => Segment::Encoded(name),
    }
}

/// Whether a display name must be encoded (it cannot be written as a quoted string).
fn name_needs_encoding(name: &str) -> bool {
    !name.is_ascii() || words::looks_encoded(name)
}

/// An address list for the header `header`, from the message field `field` (named in
/// errors). ASCII mode: punycode domains, encoded-word names (a non-ASCII local part is an
/// error naming the field). SMTPUTF8 mode: raw UTF-8 where anything is non-ASCII. In both,
/// a name a decoder could take for an encoded word is encoded, so it reads back as given.
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
                Some(name) if words::looks_encoded(name) => format!(
                    "{} <{}>",
                    words::header_value(&[name_segment(name, &None)], 0),
                    a.email()
                ),
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
    if items
        .iter()
        .any(|(name, _)| name.is_some_and(name_needs_encoding))
    {
        // Names that need it encoded (word by word where the spacing allows); the other
        // names quoted as needed.
        let quoted: Vec<Option<String>> = items
            .iter()
            .map(|(name, _)| name.filter(|n| !name_needs_encoding(n)).map(phrase_string))
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
            if let Some(name) = name {
                segments.push(name_segment(name, quoted));
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
