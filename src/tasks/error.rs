//! The tasks framework's typed error.

/// Everything that can go wrong when enqueuing, storing or looking up a task.
///
/// Validation errors name the field at fault ([`TaskError::field`]); storage errors carry
/// their cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// A task failed validation at enqueue; `field` is one of `priority`, `queue_name`,
    /// `run_after`, `args`, `task_name`, `max_attempts`, `idempotency_key`, `route`.
    #[error("invalid task: `{field}` {reason}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong, and the fix where there is one.
        reason: String,
    },
    /// The task clashes with one already stored: its idempotency key (`field`) is taken by a
    /// task with a different name or different arguments. The same key with the same task
    /// gets the stored task's id instead.
    #[error("conflicting task: `{field}` {reason}")]
    Conflict {
        /// The field at fault (`idempotency_key`).
        field: &'static str,
        /// What clashes, and the fix.
        reason: String,
    },
    /// No task with this name is registered with the worker or backend.
    #[error("unknown task `{name}`; register it with `Registry::register` first")]
    UnknownTask {
        /// The task name that was looked up.
        name: String,
    },
    /// No result with this id exists (never enqueued, or already pruned).
    #[error("no task with id `{id}`; it was never enqueued or its result was pruned")]
    NotFound {
        /// The id that was looked up.
        id: String,
    },
    /// The backend does not support this operation: a worker on a client-only backend
    /// ([`connect_worker`](super::connect_worker) of `immediate:` or `dummy:`).
    #[error("the `{backend}` backend does not support {operation}")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// What was asked of it.
        operation: &'static str,
    },
    /// A setting (URL, pragma, option) is wrong or the storage is not as expected.
    #[error("configuration error in `{field}`: {reason}")]
    Configuration {
        /// The setting at fault.
        field: String,
        /// What is wrong, and the fix where there is one.
        reason: String,
    },
    /// The storage failed (database error, corrupt row...).
    #[error("task storage error: {message}")]
    Storage {
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl TaskError {
    /// The field (or setting) at fault, for validation, conflict and configuration errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            TaskError::Invalid { field, .. } => Some(field),
            TaskError::Conflict { field, .. } => Some(field),
            TaskError::Configuration { field, .. } => Some(field),
            _ => None,
        }
    }

    /// A validation error naming `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        TaskError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// A storage error wrapping its cause.
    pub fn storage(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        TaskError::Storage {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A configuration error naming the setting at fault.
    pub fn configuration(field: impl Into<String>, reason: impl Into<String>) -> Self {
        TaskError::Configuration {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for TaskError {
    /// A storage error naming the database's own message (e.g. `database error: database
    /// disk image is malformed`). sqlx's messages hold no connection URL.
    fn from(err: sqlx::Error) -> Self {
        TaskError::storage(format!("database error: {err}"), err)
    }
}
