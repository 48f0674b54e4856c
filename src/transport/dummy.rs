//! `dummy:`: accepts every message and delivers nothing.

use async_trait::async_trait;

use super::{Delivery, Envelope, Transport};
use crate::error::Result;
use crate::message::Email;
use crate::render::Rendered;

/// A transport that accepts every message and delivers nothing (Django's dummy backend).
///
/// It still checks that the message has recipients and can be addressed.
#[derive(Debug, Clone, Copy, Default)]
pub struct DummyTransport;

impl DummyTransport {
    /// The dummy transport.
    pub fn new() -> Self {
        DummyTransport
    }
}

#[async_trait]
impl Transport for DummyTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        let span = super::send_span("dummy", message);
        span.in_scope(|| dropped(message.envelope()));
        Ok(Delivery::local(message))
    }

    /// Addresses the message without rendering it: there is nothing to write.
    async fn send(&self, email: &Email) -> Result<Delivery> {
        unrendered(email, Envelope::of(email)?)
    }

    /// Addresses the message to `recipients` without rendering it.
    async fn send_to(&self, email: &Email, recipients: &[String]) -> Result<Delivery> {
        unrendered(email, Envelope::of(email)?.only(recipients)?)
    }
}

fn dropped(envelope: &Envelope) {
    tracing::debug!(
        recipients = envelope.to().len(),
        "dummy transport dropped a message"
    );
}

/// The delivery of a message the dummy transport did not render: its own Message-ID, if any.
fn unrendered(email: &Email, envelope: Envelope) -> Result<Delivery> {
    let span = tracing::info_span!(
        "mailroom.send",
        transport = "dummy",
        message_id = email.message_id().unwrap_or(""),
        recipients = envelope.to().len(),
    );
    span.in_scope(|| dropped(&envelope));
    Ok(Delivery::accepted_by_all(
        email.message_id().map(str::to_owned),
        &envelope,
    ))
}
