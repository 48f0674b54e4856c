//! Transports that deliver through an email provider's HTTP API (feature `http`).
//!
//! | URL | transport | API |
//! |---|---|---|
//! | `postmark://SERVER_TOKEN@api.postmarkapp.com[?message_stream=…]` | [`PostmarkTransport`] | `POST /email`, `/email/batch` (JSON) |
//! | `resend://API_KEY@api.resend.com` | [`ResendTransport`] | `POST /emails`, `/emails/batch` (JSON) |
//! | `sendgrid://API_KEY@api.sendgrid.com` | [`SendGridTransport`] | `POST /v3/mail/send` (JSON) |
//! | `mailgun://api:KEY@api.mailgun.net/DOMAIN` | [`MailgunTransport`] | `POST /v3/DOMAIN/messages.mime` (raw MIME) |
//! | `ses://ACCESS_KEY_ID:SECRET@email.REGION.amazonaws.com[?session_token=…&configuration_set=…]` | [`SesTransport`] | SES v2 `POST /v2/email/outbound-emails`, `Content.Raw`, SigV4 |
//!
//! Credentials are the URL's percent-encoded user information; they never appear in
//! `Debug` output or errors. A port may be given; `?tls=none` selects plain `http://` and
//! is accepted for a loopback host only (tests, local mock servers); `?timeout=` bounds
//! each whole request (default 30 s; connecting is bounded by 10 s or less).
//!
//! Raw-MIME APIs (SES, Mailgun) send the rendered bytes, DKIM-signed if the caller signed them;
//! JSON APIs (Postmark, Resend, SendGrid) get the message's own fields (`Rendered::email`)
//! and the provider writes (and signs) the MIME. What a JSON API cannot carry (an attached
//! message, a header twice where the API keys headers by name) is an
//! [`Error::InvalidMessage`](crate::Error::InvalidMessage) naming the field, never a
//! silent drop.
//!
//! Errors: 429 and 5xx answers, timeouts and connection failures are
//! [`Error::Transient`](crate::Error::Transient), with the provider's `Retry-After` in
//! [`DeliveryFailure::retry_after`](crate::DeliveryFailure::retry_after); other 4xx answers
//! are [`Error::Permanent`](crate::Error::Permanent), with the provider's own message and
//! error code.

mod client;
mod endpoint;
mod failure;
mod json;
mod mailgun;
mod postmark;
mod resend;
mod sendgrid;
mod ses;
mod sigv4;

pub use mailgun::MailgunTransport;
pub use postmark::PostmarkTransport;
pub use resend::ResendTransport;
pub use sendgrid::SendGridTransport;
pub use ses::SesTransport;

use std::sync::Arc;

use super::Transport;
use crate::error::Result;

/// Builds the HTTP transport for `scheme` (lowercase) from `url`; errors name `field`.
pub(crate) fn from_url(scheme: &str, url: &str, field: &str) -> Option<Result<Arc<dyn Transport>>> {
    fn arc<T: Transport + 'static>(t: Result<T>) -> Result<Arc<dyn Transport>> {
        t.map(|t| Arc::new(t) as Arc<dyn Transport>)
    }
    Some(match scheme {
        "postmark" => arc(PostmarkTransport::from_url_field(url, field)),
        "resend" => arc(ResendTransport::from_url_field(url, field)),
        "sendgrid" => arc(SendGridTransport::from_url_field(url, field)),
        "mailgun" => arc(MailgunTransport::from_url_field(url, field)),
        "ses" => arc(SesTransport::from_url_field(url, field)),
        _ => return None,
    })
}

/// The URL schemes of the HTTP transports.
pub(crate) const SCHEMES: &[&str] = &["ses", "postmark", "resend", "sendgrid", "mailgun"];
