//! The SMTP envelope of a message: who it is from and every recipient, Bcc included.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::message::{Address, Email};

/// The envelope sender and recipients, in the form the transport sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// `MAIL FROM` address.
    pub(crate) from: String,
    /// `RCPT TO` addresses: To, Cc, then Bcc, without repeats.
    pub(crate) to: Vec<String>,
}

impl Envelope {
    /// The envelope of `email`; with `utf8` the addresses stay as given (SMTPUTF8),
    /// otherwise domains become punycode and a non-ASCII local part is an error.
    pub(crate) fn of(email: &Email, utf8: bool) -> Result<Self> {
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
        Ok(Envelope { from, to })
    }

    /// This envelope with only `recipients` (compared without ASCII case, written as
    /// [`Envelope::to`] writes them), in envelope order. Each must be one of its
    /// recipients, and there must be at least one: else an error naming `recipients`.
    pub(crate) fn only(self, recipients: &[String]) -> Result<Self> {
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
            .into_iter()
            .filter(|t| wanted.contains(&key(t)))
            .collect();
        Ok(Envelope {
            from: self.from,
            to,
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
        let env = Envelope::of(&email, false).unwrap();
        assert_eq!(env.from, "zoe@xn--bcher-kva.example");
        assert_eq!(env.to, ["a@example.com", "b@example.com"]);
        assert_eq!(
            Envelope::of(&email, true).unwrap().from,
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
        let env = Envelope::of(&email, false).unwrap();
        let some = env
            .clone()
            .only(&["D@example.com".into(), "c@xn--bcher-kva.example".into()])
            .unwrap();
        assert_eq!(some.to, ["c@xn--bcher-kva.example", "d@example.com"]);
        assert_eq!(some.from, "a@example.com");
        for bad in [vec![], vec!["x@example.com".to_owned()]] {
            let err = env.clone().only(&bad).unwrap_err();
            assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
            assert_eq!(err.field(), Some("recipients"));
        }
    }

    #[test]
    fn no_recipients_is_an_error() {
        let email = Email::builder().from("a@example.com").build().unwrap();
        let err = Envelope::of(&email, false).unwrap_err();
        assert_eq!(err.field(), Some("to"));
    }
}
