//! Unsubscribe tokens: HMAC-SHA256 over the recipient, the list and an expiry, so that an
//! unsubscribe URL authorises its own opt-out and nothing else.
//!
//! The details are documented on the public items.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::address::normalize_field;
use crate::error::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The token format's version byte.
const VERSION: u8 = 1;
/// The tag's length: a full HMAC-SHA256 output.
const TAG: usize = 32;
/// The shortest secret taken (NIST SP 800-107: a key as long as the hash's output).
pub const MIN_SECRET: usize = 32;
/// The longest recipient taken: RFC 5321's 64-octet local part, `@`, 255-octet domain.
const MAX_RECIPIENT: usize = 320;
/// The longest list id taken, so a token stays a short URL segment.
const MAX_LIST: usize = 200;

/// The secret that issues and checks unsubscribe tokens. Its `Debug` output never shows it.
///
/// A token is URL-safe base64 (no padding) of `version ‖ expiry ‖ recipient ‖ list ‖ tag`,
/// the tag an HMAC-SHA256 of everything before it under the sender's secret. Checking
/// recomputes the tag and compares it in constant time (`hmac`'s `verify_slice`), then the
/// expiry: a token cannot be forged without the secret, altered to name another address
/// or list, cut short, or used after it expires.
///
/// ```
/// use chrono::{Duration, Utc};
/// use mailroom::deliverability::TokenKey;
///
/// let key = TokenKey::new(b"a secret of at least 32 bytes, from the config".to_vec())?;
/// let token = key.issue("ann@example.org", "news", Utc::now() + Duration::days(60))?;
/// let url = format!("https://example.com/unsubscribe/{token}");
/// let claims = key.verify(&token, Utc::now()).unwrap();
/// assert_eq!((claims.recipient.as_str(), claims.list.as_str()), ("ann@example.org", "news"));
/// # let _ = url; Ok::<(), mailroom::Error>(())
/// ```
#[derive(Clone)]
pub struct TokenKey {
    secret: Vec<u8>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey").finish_non_exhaustive()
    }
}

/// What a valid token says: who unsubscribes, from which list, and until when the token
/// is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The recipient, normalised as the suppression list stores it.
    pub recipient: String,
    /// The list id the opt-out is for.
    pub list: String,
    /// When the token stops being accepted.
    pub expires: DateTime<Utc>,
}

/// Why a token was refused. The messages say nothing about the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token at all: not base64url, cut short, or an unknown version.
    #[error("the unsubscribe token is malformed")]
    Malformed,
    /// The tag does not match: forged, altered or made with another secret.
    #[error("the unsubscribe token is not valid")]
    Forged,
    /// The token was valid, but its time is up.
    #[error("the unsubscribe token has expired")]
    Expired,
    /// The token is valid for another recipient or another list than the one asked about.
    #[error("the unsubscribe token is for another recipient or list")]
    OtherRecipient,
}

impl TokenKey {
    /// A key from a secret of at least [`MIN_SECRET`] bytes (a configuration error naming
    /// `unsubscribe_secret` otherwise).
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<TokenKey> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET {
            return Err(Error::configuration(
                "unsubscribe_secret",
                format!(
                    "is {} bytes; use at least {MIN_SECRET} random bytes",
                    secret.len()
                ),
            ));
        }
        Ok(TokenKey { secret })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        }
    }

    /// A token for `recipient` (normalised first) on `list`, good until `expires`.
    /// Errors name `recipient` or `list`.
    pub fn issue(&self, recipient: &str, list: &str, expires: DateTime<Utc>) -> Result<String> {
        let recipient = normalize_field("recipient", recipient)?;
        if recipient.len() > MAX_RECIPIENT {
            return Err(Error::invalid_address(
                "recipient",
                format!(
                    "is {} octets; an address has at most {MAX_RECIPIENT}",
                    recipient.len()
                ),
            ));
        }
        if list.is_empty() || list.len() > MAX_LIST || list.chars().any(char::is_control) {
            return Err(Error::invalid(
                "list",
                format!("must be 1 to {MAX_LIST} octets without control characters"),
            ));
        }
        let mut payload = Vec::with_capacity(1 + 8 + 4 + recipient.len() + list.len() + TAG);
        payload.push(VERSION);
        payload.extend_from_slice(&expires.timestamp().to_be_bytes());
        for part in [recipient.as_bytes(), list.as_bytes()] {
            // Both are checked above to fit: at most 320 and 200 octets.
            let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
            payload.extend_from_slice(&len.to_be_bytes());
            payload.extend_from_slice(part);
        }
        let mut mac = self.mac();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes());
        Ok(URL_SAFE_NO_PAD.encode(payload))
    }

    /// Checks `token` at time `now`: its tag first (constant time), then its expiry.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| TokenError::Malformed)?;
        if bytes.len() < 1 + 8 + 2 + 2 + TAG || bytes[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| TokenError::Forged)?;
        // Authentic from here on: the layout is ours, but still read it without panicking.
        let mut rest = &payload[1..];
        let mut take = |n: usize| -> Result<&[u8], TokenError> {
            if rest.len() < n {
                return Err(TokenError::Malformed);
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let expiry = i64::from_be_bytes(take(8)?.try_into().map_err(|_| TokenError::Malformed)?);
        let mut text = || -> Result<String, TokenError> {
            let len = take(2)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            String::from_utf8(take(len)?.to_vec()).map_err(|_| TokenError::Malformed)
        };
        let recipient = text()?;
        let list = text()?;
        let expires = Utc
            .timestamp_opt(expiry, 0)
            .single()
            .ok_or(TokenError::Malformed)?;
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(Claims {
            recipient,
            list,
            expires,
        })
    }

    /// Checks `token` as [`verify`](Self::verify) does, and that it is for `recipient`
    /// (compared normalised) on `list`: a valid token for anyone else is
    /// [`TokenError::OtherRecipient`].
    pub fn verify_for(
        &self,
        token: &str,
        recipient: &str,
        list: &str,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        let claims = self.verify(token, now)?;
        let wanted =
            normalize_field("recipient", recipient).map_err(|_| TokenError::OtherRecipient)?;
        if claims.recipient != wanted || claims.list != list {
            return Err(TokenError::OtherRecipient);
        }
        Ok(claims)
    }
}
