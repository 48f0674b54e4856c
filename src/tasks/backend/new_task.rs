//! The task to enqueue ([`NewTask`]): its options, their bounds and their one validation,
//! and how long its idempotency key stays taken ([`UniqueScope`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Capabilities, DEFAULT_QUEUE, MAX_PRIORITY, MIN_PRIORITY};
use crate::tasks::TaskError;

/// A task to enqueue: a name, JSON arguments and options. Build one with
/// [`Task::new_task`](super::Task::new_task) (typed, with the task's defaults) or
/// [`NewTask::new`].
///
/// The arguments are read-only ([`NewTask::args`]): a task built from typed arguments
/// carries their JSON text, serialised and checked once, and the backend stores that text
/// instead of serialising the arguments again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTask {
    /// The registered task name.
    pub task_name: String,
    /// The JSON arguments.
    pub(super) args: serde_json::Value,
    /// The queue; must be one the backend knows.
    pub queue_name: String,
    /// −100..=100, higher runs first.
    pub priority: i32,
    /// Do not run before this time (backends with `supports_defer` only).
    pub run_after: Option<DateTime<Utc>>,
    /// How many attempts in all (≥ 1).
    pub max_attempts: u32,
    /// A second enqueue with the same key and the same task (name and arguments) returns the
    /// first task's id and stores nothing; the same key with a different name or different
    /// arguments is a [`TaskError::Conflict`]. Keys stay taken after the task has finished
    /// (until its result is pruned), unless [`NewTask::unique`] gives them a shorter scope:
    /// once it has lapsed, the next enqueue under the key takes it from the old task (whose
    /// result stays, without a key) and stores a new task.
    pub idempotency_key: Option<String>,
    /// A route: only workers that serve it (or serve every route) claim the task — e.g.
    /// the name of the transport it needs, so that a worker without that transport never
    /// takes it (see [`WorkerBuilder::routes`](super::WorkerBuilder::routes)). `None`: any
    /// worker.
    #[serde(default)]
    pub route: Option<String>,
    /// The longest one attempt may run; a longer one is stopped and counts as a retryable
    /// failure of kind `timeout`. `None`: the task's [`Task::TIMEOUT`](super::Task::TIMEOUT)
    /// (no limit unless the task sets one).
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// Labels that rate limits may key by ([`RateLimit::key_by`]), e.g. `send_mail`'s
    /// `transport` and `domain`: names of 1 to 50 ASCII letters, digits, `_` or `-`,
    /// values of at most 500 bytes, at most 16 labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How long the [`idempotency_key`](NewTask::idempotency_key) stays taken (default:
    /// until the task's result is pruned).
    #[serde(default)]
    pub unique: UniqueScope,
    /// `args` as JSON text, when it was made from this text (`args` is what it reads back
    /// as, so it needs no round-trip check): stored as is.
    #[serde(skip)]
    args_json: Option<String>,
}

/// Two tasks are equal when everything but the cached JSON text of their arguments is.
impl PartialEq for NewTask {
    fn eq(&self, other: &Self) -> bool {
        self.task_name == other.task_name
            && self.args == other.args
            && self.queue_name == other.queue_name
            && self.priority == other.priority
            && self.run_after == other.run_after
            && self.max_attempts == other.max_attempts
            && self.idempotency_key == other.idempotency_key
            && self.route == other.route
            && self.timeout == other.timeout
            && self.labels == other.labels
            && self.unique == other.unique
    }
}

impl NewTask {
    /// A task with default options: queue `default`, priority 0, no `run_after`, 10 attempts.
    pub fn new(task_name: impl Into<String>, args: serde_json::Value) -> Self {
        NewTask {
            task_name: task_name.into(),
            args,
            queue_name: DEFAULT_QUEUE.to_owned(),
            priority: 0,
            run_after: None,
            max_attempts: 10,
            idempotency_key: None,
            route: None,
            timeout: None,
            labels: BTreeMap::new(),
            unique: UniqueScope::Forever,
            args_json: None,
        }
    }

    /// A task (default options, as [`NewTask::new`]) whose arguments are the JSON text
    /// `json`, already serialised: they are parsed once and the backend stores the text as
    /// it is, without serialising them again.
    ///
    /// # Errors
    ///
    /// [`TaskError::Invalid`] (field `args`) when `json` is not JSON.
    pub(crate) fn from_json(task_name: impl Into<String>, json: String) -> Result<Self, TaskError> {
        let args = serde_json::from_str(&json)
            .map_err(|e| TaskError::invalid("args", format!("are not JSON: {e}")))?;
        let mut task = NewTask::new(task_name, args);
        task.args_json = Some(json);
        Ok(task)
    }

    /// The JSON arguments.
    pub fn args(&self) -> &serde_json::Value {
        &self.args
    }

    /// Sets the route (see [`NewTask::route`]).
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// Sets the queue.
    pub fn queue(mut self, queue_name: impl Into<String>) -> Self {
        self.queue_name = queue_name.into();
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the earliest start time.
    pub fn run_after(mut self, at: DateTime<Utc>) -> Self {
        self.run_after = Some(at);
        self
    }

    /// Sets the number of attempts.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the idempotency key.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets how long the idempotency key stays taken (see [`UniqueScope`]).
    pub fn unique(mut self, scope: UniqueScope) -> Self {
        self.unique = scope;
        self
    }

    /// Sets the longest one attempt may run (see [`NewTask::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a label that rate limits may key by (see [`NewTask::labels`]).
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Checks the task against Django's rules and a backend's capabilities and queues.
    /// Every backend calls this once per task at enqueue.
    ///
    /// # Errors
    ///
    /// [`TaskError::Invalid`] naming the field at fault.
    pub fn validate(&self, capabilities: Capabilities, queues: &[String]) -> Result<(), TaskError> {
        self.check_fields(capabilities, queues)?;
        if self.args_json.is_none() {
            self.round_trip_json()?;
        }
        Ok(())
    }

    /// [`NewTask::validate`] for a backend about to store the task: it also keeps the JSON
    /// text of the arguments that the round-trip check produced, for
    /// [`NewTask::args_json`], so the arguments are serialised once.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn prepare(
        &mut self,
        capabilities: Capabilities,
        queues: &[String],
    ) -> Result<(), TaskError> {
        self.check_fields(capabilities, queues)?;
        if self.args_json.is_none() {
            self.args_json = Some(self.round_trip_json()?);
        }
        Ok(())
    }

    /// The arguments' JSON text to store: the one the task carries (from
    /// [`NewTask::prepare`] or [`NewTask::from_json`]), else serialised now.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn args_json(&self) -> Result<std::borrow::Cow<'_, str>, TaskError> {
        match &self.args_json {
            Some(json) => Ok(std::borrow::Cow::Borrowed(json)),
            None => serde_json::to_string(&self.args)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| TaskError::invalid("args", format!("cannot be serialised: {e}"))),
        }
    }

    /// The timeout as stored: whole milliseconds (at least 1).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn timeout_ms(&self) -> Option<i64> {
        self.timeout
            .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX).max(1))
    }

    /// The labels as stored: a JSON object, or `None` when there are none.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn labels_json(&self) -> Option<String> {
        if self.labels.is_empty() {
            None
        } else {
            serde_json::to_string(&self.labels).ok()
        }
    }

    /// The unique scope as stored: `None` for the default ([`UniqueScope::Forever`]).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn unique_scope(&self) -> Option<&'static str> {
        match self.unique {
            UniqueScope::Forever => None,
            scope => Some(scope.as_str()),
        }
    }

    /// Every check of [`NewTask::validate`] but the arguments' round trip.
    fn check_fields(&self, capabilities: Capabilities, queues: &[String]) -> Result<(), TaskError> {
        if self.task_name.is_empty() || self.task_name.len() > 200 {
            return Err(TaskError::invalid(
                "task_name",
                "must be 1 to 200 bytes long",
            ));
        }
        if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            return Err(TaskError::invalid(
                "priority",
                format!(
                    "must be a whole number between {MIN_PRIORITY} and {MAX_PRIORITY}, got {}",
                    self.priority
                ),
            ));
        }
        if !capabilities.supports_priority && self.priority != 0 {
            return Err(TaskError::invalid(
                "priority",
                "is not supported by this backend; leave it at 0",
            ));
        }
        if !queues.iter().any(|q| q == &self.queue_name) {
            return Err(TaskError::invalid(
                "queue_name",
                format!(
                    "`{}` is not a queue of this backend (known: {})",
                    self.queue_name,
                    queues.join(", ")
                ),
            ));
        }
        if self.run_after.is_some() && !capabilities.supports_defer {
            return Err(TaskError::invalid(
                "run_after",
                "is not supported by this backend; use a backend that supports deferred tasks",
            ));
        }
        if self.max_attempts == 0 || self.max_attempts > 1000 {
            return Err(TaskError::invalid(
                "max_attempts",
                "must be between 1 and 1000",
            ));
        }
        if let Some(key) = &self.idempotency_key
            && (key.is_empty() || key.len() > 500)
        {
            return Err(TaskError::invalid(
                "idempotency_key",
                "must be 1 to 500 bytes long",
            ));
        }
        if let Some(route) = &self.route
            && (route.is_empty() || route.len() > 200)
        {
            return Err(TaskError::invalid("route", "must be 1 to 200 bytes long"));
        }
        if let Some(timeout) = self.timeout
            && (timeout.is_zero() || timeout > MAX_TIMEOUT)
        {
            return Err(TaskError::invalid(
                "timeout",
                "must be more than 0 and at most 7 days",
            ));
        }
        if self.labels.len() > 16 {
            return Err(TaskError::invalid("labels", "at most 16 labels"));
        }
        for (name, value) in &self.labels {
            if !is_label_name(name) {
                return Err(TaskError::invalid(
                    "labels",
                    format!(
                        "`{name}` is not a label name (1 to 50 ASCII letters, digits, `_` or `-`)"
                    ),
                ));
            }
            if value.len() > 500 {
                return Err(TaskError::invalid(
                    "labels",
                    format!("the value of `{name}` is longer than 500 bytes"),
                ));
            }
        }
        match self.unique {
            UniqueScope::Forever => {}
            _ if self.idempotency_key.is_none() => {
                return Err(TaskError::invalid(
                    "unique",
                    "needs an idempotency_key: the scope says how long the key stays taken",
                ));
            }
            UniqueScope::For(period) if period.is_zero() || period > MAX_UNIQUE_PERIOD => {
                return Err(TaskError::invalid(
                    "unique",
                    "the period must be more than 0 and at most 10 years",
                ));
            }
            UniqueScope::UntilFinished | UniqueScope::For(_) => {}
        }
        Ok(())
    }

    /// Serialises the arguments and checks that the JSON text reads back the same (a float
    /// may not, parsed back at serde_json's default precision); returns the text.
    fn round_trip_json(&self) -> Result<String, TaskError> {
        let text = serde_json::to_string(&self.args).map_err(|e| {
            TaskError::invalid("args", format!("cannot be serialised to JSON: {e}"))
        })?;
        let back: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            TaskError::invalid("args", format!("do not survive a JSON round trip: {e}"))
        })?;
        if back != self.args {
            return Err(TaskError::invalid("args", "change in a JSON round trip"));
        }
        Ok(text)
    }
}

/// The longest [`NewTask::timeout`]: 7 days.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest [`UniqueScope::For`] period: 10 years.
const MAX_UNIQUE_PERIOD: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Whether `name` may name a label or a rate-limit key: 1 to 50 ASCII letters, digits, `_`
/// or `-`.
pub fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 50
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// How long a task's idempotency key stays taken, so that a second enqueue under it gets
/// the first task's id instead of a new task (River's unique jobs, Oban's `unique: [period:
/// …, states: …]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniqueScope {
    /// Until the task's result is pruned (the default).
    #[default]
    Forever,
    /// While the task has not finished: once it is `SUCCESSFUL`, `FAILED` or `CANCELLED`,
    /// the key may be used by a new task.
    UntilFinished,
    /// For this long after the first task was enqueued ("once per user per hour"), whether
    /// it has finished or not.
    For(Duration),
}

impl UniqueScope {
    /// The stored form: `forever`, `unfinished` or `until`.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UniqueScope::Forever => "forever",
            UniqueScope::UntilFinished => "unfinished",
            UniqueScope::For(_) => "until",
        }
    }

    /// When the key is released, for a task enqueued at `enqueued_at` (`For` only).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn until(self, enqueued_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            UniqueScope::For(period) => Some(
                chrono::Duration::from_std(period)
                    .ok()
                    .and_then(|d| enqueued_at.checked_add_signed(d))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
            ),
            _ => None,
        }
    }
}

#[cfg(all(test, any(feature = "sqlite", feature = "postgres")))]
mod tests {
    use super::*;

    fn queues() -> Vec<String> {
        vec![DEFAULT_QUEUE.to_owned()]
    }

    #[test]
    fn a_task_from_json_text_stores_that_text_and_equals_the_same_task_from_a_value() {
        let text = r#"{"b":[1,2.5,"é"],"a":null}"#.to_owned();
        let from_text = NewTask::from_json("t", text.clone()).unwrap();
        let from_value = NewTask::new("t", serde_json::from_str(&text).unwrap());
        assert_eq!(from_text, from_value);
        assert_eq!(from_text.args_json().unwrap(), text);
        from_text
            .validate(Capabilities::DURABLE, &queues())
            .unwrap();
        assert_eq!(
            NewTask::from_json("t", "{oops".to_owned())
                .unwrap_err()
                .field(),
            Some("args")
        );
    }

    #[test]
    fn prepare_checks_like_validate_and_keeps_the_text_it_serialised() {
        let mut task = NewTask::new("t", serde_json::json!({"k": [1, "x"]}));
        task.prepare(Capabilities::DURABLE, &queues()).unwrap();
        assert_eq!(task.args_json, Some(r#"{"k":[1,"x"]}"#.to_owned()));
        let mut bad = NewTask::new("t", serde_json::json!(1)).priority(101);
        let (a, b) = (
            bad.validate(Capabilities::DURABLE, &queues()).unwrap_err(),
            bad.prepare(Capabilities::DURABLE, &queues()).unwrap_err(),
        );
        assert_eq!((a.field(), b.field()), (Some("priority"), Some("priority")));
        assert_eq!(bad.args_json, None, "a refused task keeps nothing");
    }
}
