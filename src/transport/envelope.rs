//! The SMTP envelope of a message: who it is from and every recipient, Bcc included.

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
        for address in email.recipients() {
            let address = form("to", address)?;
            if !to.iter().any(|seen| seen.eq_ignore_ascii_case(&address)) {
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
    fn no_recipients_is_an_error() {
        let email = Email::builder().from("a@example.com").build().unwrap();
        let err = Envelope::of(&email, false).unwrap_err();
        assert_eq!(err.field(), Some("to"));
    }
}
