//! The `send_mail` task: deliver one message through a named transport, in the background.
//!
//! The task's argument is the message JSON (CONTRACTS §2) and the *name* of a transport;
//! the worker resolves the name from its own configuration, so URLs and credentials never
//! sit in the queue. Transient delivery errors are retried with backoff; permanent ones fail
//! at once with the server's reply in the task result. The idempotency key is the
//! Message-ID, so the same message enqueued twice is sent once.
//!
//! ```no_run
//! # async fn demo() -> mailroom::Result<()> {
//! use mailroom::send_mail::{self, SendMail};
//! use mailroom::tasks::{self, Registry, Worker};
//! use mailroom::{Email, transport};
//!
//! let email = Email::builder().from("a@example.com").to("b@example.org").subject("hi").text("hello").build()?;
//! let send = SendMail::new().transport("default", transport::from_url("file:outbox")?);
//! let registry = Registry::new().with(send);
//! let backend = tasks::open("sqlite:mail.db", &registry).await?;
//! let id = send_mail::enqueue(backend.as_ref(), &email, "default").await?;
//! Worker::builder(backend, registry).burst(true).build().run(std::future::pending()).await?;
//! # let _ = id; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::message::Email;
use crate::tasks::{NewTask, Task, TaskBackend, TaskContext, TaskFailure, TaskId};
use crate::transport::{Delivery, Transport};

/// The transport name used when none is given.
pub const DEFAULT_TRANSPORT: &str = "default";

/// The arguments stored with each `send_mail` task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMailArgs {
    /// The message, in its JSON form.
    pub message: Email,
    /// The name of the transport the worker delivers through.
    #[serde(default = "default_transport")]
    pub transport: String,
}

fn default_transport() -> String {
    DEFAULT_TRANSPORT.to_owned()
}

/// The `send_mail` task, holding the transports a worker may deliver through, by name.
#[derive(Clone, Default)]
pub struct SendMail {
    transports: BTreeMap<String, Arc<dyn Transport>>,
}

impl fmt::Debug for SendMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Transports' own Debug output never shows credentials.
        f.debug_struct("SendMail")
            .field("transports", &self.transports)
            .finish()
    }
}

impl SendMail {
    /// A task with no transports yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the transport known as `name`.
    #[must_use]
    pub fn transport(mut self, name: impl Into<String>, transport: Arc<dyn Transport>) -> Self {
        self.transports.insert(name.into(), transport);
        self
    }

    /// Closes every transport (pooled SMTP connections say QUIT); call it after the worker stops.
    pub async fn close(&self) {
        for transport in self.transports.values() {
            transport.close().await;
        }
    }

    /// The names of the configured transports.
    pub fn transport_names(&self) -> impl Iterator<Item = &str> {
        self.transports.keys().map(String::as_str)
    }
}

#[async_trait::async_trait]
impl Task for SendMail {
    const NAME: &'static str = "send_mail";
    type Args = SendMailArgs;
    type Output = Delivery;

    fn idempotency_key(args: &SendMailArgs) -> Option<String> {
        args.message
            .message_id()
            .map(|id| format!("send_mail:{id}"))
    }

    async fn run(&self, ctx: TaskContext, args: SendMailArgs) -> Result<Delivery, TaskFailure> {
        // A worker without this transport is misconfigured, not the message at fault: the
        // task waits (with backoff) for a worker that has it, and says what is missing.
        let transport = self.transports.get(&args.transport).ok_or_else(|| {
            let known: Vec<&str> = self.transport_names().collect();
            TaskFailure::retry(
                "configuration",
                format!(
                    "this worker has no transport named `{}` (it has: {}); start a worker with --via {}=URL",
                    args.transport,
                    known.join(", "),
                    args.transport
                ),
            )
        })?;
        let span = tracing::info_span!("send_mail", task = %ctx.id, attempt = ctx.attempt, transport = %args.transport,
            message_id = args.message.message_id().unwrap_or_default());
        transport
            .send(&args.message)
            .instrument(span)
            .await
            .map_err(|err| failure(&err))
    }
}

/// How a delivery error ends an attempt: the message's own faults fail the task at once;
/// everything the operator or time can fix (a 4xx reply, a full disk, a setting) is retried
/// with backoff, the error kept in the task result.
fn failure(err: &Error) -> TaskFailure {
    let message = err.to_string();
    match err {
        Error::Permanent(_) => TaskFailure::permanent("permanent", message),
        Error::InvalidAddress { .. }
        | Error::HeaderInjection { .. }
        | Error::InvalidMessage { .. } => TaskFailure::permanent("invalid_message", message),
        Error::Transient(_) => TaskFailure::retry("transient", message),
        Error::Configuration { .. } => TaskFailure::retry("configuration", message),
        Error::Io { .. } => TaskFailure::retry("io", message),
        _ => TaskFailure::retry("error", message),
    }
}

/// Gives a message a Message-ID when it has none, so that every attempt (and the
/// idempotency key) uses the same one.
pub fn with_message_id(email: &Email) -> Result<Email> {
    let mut email = email.clone();
    if email.message_id.is_none() {
        // The id is valid by construction (a UUID at the From domain, which `build`
        // checked), so the message need not be validated again.
        let domain = email.from().ascii_domain()?;
        email.message_id = Some(format!("<{}@{domain}>", uuid::Uuid::now_v7().simple()));
    }
    Ok(email)
}

/// The `NewTask` for sending `email` through the transport called `transport`.
pub fn new_task(email: &Email, transport: &str) -> Result<NewTask> {
    let args = SendMailArgs {
        message: with_message_id(email)?,
        transport: transport.to_owned(),
    };
    // An `Email` reads back from its JSON unchanged (CONTRACTS §2, tested in the render
    // suite), so the generic round-trip check of `Task::new_task` is not repeated here.
    let value = serde_json::to_value(&args)
        .map_err(|e| Error::invalid("json", format!("cannot be serialised: {e}")))?;
    let mut task = NewTask::new(SendMail::NAME, value)
        .queue(SendMail::QUEUE)
        .priority(SendMail::PRIORITY)
        .max_attempts(SendMail::MAX_ATTEMPTS);
    task.idempotency_key = SendMail::idempotency_key(&args);
    Ok(task)
}

/// Enqueues a `send_mail` task; enqueuing the same message (same Message-ID) again returns
/// the first task's id.
pub async fn enqueue(backend: &dyn TaskBackend, email: &Email, transport: &str) -> Result<TaskId> {
    Ok(backend.enqueue(new_task(email, transport)?).await?)
}

/// Enqueues one `send_mail` task per message, all or none, in one transaction; returns the
/// task ids in order. A message that cannot be enqueued stores nothing.
pub async fn enqueue_many(
    backend: &dyn TaskBackend,
    emails: &[Email],
    transport: &str,
) -> Result<Vec<TaskId>> {
    let tasks = emails
        .iter()
        .map(|email| new_task(email, transport))
        .collect::<Result<Vec<_>>>()?;
    Ok(backend.enqueue_many(tasks).await?)
}
