//! The JSON form of a message (CONTRACTS §2, version 1).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::address::AddressJson;
use super::attachment::guess_content_type;
use super::{Address, Attachment, AttachmentBody, Email};
use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailIn {
    from: Option<AddressJson>,
    #[serde(default)]
    sender: Option<AddressJson>,
    #[serde(default)]
    to: Vec<AddressJson>,
    #[serde(default)]
    cc: Vec<AddressJson>,
    #[serde(default)]
    bcc: Vec<AddressJson>,
    #[serde(default)]
    reply_to: Vec<AddressJson>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachmentIn {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    content_base64: Option<String>,
    /// Extension: an attached message (`message/rfc822`) in this same JSON form.
    #[serde(default)]
    message: Option<Box<serde_json::Value>>,
    #[serde(default)]
    inline: bool,
    #[serde(default)]
    content_id: Option<String>,
}

#[derive(Serialize)]
struct EmailOut<'a> {
    from: &'a Address,
    sender: Option<&'a Address>,
    to: &'a [Address],
    cc: &'a [Address],
    bcc: &'a [Address],
    reply_to: &'a [Address],
    subject: Option<&'a str>,
    text: Option<&'a str>,
    html: Option<&'a str>,
    headers: &'a [(String, String)],
    attachments: Vec<AttachmentOut<'a>>,
    date: Option<String>,
    message_id: Option<&'a str>,
}

#[derive(Serialize)]
struct AttachmentOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<&'a str>,
    content_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    inline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_id: Option<&'a str>,
}

pub(super) fn from_json(json: &str) -> Result<Email> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| json_error("json", &e))?;
    from_value(value, "")
}

fn json_error(field: &str, e: &serde_json::Error) -> Error {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return Error::invalid(
            format!("{field}{}{name}", if field.is_empty() { "" } else { "." }),
            "is not a known field",
        );
    }
    Error::invalid(
        if field.is_empty() { "json" } else { field },
        format!("is not valid: {text}"),
    )
}

fn from_value(value: serde_json::Value, prefix: &str) -> Result<Email> {
    let input: EmailIn =
        serde_json::from_value(value).map_err(|e| json_error(prefix.trim_end_matches('.'), &e))?;
    let field = |name: &str| format!("{prefix}{name}");
    let address = |a: AddressJson, name: String| a.into_address(&name);
    let list = |items: Vec<AddressJson>, name: &str| -> Result<Vec<Address>> {
        items
            .into_iter()
            .enumerate()
            .map(|(i, a)| address(a, format!("{prefix}{name}[{i}]")))
            .collect()
    };
    let from = address(
        input
            .from
            .ok_or_else(|| Error::invalid(field("from"), "is required"))?,
        field("from"),
    )?;
    let mut builder = Email::builder().from(from);
    if let Some(sender) = input.sender {
        builder = builder.sender(address(sender, field("sender"))?);
    }
    for a in list(input.to, "to")? {
        builder = builder.to(a);
    }
    for a in list(input.cc, "cc")? {
        builder = builder.cc(a);
    }
    for a in list(input.bcc, "bcc")? {
        builder = builder.bcc(a);
    }
    for a in list(input.reply_to, "reply_to")? {
        builder = builder.reply_to(a);
    }
    if let Some(s) = input.subject {
        builder = builder.subject(s);
    }
    if let Some(t) = input.text {
        builder = builder.text(t);
    }
    if let Some(h) = input.html {
        builder = builder.html(h);
    }
    for (name, value) in input.headers {
        builder = builder.header(name, value);
    }
    for (i, a) in input.attachments.into_iter().enumerate() {
        let at = format!("{prefix}attachments[{i}]");
        let body = match (a.content_base64, a.message) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    &at,
                    "has both `content_base64` and `message`; give one",
                ));
            }
            (None, None) => {
                return Err(Error::invalid(
                    format!("{at}.content_base64"),
                    "is required",
                ));
            }
            (Some(b64), None) => {
                AttachmentBody::Bytes(STANDARD.decode(b64.trim()).map_err(|e| {
                    Error::invalid(
                        format!("{at}.content_base64"),
                        format!("is not valid base64: {e}"),
                    )
                })?)
            }
            (None, Some(message)) => {
                AttachmentBody::Message(Box::new(from_value(*message, &format!("{at}.message."))?))
            }
        };
        let content_type = match (&a.content_type, &body) {
            (Some(ct), _) => ct.clone(),
            (None, AttachmentBody::Message(_)) => "message/rfc822".to_owned(),
            (None, AttachmentBody::Bytes(_)) => guess_content_type(a.filename.as_deref()),
        };
        builder = builder.attachment(Attachment {
            filename: a.filename,
            content_type,
            body,
            inline: a.inline,
            content_id: a.content_id,
        });
    }
    if let Some(date) = input.date {
        let parsed = DateTime::<FixedOffset>::parse_from_rfc3339(&date).map_err(|e| {
            Error::invalid(
                field("date"),
                format!("`{date}` is not an RFC 3339 date: {e}"),
            )
        })?;
        builder = builder.date(parsed);
    }
    if let Some(id) = input.message_id {
        builder = builder.message_id(id);
    }
    builder.build().map_err(|e| prefix_error(e, prefix))
}

/// Nested messages report fields under their attachment, e.g. `attachments[0].message.to[1]`.
fn prefix_error(e: Error, prefix: &str) -> Error {
    if prefix.is_empty() {
        return e;
    }
    match e {
        Error::InvalidAddress { field, reason } if !field.starts_with(prefix) => {
            Error::InvalidAddress {
                field: format!("{prefix}{field}"),
                reason,
            }
        }
        Error::HeaderInjection { field, reason } if !field.starts_with(prefix) => {
            Error::HeaderInjection {
                field: format!("{prefix}{field}"),
                reason,
            }
        }
        Error::InvalidMessage { field, reason } if !field.starts_with(prefix) => {
            Error::InvalidMessage {
                field: format!("{prefix}{field}"),
                reason,
            }
        }
        other => other,
    }
}

fn to_value(email: &Email) -> serde_json::Value {
    let out = EmailOut {
        from: &email.from,
        sender: email.sender.as_ref(),
        to: &email.to,
        cc: &email.cc,
        bcc: &email.bcc,
        reply_to: &email.reply_to,
        subject: email.subject.as_deref(),
        text: email.text.as_deref(),
        html: email.html.as_deref(),
        headers: &email.headers,
        attachments: email
            .attachments
            .iter()
            .map(|a| AttachmentOut {
                filename: a.filename.as_deref(),
                content_type: &a.content_type,
                content_base64: match &a.body {
                    AttachmentBody::Bytes(b) => Some(STANDARD.encode(b)),
                    AttachmentBody::Message(_) => None,
                },
                message: match &a.body {
                    AttachmentBody::Message(m) => Some(to_value(m)),
                    AttachmentBody::Bytes(_) => None,
                },
                inline: a.inline,
                content_id: a.content_id.as_deref(),
            })
            .collect(),
        date: email.date.map(|d| d.to_rfc3339()),
        message_id: email.message_id.as_deref(),
    };
    serde_json::to_value(out).unwrap_or(serde_json::Value::Null)
}

pub(super) fn to_json(email: &Email) -> String {
    to_value(email).to_string()
}

impl Serialize for Email {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        to_value(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        from_value(value, "").map_err(serde::de::Error::custom)
    }
}
