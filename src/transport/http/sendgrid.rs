//! SendGrid: `POST /v3/mail/send` (v3), JSON, a Bearer key.

use async_trait::async_trait;
use serde_json::Value;
use tracing::Instrument;

use super::client::Client;
use super::endpoint::{Endpoint, SecretHeader};
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
    /// `POST /v3/mail/send`, parsed once.
    send: reqwest::Url,
    /// `Bearer KEY`, built once.
    authorization: SecretHeader,
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
            send: endpoint.url("/v3/mail/send")?,
            authorization: SecretHeader::new(&key, "Bearer "),
        })
    }

    /// The JSON body of one message, written straight from its fields (no
    /// `serde_json::Value` in between, no copy of its text).
    fn body(message: &Rendered) -> Result<Vec<u8>> {
        let email = message.email();
        let recipients = json::recipients("sendgrid", message)?;
        let parts = json::parts("sendgrid", email)?;
        for (i, (name, _)) in email.headers().iter().enumerate() {
            if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(Error::invalid(
                    format!("headers[{i}]"),
                    format!("`{name}` is a header SendGrid reserves and refuses; leave it out"),
                ));
            }
        }
        let headers = json::unique_headers("sendgrid", message)?;
        let (text, html) = (email.text(), email.html());
        let mut out = Vec::with_capacity(json::body_capacity(email, &parts));
        // The members in the order of their names, as the `serde_json::Value` this body
        // was once built as wrote them: the bytes sent are the same.
        let mut body = json::Object::start(&mut out);
        if !parts.is_empty() {
            body.key("attachments");
            json::write_array(body.out, &parts, |out, part| {
                let mut a = json::Object::start(out);
                a.str("content", &part.base64);
                if let (true, Some(id)) = (part.inline, part.content_id) {
                    a.str("content_id", id);
                }
                a.str(
                    "disposition",
                    if part.inline { "inline" } else { "attachment" },
                );
                a.str("filename", &part.filename);
                a.str("type", part.content_type);
                a.end();
            });
        }
        let content: Vec<(&str, &str)> = [("text/plain", text), ("text/html", html)]
            .into_iter()
            .filter_map(|(kind, value)| Some((kind, value?)))
            .collect();
        if !content.is_empty() {
            body.key("content");
            json::write_array(body.out, &content, |out, (kind, value)| {
                let mut c = json::Object::start(out);
                c.str("type", kind);
                c.str("value", value);
                c.end();
            });
        }
        body.key("from");
        mailbox(body.out, email.from());
        body.key("headers");
        headers.write(body.out);
        body.key("personalizations");
        body.out.push(b'[');
        let mut personalization = json::Object::start(body.out);
        for (name, addresses) in [("bcc", recipients.bcc.as_slice()), ("cc", recipients.cc)] {
            if !addresses.is_empty() {
                personalization.key(name);
                json::write_array(personalization.out, addresses, mailbox);
            }
        }
        personalization.key("to");
        json::write_array(personalization.out, recipients.to, mailbox);
        personalization.end();
        body.out.push(b']');
        match email.reply_to() {
            [] => {}
            [single] => {
                body.key("reply_to");
                mailbox(body.out, single);
            }
            several => {
                body.key("reply_to_list");
                json::write_array(body.out, several, mailbox);
            }
        }
        if let Some(subject) = email.subject() {
            body.str("subject", subject);
        }
        body.end();
        Ok(out)
    }
}

/// An address as SendGrid takes it: `{"email", "name"}` (no `name` when it has none).
fn mailbox(out: &mut Vec<u8>, address: &Address) {
    let mut object = json::Object::start(out);
    object.str("email", address.email());
    if let Some(name) = address.name() {
        object.str("name", name);
    }
    object.end();
}

#[async_trait]
impl Transport for SendGridTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        async {
            let body = Self::body(message)?;
            let request = self
                .client
                .post_to(&self.send)
                .header(reqwest::header::AUTHORIZATION, self.authorization.value())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Email, RenderOptions};

    /// The body is written by hand: it must be the very bytes `serde_json` writes for the
    /// same JSON (members in name order, the same escapes), as when it was built as a
    /// `serde_json::Value`.
    #[test]
    fn bodies_are_the_bytes_serde_json_writes() {
        let emails = [
            Email::builder()
                .from("zoe@example.com")
                .to("bob@example.org")
                .text("hello")
                .build()
                .unwrap(),
            Email::builder()
                .from("\"Zoë \\\"Z\\\" Müller\" <zoe@bücher.example>")
                .sender("s@example.com")
                .to("Jürgen <jurgen@example.org>")
                .cc("Ana <ana@example.org>")
                .bcc("hidden@example.org")
                .reply_to("a@example.com")
                .reply_to("Hilfe <help@example.com>")
                .subject("Ваш заказ \"готов\" ✓")
                .header("X-Campaign", "herbst\t2026")
                .text("line one\r\nline two \\ \u{1}")
                .html("<p class=\"x\">hi</p>\n")
                .inline("logo", "logo.png", b"\x89PNG".to_vec())
                .attach("rechnung-über.pdf", b"%PDF-1.4".to_vec())
                .build()
                .unwrap(),
            Email::builder()
                .from("zoe@example.com")
                .to("bob@example.org")
                .reply_to("Hilfe <help@example.com>")
                .html("<b>only html</b>")
                .build()
                .unwrap(),
        ];
        for email in emails {
            let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
            let body = String::from_utf8(SendGridTransport::body(&rendered).unwrap()).unwrap();
            let value: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body, value.to_string());
            assert!(value["personalizations"][0]["to"].is_array(), "{body}");
        }
    }
}
