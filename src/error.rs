//! The crate's one error type and its one classification.
//!
//! Every fallible public function in mailroom returns [`Error`]. [`Error::kind`] says what a
//! caller does about it, as an [`ErrorKind`]: fix the input ([`ErrorKind::InvalidInput`]),
//! retry later ([`ErrorKind::TransientDelivery`]), give up
//! ([`ErrorKind::PermanentDelivery`]), look at the storage ([`ErrorKind::Storage`],
//! [`ErrorKind::Io`]) or the settings ([`ErrorKind::Configuration`]). Everything that
//! decides on an error (the `mailroom` program's exit status, the `send_mail` task's retry)
//! decides on its kind.

use std::fmt;

/// A specialised `Result` whose error is [`mailroom::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in mailroom.
///
/// Messages are lowercase sentences that name the offending field and, where one exists,
/// the fix. Decide what to do on its [`kind`](Error::kind); the variant holds the details:
///
/// ```
/// use mailroom::{Email, Error, ErrorKind};
///
/// let err = Email::builder().from("zoe@example.com").subject("hi\r\nBcc: x@evil.example").build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
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

/// What a caller does about an [`Error`]: its one classification, from [`Error::kind`].
///
/// | kind | variants | what to do | retrying |
/// |---|---|---|---|
/// | [`InvalidInput`](Self::InvalidInput) | [`Error::InvalidAddress`], [`Error::HeaderInjection`], [`Error::InvalidMessage`] | fix the message | cannot help ([`is_permanent`](Self::is_permanent)) |
/// | [`TransientDelivery`](Self::TransientDelivery) | [`Error::Transient`] | try again later | may succeed ([`is_transient`](Self::is_transient)) |
/// | [`PermanentDelivery`](Self::PermanentDelivery) | [`Error::Permanent`] | give up on the message | cannot help ([`is_permanent`](Self::is_permanent)) |
/// | [`Storage`](Self::Storage) | [`Error::Queue`] | look at the task queue's storage | may succeed once it is fixed |
/// | [`Io`](Self::Io) | [`Error::Io`] | look at the file or directory | may succeed once it is fixed |
/// | [`Configuration`](Self::Configuration) | [`Error::Configuration`] | fix the setting | may succeed once it is fixed |
///
/// The last three are neither transient nor permanent: the same call fails again until
/// someone fixes the storage, the file or the setting, and may succeed after. A background
/// worker therefore retries them (with backoff), as it retries transient ones; a program
/// run by hand reports them.
///
/// ```
/// use mailroom::{DeliveryFailure, Error, ErrorKind};
///
/// let err = Error::Transient(DeliveryFailure::with_code(451, "greylisted"));
/// assert_eq!(err.kind(), ErrorKind::TransientDelivery);
/// assert!(err.kind().is_transient() && !err.kind().is_permanent());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The message (an address, a header value, the JSON form...) is not valid.
    InvalidInput,
    /// Delivery failed in a way that may succeed later (4xx reply, connection error, timeout).
    TransientDelivery,
    /// Delivery failed for good (5xx reply, a message the server can never take).
    PermanentDelivery,
    /// The task queue or its storage failed.
    Storage,
    /// Reading or writing a file failed.
    Io,
    /// A setting (URL, key, option) is wrong.
    Configuration,
}

impl ErrorKind {
    /// `true` when retrying later, unchanged, may succeed: a transient delivery failure.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::TransientDelivery)
    }

    /// `true` when retrying cannot help: a permanent delivery failure or invalid input.
    pub fn is_permanent(self) -> bool {
        matches!(self, ErrorKind::PermanentDelivery | ErrorKind::InvalidInput)
    }
}

/// Details of a failed delivery: the server's reply when there was one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryFailure {
    /// The reply code, if the server answered: the SMTP reply code (e.g. 451, 550), or the
    /// HTTP status of a provider's API (e.g. 422, 429).
    pub code: Option<u16>,
    /// The server's reply text, or a description of the local failure.
    pub message: String,
    /// How long the server asked to wait before trying again (an HTTP API's
    /// `Retry-After`), when it said; the `send_mail` task waits that long before its next
    /// attempt instead of its backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<std::time::Duration>,
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
            retry_after: None,
        }
    }

    /// A failure without a server reply (connection refused, timeout...).
    pub fn local(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same failure, asking to be retried after `delay` (its `retry_after`).
    #[must_use]
    pub fn with_retry_after(mut self, delay: std::time::Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

impl Error {
    /// What a caller does about this error (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        // No wildcard: a new variant must be classified here, the one place that does it.
        match self {
            Error::InvalidAddress { .. }
            | Error::HeaderInjection { .. }
            | Error::InvalidMessage { .. } => ErrorKind::InvalidInput,
            Error::Transient(_) => ErrorKind::TransientDelivery,
            Error::Permanent(_) => ErrorKind::PermanentDelivery,
            Error::Queue { .. } => ErrorKind::Storage,
            Error::Io { .. } => ErrorKind::Io,
            Error::Configuration { .. } => ErrorKind::Configuration,
        }
    }

    /// `true` when retrying later may succeed: a transient delivery failure
    /// ([`ErrorKind::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// `true` when retrying cannot help: a permanent delivery failure or invalid input
    /// ([`ErrorKind::is_permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.kind().is_permanent()
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

/// A task error as the rest of mailroom reports it: validation and conflicts become
/// [`Error::Configuration`] naming the field, an unknown task a configuration error naming
/// `task_name`, storage failures (and the rest) [`Error::Queue`]. It lives here, not in
/// [`tasks`](crate::tasks), because the tasks framework knows nothing of the crate outside it.
impl From<crate::tasks::TaskError> for Error {
    fn from(err: crate::tasks::TaskError) -> Self {
        use crate::tasks::TaskError;
        match err {
            TaskError::Invalid { field, reason } | TaskError::Conflict { field, reason } => {
                Error::Configuration {
                    field: field.to_owned(),
                    reason,
                }
            }
            TaskError::Configuration { field, reason } => Error::Configuration { field, reason },
            TaskError::UnknownTask { name } => Error::Configuration {
                field: "task_name".to_owned(),
                reason: format!("unknown task `{name}`; register it first"),
            },
            TaskError::Storage { message, source } => Error::Queue { message, source },
            other => Error::Queue {
                message: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::TaskError;

    #[test]
    fn task_errors_keep_their_field_and_their_kind() {
        let invalid: Error = TaskError::invalid("queue_name", "unknown queue").into();
        assert_eq!(invalid.field(), Some("queue_name"));
        assert_eq!(invalid.kind(), ErrorKind::Configuration);
        let conflict: Error = TaskError::Conflict {
            field: "idempotency_key",
            reason: "taken".into(),
        }
        .into();
        assert_eq!(conflict.field(), Some("idempotency_key"));
        let storage: Error =
            TaskError::storage("database error", std::io::Error::other("disk")).into();
        assert_eq!(storage.kind(), ErrorKind::Storage);
    }
}
