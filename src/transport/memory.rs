//! `memory:`: keeps every message in an [`Outbox`] that tests inspect.
//!
//! `memory:` writes to the process-wide default outbox ([`Outbox::global`], also
//! `mailroom::testing::outbox()`), the way Django's locmem backend fills
//! `django.core.mail.outbox`; `memory:NAME` writes to a named one ([`Outbox::named`]).
//! Tests that run in parallel are better served by their own [`MemoryTransport::new`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_trait::async_trait;
use tracing::Instrument;

use super::{Delivery, Transport};
use crate::error::Result;
use crate::message::{Address, Email};
use crate::render::Rendered;

/// A message a [`MemoryTransport`] received: the message, its envelope and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    rendered: Rendered,
}

impl SentMessage {
    /// The message as it was rendered: as given, after the HTML pipeline when that ran,
    /// with the `Date` and `Message-ID` it was sent with.
    pub fn email(&self) -> &Email {
        self.rendered.email()
    }
    /// The envelope sender (`MAIL FROM`).
    pub fn envelope_from(&self) -> &str {
        self.rendered.envelope().from()
    }
    /// The envelope recipients (`RCPT TO`) the message went to: To, Cc and Bcc for
    /// [`Transport::send`], the ones named for [`Transport::send_to`].
    pub fn envelope_to(&self) -> &[String] {
        self.rendered.envelope().to()
    }
    /// The rendered bytes, as an SMTP server would have received them.
    pub fn bytes(&self) -> &[u8] {
        self.rendered.bytes()
    }
    /// What the transport was given: bytes, envelope and Message-ID.
    pub fn rendered(&self) -> &Rendered {
        &self.rendered
    }
    /// The rendered message as text (lossy for non-UTF-8 bytes).
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
    /// The subject, as given.
    pub fn subject(&self) -> Option<&str> {
        self.email().subject()
    }
    /// The `Message-ID` that was rendered.
    pub fn message_id(&self) -> Option<&str> {
        Some(self.rendered.message_id())
    }
    /// `true` when `address` (compared without case, in its Unicode or punycode form) is
    /// an envelope recipient the message went to.
    pub fn is_sent_to(&self, address: &str) -> bool {
        let wanted = Address::parse(address)
            .map(|a| a.email().to_owned())
            .unwrap_or_else(|_| address.to_owned());
        let on_envelope = |a: &str| self.envelope_to().iter().any(|e| e.eq_ignore_ascii_case(a));
        on_envelope(&wanted)
            || self
                .email()
                .recipients()
                .iter()
                .filter(|a| a.email().eq_ignore_ascii_case(&wanted))
                .any(|a| {
                    on_envelope(a.email())
                        || a.ascii_email_for("to")
                            .is_ok_and(|ascii| on_envelope(&ascii))
                })
    }
}

/// A shared list of sent messages. Cloning gives another handle on the same list.
///
/// Test assertions (`sent_to`, `assert_sent_to`, `subject_contains`...) are in
/// [`mailroom::testing`](crate::testing).
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    messages: Arc<Mutex<Vec<SentMessage>>>,
}

impl Outbox {
    /// A new, empty outbox of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide default outbox that `memory:` writes to.
    pub fn global() -> Outbox {
        static GLOBAL: OnceLock<Outbox> = OnceLock::new();
        GLOBAL.get_or_init(Outbox::new).clone()
    }

    /// The process-wide outbox named `name`, which `memory:NAME` writes to.
    pub fn named(name: &str) -> Outbox {
        static NAMED: OnceLock<Mutex<HashMap<String, Outbox>>> = OnceLock::new();
        let map = NAMED.get_or_init(Default::default);
        let mut map = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(name.to_owned()).or_default().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SentMessage>> {
        // A panicking test must not poison the outbox for the next one.
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of every message, oldest first.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.lock().clone()
    }

    /// The number of messages.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// `true` when no message was sent.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The most recent message.
    pub fn last(&self) -> Option<SentMessage> {
        self.lock().last().cloned()
    }

    /// Empties the outbox (call it at the start of a test that uses a shared outbox).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Removes and returns every message.
    pub fn take(&self) -> Vec<SentMessage> {
        std::mem::take(&mut *self.lock())
    }

    pub(crate) fn push(&self, message: SentMessage) {
        self.lock().push(message);
    }
}

/// A transport that keeps messages in an [`Outbox`] instead of delivering them.
///
/// It keeps what it is given ([`Rendered`]): the bytes as an SMTP server would receive
/// them, the envelope, and the message they were rendered from.
#[derive(Debug, Clone, Default)]
pub struct MemoryTransport {
    outbox: Outbox,
}

impl MemoryTransport {
    /// A transport with an outbox of its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// A transport writing to `outbox` (e.g. [`Outbox::global`]).
    pub fn with_outbox(outbox: Outbox) -> Self {
        MemoryTransport { outbox }
    }

    /// A handle on the outbox.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        let span = super::send_span("memory", message);
        async move {
            self.outbox.push(SentMessage {
                rendered: message.clone(),
            });
            Ok(Delivery::local(message))
        }
        .instrument(span)
        .await
    }
}
