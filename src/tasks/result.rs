//! What a backend knows about one task: [`TaskResult`], its [`TaskStatus`] and the
//! per-attempt [`AttemptError`]s.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TaskError;

/// A task's id: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub Uuid);

impl TaskId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        TaskId(Uuid::now_v7())
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TaskId {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(TaskId)
            .map_err(|e| TaskError::invalid("id", format!("is not a task id (a UUID): {e}")))
    }
}

/// Where a task is in its life. Django's four statuses and `Cancelled`; a task waiting to be
/// retried is `Ready` again, with `attempts > 0`, its `errors` and a later `run_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Waiting to run (first run, or a retry once `run_after` has passed).
    Ready,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished and returned a value.
    Successful,
    /// Finished for good without success (permanent error or attempts exhausted).
    Failed,
    /// Cancelled before it could finish: it never runs (again) unless retried.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in the order of a task's life.
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Ready,
        TaskStatus::Running,
        TaskStatus::Successful,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The status as stored and printed: `READY`, `RUNNING`, `SUCCESSFUL`, `FAILED`,
    /// `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Ready => "READY",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Successful => "SUCCESSFUL",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Cancelled => "CANCELLED",
        }
    }

    /// `true` for `Successful`, `Failed` and `Cancelled`: the task will not run again
    /// (unless retried by hand).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Successful | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// Reads a status as a user writes it (`failed`, `FAILED`), for filters and the CLI.
    ///
    /// # Errors
    ///
    /// [`TaskError::Invalid`] naming `status` and the statuses there are.
    pub fn parse(s: &str) -> Result<Self, TaskError> {
        TaskStatus::from_str(&s.trim().to_ascii_uppercase()).map_err(|_| {
            TaskError::invalid(
                "status",
                format!(
                    "`{s}` is not a task status (READY, RUNNING, SUCCESSFUL, FAILED, CANCELLED)"
                ),
            )
        })
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = TaskError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "READY" => Ok(TaskStatus::Ready),
            "RUNNING" => Ok(TaskStatus::Running),
            "SUCCESSFUL" => Ok(TaskStatus::Successful),
            "FAILED" => Ok(TaskStatus::Failed),
            "CANCELLED" => Ok(TaskStatus::Cancelled),
            other => Err(TaskError::Storage {
                message: format!("unknown task status `{other}` in storage"),
                source: None,
            }),
        }
    }
}

/// One failed attempt: what kind of error, its message, and who saw it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// The attempt (1-based) that failed.
    pub attempt: u32,
    /// A short machine-readable kind, e.g. `transient`, `permanent`, `panic`, `lease_expired`.
    pub kind: String,
    /// A human-readable message.
    pub message: String,
    /// The worker that ran the attempt, when known.
    pub worker_id: Option<String>,
    /// When the failure was recorded.
    pub at: DateTime<Utc>,
}

/// Everything a backend knows about one task: Django's `TaskResult` fields plus what
/// retries and leases need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task's id.
    pub id: TaskId,
    /// The registered task name.
    pub task_name: String,
    /// The queue it was enqueued on.
    pub queue_name: String,
    /// Its priority (−100..=100, higher runs first).
    pub priority: i32,
    /// Its JSON arguments.
    pub args: serde_json::Value,
    /// Where it is in its life.
    pub status: TaskStatus,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// The earliest time its next attempt may start.
    pub run_after: DateTime<Utc>,
    /// When its first attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (successfully or not).
    pub finished_at: Option<DateTime<Utc>>,
    /// When its latest attempt started.
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// How many attempts have started.
    pub attempts: u32,
    /// How many attempts it may have in all.
    pub max_attempts: u32,
    /// The workers that ran its attempts, in order.
    pub worker_ids: Vec<String>,
    /// One entry per failed attempt, in order.
    pub errors: Vec<AttemptError>,
    /// What the task returned, once `Successful`.
    pub return_value: Option<serde_json::Value>,
    /// The idempotency key it was enqueued with, if any.
    pub idempotency_key: Option<String>,
    /// When an operator asked to cancel it while it was `RUNNING`
    /// ([`QueueOperations::cancel`](super::QueueOperations::cancel)); its worker stops the
    /// attempt and records `CANCELLED`. `None` when no cancel is pending.
    #[serde(default)]
    pub cancel_requested_at: Option<DateTime<Utc>>,
}

impl TaskResult {
    /// Decodes the return value into `T`; `None` until the task has succeeded.
    pub fn return_value_as<T: serde::de::DeserializeOwned>(&self) -> Option<Result<T, TaskError>> {
        self.return_value.as_ref().map(|v| {
            serde_json::from_value(v.clone())
                .map_err(|e| TaskError::invalid("return_value", format!("does not decode: {e}")))
        })
    }
}
