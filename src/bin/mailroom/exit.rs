//! The program's exit status: sysexits codes, chosen by the error's [`ErrorKind`].

use mailroom::ErrorKind;

/// Wrong usage or a wrong setting.
pub(crate) const USAGE: u8 = 64;
/// The input (a message) is not valid.
pub(crate) const DATAERR: u8 = 65;
/// The server refused the message for good.
pub(crate) const UNAVAILABLE: u8 = 69;
/// A file or the queue's storage failed.
pub(crate) const IOERR: u8 = 74;
/// Try again later.
pub(crate) const TEMPFAIL: u8 = 75;

/// The exit status for a library error, from its [`ErrorKind`] alone.
pub(crate) fn exit_code(err: &mailroom::Error) -> u8 {
    match err.kind() {
        ErrorKind::InvalidInput => DATAERR,
        ErrorKind::PermanentDelivery => UNAVAILABLE,
        ErrorKind::TransientDelivery => TEMPFAIL,
        ErrorKind::Configuration => USAGE,
        ErrorKind::Storage | ErrorKind::Io => IOERR,
        // A kind added to the library after this program was written: report it as the
        // catch-all failure until it is given a code of its own here.
        _ => IOERR,
    }
}

#[cfg(test)]
mod tests {
    //! One table says, for every `mailroom::Error` variant, its kind, the program's exit
    //! status and whether the `send_mail` task retries it; the test checks that the
    //! library, this program and the task agree with it.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use mailroom::send_mail::{SendMail, SendMailArgs};
    use mailroom::tasks::{Task, TaskContext, TaskId};
    use mailroom::transport::{Delivery, Transport};
    use mailroom::{DeliveryFailure, Email, Error, ErrorKind, Rendered};

    use super::*;

    /// A transport that fails every delivery with the error its function builds.
    #[derive(Debug)]
    struct Failing(fn() -> Error);

    #[async_trait::async_trait]
    impl Transport for Failing {
        async fn send_rendered(&self, _: &Rendered) -> mailroom::Result<Delivery> {
            Err((self.0)())
        }
    }

    struct Row {
        error: fn() -> Error,
        kind: ErrorKind,
        exit: u8,
        /// `true` when a `send_mail` worker retries the error, `false` when the task fails.
        retried: bool,
    }

    /// Every variant of `mailroom::Error`, once. `Error::kind` has no wildcard, so a new
    /// variant cannot go unclassified in the library; it gets its row here by hand.
    const TABLE: &[Row] = &[
        Row {
            error: || Error::InvalidAddress {
                field: "to[0]".into(),
                reason: "missing `@`".into(),
            },
            kind: ErrorKind::InvalidInput,
            exit: DATAERR,
            retried: false,
        },
        Row {
            error: || Error::HeaderInjection {
                field: "subject".into(),
                reason: "contains a line break".into(),
            },
            kind: ErrorKind::InvalidInput,
            exit: DATAERR,
            retried: false,
        },
        Row {
            error: || Error::InvalidMessage {
                field: "json".into(),
                reason: "does not parse".into(),
            },
            kind: ErrorKind::InvalidInput,
            exit: DATAERR,
            retried: false,
        },
        Row {
            error: || Error::Transient(DeliveryFailure::with_code(451, "greylisted")),
            kind: ErrorKind::TransientDelivery,
            exit: TEMPFAIL,
            retried: true,
        },
        Row {
            error: || Error::Permanent(DeliveryFailure::with_code(550, "no such user")),
            kind: ErrorKind::PermanentDelivery,
            exit: UNAVAILABLE,
            retried: false,
        },
        Row {
            error: || Error::Queue {
                message: "database is locked".into(),
                source: None,
            },
            kind: ErrorKind::Storage,
            exit: IOERR,
            retried: true,
        },
        Row {
            error: || Error::io("outbox", std::io::Error::other("disk full")),
            kind: ErrorKind::Io,
            exit: IOERR,
            retried: true,
        },
        Row {
            error: || Error::configuration("MAILROOM_TRANSPORT", "unknown scheme"),
            kind: ErrorKind::Configuration,
            exit: USAGE,
            retried: true,
        },
    ];

    #[tokio::test]
    async fn every_error_is_classified_once_and_the_program_and_the_worker_agree() {
        let email = Email::builder()
            .from("a@example.com")
            .to("b@example.org")
            .subject("hi")
            .text("hello")
            .build()
            .unwrap();
        for row in TABLE {
            let err = (row.error)();
            assert_eq!(err.kind(), row.kind, "kind of {err}");
            assert_eq!(err.is_transient(), row.kind.is_transient(), "{err}");
            assert_eq!(err.is_permanent(), row.kind.is_permanent(), "{err}");
            assert_eq!(exit_code(&err), row.exit, "exit status for {err}");

            let task = SendMail::new().transport("t", Arc::new(Failing(row.error)));
            let ctx = TaskContext {
                id: TaskId::new(),
                task_name: SendMail::NAME.to_owned(),
                queue_name: SendMail::QUEUE.to_owned(),
                attempt: 1,
                max_attempts: 10,
                worker_id: None,
                cancellation: mailroom::tasks::Cancellation::new(),
            };
            let args = SendMailArgs {
                message: email.clone(),
                transport: "t".to_owned(),
                progress: None,
            };
            let failure = task.run(ctx, args).await.unwrap_err();
            assert_eq!(
                failure.is_retry(),
                row.retried,
                "send_mail on {err}: {failure}"
            );
            assert!(failure.message.contains(&err.to_string()), "{failure}");
            // Retried exactly when retrying is not known to be useless.
            assert_eq!(row.retried, !row.kind.is_permanent(), "{err}");
        }
        // Every kind is in the table.
        for kind in [
            ErrorKind::InvalidInput,
            ErrorKind::TransientDelivery,
            ErrorKind::PermanentDelivery,
            ErrorKind::Storage,
            ErrorKind::Io,
            ErrorKind::Configuration,
        ] {
            assert!(TABLE.iter().any(|r| r.kind == kind), "{kind:?}");
        }
    }
}
