//! The MIME structure, chosen from the content:
//!
//! | content                         | structure                                         |
//! |---------------------------------|---------------------------------------------------|
//! | text only                       | `text/plain`                                      |
//! | HTML only                       | `text/html`                                       |
//! | text + HTML                     | `multipart/alternative`                           |
//! | HTML + inline parts             | `multipart/related` (HTML first, then the parts)  |
//! | text + HTML + inline parts      | `alternative(text, related(html, parts))`         |
//! | attachments                     | `multipart/mixed` around the body and attachments |
//! | attachments only                | `multipart/mixed` with no empty text part         |
//!
//! Inline parts without an HTML body have nothing to be referenced from, so they go into
//! `multipart/mixed` with an inline disposition.
//!
//! Line ends: the text and HTML bodies have every line end written as CRLF (a lone CR or
//! LF becomes CRLF, as every MTA does), so no bare CR or LF reaches the wire and a DKIM body
//! hash covers exactly what is delivered. Attachments keep their exact bytes: a `text/*`
//! attachment whose line ends the encoder would write raw or rewrite is sent in base64.

use std::borrow::Cow;

use base64::Engine as _;
use mail_builder::headers::HeaderType;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};

use super::{Ids, RenderOptions};
use crate::error::Result;
use crate::message::{Attachment, AttachmentBody, Email};

pub(crate) fn body<'a>(
    email: &'a Email,
    options: &RenderOptions,
    ids: &Ids,
) -> Result<MimePart<'a>> {
    let (inline, regular): (Vec<&Attachment>, Vec<&Attachment>) = email
        .attachments
        .iter()
        .partition(|a| a.inline && email.html.is_some());

    let html = email.html.as_deref().map(|html| {
        let part = text_part("text/html", html);
        if inline.is_empty() {
            part
        } else {
            let mut parts = vec![part];
            parts.extend(inline.iter().map(|a| leaf(a)));
            multipart("multipart/related", parts, ids)
        }
    });
    let text = email
        .text
        .as_deref()
        .map(|text| text_part("text/plain", text));
    let content = match (text, html) {
        (Some(text), Some(html)) => Some(multipart("multipart/alternative", vec![text, html], ids)),
        (text, html) => text.or(html),
    };
    if regular.is_empty() {
        return Ok(content.unwrap_or_else(|| text_part("text/plain", "")));
    }
    let mut parts: Vec<MimePart<'a>> = content.into_iter().collect();
    for a in regular {
        parts.push(match &a.body {
            AttachmentBody::Bytes(_) => leaf(a),
            AttachmentBody::Message(inner) => message_part(a, inner, options, ids)?,
        });
    }
    Ok(multipart("multipart/mixed", parts, ids))
}

fn text_part<'a>(content_type: &'a str, text: &'a str) -> MimePart<'a> {
    MimePart::new(
        ContentType::new(content_type).attribute("charset", "utf-8"),
        BodyPart::Text(crlf(text)),
    )
}

/// `text` with every line end as CRLF: a lone CR and a lone LF each become CRLF.
/// Borrowed when the text already has only CRLF line ends. Linear in the length.
pub(crate) fn crlf(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let clean = bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        _ => true,
    });
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 16 + 2);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                out.push_str("\r\n");
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether mail-builder would put these bytes of a `text/*` part on the wire other than
/// exactly: a bare CR is written raw by every encoding it picks for text, and a bare LF in
/// an inline (body-like) part is rewritten to CRLF.
fn needs_base64(bytes: &[u8], inline: bool) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        b'\n' => inline && (i == 0 || bytes[i - 1] != b'\r'),
        _ => false,
    })
}

/// Base64 in 76-column lines joined by CRLF (RFC 2045 §6.8), for a part written raw.
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out
}

fn multipart<'a>(content_type: &'a str, parts: Vec<MimePart<'a>>, ids: &Ids) -> MimePart<'a> {
    let mut ct = ContentType::new(content_type);
    if let Some(boundary) = ids.boundary() {
        ct = ct.attribute("boundary", boundary);
    }
    MimePart::new(ct, BodyPart::Multipart(parts))
}

fn disposition<'a>(a: &'a Attachment) -> HeaderType<'a> {
    let kind = if a.inline { "inline" } else { "attachment" };
    match &a.filename {
        // mail-builder quotes an ASCII name, and readers decode encoded words even inside
        // quotes: RFC 2231 percent-encoding is read back exactly by all of them.
        Some(name) if super::words::looks_encoded(name) => {
            HeaderType::Raw(Raw::new(format!("{kind}; {}", rfc2231("filename", name))))
        }
        Some(name) => ContentType::new(kind)
            .attribute("filename", name.as_str())
            .into(),
        None => ContentType::new(kind).into(),
    }
}

/// `key*=utf-8''VALUE` with every byte outside the RFC 2231 attribute characters
/// percent-encoded, split into `key*0*=`, `key*1*=`... sections (at character boundaries)
/// when it would not fit on one line; sections are separated by `; ` for folding.
fn rfc2231(key: &str, value: &str) -> String {
    const SECTION: usize = 60;
    let mut sections: Vec<String> = vec![String::new()];
    for c in value.chars() {
        let mut buf = [0; 4];
        let mut encoded = String::new();
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&+^`{|}#".contains(&b) {
                encoded.push(b as char);
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        let last = sections.len() - 1;
        if !sections[last].is_empty() && sections[last].len() + encoded.len() > SECTION {
            sections.push(encoded);
        } else {
            sections[last].push_str(&encoded);
        }
    }
    if sections.len() == 1 {
        return format!("{key}*=utf-8''{}", sections[0]);
    }
    sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let charset = if i == 0 { "utf-8''" } else { "" };
            format!("{key}*{i}*={charset}{s}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn leaf(a: &Attachment) -> MimePart<'_> {
    let bytes = a.bytes().unwrap_or_default();
    // mail-builder treats a part as text when its type starts with `text/`.
    let own_base64 = a.content_type.starts_with("text/") && needs_base64(bytes, a.inline);
    let body = if own_base64 {
        BodyPart::Binary(base64_lines(bytes).into())
    } else {
        BodyPart::Binary(bytes.into())
    };
    let mut part = MimePart::new(ContentType::new(a.content_type.as_str()), body)
        .header("Content-Disposition", disposition(a));
    if own_base64 {
        // Written after the other headers: mail-builder then writes the body as it is.
        part = part.transfer_encoding("base64");
    }
    if let Some(id) = &a.content_id {
        part = part.cid(id.as_str());
    }
    part
}

/// `message/rfc822` may only be 7bit, 8bit or binary (RFC 2046 §5.2.1): the nested message
/// is rendered with the same options and written as it is.
fn message_part<'a>(
    a: &'a Attachment,
    inner: &Email,
    options: &RenderOptions,
    ids: &Ids,
) -> Result<MimePart<'a>> {
    let nested_ids = ids.nested(inner, options.smtputf8)?;
    let mut bytes = Vec::new();
    let plain = RenderOptions {
        signers: Vec::new(),
        ..options.clone()
    };
    inner.render_into(&plain, &nested_ids, &mut bytes)?;
    let encoding = if bytes.is_ascii() { "7bit" } else { "8bit" };
    let mut part = MimePart::new(
        ContentType::new("message/rfc822"),
        BodyPart::Binary(bytes.into()),
    )
    .header("Content-Disposition", disposition(a))
    .transfer_encoding(encoding);
    if let Some(id) = &a.content_id {
        part = part.cid(id.as_str());
    }
    Ok(part)
}
