//! Postmark: `POST /email` and `POST /email/batch`, JSON, `X-Postmark-Server-Token`.

use async_trait::async_trait;
use serde_json::{Value, json};
use tracing::Instrument;

use super::client::{Answer, Client};
use super::endpoint::{Endpoint, SecretHeader};
use super::{failure, json};
use crate::error::{Error, Result};
use crate::message::Address;
use crate::render::Rendered;
use crate::transport::{Delivery, Transport, send_span};

const FORM: &str = "postmark://SERVER_TOKEN@api.postmarkapp.com[?message_stream=…]";
/// The most messages `/email/batch` takes in one request.
const BATCH: usize = 500;

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

    /// The JSON body of one message.
    fn body(&self, message: &Rendered) -> Result<Value> {
        let email = message.email();
        let recipients = json::recipients("postmark", message)?;
        let list = |addresses: &[Address]| {
            addresses
                .iter()
                .map(Address::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut body = json!({ "From": email.from().to_string() });
        let mut put = |name: &str, value: Value| {
            body[name] = value;
        };
        for (name, addresses) in [
            ("To", recipients.to),
            ("Cc", recipients.cc),
            ("Bcc", recipients.bcc.as_slice()),
            ("ReplyTo", email.reply_to()),
        ] {
            if !addresses.is_empty() {
                put(name, Value::String(list(addresses)));
            }
        }
        if let Some(subject) = email.subject() {
            put("Subject", subject.into());
        }
        if let Some(text) = email.text() {
            put("TextBody", text.into());
        }
        if let Some(html) = email.html() {
            put("HtmlBody", html.into());
        }
        let headers: Vec<Value> = json::headers(message)
            .into_iter()
            .map(|(name, value)| json!({ "Name": name, "Value": value }))
            .collect();
        put("Headers", headers.into());
        let attachments: Vec<Value> = json::parts("postmark", email)?
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
            put("Attachments", attachments.into());
        }
        if let Some(stream) = &self.message_stream {
            put("MessageStream", stream.as_str().into());
        }
        Ok(body)
    }

    async fn post(&self, url: &reqwest::Url, body: &Value) -> Result<Answer> {
        let request = self
            .client
            .post_to(url)
            .header("X-Postmark-Server-Token", self.token.value())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
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
            let answer = self.post(&self.email, &body).await?;
            result(message, answer.status, &answer, &answer.json())
        }
        .instrument(send_span("postmark", message))
        .await
    }

    async fn send_rendered_batch(&self, messages: &[Rendered]) -> Vec<Result<Delivery>> {
        let mut results = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(BATCH) {
            let mut ready = Vec::with_capacity(chunk.len());
            let built: Vec<Result<()>> = chunk
                .iter()
                .map(|m| self.body(m).map(|body| ready.push(body)))
                .collect();
            let answer = match ready.is_empty() {
                true => None,
                false => Some(self.post(&self.batch, &Value::Array(ready)).await),
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
