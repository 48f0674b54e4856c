//! Delivery: the [`Transport`] trait and its implementations.
//!
//! Every transport sends one [`Email`] (or a batch) and answers with a [`Delivery`]: which
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
//! let sent = transport::send_mail("Hello", "Body", "a@example.com", &["b@example.com"], &memory).await?;
//! assert_eq!(sent, 1);
//! # Ok(()) }
//! ```

mod console;
mod dummy;
mod envelope;
mod file;
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

pub use console::ConsoleTransport;
pub use dummy::DummyTransport;
pub(crate) use envelope::Envelope;
pub use file::FileTransport;
pub use memory::{MemoryTransport, Outbox, SentMessage};
#[cfg(feature = "smtp")]
pub use smtp::{SmtpBuilder, SmtpTransport, TlsMode};

/// The environment variable that names the default transport URL.
pub const TRANSPORT_ENV: &str = "MAILROOM_TRANSPORT";

/// Something that delivers messages.
///
/// Each transport implements one method, [`send_to`](Transport::send_to): deliver a
/// message to some of its envelope recipients. [`send`](Transport::send) (every
/// recipient) and [`send_batch`](Transport::send_batch) are built on it.
///
/// Object safe: [`from_url`] returns an `Arc<dyn Transport>`.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Delivers one message to every recipient (To, Cc and Bcc; Bcc only on the envelope).
    ///
    /// Succeeds when at least one recipient was accepted; the others are listed in
    /// [`Delivery::deferred`] (4xx: try them again later, with [`send_to`](Self::send_to))
    /// and [`Delivery::rejected`] (5xx: give up on them). Fails with [`Error::Transient`]
    /// or [`Error::Permanent`] when nothing was delivered.
    async fn send(&self, email: &Email) -> Result<Delivery> {
        let everyone = Envelope::of(email, email.needs_smtputf8())?.to;
        self.send_to(email, &everyone).await
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
    /// boundaries are fresh unless the transport renders deterministically). The result
    /// is as for [`send`](Self::send).
    async fn send_to(&self, email: &Email, recipients: &[String]) -> Result<Delivery>;

    /// Delivers several messages; one result per message, in order.
    ///
    /// The default sends them one after the other; the SMTP transport sends them over as
    /// many pooled connections as it may open.
    async fn send_batch(&self, emails: &[Email]) -> Vec<Result<Delivery>> {
        let mut results = Vec::with_capacity(emails.len());
        for email in emails {
            results.push(self.send(email).await);
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
    pub(crate) fn local(message_id: Option<String>, envelope: &Envelope) -> Self {
        Delivery {
            message_id,
            accepted: envelope.to.clone(),
            deferred: Vec::new(),
            rejected: Vec::new(),
            reply: None,
            queue_id: None,
        }
    }
}

/// Sends one plain-text message, as Django's `send_mail`; returns the number of messages
/// delivered (1).
pub async fn send_mail<R: AsRef<str>>(
    subject: &str,
    message: &str,
    from_email: &str,
    recipient_list: &[R],
    transport: &dyn Transport,
) -> Result<usize> {
    let email = plain_email(subject, message, from_email, recipient_list)?;
    transport.send(&email).await.map(|_| 1)
}

/// Sends several plain-text messages over one transport, as Django's `send_mass_mail`:
/// each item is `(subject, message, from_email, recipient_list)`. Returns the number of
/// messages delivered; when one fails, the first failure is returned after every message
/// was tried.
pub async fn send_mass_mail<S, R>(
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
pub(crate) fn send_span(transport: &'static str, email: &Email) -> tracing::Span {
    tracing::info_span!(
        "mailroom.send",
        transport,
        message_id = email.message_id().unwrap_or(""),
        recipients = email.recipients().len(),
    )
}

/// The `Message-ID` of a rendered message, read from its header block.
pub(crate) fn rendered_message_id(bytes: &[u8]) -> Option<String> {
    let end = find(bytes, b"\r\n\r\n").unwrap_or(bytes.len());
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("message-id") {
            let mut value = value.trim().to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_id_from_headers() {
        let bytes = b"From: a@b\r\nMessage-ID: <x@y>\r\nSubject: s\r\n\r\nMessage-ID: <body@z>\r\n";
        assert_eq!(rendered_message_id(bytes).as_deref(), Some("<x@y>"));
        assert_eq!(rendered_message_id(b"From: a@b\r\n\r\nbody"), None);
    }
}
