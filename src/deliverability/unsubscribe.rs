//! One-click unsubscribe end to end: [`Unsubscribe`] makes the link a message carries
//! (`List-Unsubscribe: <https://…/TOKEN>` with `List-Unsubscribe-Post`), and
//! [`Unsubscribe::opt_out`] checks a token a receiver POSTs back and records the opt-out.
//!
//! The details are documented on the public items.

use chrono::{DateTime, Duration, Utc};

use super::suppression::SuppressionStore;
use super::token::{Claims, TokenError, TokenKey};
use crate::error::{Error, Result};
use crate::message::ListUnsubscribe;

/// Makes unsubscribe links under an https base URL and records the opt-outs they carry.
///
/// A web handler is then a few lines: `POST /unsubscribe/{token}` calls
/// [`opt_out`](Unsubscribe::opt_out) and answers 200 (a second POST finds it recorded and
/// answers 200 again), 400 for [`OptOutError::Token`], 503 for [`OptOutError::Storage`];
/// `GET` shows a form that POSTs to the same URL, after [`Unsubscribe::verify`] to name
/// the address.
///
/// The opt-out is scoped to the token's list. `send_mail` applies a list's suppressions
/// to messages whose `List-Id` names that list (`List-Id: News <news.example.com>` is list
/// `news.example.com`): give bulk messages a `List-Id` and use its id in the tokens.
#[derive(Debug, Clone)]
pub struct Unsubscribe {
    key: TokenKey,
    base: String,
    validity: Duration,
}

/// A recorded opt-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// What the token said.
    pub claims: Claims,
    /// `false` when the opt-out was already recorded (a repeated POST).
    pub newly_recorded: bool,
}

/// Why an opt-out was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum OptOutError {
    /// The token was refused: answer 400 (it will never work).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The suppression list could not be written: answer 503 (the receiver retries).
    #[error(transparent)]
    Storage(#[from] Error),
}

impl Unsubscribe {
    /// Links `BASE/TOKEN` under `base` (an `https` URL, else a configuration error naming
    /// `unsubscribe_url`), with tokens valid for 180 days.
    pub fn new(key: TokenKey, base: &str) -> Result<Unsubscribe> {
        let parsed = url::Url::parse(base).map_err(|e| {
            Error::configuration("unsubscribe_url", format!("`{base}` is not a URL: {e}"))
        })?;
        if parsed.scheme() != "https" || parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::configuration(
                "unsubscribe_url",
                format!(
                    "`{base}` must be an https URL without query or fragment (RFC 8058 one-click POSTs to it)"
                ),
            ));
        }
        Ok(Unsubscribe {
            key,
            base: parsed.as_str().trim_end_matches('/').to_owned(),
            validity: Duration::days(180),
        })
    }

    /// How long a link works after it is made (default 180 days: receivers may POST long
    /// after the message arrived).
    #[must_use]
    pub fn validity(mut self, validity: Duration) -> Self {
        self.validity = validity;
        self
    }

    /// The one-click URL for `recipient` on `list`, valid from `now`.
    pub fn link(&self, recipient: &str, list: &str, now: DateTime<Utc>) -> Result<String> {
        let token = self.key.issue(recipient, list, now + self.validity)?;
        Ok(format!("{}/{token}", self.base))
    }

    /// The message's [`ListUnsubscribe`]: one-click through [`link`](Self::link).
    pub fn list_unsubscribe(
        &self,
        recipient: &str,
        list: &str,
        now: DateTime<Utc>,
    ) -> Result<ListUnsubscribe> {
        Ok(ListUnsubscribe::one_click(self.link(recipient, list, now)?))
    }

    /// Checks `token` at `now` without recording anything: what a `GET` confirmation page
    /// shows (the address and the list) before its form POSTs back.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        self.key.verify(token, now)
    }

    /// Checks `token` at `now` and records its opt-out in `store` (idempotently).
    pub async fn opt_out(
        &self,
        store: &SuppressionStore,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<OptOut, OptOutError> {
        let claims = self.key.verify(token, now)?;
        let newly_recorded = store.record_opt_out(&claims, "one-click").await?;
        Ok(OptOut {
            claims,
            newly_recorded,
        })
    }
}
