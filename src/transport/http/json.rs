//! What the JSON APIs (Postmark, Resend, SendGrid) share: the message's recipients,
//! attachments and headers as fields, checked so that nothing is silently dropped.

use std::collections::HashSet;

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::message::{Address, AttachmentBody, Email};
use crate::render::Rendered;
use crate::transport::{Delivery, Reply};

/// Who a JSON request names: To and Cc as the message has them, and as Bcc every other
/// envelope recipient (the message's Bcc, with their names).
#[derive(Debug)]
pub(crate) struct Recipients<'a> {
    pub(crate) to: &'a [Address],
    pub(crate) cc: &'a [Address],
    pub(crate) bcc: Vec<Address>,
}

/// The comparable form of an address: ASCII domain, lowercase.
fn key(address: &Address) -> String {
    address
        .ascii_email()
        .unwrap_or_else(|_| address.email().to_owned())
        .to_lowercase()
}

/// The recipients of `message` for a JSON API, which sends to everyone its To and Cc
/// fields name: a message whose envelope leaves out a To or Cc address (e.g.
/// [`Rendered::only`] some recipients) is an error naming `envelope.to`.
pub(crate) fn recipients<'a>(provider: &str, message: &'a Rendered) -> Result<Recipients<'a>> {
    let email = message.email();
    let envelope: Vec<(String, &str)> = message
        .envelope()
        .to()
        .iter()
        .map(|r| {
            let k = Address::parse(r)
                .map(|a| key(&a))
                .unwrap_or_else(|_| r.to_lowercase());
            (k, r.as_str())
        })
        .collect();
    let on_envelope: HashSet<&str> = envelope.iter().map(|(k, _)| k.as_str()).collect();
    let mut named = HashSet::new();
    for address in email.to().iter().chain(email.cc()) {
        let k = key(address);
        if !on_envelope.contains(k.as_str()) {
            return Err(Error::invalid(
                "envelope.to",
                format!(
                    "leaves out `{}`, but {provider}'s API sends to every To and Cc address the message names; send the message to all of them, or through SMTP",
                    address.email()
                ),
            ));
        }
        named.insert(k);
    }
    let mut bcc = Vec::new();
    for (k, raw) in &envelope {
        if named.contains(k) {
            continue;
        }
        let address = match email.bcc().iter().find(|b| &key(b) == k) {
            Some(b) => b.clone(),
            None => Address::parse(raw)?,
        };
        named.insert(k.clone());
        bcc.push(address);
    }
    Ok(Recipients {
        to: email.to(),
        cc: email.cc(),
        bcc,
    })
}

/// An attachment or inline part as the JSON APIs take it.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    pub(crate) filename: String,
    pub(crate) content_type: &'a str,
    pub(crate) base64: String,
    pub(crate) inline: bool,
    pub(crate) content_id: Option<&'a str>,
}

/// The message's attachments and inline parts, in order. An attached message
/// (`message/rfc822`) is an error naming it: a JSON API takes files, not messages.
pub(crate) fn parts<'a>(provider: &str, email: &'a Email) -> Result<Vec<Part<'a>>> {
    email
        .attachments()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let AttachmentBody::Bytes(bytes) = a.body() else {
                return Err(Error::invalid(
                    format!("attachments[{i}]"),
                    format!(
                        "is an attached message (message/rfc822), which {provider}'s API cannot carry; send it through SMTP or a raw-MIME transport (ses://, mailgun://)"
                    ),
                ));
            };
            // The APIs require a file name: the Content-ID, else a numbered one.
            let filename = a
                .filename()
                .map(str::to_owned)
                .or_else(|| a.content_id().map(str::to_owned))
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            Ok(Part {
                filename,
                content_type: a.content_type(),
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                inline: a.is_inline(),
                content_id: a.content_id(),
            })
        })
        .collect()
}

/// The headers a JSON request carries: the message's own, then `Sender` (when it has one)
/// and `Message-ID`.
pub(crate) fn headers(message: &Rendered) -> Vec<(String, String)> {
    let email = message.email();
    let mut headers: Vec<(String, String)> = email.headers().to_vec();
    if let Some(sender) = email.sender() {
        headers.push(("Sender".to_owned(), sender.to_string()));
    }
    headers.push(("Message-ID".to_owned(), message.message_id().to_owned()));
    headers
}

/// The headers as one JSON object, for APIs that key headers by name: a name given twice
/// (compared without ASCII case) is an error naming it.
pub(crate) fn header_object(
    provider: &str,
    message: &Rendered,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut object = serde_json::Map::new();
    let mut seen = HashSet::new();
    for (i, (name, value)) in headers(message).into_iter().enumerate() {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(Error::invalid(
                format!("headers[{i}]"),
                format!("repeats `{name}`, but {provider}'s API takes each header name once"),
            ));
        }
        object.insert(name, serde_json::Value::String(value));
    }
    Ok(object)
}

/// A delivery to every envelope recipient, as a provider that took the message reports it.
pub(crate) fn delivered(
    message: &Rendered,
    status: u16,
    reply: &str,
    id: Option<String>,
) -> Delivery {
    Delivery {
        message_id: Some(message.message_id().to_owned()),
        accepted: message.envelope().to().to_vec(),
        deferred: Vec::new(),
        rejected: Vec::new(),
        reply: Some(Reply {
            code: status,
            message: reply.to_owned(),
        }),
        queue_id: id,
    }
}

/// The same error again, for each message of a batch that one answer refused.
pub(crate) fn repeat(err: &Error) -> Error {
    match err {
        Error::Transient(f) => Error::Transient(f.clone()),
        Error::Permanent(f) => Error::Permanent(f.clone()),
        Error::InvalidMessage { field, reason } => Error::invalid(field.clone(), reason.clone()),
        Error::Configuration { field, reason } => {
            Error::configuration(field.clone(), reason.clone())
        }
        other => Error::Transient(crate::error::DeliveryFailure::local(other.to_string())),
    }
}

/// The string value of `field` in a JSON object, if it is one.
pub(crate) fn str_field<'a>(value: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::RenderOptions;

    #[test]
    fn bcc_comes_from_the_envelope_and_to_cc_must_all_be_on_it() {
        let email = Email::builder()
            .from("a@example.com")
            .to("Bø <b@bücher.example>")
            .cc("c@example.com")
            .bcc("Dee <d@example.com>")
            .subject("s")
            .text("t")
            .build()
            .unwrap();
        let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
        let r = recipients("postmark", &rendered).unwrap();
        assert_eq!(r.to.len(), 1);
        assert_eq!(r.bcc, [Address::parse("Dee <d@example.com>").unwrap()]);
        let only_bcc = rendered.only(&["d@example.com".to_owned()]).unwrap();
        let err = recipients("postmark", &only_bcc).unwrap_err();
        assert_eq!(err.field(), Some("envelope.to"));
    }
}
