//! Resend: `POST /emails` and `POST /emails/batch`, JSON, a Bearer key, the Message-ID as
//! `Idempotency-Key`.

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::client::{Answer, Client};
use super::endpoint::{Endpoint, SecretHeader};
use super::{failure, json};
use crate::error::{Error, Result};
use crate::render::Rendered;
use crate::transport::{Delivery, Transport, send_span};

const FORM: &str = "resend://API_KEY@api.resend.com";
/// The most messages `/emails/batch` takes in one request.
const BATCH: usize = 100;
/// The header a request's key goes in, a name known at compile time (not parsed per
/// request).
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `application/json`, a value known at compile time (not checked and copied per request).
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Delivers through Resend's email API (`resend://API_KEY@api.resend.com`).
///
/// Each message is sent as Resend's JSON (`from`, `to`, `cc`, `bcc`, `reply_to`,
/// `subject`, `text`, `html`, `headers`, `attachments` with `content_type` and, for inline
/// parts, `content_id`), with its Message-ID as the `Idempotency-Key`, so a retried
/// request is not sent twice; Resend writes and DKIM-signs the MIME.
/// [`send_rendered_batch`](Transport::send_rendered_batch) sends up to 100 messages per
/// `/emails/batch` request (messages with attachments, which the batch endpoint does not
/// take, one by one). Resend keys headers by name: a header given twice is an
/// [`Error::InvalidMessage`] naming it. The key never appears in `Debug` or errors.
///
/// ```
/// let t = mailroom::transport::ResendTransport::from_url("resend://re_123@api.resend.com")?;
/// assert!(!format!("{t:?}").contains("re_123"));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResendTransport {
    client: Client,
    /// `POST /emails` and `POST /emails/batch`, parsed once.
    emails: reqwest::Url,
    batch: reqwest::Url,
    /// `Bearer KEY`, built once.
    authorization: SecretHeader,
}

impl ResendTransport {
    /// Builds the transport from its URL (see the [module docs](crate::transport)).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_field(url, "transport")
    }

    pub(crate) fn from_url_field(url: &str, field: &str) -> Result<Self> {
        let mut endpoint = Endpoint::parse(url, field, FORM)?;
        let key = endpoint.key(None)?;
        endpoint.no_path()?;
        endpoint.finish("timeout and tls")?;
        Ok(ResendTransport {
            client: Client::new("resend", &endpoint)?,
            emails: endpoint.url("/emails")?,
            batch: endpoint.url("/emails/batch")?,
            authorization: SecretHeader::new(&key, "Bearer "),
        })
    }

    /// Writes the JSON body of one message to `out`, straight from its fields (no
    /// `serde_json::Value` in between, no copy of its text). Everything that can fail is
    /// checked before the first byte is written: on an error `out` is as it was.
    fn write_body(message: &Rendered, out: &mut Vec<u8>) -> Result<()> {
        let email = message.email();
        let recipients = json::recipients("resend", message)?;
        let headers = json::unique_headers("resend", message)?;
        let parts = json::parts("resend", email)?;
        let (text, html) = (email.text(), email.html());
        out.reserve(json::body_capacity(email, &parts));
        // The members in the order of their names, as the `serde_json::Value` this body
        // was once built as wrote them: the bytes sent are the same.
        let mut body = json::Object::start(out);
        if !parts.is_empty() {
            body.key("attachments");
            json::write_array(body.out, &parts, |out, part| {
                let mut a = json::Object::start(out);
                a.str("content", &part.base64);
                if let (true, Some(id)) = (part.inline, part.content_id) {
                    a.str("content_id", id);
                }
                a.str("content_type", part.content_type);
                a.str("filename", &part.filename);
                a.end();
            });
        }
        for (name, addresses) in [("bcc", recipients.bcc.as_slice()), ("cc", recipients.cc)] {
            if !addresses.is_empty() {
                body.key(name);
                json::write_array(body.out, addresses, json::write_address);
            }
        }
        body.key("from");
        json::write_address(body.out, email.from());
        body.key("headers");
        headers.write(body.out);
        if let Some(html) = html {
            body.str("html", html);
        }
        if !email.reply_to().is_empty() {
            body.key("reply_to");
            json::write_array(body.out, email.reply_to(), json::write_address);
        }
        if let Some(subject) = email.subject() {
            body.str("subject", subject);
        }
        if let Some(text) = text {
            body.str("text", text);
        }
        body.key("to");
        json::write_array(body.out, recipients.to, json::write_address);
        body.end();
        Ok(())
    }

    /// The JSON body of one message.
    fn body(message: &Rendered) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        Self::write_body(message, &mut out)?;
        Ok(out)
    }

    /// The `/emails/batch` body for `messages` (see [`json::write_batch`]).
    fn batch_body<'m>(
        messages: impl IntoIterator<Item = &'m Rendered>,
    ) -> (Option<Vec<u8>>, Vec<Result<()>>) {
        json::write_batch(messages, Self::write_body)
    }

    async fn post(
        &self,
        url: &reqwest::Url,
        idempotency_key: &str,
        body: Vec<u8>,
    ) -> Result<Answer> {
        let request = self
            .client
            .post_to(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.value())
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .header(IDEMPOTENCY_KEY, idempotency_key)
            .body(body);
        self.client.send(request).await
    }
}

/// The error for a refusal: Resend answers `{"statusCode", "name", "message"}`.
fn refused(answer: &Answer) -> Error {
    let body = answer.json();
    let message = json::str_field(&body, "message").map_or_else(|| answer.text(), str::to_owned);
    failure::status(
        "resend",
        answer.status,
        &answer.headers,
        json::str_field(&body, "name"),
        &message,
    )
}

/// The key of a batch: the same messages give the same key (at most 256 characters).
fn batch_key(messages: &[&Rendered]) -> String {
    let mut hash = Sha256::new();
    for m in messages {
        hash.update(m.message_id().as_bytes());
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("batch-{hex}")
}

#[async_trait]
impl Transport for ResendTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        async {
            let body = Self::body(message)?;
            let answer = self.post(&self.emails, message.message_id(), body).await?;
            if !answer.is_success() {
                return Err(refused(&answer));
            }
            let id = json::str_field(&answer.json(), "id").map(str::to_owned);
            Ok(json::delivered(message, answer.status, "OK", id))
        }
        .instrument(send_span("resend", message))
        .await
    }

    async fn send_rendered_batch(&self, messages: &[Rendered]) -> Vec<Result<Delivery>> {
        let mut results: Vec<Option<Result<Delivery>>> = messages.iter().map(|_| None).collect();
        // The batch endpoint takes no attachments: those messages go one by one.
        let mut batched = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if message.email().attachments().is_empty() {
                batched.push(i);
            } else {
                results[i] = Some(self.send_rendered(message).await);
            }
        }
        for chunk in batched.chunks(BATCH) {
            let (array, built) = Self::batch_body(chunk.iter().map(|&i| &messages[i]));
            let mut sent = Vec::with_capacity(chunk.len());
            for (&i, built) in chunk.iter().zip(built) {
                match built {
                    Ok(()) => sent.push(i),
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
            let Some(array) = array else {
                continue;
            };
            let key = batch_key(&sent.iter().map(|&i| &messages[i]).collect::<Vec<_>>());
            let answer = self.post(&self.batch, &key, array).await;
            // `{"data": [{"id": …}, …]}`, one per message in order; a refusal is the
            // whole batch's (Resend validates a batch all or nothing).
            let ids: Vec<Option<String>> = match &answer {
                Ok(a) if a.is_success() => a
                    .json()
                    .get("data")
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .map(|item| json::str_field(item, "id").map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            for (n, &i) in sent.iter().enumerate() {
                results[i] = Some(match &answer {
                    Ok(a) if a.is_success() => Ok(json::delivered(
                        &messages[i],
                        a.status,
                        "OK",
                        ids.get(n).cloned().flatten(),
                    )),
                    Ok(a) => Err(refused(a)),
                    Err(e) => Err(json::repeat(e)),
                });
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::Transient(crate::error::DeliveryFailure::local(
                        "resend: the message was not sent",
                    )))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::RenderOptions;
    use crate::message::Address;

    /// The body as it was built before it was written by hand: a `serde_json::Value`.
    fn value_body(message: &Rendered) -> Value {
        let email = message.email();
        let recipients = json::recipients("resend", message).unwrap();
        let list = |addresses: &[Address]| -> Value {
            addresses
                .iter()
                .map(|a| Value::String(a.to_string()))
                .collect()
        };
        let mut body = json!({
            "from": email.from().to_string(),
            "to": list(recipients.to),
        });
        for (name, addresses) in [
            ("cc", recipients.cc),
            ("bcc", recipients.bcc.as_slice()),
            ("reply_to", email.reply_to()),
        ] {
            if !addresses.is_empty() {
                body[name] = list(addresses);
            }
        }
        if let Some(subject) = email.subject() {
            body["subject"] = subject.into();
        }
        if let Some(text) = email.text() {
            body["text"] = text.into();
        }
        if let Some(html) = email.html() {
            body["html"] = html.into();
        }
        let headers: serde_json::Map<String, Value> = json::headers(message)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), Value::String(value.into_owned())))
            .collect();
        body["headers"] = Value::Object(headers);
        let attachments: Vec<Value> = json::parts("resend", email)
            .unwrap()
            .into_iter()
            .map(|part| {
                let mut a = json!({
                    "filename": part.filename,
                    "content": part.base64,
                    "content_type": part.content_type,
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
        body
    }

    /// The body is written by hand: it must be the very bytes the `serde_json::Value` it
    /// was once built as writes.
    /// The second extra header of [`super::json::sample_emails`]'s full message.
    const HEADER: (&str, &str) = ("List-Unsubscribe", "<mailto:u@example.com>");

    #[test]
    fn bodies_are_the_bytes_the_serde_json_value_wrote() {
        for email in super::json::sample_emails(HEADER) {
            let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
            let body = String::from_utf8(ResendTransport::body(&rendered).unwrap()).unwrap();
            assert_eq!(body, value_body(&rendered).to_string());
            let value: Value = serde_json::from_str(&body).unwrap();
            assert!(value["to"].is_array(), "{body}");
        }
    }

    /// A batch is one JSON array of the bodies that could be built, in order; a message
    /// that cannot be sent (here: a header given twice, then a To left off the envelope)
    /// leaves no trace in it.
    #[test]
    fn a_batch_array_holds_the_built_bodies_only() {
        let good: Vec<Rendered> = super::json::sample_emails(HEADER)
            .iter()
            .map(|e| e.prepare(&RenderOptions::deterministic()).unwrap())
            .collect();
        let twice = super::json::sample_emails(HEADER)[0]
            .to_builder()
            .header("X-Tag", "a")
            .header("x-tag", "b")
            .build()
            .unwrap()
            .prepare(&RenderOptions::deterministic())
            .unwrap();
        let left_off = good[1].only(&["hidden@example.org".to_owned()]).unwrap();
        for (sent, expected) in [
            (vec![&good[0], &twice, &good[2]], vec![&good[0], &good[2]]),
            (vec![&left_off, &good[1]], vec![&good[1]]),
            (vec![&good[0], &good[1], &twice], vec![&good[0], &good[1]]),
        ] {
            let (array, built) = ResendTransport::batch_body(sent.iter().copied());
            let expected =
                Value::Array(expected.iter().map(|m| value_body(m)).collect()).to_string();
            assert_eq!(String::from_utf8(array.unwrap()).unwrap(), expected);
            let failed: Vec<bool> = built.iter().map(Result::is_err).collect();
            let refused: Vec<bool> = sent
                .iter()
                .map(|m| *m == &twice || *m == &left_off)
                .collect();
            assert_eq!(failed, refused);
        }
        let (array, built) = ResendTransport::batch_body([&twice, &left_off]);
        assert!(array.is_none());
        assert!(built.iter().all(Result::is_err));
    }
}
