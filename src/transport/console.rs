//! `console:`: writes each message to standard output.

use std::io::Write;

use async_trait::async_trait;
use tracing::Instrument;

use super::{Delivery, Envelope, Transport, rendered_message_id};
use crate::error::{Error, Result};
use crate::message::Email;
use crate::render::RenderOptions;

/// Writes each rendered message to standard output, followed by a line of dashes
/// (Django's console backend). For development.
#[derive(Debug, Clone, Default)]
pub struct ConsoleTransport {
    options: RenderOptions,
}

impl ConsoleTransport {
    /// A console transport with default rendering.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renders with these options (e.g. DKIM signers); SMTPUTF8 is still chosen per message.
    pub fn with_render_options(options: RenderOptions) -> Self {
        ConsoleTransport { options }
    }
}

#[async_trait]
impl Transport for ConsoleTransport {
    async fn send(&self, email: &Email) -> Result<Delivery> {
        let span = super::send_span("console", email);
        async move {
            let utf8 = email.needs_smtputf8();
            let envelope = Envelope::of(email, utf8)?;
            let bytes = email.render(&self.options.clone().smtputf8(utf8))?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.write_all(b"\n-------------------------------------------------------------------------------\n"))
                .and_then(|()| out.flush())
                .map_err(|e| Error::io("standard output", e))?;
            Ok(Delivery::local(rendered_message_id(&bytes), &envelope))
        }
        .instrument(span)
        .await
    }
}
