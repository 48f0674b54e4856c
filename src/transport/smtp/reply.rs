//! SMTP replies and how lettre's results map onto mailroom's errors.
//!
//! 4xx → [`Error::Transient`]; 5xx → [`Error::Permanent`]; connection failures, resets,
//! unparsable or over-long replies and timeouts → [`Error::Transient`]. A server certificate that does
//! not verify is [`Error::Permanent`]: retrying cannot help until someone fixes the
//! certificate or the trusted CAs (`?ca=`), so a queue should not keep retrying it.

use lettre::transport::smtp::response::Response;

use super::limit::overlong;
use super::tls::rustls_error;
use super::{permanent, transient};
use crate::error::{DeliveryFailure, Error};
use crate::transport::Reply;

/// A server reply to one command, on a connection that is still usable.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) reply: Reply,
}

impl Answer {
    pub(crate) fn is_positive(&self) -> bool {
        self.reply.code < 400
    }

    /// The error this (negative) reply means, with the command it answered.
    pub(crate) fn error(&self, context: &str) -> Error {
        reply_error(self.reply.code, &self.reply.message, context)
    }
}

pub(crate) fn reply_error(code: u16, message: &str, context: &str) -> Error {
    let failure = DeliveryFailure::with_code(code, format!("{message} (reply to {context})"));
    if (400..500).contains(&code) {
        Error::Transient(failure)
    } else {
        Error::Permanent(failure)
    }
}

/// Sorts lettre's result into a reply (positive or negative) or a broken connection.
pub(crate) fn answer(
    result: Result<Response, lettre::transport::smtp::Error>,
) -> Result<Answer, lettre::transport::smtp::Error> {
    match result {
        Ok(response) => Ok(Answer {
            reply: Reply {
                code: code_number(&response.code().to_string()),
                message: response.message().collect::<Vec<_>>().join(" "),
            },
        }),
        Err(error) => match error.status() {
            Some(code) => {
                let message = std::error::Error::source(&error)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                Ok(Answer {
                    reply: Reply {
                        code: code_number(&code.to_string()),
                        message,
                    },
                })
            }
            None => Err(error),
        },
    }
}

fn code_number(code: &str) -> u16 {
    code.parse().unwrap_or(554)
}

/// The error for a connection that failed (no usable reply) while doing `context`.
pub(crate) fn broken(
    error: &(dyn std::error::Error + 'static),
    server: &str,
    context: &str,
) -> Error {
    if let Some(what) = overlong(error) {
        return transient(format!(
            "{server} sent an over-long reply during {context} ({what}); the connection was closed"
        ));
    }
    if let Some(rustls::Error::InvalidCertificate(reason)) = rustls_error(error) {
        return permanent(format!(
            "the TLS certificate of {server} is not trusted ({reason:?}); fix the server's certificate or trust its CA with `?ca=PATH`"
        ));
    }
    transient(format!(
        "connection to {server} failed during {context}: {}",
        chain(error)
    ))
}

pub(crate) fn timed_out(server: &str, context: &str, limit: std::time::Duration) -> Error {
    transient(format!(
        "no answer from {server} within {limit:?} during {context}"
    ))
}

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

/// The queue id in a final reply: Postfix's `queued as X`, Exim's `id=X`.
pub(crate) fn queue_id(message: &str) -> Option<String> {
    let clean = |s: &str| {
        let id: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect();
        let id = id.trim_end_matches('.').to_owned();
        (!id.is_empty()).then_some(id)
    };
    if let Some(i) = message.find("queued as ") {
        return clean(&message[i + "queued as ".len()..]);
    }
    message
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .and_then(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids() {
        assert_eq!(
            queue_id("2.0.0 Ok: queued as 4Xyz12AbC").as_deref(),
            Some("4Xyz12AbC")
        );
        assert_eq!(
            queue_id("OK id=1tQ8ab-000123-4X").as_deref(),
            Some("1tQ8ab-000123-4X")
        );
        assert_eq!(queue_id("Message accepted for delivery"), None);
    }

    #[test]
    fn classes() {
        assert!(reply_error(451, "try later", "DATA").is_transient());
        assert!(reply_error(550, "no such user", "RCPT").is_permanent());
    }
}
