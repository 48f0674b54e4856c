//! The [`Task`] trait, the [`TaskContext`] a run receives, the [`TaskFailure`] it may
//! return, and the [`Registry`] a worker finds tasks in.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cancellation, NewTask, RetryPolicy, TaskError, TaskId};

/// A unit of background work with a stable name, JSON arguments and a JSON output.
///
/// ```
/// use mailroom::tasks::{Task, TaskContext, TaskFailure};
///
/// struct Add;
///
/// #[async_trait::async_trait]
/// impl Task for Add {
///     const NAME: &'static str = "add";
///     type Args = (i64, i64);
///     type Output = i64;
///
///     async fn run(&self, _ctx: TaskContext, (a, b): (i64, i64)) -> Result<i64, TaskFailure> {
///         a.checked_add(b).ok_or_else(|| TaskFailure::permanent("overflow", "sum does not fit"))
///     }
/// }
/// ```
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// The stable name stored with each enqueued task; never rename a task with rows queued.
    const NAME: &'static str;
    /// The queue new tasks go to unless the caller says otherwise.
    const QUEUE: &'static str = super::DEFAULT_QUEUE;
    /// The priority new tasks get unless the caller says otherwise (−100..=100).
    const PRIORITY: i32 = 0;
    /// How many attempts a task may have in all (the first run counts).
    const MAX_ATTEMPTS: u32 = 10;
    /// The longest one attempt may run before it is stopped and counted as a retryable
    /// failure of kind `timeout` (`None`, the default: no limit). A task enqueued with
    /// [`NewTask::timeout`] uses that instead.
    const TIMEOUT: Option<Duration> = None;

    /// The arguments, stored as JSON.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// What a successful run returns, stored as JSON.
    type Output: Serialize + Send + 'static;

    /// The idempotency key a new task gets by default: enqueuing a second task with the same
    /// key returns the first task's id instead. `None` (the default) means no key.
    fn idempotency_key(_args: &Self::Args) -> Option<String> {
        None
    }

    /// The backoff between attempts after a retryable failure.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Runs one attempt. Return [`TaskFailure::retry`] for a transient error (retried with
    /// backoff while attempts remain) or [`TaskFailure::permanent`] to fail at once.
    async fn run(&self, ctx: TaskContext, args: Self::Args) -> Result<Self::Output, TaskFailure>;

    /// A [`NewTask`] for these arguments with this task's defaults (name, queue, priority,
    /// max attempts, idempotency key), after checking that the arguments survive a JSON
    /// round trip.
    fn new_task(args: &Self::Args) -> Result<NewTask, TaskError>
    where
        Self: Sized,
    {
        let mut task = json_round_trip::<Self::Args>(Self::NAME, args)?
            .queue(Self::QUEUE)
            .priority(Self::PRIORITY)
            .max_attempts(Self::MAX_ATTEMPTS);
        task.idempotency_key = Self::idempotency_key(args);
        task.timeout = Self::TIMEOUT;
        Ok(task)
    }
}

/// Serialises `args` once, to the JSON text the backend stores, and checks that reading
/// that text back gives the same JSON, so that what the worker decodes is what the caller
/// meant (Django's "arguments must survive a JSON round trip"); returns the task `name`
/// with these arguments (and default options).
pub(crate) fn json_round_trip<A: Serialize + DeserializeOwned>(
    name: &str,
    args: &A,
) -> Result<NewTask, TaskError> {
    let text = serde_json::to_string(args)
        .map_err(|e| TaskError::invalid("args", format!("cannot be serialised to JSON: {e}")))?;
    let task = NewTask::from_json(name, text)?;
    let back = A::deserialize(task.args()).map_err(|e| {
        TaskError::invalid("args", format!("do not survive a JSON round trip: {e}"))
    })?;
    let again = serde_json::to_value(&back)
        .map_err(|e| TaskError::invalid("args", format!("cannot be serialised to JSON: {e}")))?;
    if again != *task.args() {
        return Err(TaskError::invalid(
            "args",
            "change in a JSON round trip; use types whose JSON form reads back the same",
        ));
    }
    Ok(task)
}

/// What a running attempt knows about itself. Cheap to clone but for its strings (the
/// cancellation signal is one `Arc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    /// The task's id — also the id of its [`TaskResult`](super::TaskResult).
    pub id: TaskId,
    /// The registered task name.
    pub task_name: String,
    /// The queue it came from.
    pub queue_name: String,
    /// This attempt's number, 1-based.
    pub attempt: u32,
    /// How many attempts it may have in all.
    pub max_attempts: u32,
    /// The worker running it (`None` in the immediate backend).
    pub worker_id: Option<String>,
    /// Set when the attempt is asked to stop: the task was cancelled while running, or
    /// the attempt's timeout passed (see [`TaskContext::is_cancelled`]). Give a task under
    /// test a [`Cancellation::new`] (and [`Cancellation::cancel`] it to test early returns).
    pub cancellation: Cancellation,
}

impl TaskContext {
    /// `true` once this attempt has been asked to stop — cancelled while running, or out of
    /// time. The worker drops the task's future at its next `.await` anyway; a task that
    /// runs long without awaiting can look at this between steps and return early (its
    /// return value is then ignored: the attempt is recorded as cancelled or timed out).
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// Completes once this attempt has been asked to stop (see
    /// [`TaskContext::is_cancelled`]): for work handed to another task or thread, which the
    /// worker cannot drop.
    pub async fn cancelled(&self) {
        self.cancellation.cancelled().await;
    }

    /// `true` when a retryable failure of this attempt will not be retried.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// Whether a failed attempt should be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// A transient error: try again after a backoff while attempts remain
    /// ([`TaskFailure::retry`]).
    Retry,
    /// A permanent error: fail the task now ([`TaskFailure::permanent`]).
    Permanent,
}

/// Why an attempt failed, and whether to retry: a kind, a message and a [`Disposition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// Retry or fail now.
    pub disposition: Disposition,
    /// A short machine-readable kind (e.g. `transient`, `smtp_550`).
    pub kind: String,
    /// A human-readable message.
    pub message: String,
    /// Overrides the retry policy's delay for the next attempt.
    pub retry_after: Option<Duration>,
    /// Replaces the task's stored arguments (see [`TaskFailure::with_args`]).
    pub next_args: Option<serde_json::Value>,
}

impl TaskFailure {
    /// A transient failure: retried with backoff while attempts remain.
    pub fn retry(kind: impl Into<String>, message: impl Into<String>) -> Self {
        TaskFailure {
            disposition: Disposition::Retry,
            kind: kind.into(),
            message: message.into(),
            retry_after: None,
            next_args: None,
        }
    }

    /// A permanent failure: the task fails now, whatever attempts remain.
    pub fn permanent(kind: impl Into<String>, message: impl Into<String>) -> Self {
        TaskFailure {
            disposition: Disposition::Permanent,
            kind: kind.into(),
            message: message.into(),
            retry_after: None,
            next_args: None,
        }
    }

    /// Asks for the next attempt after `delay` instead of the policy's backoff.
    pub fn after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Carries progress to the next attempt: the task's stored arguments become `args`
    /// (the JSON form of the task's [`Task::Args`]), so the next attempt receives them
    /// instead of the arguments it was enqueued with — e.g. only the recipients still to
    /// deliver to, and those who already accepted. They are stored with this attempt's
    /// outcome, fenced by its lease like every outcome (a stale attempt stores nothing);
    /// a failure that ends the task stores them too, so a later manual retry resumes from
    /// them. `args` that do not decode as the task's `Args` fail the task
    /// (`invalid_next_args`) instead.
    ///
    /// ```
    /// # use mailroom::tasks::TaskFailure;
    /// let failure = TaskFailure::retry("deferred", "451 greylisted")
    ///     .with_args(serde_json::json!({"to": ["b@example.org"], "accepted": ["a@example.org"]}));
    /// assert!(failure.next_args.is_some());
    /// ```
    pub fn with_args(mut self, args: serde_json::Value) -> Self {
        self.next_args = Some(args);
        self
    }

    /// `true` for a retryable failure.
    pub fn is_retry(&self) -> bool {
        self.disposition == Disposition::Retry
    }

    /// The failure an attempt stopped at its timeout counts as: retryable, kind `timeout`.
    pub(crate) fn timed_out(limit: Duration) -> Self {
        let limit = if limit < Duration::from_secs(1) {
            format!("{} ms", limit.as_millis())
        } else {
            format!("{} s", limit.as_secs_f64())
        };
        TaskFailure::retry(
            "timeout",
            format!("the attempt ran longer than its timeout of {limit} and was stopped"),
        )
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TaskFailure {}

/// A task with its types erased, as the worker runs it.
#[async_trait]
pub(crate) trait ErasedTask: Send + Sync {
    fn retry_policy(&self) -> RetryPolicy;
    /// [`Task::TIMEOUT`].
    fn timeout(&self) -> Option<Duration>;
    async fn run_json(
        &self,
        ctx: TaskContext,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure>;
}

struct Erased<T>(T);

#[async_trait]
impl<T: Task> ErasedTask for Erased<T> {
    fn retry_policy(&self) -> RetryPolicy {
        self.0.retry_policy()
    }

    fn timeout(&self) -> Option<Duration> {
        T::TIMEOUT
    }

    async fn run_json(
        &self,
        ctx: TaskContext,
        args: serde_json::Value,
    ) -> Result<serde_json::Value, TaskFailure> {
        let args: T::Args = serde_json::from_value(args).map_err(|e| {
            TaskFailure::permanent("invalid_args", format!("arguments do not decode: {e}"))
        })?;
        let output = match self.0.run(ctx, args).await {
            Ok(output) => output,
            Err(failure) => return Err(check_next_args::<T::Args>(failure)),
        };
        serde_json::to_value(output).map_err(|e| {
            TaskFailure::permanent(
                "invalid_output",
                format!("return value does not serialise: {e}"),
            )
        })
    }
}

/// A failure whose [`TaskFailure::next_args`] do not decode as the task's arguments would
/// make every later attempt fail to start: fail the task now, saying why.
fn check_next_args<A: DeserializeOwned>(failure: TaskFailure) -> TaskFailure {
    match &failure.next_args {
        Some(next) => match serde_json::from_value::<A>(next.clone()) {
            Ok(_) => failure,
            Err(e) => TaskFailure::permanent(
                "invalid_next_args",
                format!(
                    "the arguments this attempt gave for the next one do not decode: {e} (after: {failure})"
                ),
            ),
        },
        None => failure,
    }
}

/// The tasks a worker can run, by name. Cheap to clone.
///
/// ```
/// # use mailroom::tasks::{Registry, Task, TaskContext, TaskFailure};
/// # struct Noop;
/// # #[async_trait::async_trait]
/// # impl Task for Noop {
/// #     const NAME: &'static str = "noop";
/// #     type Args = ();
/// #     type Output = ();
/// #     async fn run(&self, _: TaskContext, _: ()) -> Result<(), TaskFailure> { Ok(()) }
/// # }
/// let registry = Registry::new().with(Noop);
/// assert!(registry.contains("noop"));
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    tasks: Arc<BTreeMap<&'static str, Arc<dyn ErasedTask>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `task` under [`Task::NAME`], replacing any task of that name.
    pub fn register<T: Task>(&mut self, task: T) -> &mut Self {
        Arc::make_mut(&mut self.tasks).insert(T::NAME, Arc::new(Erased(task)));
        self
    }

    /// Adds `task` and returns the registry, for chaining.
    pub fn with<T: Task>(mut self, task: T) -> Self {
        self.register(task);
        self
    }

    /// `true` when a task of this name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.tasks.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tasks.keys().copied()
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn ErasedTask>> {
        self.tasks.get(name).cloned()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.tasks.keys()).finish()
    }
}
