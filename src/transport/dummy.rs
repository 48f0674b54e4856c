//! `dummy:`: accepts every message and delivers nothing.

use async_trait::async_trait;
use tracing::Instrument;

use super::{Delivery, Envelope, Transport};
use crate::error::Result;
use crate::message::Email;

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
    async fn send_to(&self, email: &Email, recipients: &[String]) -> Result<Delivery> {
        let span = super::send_span("dummy", email);
        async move {
            let envelope = Envelope::of(email, email.needs_smtputf8())?.only(recipients)?;
            tracing::debug!(
                recipients = envelope.to.len(),
                "dummy transport dropped a message"
            );
            Ok(Delivery::local(
                email.message_id().map(str::to_owned),
                &envelope,
            ))
        }
        .instrument(span)
        .await
    }
}
