//! Postmark: `POST /email` and `POST /email/batch`, JSON, `X-Postmark-Server-Token`.

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tracing::Instrument;

use super::client::{Answer, Client};
use super::endpoint::{Endpoint, SecretHeader};
use super::{failure, json};
use crate::error::{Error, Result};
use crate::render::Rendered;
use crate::transport::{Delivery, Transport, send_span};

const FORM: &str = "postmark://SERVER_TOKEN@api.postmarkapp.com[?message_stream=…]";
/// The most messages `/email/batch` takes in one request.
const BATCH: usize = 500;
/// The token's header, a name known at compile time (not parsed per request).
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-postmark-server-token");
/// `application/json`, a value known at compile time (not checked and copied per request).
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Delivers through Postmark's email API (`postmark://SERVER_TOKEN@api.postmarkapp.com`).
///
/// Each message is sent as Postmark's JSON (`From`, `To`, `Cc`, `Bcc`, `Subject`,
/// `TextBody`, `HtmlBody`, `ReplyTo`, `Headers`, `Attachments` with `ContentID` for inline
/// parts, `MessageStream` from `?message_stream=`); Postmark writes and DKIM-signs the
/// MIME. [`send_rendered_batch`](Transport::send_rendered_batch) sends up to 500
/// messages per `/email/batch` request. The token never appears in `Debug` or errors.
///
/// ```
/// let t = mailroom::transport::PostmarkTransport::from_url(
///     "postmark://server-token@api.postmarkapp.com?message_stream=outbound")?;
/// assert!(!format!("{t:?}").contains("server-token"));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PostmarkTransport {
    client: Client,
    /// `POST /email` and `POST /email/batch`, parsed once.
    email: reqwest::Url,
    batch: reqwest::Url,
    /// The server token, as a header value built once.
    token: SecretHeader,
    message_stream: Option<String>,
}

impl PostmarkTransport {
    /// Builds the transport from its URL (see the [module docs](crate::transport)).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_field(url, "transport")
    }

    pub(crate) fn from_url_field(url: &str, field: &str) -> Result<Self> {
        let mut endpoint = Endpoint::parse(url, field, FORM)?;
        let token = endpoint.key(None)?;
        endpoint.no_path()?;
        let message_stream = endpoint.option("message_stream");
        endpoint.finish("message_stream, timeout and tls")?;
        Ok(PostmarkTransport {
            client: Client::new("postmark", &endpoint)?,
            email: endpoint.url("/email")?,
            batch: endpoint.url("/email/batch")?,
            token: SecretHeader::new(&token, ""),
            message_stream,
        })
    }

    /// Writes the JSON body of one message to `out`, straight from its fields (no
    /// `serde_json::Value` in between, no copy of its text). Everything that can fail is
    /// checked before the first byte is written: on an error `out` is as it was.
    fn write_body(&self, message: &Rendered, out: &mut Vec<u8>) -> Result<()> {
        let email = message.email();
        let recipients = json::recipients("postmark", message)?;
        let parts = json::parts("postmark", email)?;
        let headers = json::headers(message);
        let (text, html) = (email.text(), email.html());
        out.reserve(json::body_capacity(email, &parts));
        // The members in the order of their names, as the `serde_json::Value` this body
        // was once built as wrote them: the bytes sent are the same.
        let mut body = json::Object::start(out);
        if !parts.is_empty() {
            body.key("Attachments");
            json::write_array(body.out, &parts, |out, part| {
                let mut a = json::Object::start(out);
                a.str("Content", &part.base64);
                if let (true, Some(id)) = (part.inline, part.content_id) {
                    a.str("ContentID", &format!("cid:{id}"));
                }
                a.str("ContentType", part.content_type);
                a.str("Name", &part.filename);
                a.end();
            });
        }
        for (name, addresses) in [("Bcc", recipients.bcc.as_slice()), ("Cc", recipients.cc)] {
            if !addresses.is_empty() {
                body.key(name);
                json::write_address_list(body.out, addresses);
            }
        }
        body.key("From");
        json::write_address(body.out, email.from());
        body.key("Headers");
        json::write_array(body.out, &headers, |out, (name, value)| {
            let mut h = json::Object::start(out);
            h.str("Name", name);
            h.str("Value", value);
            h.end();
        });
        if let Some(html) = html {
            body.str("HtmlBody", html);
        }
        if let Some(stream) = &self.message_stream {
            body.str("MessageStream", stream);
        }
        if !email.reply_to().is_empty() {
            body.key("ReplyTo");
            json::write_address_list(body.out, email.reply_to());
        }
        if let Some(subject) = email.subject() {
            body.str("Subject", subject);
        }
        if let Some(text) = text {
            body.str("TextBody", text);
        }
        if !recipients.to.is_empty() {
            body.key("To");
            json::write_address_list(body.out, recipients.to);
        }
        body.end();
        Ok(())
    }

    /// The JSON body of one message.
    fn body(&self, message: &Rendered) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_body(message, &mut out)?;
        Ok(out)
    }

    /// The `/email/batch` body for `chunk` (see [`json::write_batch`]).
    fn batch_body(&self, chunk: &[Rendered]) -> (Option<Vec<u8>>, Vec<Result<()>>) {
        json::write_batch(chunk, |m, out| self.write_body(m, out))
    }

    async fn post(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<Answer> {
        let request = self
            .client
            .post_to(url)
            .header(TOKEN_HEADER, self.token.value())
            .header(reqwest::header::ACCEPT, JSON)
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .body(body);
        self.client.send(request).await
    }
}

/// One message's result in Postmark's answer (`ErrorCode`, `Message`, `MessageID`): an
/// `ErrorCode` other than 0 is a failure, even in a 200 answer.
fn result(message: &Rendered, status: u16, answer: &Answer, item: &Value) -> Result<Delivery> {
    let code = item.get("ErrorCode").and_then(Value::as_i64).unwrap_or(-1);
    let text = json::str_field(item, "Message").map_or_else(|| answer.text(), str::to_owned);
    if (200..300).contains(&status) && code == 0 {
        let id = json::str_field(item, "MessageID").map(str::to_owned);
        return Ok(json::delivered(message, status, &text, id));
    }
    // A refusal inside a 200 answer: its own ErrorCode 429 is a rate limit, the rest
    // are the message's fault (422, as Postmark answers a single send).
    let status = match status {
        200..=299 if code == 429 => 429,
        200..=299 => 422,
        other => other,
    };
    let code = (code >= 0).then(|| code.to_string());
    Err(failure::status(
        "postmark",
        status,
        &answer.headers,
        code.as_deref(),
        &text,
    ))
}

#[async_trait]
impl Transport for PostmarkTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        async {
            let body = self.body(message)?;
            let answer = self.post(&self.email, body).await?;
            result(message, answer.status, &answer, &answer.json())
        }
        .instrument(send_span("postmark", message))
        .await
    }

    async fn send_rendered_batch(&self, messages: &[Rendered]) -> Vec<Result<Delivery>> {
        let mut results = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(BATCH) {
            let (array, built) = self.batch_body(chunk);
            let answer = match array {
                None => None,
                Some(array) => Some(self.post(&self.batch, array).await),
            };
            // One result per message sent, in order (`[{ErrorCode, Message, MessageID, To}]`).
            let mut items = match &answer {
                Some(Ok(a)) if a.is_success() => match a.json() {
                    Value::Array(items) => items.into_iter(),
                    _ => Vec::new().into_iter(),
                },
                _ => Vec::new().into_iter(),
            };
            for (message, built) in chunk.iter().zip(built) {
                results.push(built.and_then(|()| match &answer {
                    Some(Ok(a)) if a.is_success() => {
                        result(message, a.status, a, &items.next().ok_or_else(missing)?)
                    }
                    // The whole request refused: every message gets the refusal.
                    Some(Ok(a)) => result(message, a.status, a, &a.json()),
                    Some(Err(e)) => Err(json::repeat(e)),
                    None => Err(missing()),
                }));
            }
        }
        results
    }
}

/// A batch answer with fewer results than messages: the message may not have been sent.
fn missing() -> Error {
    Error::Transient(crate::error::DeliveryFailure::local(
        "postmark's batch answer has no result for this message; it may not have been sent",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::RenderOptions;
    use crate::message::Address;

    /// The body as it was built before it was written by hand: a `serde_json::Value`.
    fn value_body(t: &PostmarkTransport, message: &Rendered) -> Value {
        let email = message.email();
        let recipients = json::recipients("postmark", message).unwrap();
        let list = |addresses: &[Address]| {
            addresses
                .iter()
                .map(Address::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut body = json!({ "From": email.from().to_string() });
        for (name, addresses) in [
            ("To", recipients.to),
            ("Cc", recipients.cc),
            ("Bcc", recipients.bcc.as_slice()),
            ("ReplyTo", email.reply_to()),
        ] {
            if !addresses.is_empty() {
                body[name] = Value::String(list(addresses));
            }
        }
        if let Some(subject) = email.subject() {
            body["Subject"] = subject.into();
        }
        if let Some(text) = email.text() {
            body["TextBody"] = text.into();
        }
        if let Some(html) = email.html() {
            body["HtmlBody"] = html.into();
        }
        let headers: Vec<Value> = json::headers(message)
            .into_iter()
            .map(|(name, value)| json!({ "Name": name, "Value": value }))
            .collect();
        body["Headers"] = headers.into();
        let attachments: Vec<Value> = json::parts("postmark", email)
            .unwrap()
            .into_iter()
            .map(|part| {
                let mut a = json!({
                    "Name": part.filename,
                    "Content": part.base64,
                    "ContentType": part.content_type,
                });
                if let (true, Some(id)) = (part.inline, part.content_id) {
                    a["ContentID"] = format!("cid:{id}").into();
                }
                a
            })
            .collect();
        if !attachments.is_empty() {
            body["Attachments"] = attachments.into();
        }
        if let Some(stream) = &t.message_stream {
            body["MessageStream"] = stream.as_str().into();
        }
        body
    }

    /// The body is written by hand: it must be the very bytes the `serde_json::Value` it
    /// was once built as writes, with and without a message stream.
    /// The second extra header of [`super::json::sample_emails`]'s full message.
    const HEADER: (&str, &str) = ("X-Campaign", "twice");

    #[test]
    fn bodies_are_the_bytes_the_serde_json_value_wrote() {
        for query in ["", "?message_stream=outbound"] {
            let t = PostmarkTransport::from_url(&format!(
                "postmark://token@api.postmarkapp.com{query}"
            ))
            .unwrap();
            for email in super::json::sample_emails(HEADER) {
                let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
                let body = String::from_utf8(t.body(&rendered).unwrap()).unwrap();
                assert_eq!(body, value_body(&t, &rendered).to_string());
                let value: Value = serde_json::from_str(&body).unwrap();
                assert!(value["From"].is_string(), "{body}");
            }
        }
    }

    /// A batch is one JSON array of the bodies that could be built, in order; a message
    /// that cannot be sent leaves no trace in it.
    #[test]
    fn a_batch_array_holds_the_built_bodies_only() {
        let t = PostmarkTransport::from_url("postmark://token@api.postmarkapp.com").unwrap();
        let good: Vec<Rendered> = super::json::sample_emails(HEADER)
            .iter()
            .map(|e| e.prepare(&RenderOptions::deterministic()).unwrap())
            .collect();
        let bad = good[1].only(&["hidden@example.org".to_owned()]).unwrap();
        for (sent, expected) in [
            (vec![&good[0], &bad, &good[2]], vec![&good[0], &good[2]]),
            (vec![&bad, &good[1]], vec![&good[1]]),
            (vec![&good[0], &good[1], &bad], vec![&good[0], &good[1]]),
        ] {
            let sent: Vec<Rendered> = sent.into_iter().cloned().collect();
            let (array, built) = t.batch_body(&sent);
            let expected =
                Value::Array(expected.iter().map(|m| value_body(&t, m)).collect()).to_string();
            assert_eq!(String::from_utf8(array.unwrap()).unwrap(), expected);
            let failed: Vec<bool> = built.iter().map(Result::is_err).collect();
            let bad_at: Vec<bool> = sent.iter().map(|m| m == &bad).collect();
            assert_eq!(failed, bad_at);
        }
        let (array, built) = t.batch_body(&[bad.clone(), bad]);
        assert!(array.is_none());
        assert!(built.iter().all(Result::is_err));
    }
}
