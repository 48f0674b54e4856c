//! The `send_mail` task: deliver one message through a named transport, in the background.
//!
//! The task's argument is the message in its JSON form ([`Email::from_json`]) and the
//! *name* of a transport; the worker resolves the name from its own configuration, so URLs
//! and credentials never sit in the queue. What happens on an error depends on its
//! [`ErrorKind`]: what retrying cannot help ([`ErrorKind::is_permanent`]: invalid input, a
//! permanent refusal) fails the task at once, with the server's reply in the task result;
//! everything else (a transient failure, and storage, I/O or configuration errors the
//! operator can fix) is retried with backoff. The idempotency key is the Message-ID, so
//! the same message enqueued twice is sent once.
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
//! let backend = tasks::connect_worker("sqlite:mail.db").await?;
//! let id = send_mail::enqueue(backend.as_ref(), &email, "default").await?;
//! Worker::builder(backend, registry).burst(true).build().run(std::future::pending()).await?;
//! # let _ = id; Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::error::{DeliveryFailure, Error, ErrorKind, Result};
use crate::message::Email;
use crate::render::{RenderOptions, Rendered};
use crate::tasks::{NewTask, Task, TaskBackend, TaskContext, TaskError, TaskFailure, TaskId};
use crate::transport::{Delivery, Rejection, Transport};

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
    /// What earlier attempts achieved, when a server accepted some recipients and deferred
    /// others: the next attempt sends to the deferred ones only. `None` for a new task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// What a `send_mail` task returns: its [`Delivery`] (flattened: the JSON is the
/// delivery's, as before), and the recipients it left out because they are on the
/// suppression list (`"suppressed"`, absent when none). A task whose every recipient is
/// suppressed succeeds with nothing accepted and all of them here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMailOutput {
    /// What the server did.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Recipients not sent to: suppressed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<String>,
}

/// The recipients earlier attempts of a `send_mail` task settled, and those still to try.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Recipients that accepted the message: never sent it again.
    pub accepted: Vec<String>,
    /// Recipients the server deferred (4xx) on the last attempt: the next one sends to these.
    pub deferred: Vec<Rejection>,
    /// Recipients refused for good (5xx).
    pub rejected: Vec<Rejection>,
}

impl Progress {
    /// Folds one attempt's delivery into what the earlier ones achieved: the result lists
    /// every recipient the task has settled so far, and the ones deferred now.
    fn merge(&self, delivery: Delivery) -> Delivery {
        let mut accepted = self.accepted.clone();
        accepted.extend(delivery.accepted);
        let mut rejected = self.rejected.clone();
        rejected.extend(delivery.rejected);
        Delivery {
            accepted,
            rejected,
            ..delivery
        }
    }

    /// The result when the server refused every deferred recipient for good on this attempt:
    /// what earlier attempts delivered, with the deferred recipients now rejected.
    fn refused(&self, email: &Email, refusal: &DeliveryFailure) -> Delivery {
        let mut rejected = self.rejected.clone();
        rejected.extend(self.deferred.iter().map(|d| Rejection {
            recipient: d.recipient.clone(),
            // 554: the transaction failed, when the refusal carries no reply code.
            code: refusal.code.unwrap_or(554),
            message: refusal.message.clone(),
        }));
        Delivery {
            message_id: email.message_id().map(str::to_owned),
            accepted: self.accepted.clone(),
            deferred: Vec::new(),
            rejected,
            reply: None,
            queue_id: None,
        }
    }
}

/// The route of a `send_mail` task through the transport called `transport`.
fn route(transport: &str) -> String {
    format!("transport:{transport}")
}

fn default_transport() -> String {
    DEFAULT_TRANSPORT.to_owned()
}

/// The `send_mail` task, holding the transports a worker may deliver through, by name,
/// and the [`RenderOptions`] it renders every message with (DKIM signers, the HTML
/// pipeline): each attempt renders the message once and hands the bytes to the transport.
#[derive(Clone, Default)]
pub struct SendMail {
    transports: BTreeMap<String, Arc<dyn Transport>>,
    render_options: RenderOptions,
    #[cfg(all(
        feature = "deliverability",
        any(feature = "sqlite", feature = "postgres")
    ))]
    suppressions: Option<crate::deliverability::SuppressionStore>,
}

impl fmt::Debug for SendMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Transports' own Debug output never shows credentials.
        f.debug_struct("SendMail")
            .field("transports", &self.transports)
            .field("render_options", &self.render_options)
            .finish_non_exhaustive()
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

    /// Renders every message with these options (the defaults otherwise), e.g. with a DKIM
    /// signer. SMTPUTF8 is still decided per message, by its addresses.
    #[must_use]
    pub fn render_options(mut self, options: RenderOptions) -> Self {
        self.render_options = options;
        self
    }

    /// Checks every recipient (To, Cc and Bcc) against this suppression list before
    /// delivering: suppressed ones are dropped from the envelope, and a task left with
    /// none succeeds with them in [`SendMailOutput::suppressed`].
    #[cfg(all(
        feature = "deliverability",
        any(feature = "sqlite", feature = "postgres")
    ))]
    #[cfg_attr(docsrs, doc(cfg(feature = "deliverability")))]
    #[must_use]
    pub fn suppressions(mut self, store: crate::deliverability::SuppressionStore) -> Self {
        self.suppressions = Some(store);
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

    /// The task routes this worker can serve, one per transport: pass them to
    /// [`WorkerBuilder::routes`](crate::tasks::WorkerBuilder::routes) so that the worker
    /// never claims a task whose transport it lacks (a worker that has it takes it).
    pub fn routes(&self) -> Vec<String> {
        self.transport_names().map(route).collect()
    }
}

#[async_trait::async_trait]
impl Task for SendMail {
    const NAME: &'static str = "send_mail";
    type Args = SendMailArgs;
    type Output = SendMailOutput;

    fn idempotency_key(args: &SendMailArgs) -> Option<String> {
        args.message
            .message_id()
            .map(|id| format!("send_mail:{id}"))
    }

    async fn run(
        &self,
        ctx: TaskContext,
        mut args: SendMailArgs,
    ) -> Result<SendMailOutput, TaskFailure> {
        // Dated now unless it has a Date: the progress a deferral stores keeps it, so the
        // deferred recipients later get the very headers the others got.
        args.message.date.get_or_insert_with(crate::render::now);
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
        let delivery = self
            .deliver(transport.as_ref(), &args)
            .instrument(span)
            .await;
        let backoff = self.retry_policy().delay(ctx.attempt);
        let (delivery, suppressed) = delivery.map_err(|err| failure(&err, backoff))?;
        if delivery.deferred.is_empty() {
            return Ok(SendMailOutput {
                delivery,
                suppressed,
            });
        }
        Err(deferred(args, delivery, backoff))
    }
}

impl SendMail {
    /// One attempt: renders the message once, then sends it to every recipient, or to the
    /// ones the last attempt left deferred.
    ///
    /// Returns the delivery and the recipients left out because they are suppressed.
    async fn deliver(
        &self,
        transport: &dyn Transport,
        args: &SendMailArgs,
    ) -> Result<(Delivery, Vec<String>)> {
        let rendered: Rendered = args.message.prepare(&self.render_options)?;
        let targets: Vec<String> = match &args.progress {
            None => rendered.envelope().to().to_vec(),
            Some(progress) => progress
                .deferred
                .iter()
                .map(|d| d.recipient.clone())
                .collect(),
        };
        let (targets, suppressed) = self.unsuppressed(&rendered, targets).await?;
        let progress = args.progress.clone().unwrap_or_default();
        if targets.is_empty() {
            let nothing = Delivery {
                message_id: Some(rendered.message_id().to_owned()),
                accepted: Vec::new(),
                deferred: Vec::new(),
                rejected: Vec::new(),
                reply: None,
                queue_id: None,
            };
            return Ok((progress.merge(nothing), suppressed));
        }
        let sent = if args.progress.is_none() && suppressed.is_empty() {
            transport.send_rendered(&rendered).await
        } else {
            transport.send_rendered(&rendered.only(&targets)?).await
        };
        match sent {
            Ok(delivery) => Ok((progress.merge(delivery), suppressed)),
            // The retried recipients are refused for good, but the others have the
            // message: the task has delivered all it can.
            Err(Error::Permanent(refusal)) if args.progress.is_some() => {
                Ok((progress.refused(&args.message, &refusal), suppressed))
            }
            Err(err) => Err(err),
        }
    }

    /// `targets` without the suppressed recipients, and those (the one place `send_mail`
    /// consults the suppression list). A message's `List-Id` selects its list's
    /// suppressions beside the global ones.
    async fn unsuppressed(
        &self,
        rendered: &Rendered,
        targets: Vec<String>,
    ) -> Result<(Vec<String>, Vec<String>)> {
        #[cfg(all(
            feature = "deliverability",
            any(feature = "sqlite", feature = "postgres")
        ))]
        if let Some(store) = &self.suppressions {
            let list = crate::deliverability::list_id(rendered.email());
            let suppressed = store.suppressed(&targets, list.as_deref()).await?;
            if !suppressed.is_empty() {
                tracing::info!(?suppressed, "suppressed recipients left out");
                let left_out: std::collections::HashSet<&String> = suppressed.iter().collect();
                let kept = targets
                    .into_iter()
                    .filter(|t| !left_out.contains(t))
                    .collect();
                return Ok((kept, suppressed));
            }
        }
        let _ = rendered;
        Ok((targets, Vec::new()))
    }
}

/// The retry of a task whose server deferred some recipients: the next attempt gets the
/// progress so far and sends to the deferred recipients only, with the same message.
fn deferred(args: SendMailArgs, delivery: Delivery, backoff: Duration) -> TaskFailure {
    let list = |rs: &[Rejection]| {
        rs.iter()
            .map(|r| format!("{} ({} {})", r.recipient, r.code, r.message))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut message = format!(
        "deferred by the server, to be retried: {}",
        list(&delivery.deferred)
    );
    if !delivery.accepted.is_empty() {
        message.push_str(&format!(
            "; already delivered to: {}",
            delivery.accepted.join(", ")
        ));
    }
    if !delivery.rejected.is_empty() {
        message.push_str(&format!("; rejected: {}", list(&delivery.rejected)));
    }
    let next = SendMailArgs {
        progress: Some(Progress {
            accepted: delivery.accepted,
            deferred: delivery.deferred,
            rejected: delivery.rejected,
        }),
        ..args
    };
    // A recipient deferred with a throttling reply waits as long as its server asked.
    let throttled = next
        .progress
        .iter()
        .flat_map(|p| &p.deferred)
        .filter_map(|d| throttle_delay(d.code, &d.message, backoff))
        .max();
    let mut failure = TaskFailure::retry("deferred", message);
    if let Some(delay) = throttled {
        failure = failure.after(delay);
    }
    match serde_json::to_value(&next) {
        Ok(value) => failure.with_args(value),
        // Not reachable for these types; without the progress the retry would send to
        // everyone again, so fail rather than duplicate.
        Err(e) => TaskFailure::permanent("invalid_args", format!("cannot record progress: {e}")),
    }
}

/// How a delivery error ends an attempt, decided on its [`ErrorKind`] alone: what
/// retrying cannot help ([`ErrorKind::is_permanent`]: the message's own faults, a refusal
/// for good) fails the task at once; everything else, what time or the operator can fix
/// (a 4xx reply, a full disk, a broken queue, a setting), is retried with backoff, the
/// error kept in the task result. This is the one place a `mailroom::Error` becomes a
/// [`TaskFailure`].
///
/// A server that said when to come back is waited for: an HTTP API's `Retry-After` (a 429
/// with a delay), or an SMTP throttling reply (see [`throttle_delay`]); `backoff` is the
/// task's own delay for this attempt.
fn failure(err: &Error, backoff: Duration) -> TaskFailure {
    let kind = err.kind();
    // The failure's `kind` names stored in task results, kept as they were.
    let name = match kind {
        ErrorKind::InvalidInput => "invalid_message",
        ErrorKind::TransientDelivery => "transient",
        ErrorKind::PermanentDelivery => "permanent",
        ErrorKind::Storage => "error",
        ErrorKind::Io => "io",
        ErrorKind::Configuration => "configuration",
    };
    if kind.is_permanent() {
        return TaskFailure::permanent(name, err.to_string());
    }
    let retry = TaskFailure::retry(name, err.to_string());
    match err {
        Error::Transient(DeliveryFailure {
            retry_after: Some(delay),
            ..
        }) => retry.after(*delay),
        Error::Transient(DeliveryFailure {
            code: Some(code),
            message,
            ..
        }) => match throttle_delay(*code, message, backoff) {
            Some(delay) => retry.after(delay),
            None => retry,
        },
        _ => retry,
    }
}

/// The SMTP replies that mean "too much, too fast — come back later" (RFC 5321 §4.2.3,
/// and what large receivers and SES send when they throttle): 421 (service closing), 450
/// and 451 (greylisting, rate limits), 452 (too many recipients or connections), 454 (SES:
/// "Throttling failure: Maximum sending rate exceeded").
const THROTTLE_CODES: [u16; 5] = [421, 450, 451, 452, 454];

/// The most a delay read from a reply is trusted for.
const THROTTLE_CAP: Duration = Duration::from_secs(6 * 3600);

/// How long to wait after a throttling reply that says: the delay its text states ("try
/// again in 30 seconds", "retry after 5 minutes"), but never less than the task's own
/// `backoff`. `None` (the task's backoff applies) for other replies and for throttling
/// replies that state no delay.
fn throttle_delay(code: u16, text: &str, backoff: Duration) -> Option<Duration> {
    if !THROTTLE_CODES.contains(&code) {
        return None;
    }
    stated_delay(text).map(|d| d.max(backoff))
}

/// A delay a reply text states: a number followed by a unit (`s`, `sec`, `seconds`, `m`,
/// `min`, `minutes`, `h`, `hours`) after "in" or "after" (e.g. "try again in 30 seconds",
/// "retry after 5 min"), capped at [`THROTTLE_CAP`].
fn stated_delay(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, w) in words.iter().enumerate() {
        if *w != "in" && *w != "after" {
            continue;
        }
        let Some(next) = words.get(i + 1) else {
            continue;
        };
        // "30 seconds" or "30s".
        let digits: String = next.chars().take_while(char::is_ascii_digit).collect();
        let Ok(n) = digits.parse::<u64>() else {
            continue;
        };
        let unit = match &next[digits.len()..] {
            "" => words.get(i + 2).copied().unwrap_or(""),
            rest => rest,
        };
        let unit = unit.trim_end_matches('.');
        let secs = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => n,
            "m" | "min" | "mins" | "minute" | "minutes" => n.saturating_mul(60),
            "h" | "hr" | "hrs" | "hour" | "hours" => n.saturating_mul(3600),
            _ => continue,
        };
        return Some(Duration::from_secs(secs).min(THROTTLE_CAP));
    }
    None
}

/// The rate-limit labels of a `send_mail` task: `transport` (its name) and `domain` (the
/// recipients' domain, lowercase ASCII; the distinct domains joined by `,` for a message to
/// several, or the first one's when those would not fit a label).
fn rate_labels(email: &Email, transport: &str) -> Vec<(&'static str, String)> {
    let mut domains: Vec<String> = Vec::new();
    for address in email.recipients() {
        if let Ok(d) = address.ascii_domain() {
            let d = d.to_ascii_lowercase();
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
    }
    let first = domains.first().cloned().unwrap_or_default();
    domains.sort();
    let mut domain = domains.join(",");
    if domain.len() > 500 {
        domain = first;
    }
    vec![("transport", transport.to_owned()), ("domain", domain)]
}

/// Gives a message a Message-ID when it has none, so that every attempt (and the
/// idempotency key) uses the same one.
pub fn with_message_id(email: &Email) -> Result<Email> {
    let mut email = email.clone();
    if email.message_id.is_none() {
        // The id is valid by construction (a UUID at the From domain, which `build`
        // checked), so the message need not be validated again.
        let domain = email.from().ascii_domain()?;
        email.message_id = Some(format!("<{}>", crate::message::new_message_id(&domain)));
    }
    Ok(email)
}

/// The `NewTask` for sending `email` through the transport called `transport`.
pub fn new_task(email: &Email, transport: &str) -> Result<NewTask> {
    let args = SendMailArgs {
        message: with_message_id(email)?,
        transport: transport.to_owned(),
        progress: None,
    };
    // An `Email` reads back from its JSON unchanged (`Email::to_json`, tested in the render
    // suite), so the generic round-trip check of `Task::new_task` is not repeated here. The
    // text is the one the backend stores: the message is serialised once.
    let json = serde_json::to_string(&args)
        .map_err(|e| Error::invalid("json", format!("cannot be serialised: {e}")))?;
    let mut task = NewTask::from_json(SendMail::NAME, json)?
        .queue(SendMail::QUEUE)
        .priority(SendMail::PRIORITY)
        .max_attempts(SendMail::MAX_ATTEMPTS);
    task.idempotency_key = SendMail::idempotency_key(&args);
    // Rate limits on the queue may key by these (`mailroom queue limit … --key-by domain`).
    for (name, value) in rate_labels(&args.message, transport) {
        task = task.label(name, value);
    }
    // Only a worker that has this transport claims the task (see `SendMail::routes`).
    Ok(task.route(route(transport)))
}

/// Enqueues a `send_mail` task; enqueuing the same message (same Message-ID) again returns
/// the first task's id; a *different* message under a Message-ID already queued is an
/// [`Error::InvalidMessage`] naming `message_id`.
pub async fn enqueue(backend: &dyn TaskBackend, email: &Email, transport: &str) -> Result<TaskId> {
    backend
        .enqueue(new_task(email, transport)?)
        .await
        .map_err(enqueue_error)
}

/// Enqueues one `send_mail` task per message, all or none, in one transaction; returns the
/// task ids in order. A message that cannot be enqueued stores nothing (a Message-ID taken
/// by a different queued message is an [`Error::InvalidMessage`] naming `message_id`).
pub async fn enqueue_many(
    backend: &dyn TaskBackend,
    emails: &[Email],
    transport: &str,
) -> Result<Vec<TaskId>> {
    let tasks = emails
        .iter()
        .map(|email| new_task(email, transport))
        .collect::<Result<Vec<_>>>()?;
    backend.enqueue_many(tasks).await.map_err(enqueue_error)
}

/// The idempotency key of a `send_mail` task is its Message-ID: a conflict on it is the
/// message's fault (two different messages under one id), not a setting's.
fn enqueue_error(err: TaskError) -> Error {
    match err {
        TaskError::Conflict { reason, .. } => Error::invalid(
            "message_id",
            format!(
                "belongs to a different message already queued ({reason}); give this message a Message-ID of its own"
            ),
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_replies_wait_as_long_as_the_server_said() {
        let backoff = Duration::from_secs(2);
        let wait = |code, text| throttle_delay(code, text, backoff);
        assert_eq!(
            wait(421, "4.7.0 Try again in 30 seconds"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait(450, "4.2.0 greylisted, please retry after 5 minutes."),
            Some(Duration::from_secs(300))
        );
        assert_eq!(wait(451, "try again in 2m"), Some(Duration::from_secs(120)));
        assert_eq!(
            wait(454, "Throttling failure: Maximum sending rate exceeded."),
            None,
            "no delay stated: the task's backoff"
        );
        assert_eq!(wait(452, "in 9999 hours"), Some(THROTTLE_CAP));
        assert_eq!(
            throttle_delay(421, "try again in 5 s", Duration::from_secs(600)),
            Some(Duration::from_secs(600)),
            "a longer backoff stands"
        );
        assert_eq!(wait(550, "no such user; try again in 30 seconds"), None);
        assert_eq!(wait(447, "try again in 30 seconds"), None);
    }

    #[test]
    fn failures_carry_the_throttle_delay_and_other_transient_errors_the_backoff() {
        let backoff = Duration::from_secs(2);
        let throttled = Error::Transient(DeliveryFailure::with_code(421, "try again in 45 s"));
        assert_eq!(
            failure(&throttled, backoff).retry_after,
            Some(Duration::from_secs(45))
        );
        let asked = Error::Transient(
            DeliveryFailure::with_code(429, "slow down").with_retry_after(Duration::from_secs(7)),
        );
        assert_eq!(
            failure(&asked, backoff).retry_after,
            Some(Duration::from_secs(7))
        );
        let other = Error::Transient(DeliveryFailure::with_code(471, "local problem"));
        assert_eq!(failure(&other, backoff).retry_after, None);
    }

    #[test]
    fn tasks_are_labelled_with_their_transport_and_recipient_domain() {
        let email = Email::builder()
            .from("a@Example.org")
            .to("b@MAIL.Example.com")
            .bcc("c@mail.example.com")
            .subject("s")
            .text("t")
            .build()
            .unwrap();
        let task = new_task(&email, "smtp").unwrap();
        assert_eq!(
            task.labels.get("transport").map(String::as_str),
            Some("smtp")
        );
        assert_eq!(
            task.labels.get("domain").map(String::as_str),
            Some("mail.example.com")
        );
        let two = Email::builder()
            .from("a@example.org")
            .to("b@z.example")
            .cc("c@a.example")
            .subject("s")
            .text("t")
            .build()
            .unwrap();
        let task = new_task(&two, "smtp").unwrap();
        assert_eq!(
            task.labels.get("domain").map(String::as_str),
            Some("a.example,z.example")
        );
    }
}
