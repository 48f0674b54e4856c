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

use mail_builder::headers::content_type::ContentType;
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
        BodyPart::Text(text.into()),
    )
}

fn multipart<'a>(content_type: &'a str, parts: Vec<MimePart<'a>>, ids: &Ids) -> MimePart<'a> {
    let mut ct = ContentType::new(content_type);
    if let Some(boundary) = ids.boundary() {
        ct = ct.attribute("boundary", boundary);
    }
    MimePart::new(ct, BodyPart::Multipart(parts))
}

fn disposition<'a>(a: &'a Attachment) -> ContentType<'a> {
    let mut d = ContentType::new(if a.inline { "inline" } else { "attachment" });
    if let Some(name) = &a.filename {
        d = d.attribute("filename", name.as_str());
    }
    d
}

fn leaf(a: &Attachment) -> MimePart<'_> {
    let bytes = a.bytes().unwrap_or_default();
    let mut part = MimePart::new(
        ContentType::new(a.content_type.as_str()),
        BodyPart::Binary(bytes.into()),
    )
    .header("Content-Disposition", disposition(a));
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
