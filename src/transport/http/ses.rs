//! Amazon SES v2: `POST /v2/email/outbound-emails` with `Content.Raw`, signed with SigV4.

use std::time::SystemTime;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Value, json};
use tracing::Instrument;

use super::client::Client;
use super::endpoint::{Endpoint, Secret};
use super::sigv4::{AwsKeys, signature_headers};
use super::{failure, json};
use crate::error::{Error, Result};
use crate::render::Rendered;
use crate::transport::{Delivery, Transport, send_span};

const FORM: &str = "ses://ACCESS_KEY_ID:SECRET@email.REGION.amazonaws.com[?session_token=…&configuration_set=…&region=…&tag=NAME:VALUE]";
const PATH: &str = "/v2/email/outbound-emails";

/// Delivers through Amazon SES v2 `SendEmail`
/// (`ses://ACCESS_KEY_ID:SECRET@email.REGION.amazonaws.com`).
///
/// Sends the rendered bytes as they are (DKIM-signed when the caller signed them) as
/// `Content.Raw.Data`, with every envelope recipient, Bcc included, in
/// `Destination.ToAddresses`; `?configuration_set=` becomes `ConfigurationSetName` and
/// each `?tag=NAME:VALUE` an entry of `EmailTags`. The region comes from the host
/// (`email.REGION.amazonaws.com`) unless `?region=` gives it; `?session_token=` adds
/// temporary credentials' token. Requests are signed with AWS Signature Version 4 (the
/// `aws-sigv4` crate). The keys never appear in `Debug` or errors.
///
/// ```
/// let t = mailroom::transport::SesTransport::from_url(
///     "ses://AKIDEXAMPLE:wJalr%2FEXAMPLEKEY@email.eu-west-1.amazonaws.com?configuration_set=transactional")?;
/// let debug = format!("{t:?}");
/// assert!(debug.contains("eu-west-1") && !debug.contains("EXAMPLEKEY"));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SesTransport {
    client: Client,
    keys: AwsKeys,
    region: String,
    /// `host[:port]`, as the request's `host` header (signed).
    authority: String,
    /// `POST /v2/email/outbound-emails`, parsed once: the URL signed is the URL sent.
    url: reqwest::Url,
    configuration_set: Option<String>,
    tags: Vec<(String, String)>,
}

impl SesTransport {
    /// Builds the transport from its URL (see the [module docs](crate::transport)).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_field(url, "transport")
    }

    pub(crate) fn from_url_field(url: &str, field: &str) -> Result<Self> {
        let mut endpoint = Endpoint::parse(url, field, FORM)?;
        let (access_key_id, secret) = endpoint.key_pair()?;
        endpoint.no_path()?;
        let from_host = endpoint
            .host
            .strip_prefix("email.")
            .and_then(|rest| rest.strip_suffix(".amazonaws.com"))
            .filter(|r| !r.is_empty() && !r.contains('.'))
            .map(str::to_owned);
        let region = endpoint.option("region").or(from_host).ok_or_else(|| {
            Error::configuration(
                format!("{field}.region"),
                "is unknown: the host is not `email.REGION.amazonaws.com`; add `?region=REGION`",
            )
        })?;
        let session_token = endpoint.option("session_token").map(Secret::new);
        let configuration_set = endpoint.option("configuration_set");
        let mut tags = Vec::new();
        while let Some(tag) = endpoint.option("tag") {
            let (name, value) = tag.split_once(':').ok_or_else(|| {
                Error::configuration(format!("{field}.tag"), format!("`{tag}` is not NAME:VALUE"))
            })?;
            tags.push((name.to_owned(), value.to_owned()));
        }
        endpoint.finish("region, session_token, configuration_set, tag, timeout and tls")?;
        let authority = endpoint
            .base
            .split_once("://")
            .map_or(endpoint.host.as_str(), |(_, a)| a)
            .to_owned();
        Ok(SesTransport {
            client: Client::new("ses", &endpoint)?,
            keys: AwsKeys {
                access_key_id,
                secret,
                session_token,
            },
            region,
            authority,
            url: endpoint.url(PATH)?,
            configuration_set,
            tags,
        })
    }

    /// The JSON body of one message.
    fn body(&self, message: &Rendered) -> Value {
        let mut body = json!({
            "Destination": { "ToAddresses": message.envelope().to() },
            "Content": { "Raw": {
                "Data": base64::engine::general_purpose::STANDARD.encode(message.bytes()),
            } },
        });
        if let Some(set) = &self.configuration_set {
            body["ConfigurationSetName"] = set.as_str().into();
        }
        if !self.tags.is_empty() {
            body["EmailTags"] = self
                .tags
                .iter()
                .map(|(name, value)| json!({ "Name": name, "Value": value }))
                .collect();
        }
        body
    }
}

#[async_trait]
impl Transport for SesTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        async {
            let body = self.body(message).to_string();
            let content_type = "application/json";
            let signature = signature_headers(
                &self.keys,
                &self.region,
                "ses",
                SystemTime::now(),
                (
                    "POST",
                    self.url.as_str(),
                    &[("host", &self.authority), ("content-type", content_type)],
                    body.as_bytes(),
                ),
            )?;
            let mut request = self
                .client
                .post_to(&self.url)
                .header(reqwest::header::CONTENT_TYPE, content_type);
            for (name, value) in signature {
                let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                    Error::Permanent(crate::error::DeliveryFailure::local(
                        "ses: the signature is not a valid header value",
                    ))
                })?;
                value.set_sensitive(true);
                request = request.header(name, value);
            }
            let answer = self.client.send(request.body(body)).await?;
            let json = answer.json();
            if answer.is_success() {
                let id = json::str_field(&json, "MessageId").map(str::to_owned);
                return Ok(json::delivered(message, answer.status, "OK", id));
            }
            // `{"message": …}` with the error's name in `x-amzn-ErrorType` (or `__type`).
            let code = answer
                .headers
                .get("x-amzn-ErrorType")
                .and_then(|v| v.to_str().ok())
                .or_else(|| json::str_field(&json, "__type"))
                .map(|t| t.split(':').next().unwrap_or(t).to_owned());
            let text = json::str_field(&json, "message")
                .or_else(|| json::str_field(&json, "Message"))
                .map_or_else(|| answer.text(), str::to_owned);
            Err(failure::status(
                "ses",
                answer.status,
                &answer.headers,
                code.as_deref(),
                &text,
            ))
        }
        .instrument(send_span("ses", message))
        .await
    }
}
