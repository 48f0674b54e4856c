//! [`Rendered`]: a message rendered once, with the envelope it is sent on.

use bytes::Bytes;

use super::RenderOptions;
use crate::error::Result;
use crate::message::{Email, Envelope};

/// A message rendered and addressed, ready for any transport: what
/// `Transport::send_rendered` takes (in the `transport` module, which imports this one).
///
/// [`Email::prepare`] makes one with the caller's [`RenderOptions`] (DKIM signers, the
/// HTML pipeline, deterministic output), so a message is rendered once, by its owner, and
/// every transport sends the same bytes. Cloning is cheap: the bytes are shared.
///
/// ```
/// use mailroom::{Email, RenderOptions};
///
/// let email = Email::builder().from("a@example.com").to("b@example.org").bcc("c@example.org")
///     .subject("hi").text("hello").build()?;
/// let rendered = email.prepare(&RenderOptions::deterministic())?;
/// assert_eq!(rendered.envelope().to(), ["b@example.org", "c@example.org"]);
/// assert_eq!(rendered.bytes(), email.render(&RenderOptions::deterministic())?);
/// assert!(rendered.message_id().ends_with("@example.com>"));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    email: Email,
    envelope: Envelope,
    bytes: Bytes,
    message_id: String,
}

impl Rendered {
    /// The message as it was written: after the HTML pipeline when that ran, with the
    /// `Date` and `Message-ID` the bytes carry. Transports that speak a provider's JSON
    /// rather than MIME read its fields from here.
    pub fn email(&self) -> &Email {
        &self.email
    }

    /// The envelope: the sender and every recipient (Bcc included), and whether the server
    /// must offer SMTPUTF8.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The RFC 5322 bytes, every line ending in CRLF.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `Message-ID` the bytes carry, with its angle brackets.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// `true` when the message needs a server that offers SMTPUTF8 (RFC 6531): its
    /// headers are UTF-8 (RFC 6532) because an address has a non-ASCII local part.
    pub fn smtputf8(&self) -> bool {
        self.envelope.smtputf8()
    }

    /// The same bytes on an envelope with only `recipients` (see [`Envelope::only`]), e.g.
    /// to send again to the recipients a server deferred.
    pub fn only(&self, recipients: &[String]) -> Result<Rendered> {
        Ok(Rendered {
            envelope: self.envelope.only(recipients)?,
            ..self.clone()
        })
    }
}

impl Email {
    /// Renders the message for sending and takes its envelope: one rendering, shared by
    /// every transport and every recipient.
    ///
    /// The headers are written as `options` say, except that a message that needs
    /// SMTPUTF8 ([`Email::needs_smtputf8`]) gets UTF-8 headers and one that does not gets
    /// ASCII ones, whatever [`RenderOptions::smtputf8`] says: the envelope decides. A
    /// message without recipients is an error naming `to`.
    pub fn prepare(&self, options: &RenderOptions) -> Result<Rendered> {
        let utf8 = self.needs_smtputf8();
        let envelope = Envelope::with_utf8(self, utf8)?;
        let output = if options.smtputf8 == utf8 {
            self.render_full(options)?
        } else {
            self.render_full(&options.clone().smtputf8(utf8))?
        };
        let message_id = format!("<{}>", output.ids.message_id);
        let mut email = match output.processed {
            Some(processed) => processed.into_owned(),
            None => self.clone(),
        };
        email.date = Some(output.ids.date);
        email.message_id = Some(message_id.clone());
        Ok(Rendered {
            email,
            envelope,
            bytes: Bytes::from(output.bytes),
            message_id,
        })
    }
}
