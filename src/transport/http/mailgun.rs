//! Mailgun: `POST /v3/DOMAIN/messages.mime`, the rendered MIME as a multipart form, basic
//! auth `api:KEY`.

use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use tracing::Instrument;

use super::client::Client;
use super::endpoint::{Endpoint, SecretHeader};
use super::{failure, json};
use crate::error::{Error, Result};
use crate::render::Rendered;
use crate::transport::{Delivery, Transport, send_span};

const FORM: &str = "mailgun://api:KEY@api.mailgun.net/DOMAIN";

/// Delivers through Mailgun's raw-MIME API (`mailgun://api:KEY@api.mailgun.net/DOMAIN`;
/// EU: `api.eu.mailgun.net`).
///
/// Sends the rendered bytes as they are (DKIM-signed when the caller signed them) as the
/// form's `message` file, with every envelope recipient, Bcc included, as a `to` field:
/// nothing of the message is rewritten. The key never appears in `Debug` or errors.
///
/// ```
/// let t = mailroom::transport::MailgunTransport::from_url(
///     "mailgun://api:key-123@api.eu.mailgun.net/mg.example.com")?;
/// assert!(!format!("{t:?}").contains("key-123"));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MailgunTransport {
    client: Client,
    /// `Basic base64(api:KEY)`, built once.
    authorization: SecretHeader,
    /// `POST /v3/DOMAIN/messages.mime`, parsed once.
    url: reqwest::Url,
}

impl MailgunTransport {
    /// Builds the transport from its URL (see the [module docs](crate::transport)).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_field(url, "transport")
    }

    pub(crate) fn from_url_field(url: &str, field: &str) -> Result<Self> {
        let mut endpoint = Endpoint::parse(url, field, FORM)?;
        let key = endpoint.key(Some("api"))?;
        let domain = endpoint.path.trim_end_matches('/');
        if domain.is_empty() || domain.contains(['/', '?', '#']) {
            return Err(Error::configuration(
                format!("{field}.path"),
                format!("must be the sending domain alone; write the URL as `{FORM}`"),
            ));
        }
        let url = endpoint.url(&format!("/v3/{domain}/messages.mime"))?;
        endpoint.finish("timeout and tls")?;
        Ok(MailgunTransport {
            client: Client::new("mailgun", &endpoint)?,
            authorization: SecretHeader::basic(&key, "api"),
            url,
        })
    }
}

#[async_trait]
impl Transport for MailgunTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        async {
            let mut form = Form::new();
            for recipient in message.envelope().to() {
                form = form.text("to", recipient.clone());
            }
            let mime = Part::bytes(message.bytes().to_vec())
                .file_name("message.mime")
                .mime_str("message/rfc822")
                .map_err(|e| {
                    Error::Permanent(crate::error::DeliveryFailure::local(e.to_string()))
                })?;
            let request = self
                .client
                .post_to(&self.url)
                .header(reqwest::header::AUTHORIZATION, self.authorization.value())
                .multipart(form.part("message", mime));
            let answer = self.client.send(request).await?;
            // `{"id": "<…>", "message": "Queued. Thank you."}`; errors `{"message": …}`
            // (401 answers plain `Forbidden`).
            let body = answer.json();
            let text =
                json::str_field(&body, "message").map_or_else(|| answer.text(), str::to_owned);
            if answer.is_success() {
                let id = json::str_field(&body, "id").map(str::to_owned);
                return Ok(json::delivered(message, answer.status, &text, id));
            }
            Err(failure::status(
                "mailgun",
                answer.status,
                &answer.headers,
                None,
                &text,
            ))
        }
        .instrument(send_span("mailgun", message))
        .await
    }
}
