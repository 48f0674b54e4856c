//! One HTTP client per transport: a connection pool (HTTP/2 where the provider offers
//! it), HTTPS with verified certificates, connect and whole-request timeouts, no
//! redirects (a redirect could carry the key elsewhere).

use std::fmt;

use bytes::Bytes;
use reqwest::header::HeaderMap;

use super::endpoint::Endpoint;
use super::failure;
use crate::error::{Error, Result};

/// A provider's answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// `true` for a 2xx status.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or `Null` when it is not JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text, for error messages (at most 500 characters).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(500)
            .collect()
    }
}

/// The client a transport sends through, and the base URL of its API.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    provider: &'static str,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `endpoint`, named `provider` in errors.
    pub(crate) fn new(provider: &'static str, endpoint: &Endpoint) -> Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(endpoint.connect_timeout)
            .timeout(endpoint.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!endpoint.plain)
            .user_agent(concat!("mailroom/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::configuration(
                    &endpoint.field,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Client {
            http,
            base: endpoint.base.clone(),
            provider,
        })
    }

    /// A POST to `url` (from [`Endpoint::url`]), which is parsed once, not per request.
    pub(crate) fn post_to(&self, url: &reqwest::Url) -> reqwest::RequestBuilder {
        self.http.post(url.clone())
    }

    /// Sends `request` and reads the whole answer; no answer is a transient error.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer> {
        let mut response = request
            .send()
            .await
            .map_err(|e| failure::request(self.provider, &self.base, &e))?;
        let status = response.status().as_u16();
        // Taken, not cloned: the body is read without them.
        let headers = std::mem::take(response.headers_mut());
        let body = response
            .bytes()
            .await
            .map_err(|e| failure::request(self.provider, &self.base, &e))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
