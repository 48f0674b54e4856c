//! The SMTP envelope of a message: who it is from and every recipient, Bcc included.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::message::{Address, Email};

/// Who a message is from and who it goes to, as the transport sends them (`MAIL FROM`
/// and `RCPT TO`): every recipient, Bcc included, without repeats.
///
/// [`Envelope::of`] takes it from a message; [`Envelope::new`] builds one by hand, e.g.
/// to send rendered bytes to other recipients than the message's headers name, as
/// lettre's `Envelope` does. [`Envelope::smtputf8`] says whether an address needs a
/// server that offers SMTPUTF8 (RFC 6531).
///
/// ```
/// use mailroom::{Email, Envelope};
///
/// let email = Email::builder().from("Zoë <zoe@bücher.example>").to("a@example.com")
///     .bcc("b@example.com").build()?;
/// let envelope = Envelope::of(&email)?;
/// assert_eq!(envelope.from(), "zoe@xn--bcher-kva.example");
/// assert_eq!(envelope.to(), ["a@example.com", "b@example.com"]);
/// assert!(!envelope.smtputf8());
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    from: String,
    to: Vec<String>,
    smtputf8: bool,
}

impl Envelope {
    /// An envelope from `from` (empty for the null sender `<>` of a bounce) to `to`.
    ///
    /// Each address is a bare addr-spec (`local@domain`), checked as message addresses
    /// are; repeats (compared without ASCII case) are dropped. No recipient, or an invalid
    /// address, is an [`Error::InvalidMessage`] naming `envelope.to` or `envelope.from`.
    pub fn new<S: AsRef<str>>(from: &str, to: &[S]) -> Result<Self> {
        if !from.is_empty() {
            Address::from_parts("envelope.from", None, from)?;
        }
        let mut recipients = Vec::with_capacity(to.len());
        let mut seen = HashSet::with_capacity(to.len());
        for address in to {
            let address = address.as_ref();
            Address::from_parts("envelope.to", None, address)?;
            if seen.insert(address.to_ascii_lowercase()) {
                recipients.push(address.to_owned());
            }
        }
        if recipients.is_empty() {
            return Err(Error::invalid("envelope.to", "has no recipients"));
        }
        let smtputf8 = !from.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        Ok(Envelope {
            from: from.to_owned(),
            to: recipients,
            smtputf8,
        })
    }

    /// The envelope of `email`: from its `Sender` (else `From`), to its To, Cc and Bcc.
    ///
    /// A message that needs SMTPUTF8 ([`Email::needs_smtputf8`]: a non-ASCII local part)
    /// keeps its addresses as given; otherwise domains become punycode. A message without
    /// recipients is an error naming `to`.
    pub fn of(email: &Email) -> Result<Self> {
        Self::with_utf8(email, email.needs_smtputf8())
    }

    /// The envelope of `email`; with `utf8` the addresses stay as given (SMTPUTF8),
    /// otherwise domains become punycode and a non-ASCII local part is an error.
    pub(crate) fn with_utf8(email: &Email, utf8: bool) -> Result<Self> {
        let form = |field: &str, address: &Address| -> Result<String> {
            if utf8 {
                Ok(address.email().to_owned())
            } else {
                address.ascii_email_for(field)
            }
        };
        let from = form("from", email.envelope_from())?;
        let mut to: Vec<String> = Vec::with_capacity(email.recipients().len());
        let mut seen = HashSet::with_capacity(email.recipients().len());
        for address in email.recipients() {
            let address = form("to", address)?;
            if seen.insert(address.to_ascii_lowercase()) {
                to.push(address);
            }
        }
        if to.is_empty() {
            return Err(Error::invalid(
                "to",
                "has no recipients (to, cc and bcc are all empty)",
            ));
        }
        Ok(Envelope {
            from,
            to,
            smtputf8: utf8,
        })
    }

    /// The envelope sender (`MAIL FROM`); empty for the null sender.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// The envelope recipients (`RCPT TO`), in order: To, Cc, then Bcc.
    pub fn to(&self) -> &[String] {
        &self.to
    }

    /// `true` when an address is not ASCII, so the server must offer SMTPUTF8.
    pub fn smtputf8(&self) -> bool {
        self.smtputf8
    }

    /// This envelope with only `recipients` (compared without ASCII case, written as
    /// [`Envelope::to`] writes them), in envelope order. Each must be one of its
    /// recipients, and there must be at least one: else an error naming `recipients`.
    pub fn only(&self, recipients: &[String]) -> Result<Self> {
        if recipients.is_empty() {
            return Err(Error::invalid(
                "recipients",
                "is empty; name at least one of the message's envelope recipients",
            ));
        }
        // Sets, not nested scans: a message may have thousands of recipients.
        let key = |s: &str| s.to_ascii_lowercase();
        let ours: HashSet<String> = self.to.iter().map(|t| key(t)).collect();
        if let Some(stranger) = recipients.iter().find(|r| !ours.contains(&key(r))) {
            return Err(Error::invalid(
                "recipients",
                format!(
                    "names `{stranger}`, which is not one of the message's envelope recipients (to, cc or bcc); name them as a Delivery lists them"
                ),
            ));
        }
        let wanted: HashSet<String> = recipients.iter().map(|r| key(r)).collect();
        let to = self
            .to
            .iter()
            .filter(|t| wanted.contains(&key(t)))
            .cloned()
            .collect();
        Ok(Envelope {
            from: self.from.clone(),
            to,
            smtputf8: self.smtputf8,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bcc_on_envelope_and_punycode_domains() {
        let email = Email::builder()
            .from("Zoë <zoe@bücher.example>")
            .to("a@example.com")
            .cc("A@example.com")
            .bcc("b@example.com")
            .build()
            .unwrap();
        let env = Envelope::with_utf8(&email, false).unwrap();
        assert_eq!(env.from(), "zoe@xn--bcher-kva.example");
        assert_eq!(env.to(), ["a@example.com", "b@example.com"]);
        assert_eq!(
            Envelope::with_utf8(&email, true).unwrap().from(),
            "zoe@bücher.example"
        );
    }

    #[test]
    fn a_subset_of_the_recipients() {
        let email = Email::builder()
            .from("a@example.com")
            .to("b@example.com")
            .cc("c@bücher.example")
            .bcc("d@example.com")
            .build()
            .unwrap();
        let env = Envelope::with_utf8(&email, false).unwrap();
        let some = env
            .only(&["D@example.com".into(), "c@xn--bcher-kva.example".into()])
            .unwrap();
        assert_eq!(some.to(), ["c@xn--bcher-kva.example", "d@example.com"]);
        assert_eq!(some.from(), "a@example.com");
        for bad in [vec![], vec!["x@example.com".to_owned()]] {
            let err = env.only(&bad).unwrap_err();
            assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
            assert_eq!(err.field(), Some("recipients"));
        }
    }

    #[test]
    fn no_recipients_is_an_error() {
        let email = Email::builder().from("a@example.com").build().unwrap();
        let err = Envelope::with_utf8(&email, false).unwrap_err();
        assert_eq!(err.field(), Some("to"));
    }
}
