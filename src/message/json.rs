//! The JSON form of a message (version 1), as [`Email::from_json`] documents it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::address::AddressJson;
use super::attachment::guess_content_type;
use super::strict_json;
use super::{Address, Attachment, AttachmentBody, Email, ListUnsubscribe};
use crate::error::{Error, Result};

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
    from_value_with(strict_json::from_str(json)?, "", None)
}

/// What a message's `template` gives it: the subject, the text and the HTML.
pub(crate) struct Filled {
    pub(crate) subject: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
}

/// Renders the template a message JSON names (`template`) with its `context` (a JSON
/// object, empty when absent). The templates module supplies it; `message` knows no
/// templates.
pub(crate) type Fill<'a> = &'a dyn Fn(&str, &Value) -> Result<Filled>;

/// The message JSON as a value, duplicate keys refused.
#[cfg(feature = "templates")]
pub(crate) fn read_value(json: &str) -> Result<Value> {
    strict_json::from_str(json)
}

/// An address in its JSON form (a string, or an object with `email` and `name`).
#[cfg(feature = "templates")]
pub(crate) fn address(value: Value, field: &str) -> Result<crate::message::Address> {
    address_json(value, field)?.into_address(field)
}

/// A message from its JSON value, filling subject, text and HTML from its `template`.
#[cfg(feature = "templates")]
pub(crate) fn from_value_filled(value: Value, fill: Fill<'_>) -> Result<Email> {
    from_value_with(value, "", Some(fill))
}

/// Reads the message JSON, filling subject, text and HTML from its `template` with `fill`.
#[cfg(feature = "templates")]
pub(crate) fn from_json_filled(json: &str, fill: Fill<'_>) -> Result<Email> {
    from_value_with(strict_json::from_str(json)?, "", Some(fill))
}

/// A JSON object whose fields are taken one by one, each error naming its field
/// (`prefix` + name); fields left over at the end are unknown.
struct Object {
    map: Map<String, Value>,
    prefix: String,
}

impl Object {
    /// `value` as an object; `field` names it in the error (`json` for the document).
    fn new(value: Value, field: &str, prefix: String) -> Result<Object> {
        match value {
            Value::Object(map) => Ok(Object { map, prefix }),
            other => Err(Error::invalid(
                if field.is_empty() { "json" } else { field },
                format!("must be a JSON object, not {}", kind(&other)),
            )),
        }
    }

    fn field(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The field `name` as a `T`, `None` when absent; a wrong type names the field.
    fn take<T: DeserializeOwned>(&mut self, name: &str) -> Result<Option<T>> {
        let Some(value) = self.map.remove(name) else {
            return Ok(None);
        };
        let got = kind(&value);
        serde_json::from_value(value).map(Some).map_err(|e| {
            Error::invalid(
                self.field(name),
                format!("has the wrong type ({got}): {}", type_hint(&e)),
            )
        })
    }

    /// A list field: absent is empty; each element is given with its field, `name[i]`.
    fn take_list(&mut self, name: &str) -> Result<Vec<(String, Value)>> {
        Ok(self
            .take::<Vec<Value>>(name)?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{}{name}[{i}]", self.prefix), v))
            .collect())
    }

    /// Refuses any field not taken.
    fn finish(self) -> Result<()> {
        match self.map.keys().next() {
            Some(name) => Err(Error::invalid(
                format!("{}{name}", self.prefix),
                "is not a known field",
            )),
            None => Ok(()),
        }
    }
}

/// What a JSON value is, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// serde's message without the position serde_json adds (meaningless for a `Value`).
fn type_hint(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.split_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => text,
    }
}

/// An address: a string (`Name <a@b>`) or an object with `email` and an optional `name`.
fn address_json(value: Value, field: &str) -> Result<AddressJson> {
    match value {
        Value::String(text) => Ok(AddressJson::Text(text)),
        value @ Value::Object(_) => {
            let mut object = Object::new(value, field, format!("{field}."))?;
            let name = object.take::<Option<String>>("name")?.flatten();
            let email = object
                .take::<String>("email")?
                .ok_or_else(|| Error::invalid(object.field("email"), "is required"))?;
            object.finish()?;
            Ok(AddressJson::Parts { name, email })
        }
        other => Err(Error::invalid(
            field,
            format!(
                "must be an address, a string like `Ann <ann@example.com>` or an object with `email` and `name`, not {}",
                kind(&other)
            ),
        )),
    }
}

fn from_value(value: Value, prefix: &str) -> Result<Email> {
    from_value_with(value, prefix, None)
}

fn from_value_with(value: Value, prefix: &str, fill: Option<Fill<'_>>) -> Result<Email> {
    let mut input = Object::new(value, prefix.trim_end_matches('.'), prefix.to_owned())?;
    let field = |name: &str| format!("{prefix}{name}");
    let address = |value: Value, name: &str| address_json(value, name)?.into_address(name);
    let from = input
        .take::<Value>("from")?
        .filter(|v| !v.is_null())
        .ok_or_else(|| Error::invalid(field("from"), "is required"))?;
    let mut builder = Email::builder().from(address(from, &field("from"))?);
    if let Some(sender) = input.take::<Value>("sender")?.filter(|v| !v.is_null()) {
        builder = builder.sender(address(sender, &field("sender"))?);
    }
    for (name, value) in input.take_list("to")? {
        builder = builder.to(address(value, &name)?);
    }
    for (name, value) in input.take_list("cc")? {
        builder = builder.cc(address(value, &name)?);
    }
    for (name, value) in input.take_list("bcc")? {
        builder = builder.bcc(address(value, &name)?);
    }
    for (name, value) in input.take_list("reply_to")? {
        builder = builder.reply_to(address(value, &name)?);
    }
    let template = input.take::<Option<String>>("template")?.flatten();
    let context = input.take::<Value>("context")?.filter(|v| !v.is_null());
    let subject = input.take::<Option<String>>("subject")?.flatten();
    let text = input.take::<Option<String>>("text")?.flatten();
    let html = input.take::<Option<String>>("html")?.flatten();
    let filled = match template {
        None => {
            if context.is_some() {
                return Err(Error::invalid(
                    field("context"),
                    "is given without a `template` to fill; name the template or drop the context",
                ));
            }
            Filled {
                subject,
                text,
                html,
            }
        }
        Some(name) => {
            for (given, what) in [
                (subject.is_some(), "subject"),
                (text.is_some(), "text"),
                (html.is_some(), "html"),
            ] {
                if given {
                    return Err(Error::invalid(
                        field(what),
                        format!(
                            "must be absent when `template` is set: the template's `{what}` block gives it"
                        ),
                    ));
                }
            }
            let context = context.unwrap_or_else(|| Value::Object(Map::new()));
            if !context.is_object() {
                return Err(Error::invalid(
                    field("context"),
                    format!("must be a JSON object, not {}", kind(&context)),
                ));
            }
            let Some(fill) = fill else {
                return Err(Error::invalid(
                    field("template"),
                    format!(
                        "names `{name}`, but no templates were given; read the message with `Templates::email_from_json` (on the command line: --templates DIR)"
                    ),
                ));
            };
            fill(&name, &context)?
        }
    };
    if let Some(s) = filled.subject {
        builder = builder.subject(s);
    }
    if let Some(t) = filled.text {
        builder = builder.text(t);
    }
    if let Some(h) = filled.html {
        builder = builder.html(h);
    }
    for (name, value) in input.take_list("headers")? {
        let got = kind(&value);
        let (header, value): (String, String) = serde_json::from_value(value).map_err(|_| {
            Error::invalid(
                &name,
                format!("must be a pair of strings, like [\"X-Campaign\", \"fall\"], not {got}"),
            )
        })?;
        builder = builder.header(header, value);
    }
    if let Some(value) = input
        .take::<Value>("list_unsubscribe")?
        .filter(|v| !v.is_null())
    {
        builder = builder.list_unsubscribe(list_unsubscribe(value, &field("list_unsubscribe"))?);
    }
    for (at, value) in input.take_list("attachments")? {
        builder = builder.attachment(attachment(value, &at)?);
    }
    if let Some(date) = input.take::<Option<String>>("date")?.flatten() {
        let parsed = DateTime::<FixedOffset>::parse_from_rfc3339(&date).map_err(|e| {
            Error::invalid(
                field("date"),
                format!("`{date}` is not an RFC 3339 date: {e}"),
            )
        })?;
        builder = builder.date(parsed);
    }
    if let Some(id) = input.take::<Option<String>>("message_id")?.flatten() {
        builder = builder.message_id(id);
    }
    input.finish()?;
    builder.build().map_err(|e| prefix_error(e, prefix))
}

/// `list_unsubscribe`: `{"url": …, "mailto": …, "one_click": …}`, each field typed and
/// named in errors (`list_unsubscribe.one_click`); the values are checked by the builder.
fn list_unsubscribe(value: Value, at: &str) -> Result<ListUnsubscribe> {
    let mut object = Object::new(value, at, format!("{at}."))?;
    let url = object.take::<Option<String>>("url")?.flatten();
    let mailto = object.take::<Option<String>>("mailto")?.flatten();
    let one_click = object
        .take::<Option<bool>>("one_click")?
        .flatten()
        .unwrap_or(false);
    object.finish()?;
    Ok(ListUnsubscribe {
        url,
        mailto,
        one_click,
    })
}

/// One element of `attachments`, named `at` (e.g. `attachments[0]`) in errors.
fn attachment(value: Value, at: &str) -> Result<Attachment> {
    let mut a = Object::new(value, at, format!("{at}."))?;
    let filename = a.take::<Option<String>>("filename")?.flatten();
    let content_type = a.take::<Option<String>>("content_type")?.flatten();
    let content_base64 = a.take::<Option<String>>("content_base64")?.flatten();
    // Extension: an attached message (`message/rfc822`) in this same JSON form.
    let message = a.take::<Value>("message")?.filter(|v| !v.is_null());
    let inline = a.take::<Option<bool>>("inline")?.flatten().unwrap_or(false);
    let content_id = a.take::<Option<String>>("content_id")?.flatten();
    a.finish()?;
    let body = match (content_base64, message) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                at,
                "has both `content_base64` and `message`; give one",
            ));
        }
        (None, None) => {
            return Err(Error::invalid(
                format!("{at}.content_base64"),
                "is required",
            ));
        }
        (Some(b64), None) => AttachmentBody::Bytes(
            STANDARD
                .decode(b64.trim())
                .map_err(|e| {
                    Error::invalid(
                        format!("{at}.content_base64"),
                        format!("is not valid base64: {e}"),
                    )
                })?
                .into(),
        ),
        (None, Some(message)) => {
            AttachmentBody::Message(Box::new(from_value(message, &format!("{at}.message."))?))
        }
    };
    let content_type = match (content_type, &body) {
        (Some(ct), _) => ct,
        (None, AttachmentBody::Message(_)) => "message/rfc822".to_owned(),
        (None, AttachmentBody::Bytes(_)) => guess_content_type(filename.as_deref()),
    };
    Ok(Attachment {
        filename,
        content_type,
        body,
        inline,
        content_id,
    })
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
        let value = strict_json::deserialize(deserializer)?;
        from_value(value, "").map_err(serde::de::Error::custom)
    }
}
