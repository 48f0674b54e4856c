//! The crate's one error type.
//!
//! Every fallible public function in mailroom returns [`Error`]. Its variants are the
//! categories a caller acts on differently: fix the input ([`Error::InvalidAddress`],
//! [`Error::HeaderInjection`], [`Error::InvalidMessage`]), retry later
//! ([`Error::Transient`]), give up ([`Error::Permanent`]), look at the storage
//! ([`Error::Queue`], [`Error::Io`]) or the settings ([`Error::Configuration`]).

use std::fmt;

/// A specialised `Result` whose error is [`mailroom::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in mailroom.
///
/// Messages are lowercase sentences that name the offending field and, where one exists,
/// the fix. Match on the variant to decide what to do:
///
/// ```
/// use mailroom::{Email, Error};
///
/// let err = Email::builder().from("zoe@example.com").subject("hi\r\nBcc: x@evil.example").build().unwrap_err();
/// assert!(matches!(err, Error::HeaderInjection { .. }));
/// assert_eq!(err.field(), Some("subject"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address (or display name) could not be parsed or is not allowed.
    #[error("invalid address in `{field}`: {reason}")]
    InvalidAddress {
        /// The field that holds the address, e.g. `to[1]`.
        field: String,
        /// What is wrong, and the fix where there is one.
        reason: String,
    },
    /// A value would have broken out of its header (CR, LF, NUL or another line break).
    #[error("header injection in `{field}`: {reason}")]
    HeaderInjection {
        /// The field that holds the value, e.g. `headers[0].value`.
        field: String,
        /// What was found.
        reason: String,
    },
    /// The message as a whole is not valid (bad JSON, an unknown field, a missing `from`...).
    #[error("invalid message: `{field}` {reason}")]
    InvalidMessage {
        /// The field at fault (`json` when the document itself does not parse).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Delivery failed in a way that may succeed later (4xx reply, connection error, timeout).
    #[error("transient delivery failure: {0}")]
    Transient(DeliveryFailure),
    /// Delivery failed for good (5xx reply, a message the server can never take).
    #[error("permanent delivery failure: {0}")]
    Permanent(DeliveryFailure),
    /// The task queue or its storage failed.
    #[error("queue error: {message}")]
    Queue {
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A setting (URL, key, option) is wrong.
    #[error("configuration error in `{field}`: {reason}")]
    Configuration {
        /// The setting at fault, e.g. `MAILROOM_TRANSPORT`.
        field: String,
        /// What is wrong, and the fix where there is one.
        reason: String,
    },
}

/// Details of a failed delivery: the server's reply when there was one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryFailure {
    /// The SMTP reply code (e.g. 451, 550), if the server answered.
    pub code: Option<u16>,
    /// The server's reply text, or a description of the local failure.
    pub message: String,
}

impl fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code} {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl DeliveryFailure {
    /// A failure with a server reply code.
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            message: message.into(),
        }
    }

    /// A failure without a server reply (connection refused, timeout...).
    pub fn local(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
        }
    }
}

impl Error {
    /// `true` when retrying later may succeed: a transient delivery failure.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient(_))
    }

    /// `true` when retrying cannot help: a permanent delivery failure or invalid input.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Error::Permanent(_)
                | Error::InvalidAddress { .. }
                | Error::HeaderInjection { .. }
                | Error::InvalidMessage { .. }
        )
    }

    /// The field at fault, for errors about input or settings.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidAddress { field, .. }
            | Error::HeaderInjection { field, .. }
            | Error::InvalidMessage { field, .. }
            | Error::Configuration { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(crate) fn invalid_address(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidAddress {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn injection(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::HeaderInjection {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidMessage {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A configuration error naming the setting at fault.
    pub fn configuration(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Configuration {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A queue/storage error wrapping its cause.
    pub fn queue(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Queue {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An I/O error on a path.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
