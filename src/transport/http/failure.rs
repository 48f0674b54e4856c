//! How a provider's answer becomes an error: one classifier for every HTTP transport.
//!
//! 429 and 5xx are transient, with the server's `Retry-After` (seconds or an HTTP date)
//! as the delay; every other non-success status is permanent. Timeouts and connection
//! failures are transient.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::error::{DeliveryFailure, Error};

/// The longest wait a server's `Retry-After` may ask for; longer asks are cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The error for a provider's non-success answer: `status`, the provider's error `code`
/// (its own, e.g. Postmark's `ErrorCode`) and `message`.
pub(crate) fn status(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    code: Option<&str>,
    message: &str,
) -> Error {
    let message = message.trim();
    let message = if message.is_empty() {
        "(no error message)"
    } else {
        message
    };
    let text = match code {
        Some(code) => format!("{provider} answered: {message} (error code {code})"),
        None => format!("{provider} answered: {message}"),
    };
    let failure = DeliveryFailure::with_code(status, text);
    if status == 429 || status >= 500 {
        match retry_after(headers) {
            Some(delay) => Error::Transient(failure.with_retry_after(delay)),
            None => Error::Transient(failure),
        }
    } else {
        Error::Permanent(failure)
    }
}

/// The error for a request that got no answer: transient (timeouts, refused or reset
/// connections); a request that could not even be built is permanent.
pub(crate) fn request(provider: &str, base: &str, err: &reqwest::Error) -> Error {
    // The URL is the endpoint's, which holds no credential; describe it ourselves anyway.
    let mut text = if err.is_timeout() {
        format!("{provider}: the request to {base} timed out")
    } else if err.is_connect() {
        format!("{provider}: cannot connect to {base}")
    } else {
        format!("{provider}: the request to {base} failed")
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_builder() {
        Error::Permanent(DeliveryFailure::local(text))
    } else {
        Error::Transient(DeliveryFailure::local(text))
    }
}

/// The delay a `Retry-After` header asks for: delay-seconds or an HTTP date (RFC 9110
/// §10.2.3), at most a day.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(secs) = value.parse::<f64>() {
        Duration::try_from_secs_f64(secs.max(0.0)).ok()?
    } else {
        let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        (date.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry).unwrap());
        h
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let d = retry_after(&headers(&later)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(retry_after(&headers("99999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_are_classified_once() {
        let e = status(
            "postmark",
            429,
            &headers("3"),
            Some("429"),
            "Rate limit exceeded",
        );
        let Error::Transient(f) = &e else {
            panic!("{e}")
        };
        assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(f.code, Some(429));
        assert!(status("x", 503, &HeaderMap::new(), None, "").is_transient());
        let e = status(
            "postmark",
            422,
            &headers("3"),
            Some("300"),
            "Invalid 'To' address",
        );
        assert!(e.is_permanent());
        assert_eq!(
            e.to_string(),
            "permanent delivery failure: 422 postmark answered: Invalid 'To' address (error code 300)"
        );
    }
}
