//! Delivery: the [`Transport`] trait and its implementations.
//!
//! Transports send what was rendered: a [`Rendered`] message ([`Email::prepare`]: the
//! bytes, the envelope, the Message-ID), rendered once by the caller with the caller's
//! [`RenderOptions`] (DKIM signers included), so no transport renders
//! or holds render options. [`Transport::send`] renders with the defaults for you.
//!
//! Every transport answers with a [`Delivery`]: which
//! recipients the server accepted, which it deferred (4xx) or rejected (5xx) and why, its
//! final reply and the queue id when the reply names one. [`Transport::send_to`] sends a
//! message again to some of its recipients only (the deferred ones). Failures are typed: [`Error::Transient`] (4xx replies,
//! connection failures, resets, timeouts: retry later) and [`Error::Permanent`] (5xx
//! replies, a message the server can never take).
//!
//! | URL | transport |
//! |---|---|
//! | `smtp://[user[:password]@]host[:port][?tls=…]` | [`SmtpTransport`] (feature `smtp`) |
//! | `smtps://[user[:password]@]host[:port]` | [`SmtpTransport`], implicit TLS (port 465) |
//! | `postmark://SERVER_TOKEN@api.postmarkapp.com[?message_stream=…]` | [`PostmarkTransport`] (feature `http`) |
//! | `resend://API_KEY@api.resend.com` | [`ResendTransport`] (feature `http`) |
//! | `sendgrid://API_KEY@api.sendgrid.com` | [`SendGridTransport`] (feature `http`) |
//! | `mailgun://api:KEY@api.mailgun.net/DOMAIN` | [`MailgunTransport`] (feature `http`): raw MIME |
//! | `ses://ACCESS_KEY_ID:SECRET@email.REGION.amazonaws.com[?session_token=…&configuration_set=…]` | [`SesTransport`] (feature `http`): raw MIME, SigV4 |
//! | `file:DIR` | [`FileTransport`]: one `.eml` per message, written atomically |
//! | `console:` | [`ConsoleTransport`]: messages to standard output |
//! | `memory:` / `memory:NAME` | [`MemoryTransport`]: an [`Outbox`] tests inspect |
//! | `dummy:` | [`DummyTransport`]: accepts everything, delivers nothing |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> mailroom::Result<()> {
//! use mailroom::transport::{self, MemoryTransport, Transport};
//! use mailroom::Email;
//!
//! let memory = MemoryTransport::new();
//! let outbox = memory.outbox();
//! let email = Email::builder().from("a@example.com").to("b@example.com").bcc("c@example.com")
//!     .subject("hi").text("hello").build()?;
//! let delivery = memory.send(&email).await?;
//! assert_eq!(delivery.accepted, ["b@example.com", "c@example.com"]);
//! assert_eq!(outbox.count(), 1);
//!
//! let sent = transport::send_text("Hello", "Body", "a@example.com", &["b@example.com"], &memory).await?;
//! assert_eq!(sent, 1);
//! # Ok(()) }
//! ```

mod console;
mod dummy;
mod file;
#[cfg(feature = "http")]
mod http;
mod memory;
#[cfg(feature = "smtp")]
mod smtp;
mod url;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::message::Email;
use crate::render::{RenderOptions, Rendered};

pub use crate::message::Envelope;
pub use console::ConsoleTransport;
pub use dummy::DummyTransport;
pub use file::FileTransport;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::{
    MailgunTransport, PostmarkTransport, ResendTransport, SendGridTransport, SesTransport,
};
pub use memory::{MemoryTransport, Outbox, SentMessage};
#[cfg(feature = "smtp")]
pub use smtp::{SmtpBuilder, SmtpTransport, TlsMode};

/// The environment variable that names the default transport URL.
pub const TRANSPORT_ENV: &str = "MAILROOM_TRANSPORT";

/// Something that delivers messages.
///
/// Each transport implements one method, [`send_rendered`](Transport::send_rendered):
/// deliver bytes that were rendered already ([`Email::prepare`]) on their envelope. The
/// others are built on it: [`send`](Transport::send) and [`send_to`](Transport::send_to)
/// render with the default [`RenderOptions`] first (render yourself to sign with DKIM or
/// tune the HTML pipeline), and [`send_batch`](Transport::send_batch) renders each message
/// and hands the batch to [`send_rendered_batch`](Transport::send_rendered_batch), which the
/// SMTP transport spreads over its pool.
///
/// Object safe: [`from_url`] returns an `Arc<dyn Transport>`.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Delivers a rendered message to every recipient of its envelope.
    ///
    /// Succeeds when at least one recipient was accepted; the others are listed in
    /// [`Delivery::deferred`] (4xx: try them again later, on [`Rendered::only`] those) and
    /// [`Delivery::rejected`] (5xx: give up on them). Fails with [`Error::Transient`] or
    /// [`Error::Permanent`] when nothing was delivered. [`Delivery::message_id`] is the
    /// rendered message's.
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery>;

    /// Renders `email` with the default [`RenderOptions`] and delivers it to every recipient
    /// (To, Cc and Bcc; Bcc only on the envelope), as [`send_rendered`](Self::send_rendered).
    async fn send(&self, email: &Email) -> Result<Delivery> {
        self.send_rendered(&email.prepare(&RenderOptions::default())?)
            .await
    }

    /// Delivers one message to some of its envelope recipients only, e.g. to retry the
    /// ones a server [deferred](Delivery::deferred) without sending the message again to
    /// those that accepted it.
    ///
    /// `recipients` are written as [`Delivery::accepted`] and [`Delivery::deferred`] list
    /// them (compared without ASCII case); each must be one of the message's To, Cc or Bcc
    /// addresses, else the result is an [`Error::InvalidMessage`] naming `recipients` (as
    /// it is when the list is empty). Only the envelope changes: the message is rendered
    /// exactly as [`send`](Self::send) renders it, its headers naming every recipient (Bcc
    /// left out). A message whose `Message-ID` and `Date` are set renders the same
    /// headers each time (one without them gets fresh ones per rendering, and multipart
    /// boundaries are fresh unless rendering is deterministic); to send the very same
    /// bytes again, keep the [`Rendered`] and send [`Rendered::only`] the recipients.
    async fn send_to(&self, email: &Email, recipients: &[String]) -> Result<Delivery> {
        let rendered = email.prepare(&RenderOptions::default())?;
        self.send_rendered(&rendered.only(recipients)?).await
    }

    /// Delivers several messages, rendered with the default [`RenderOptions`]; one result
    /// per message, in order. A message that fails to render is not sent (its result is
    /// the error); the others go to [`send_rendered_batch`](Self::send_rendered_batch).
    async fn send_batch(&self, emails: &[Email]) -> Vec<Result<Delivery>> {
        let options = RenderOptions::default();
        // The rendered messages move into the batch; each slot keeps only its error.
        let mut ready: Vec<Rendered> = Vec::with_capacity(emails.len());
        let mut failed: Vec<Option<Error>> = Vec::with_capacity(emails.len());
        for email in emails {
            match email.prepare(&options) {
                Ok(rendered) => {
                    ready.push(rendered);
                    failed.push(None);
                }
                Err(e) => failed.push(Some(e)),
            }
        }
        let mut sent = self.send_rendered_batch(&ready).await.into_iter();
        failed
            .into_iter()
            .map(|f| match f {
                Some(e) => Err(e),
                None => sent.next().unwrap_or_else(|| {
                    Err(Error::Transient(crate::error::DeliveryFailure::local(
                        "the transport returned fewer results than messages; the message was not sent",
                    )))
                }),
            })
            .collect()
    }

    /// Delivers several rendered messages; one result per message, in order.
    ///
    /// The default sends them one after the other; the SMTP transport sends them over as
    /// many pooled connections as it may open.
    async fn send_rendered_batch(&self, messages: &[Rendered]) -> Vec<Result<Delivery>> {
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            results.push(self.send_rendered(message).await);
        }
        results
    }

    /// Closes what the transport holds open (pooled SMTP connections say `QUIT`), e.g.
    /// before a worker exits. The transport stays usable; the default does nothing.
    async fn close(&self) {}
}

impl dyn Transport {
    /// Builds a transport from its URL (see the [module docs](self)); same as [`from_url`].
    pub fn from_url(url: &str) -> Result<Arc<dyn Transport>> {
        from_url(url)
    }

    /// Builds the transport that `MAILROOM_TRANSPORT` names; same as [`from_env`].
    pub fn from_env() -> Result<Arc<dyn Transport>> {
        from_env()
    }
}

/// Builds a transport from its URL (see the [module docs](self)).
///
/// Nothing connects yet: SMTP connections open on the first send. Bad URLs, and settings
/// that would send credentials in clear text to a host other than loopback, are
/// [`Error::Configuration`] errors that name the part at fault.
pub fn from_url(url: &str) -> Result<Arc<dyn Transport>> {
    url::parse(url, "transport")
}

/// Builds the transport that the `MAILROOM_TRANSPORT` environment variable names.
pub fn from_env() -> Result<Arc<dyn Transport>> {
    match std::env::var(TRANSPORT_ENV) {
        Ok(value) if !value.trim().is_empty() => url::parse(value.trim(), TRANSPORT_ENV),
        _ => Err(Error::configuration(
            TRANSPORT_ENV,
            "is not set; set it to a transport URL such as `smtp://localhost:25` or `console:`",
        )),
    }
}

/// What a transport did with one message.
///
/// Every envelope recipient it was sent to is in exactly one of `accepted`, `deferred`
/// and `rejected`. Serialises to the JSON line that `mailroom send` prints, in this field
/// order; a stored result without `deferred` reads back with it empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message's `Message-ID` (with angle brackets), as sent.
    pub message_id: Option<String>,
    /// Envelope recipients the server accepted.
    pub accepted: Vec<String>,
    /// Envelope recipients the server refused for now (a 4xx reply to `RCPT TO`, e.g.
    /// greylisting), with its reply: send the message to them again later with
    /// [`Transport::send_to`].
    #[serde(default)]
    pub deferred: Vec<Rejection>,
    /// Envelope recipients the server refused for good (a 5xx reply), with its reply.
    pub rejected: Vec<Rejection>,
    /// The server's final reply (absent for transports that have no server).
    pub reply: Option<Reply>,
    /// The server's queue id, when its reply names one (`queued as X`, `id=X`); the file
    /// name for `file:` transports.
    pub queue_id: Option<String>,
}

/// A recipient the server refused, for now ([`Delivery::deferred`]) or for good
/// ([`Delivery::rejected`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The envelope address.
    pub recipient: String,
    /// The reply code (e.g. 550).
    pub code: u16,
    /// The reply text.
    pub message: String,
}

/// An SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The reply code (e.g. 250).
    pub code: u16,
    /// The reply text, lines joined by a space.
    pub message: String,
}

impl Delivery {
    /// A delivery to every envelope recipient, for transports without a server.
    pub(crate) fn local(message: &Rendered) -> Self {
        Self::accepted_by_all(Some(message.message_id().to_owned()), message.envelope())
    }

    /// Every recipient of `envelope` accepted, nothing deferred or rejected, no server reply.
    pub(crate) fn accepted_by_all(message_id: Option<String>, envelope: &Envelope) -> Self {
        Delivery {
            message_id,
            accepted: envelope.to().to_vec(),
            deferred: Vec::new(),
            rejected: Vec::new(),
            reply: None,
            queue_id: None,
        }
    }
}

/// Sends one plain-text message now, shaped as Django's `send_mail`; returns the number of
/// messages delivered (1). (To send in the background, see [`crate::send_mail`], the task.)
pub async fn send_text<R: AsRef<str>>(
    subject: &str,
    message: &str,
    from_email: &str,
    recipient_list: &[R],
    transport: &dyn Transport,
) -> Result<usize> {
    let email = plain_email(subject, message, from_email, recipient_list)?;
    transport.send(&email).await.map(|_| 1)
}

/// The former name of [`send_text`], Django's; it read like the `send_mail` task, which
/// queues instead of sending.
#[deprecated(note = "renamed `send_text`: `send_mail` is the background task")]
pub async fn send_mail<R: AsRef<str>>(
    subject: &str,
    message: &str,
    from_email: &str,
    recipient_list: &[R],
    transport: &dyn Transport,
) -> Result<usize> {
    send_text(subject, message, from_email, recipient_list, transport).await
}

/// The former name of [`send_text_batch`], Django's.
#[deprecated(note = "renamed `send_text_batch`")]
pub async fn send_mass_mail<S, R>(
    datatuple: &[(S, S, S, Vec<R>)],
    transport: &dyn Transport,
) -> Result<usize>
where
    S: AsRef<str>,
    R: AsRef<str>,
{
    send_text_batch(datatuple, transport).await
}

/// Sends several plain-text messages now over one transport, shaped as Django's
/// `send_mass_mail`: each item is `(subject, message, from_email, recipient_list)`.
/// Returns the number of messages delivered; when one fails, the first failure is returned
/// after every message was tried.
pub async fn send_text_batch<S, R>(
    datatuple: &[(S, S, S, Vec<R>)],
    transport: &dyn Transport,
) -> Result<usize>
where
    S: AsRef<str>,
    R: AsRef<str>,
{
    let emails = datatuple
        .iter()
        .map(|(subject, message, from, to)| {
            plain_email(subject.as_ref(), message.as_ref(), from.as_ref(), to)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut sent = 0;
    let mut first_error = None;
    for result in transport.send_batch(&emails).await {
        match result {
            Ok(_) => sent += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(sent),
    }
}

fn plain_email<R: AsRef<str>>(subject: &str, message: &str, from: &str, to: &[R]) -> Result<Email> {
    let mut builder = Email::builder().from(from).subject(subject).text(message);
    for r in to {
        builder = builder.to(r.as_ref());
    }
    builder.build()
}

/// The span each message is sent in (the SMTP transport adds server details).
pub(crate) fn send_span(transport: &'static str, message: &Rendered) -> tracing::Span {
    tracing::info_span!(
        "mailroom.send",
        transport,
        message_id = message.message_id(),
        recipients = message.envelope().to().len(),
    )
}
