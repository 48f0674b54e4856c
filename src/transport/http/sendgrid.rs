//! SendGrid: `POST /v3/mail/send` (v3), JSON, a Bearer key.

use async_trait::async_trait;
use serde_json::{Value, json};
use tracing::Instrument;

use super::client::Client;
use super::endpoint::{Endpoint, Secret};
use super::{failure, json};
use crate::error::{Error, Result};
use crate::message::Address;
use crate::render::Rendered;
use crate::transport::{Delivery, Transport, send_span};

const FORM: &str = "sendgrid://API_KEY@api.sendgrid.com";

/// Headers SendGrid's v3 API refuses in `headers` (it writes them itself).
const RESERVED: &[&str] = &[
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
];

/// Delivers through SendGrid's v3 mail send API (`sendgrid://API_KEY@api.sendgrid.com`).
///
/// Each message is sent as SendGrid's JSON: one entry in `personalizations` (`to`, `cc`,
/// `bcc`), `from`, `reply_to` (or `reply_to_list` for several), `subject`, `content`
/// (`text/plain` first, then `text/html`), `attachments` (`content`, `type`, `filename`,
/// `disposition` `inline` with `content_id`, or `attachment`) and `headers`; SendGrid
/// writes and DKIM-signs the MIME and answers 202 with the message's id in
/// `X-Message-Id`. SendGrid keys headers by name and reserves some: a header given twice,
/// or one it reserves, is an [`Error::InvalidMessage`] naming it. The key never appears
/// in `Debug` or errors.
///
/// ```
/// let t = mailroom::transport::SendGridTransport::from_url("sendgrid://SG.key@api.sendgrid.com")?;
/// assert!(!format!("{t:?}").contains("SG.key"));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SendGridTransport {
    client: Client,
    key: Secret,
}

impl SendGridTransport {
    /// Builds the transport from its URL (see the [module docs](crate::transport)).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_field(url, "transport")
    }

    pub(crate) fn from_url_field(url: &str, field: &str) -> Result<Self> {
        let mut endpoint = Endpoint::parse(url, field, FORM)?;
        let key = endpoint.key(None)?;
        endpoint.no_path()?;
        endpoint.finish("timeout and tls")?;
        Ok(SendGridTransport {
            client: Client::new("sendgrid", &endpoint)?,
            key,
        })
    }

    /// The JSON body of one message.
    fn body(message: &Rendered) -> Result<Value> {
        let email = message.email();
        let recipients = json::recipients("sendgrid", message)?;
        let one = |a: &Address| match a.name() {
            Some(name) => json!({ "email": a.email(), "name": name }),
            None => json!({ "email": a.email() }),
        };
        let list = |addresses: &[Address]| -> Value { addresses.iter().map(one).collect() };
        let mut personalization = json!({ "to": list(recipients.to) });
        if !recipients.cc.is_empty() {
            personalization["cc"] = list(recipients.cc);
        }
        if !recipients.bcc.is_empty() {
            personalization["bcc"] = list(&recipients.bcc);
        }
        let mut body = json!({
            "personalizations": [personalization],
            "from": one(email.from()),
        });
        match email.reply_to() {
            [] => {}
            [single] => body["reply_to"] = one(single),
            several => body["reply_to_list"] = list(several),
        }
        if let Some(subject) = email.subject() {
            body["subject"] = subject.into();
        }
        let mut content = Vec::new();
        if let Some(text) = email.text() {
            content.push(json!({ "type": "text/plain", "value": text }));
        }
        if let Some(html) = email.html() {
            content.push(json!({ "type": "text/html", "value": html }));
        }
        if !content.is_empty() {
            body["content"] = content.into();
        }
        let attachments: Vec<Value> = json::parts("sendgrid", email)?
            .into_iter()
            .map(|part| {
                let mut a = json!({
                    "content": part.base64,
                    "type": part.content_type,
                    "filename": part.filename,
                    "disposition": if part.inline { "inline" } else { "attachment" },
                });
                if let (true, Some(id)) = (part.inline, part.content_id) {
                    a["content_id"] = id.into();
                }
                a
            })
            .collect();
        if !attachments.is_empty() {
            body["attachments"] = attachments.into();
        }
        for (i, (name, _)) in email.headers().iter().enumerate() {
            if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(Error::invalid(
                    format!("headers[{i}]"),
                    format!("`{name}` is a header SendGrid reserves and refuses; leave it out"),
                ));
            }
        }
        body["headers"] = Value::Object(json::header_object("sendgrid", message)?);
        Ok(body)
    }
}

#[async_trait]
impl Transport for SendGridTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        async {
            let body = Self::body(message)?;
            let request = self
                .client
                .post("/v3/mail/send")
                .header(reqwest::header::AUTHORIZATION, self.key.header("Bearer "))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            let answer = self.client.send(request).await?;
            if answer.is_success() {
                let id = answer
                    .headers
                    .get("X-Message-Id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                return Ok(json::delivered(message, answer.status, "Accepted", id));
            }
            // `{"errors": [{"message", "field", "help"}]}`.
            let body = answer.json();
            let errors = body.get("errors").and_then(Value::as_array);
            let message_text = errors
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| json::str_field(e, "message"))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| answer.text());
            let field = errors
                .and_then(|errors| errors.first())
                .and_then(|e| json::str_field(e, "field"));
            Err(failure::status(
                "sendgrid",
                answer.status,
                &answer.headers,
                field,
                &message_text,
            ))
        }
        .instrument(send_span("sendgrid", message))
        .await
    }
}
