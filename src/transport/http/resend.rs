//! Resend: `POST /emails` and `POST /emails/batch`, JSON, a Bearer key, the Message-ID as
//! `Idempotency-Key`.

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::client::{Answer, Client};
use super::endpoint::{Endpoint, SecretHeader};
use super::{failure, json};
use crate::error::{Error, Result};
use crate::message::Address;
use crate::render::Rendered;
use crate::transport::{Delivery, Transport, send_span};

const FORM: &str = "resend://API_KEY@api.resend.com";
/// The most messages `/emails/batch` takes in one request.
const BATCH: usize = 100;

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

    /// The JSON body of one message.
    fn body(message: &Rendered) -> Result<Value> {
        let email = message.email();
        let recipients = json::recipients("resend", message)?;
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
        body["headers"] = Value::Object(json::header_object("resend", message)?);
        let attachments: Vec<Value> = json::parts("resend", email)?
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
        Ok(body)
    }

    async fn post(
        &self,
        url: &reqwest::Url,
        idempotency_key: &str,
        body: &Value,
    ) -> Result<Answer> {
        let request = self
            .client
            .post_to(url)
            .header(reqwest::header::AUTHORIZATION, self.authorization.value())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", idempotency_key)
            .body(body.to_string());
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
            let answer = self.post(&self.emails, message.message_id(), &body).await?;
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
            let mut ready = Vec::with_capacity(chunk.len());
            let mut sent = Vec::with_capacity(chunk.len());
            for &i in chunk {
                match Self::body(&messages[i]) {
                    Ok(body) => {
                        ready.push(body);
                        sent.push(i);
                    }
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
            if sent.is_empty() {
                continue;
            }
            let key = batch_key(&sent.iter().map(|&i| &messages[i]).collect::<Vec<_>>());
            let answer = self.post(&self.batch, &key, &Value::Array(ready)).await;
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
