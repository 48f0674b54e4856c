//! A durable background Tasks framework in the manner of Django 6.0's, with a worker: it
//! knows nothing about email.
//!
//! - [`Task`]: a named unit of work with JSON arguments and output; [`Registry`] maps names
//!   to tasks for the worker.
//! - Two backend roles: [`TaskBackend`], the client role every backend plays (enqueue, get
//!   a result), and [`WorkerBackend`], the worker role of the durable ones (claim, lease,
//!   finish, rescue, prune). [`ImmediateBackend`] (runs inside enqueue) and
//!   [`DummyBackend`] (records, never runs) are clients only; `SqliteBackend` (the
//!   embedded, durable default; feature `sqlite`) and `PostgresBackend` (feature
//!   `postgres`) play both, and the operator's role too, [`QueueOperations`] (list, count,
//!   cancel, retry; pause, resume, rate-limit queues). [`connect`] opens any of them from a
//!   URL as a client, [`connect_worker`] a durable one for a worker,
//!   [`connect_operations`] a durable one for an operator.
//! - [`Worker`]: runs tasks concurrently from several queues with leases and heartbeats,
//!   fenced completions, retries with backoff (a retry may hand its progress to the next
//!   attempt, [`TaskFailure::with_args`]), a rescuer for dead workers' tasks, a pruner and
//!   graceful shutdown. It stops an attempt whose task was cancelled while it ran (the task
//!   sees it through [`TaskContext::is_cancelled`]) or that ran past its timeout
//!   ([`Task::TIMEOUT`], [`NewTask::timeout`]), and enqueues periodic tasks on their cron
//!   schedule, each slot once however many workers run it ([`Periodic`]). It claims only
//!   the tasks its [`Registry`] holds and the routes it serves ([`NewTask::route`]). A task whose attempt ended without an outcome (its worker
//!   crashed or hung) runs alone afterwards, and is failed once that has happened
//!   [`MAX_LEASE_EXPIRIES`] times.
//!
//! ```no_run
//! use mailroom::tasks::{self, Registry, Task, TaskContext, TaskFailure, Worker};
//!
//! struct Greet;
//!
//! #[async_trait::async_trait]
//! impl Task for Greet {
//!     const NAME: &'static str = "greet";
//!     type Args = String;
//!     type Output = String;
//!     async fn run(&self, _ctx: TaskContext, name: String) -> Result<String, TaskFailure> {
//!         Ok(format!("hello {name}"))
//!     }
//! }
//!
//! # async fn demo() -> Result<(), mailroom::tasks::TaskError> {
//! let registry = Registry::new().with(Greet);
//! let backend = tasks::connect_worker("sqlite:/tmp/tasks.db").await?;
//! let id = backend.enqueue(Greet::new_task(&"Zoë".to_owned())?).await?;
//! Worker::builder(backend.clone(), registry).burst(true).build().run(std::future::pending()).await?;
//! let result = backend.get_result(id).await?;
//! assert_eq!(result.return_value, Some(serde_json::json!("hello Zoë")));
//! # Ok(()) }
//! ```

mod backend;
mod cancellation;
mod error;
mod hooks;
pub mod maintenance;
mod result;
mod retry;
mod task;
mod worker;

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;

use std::sync::Arc;

pub use backend::dummy::DummyBackend;
pub use backend::immediate::ImmediateBackend;
pub use backend::operations::{
    CancelOutcome, MAX_PAGE, QueueOperations, QueueSettings, RateLimit, RetrySelection, TaskCounts,
    TaskCursor, TaskFilter, TaskPage,
};
#[cfg(feature = "postgres")]
pub use backend::postgres::{PLANNER_SETTINGS, PostgresBackend, PostgresOptions};
#[cfg(feature = "sqlite")]
pub use backend::sqlite::{SqliteBackend, SqliteOptions};
pub use backend::{
    Capabilities, ClaimRequest, ClaimedTask, DEFAULT_QUEUE, Lease, MAX_LEASE_EXPIRIES,
    MAX_PRIORITY, MAX_TIMEOUT, MIN_PRIORITY, NewTask, Outcome, OutcomeKind, RescueReport,
    TaskBackend, UniqueScope, WorkerBackend, is_label_name,
};
#[cfg(any(test, feature = "test-util"))]
pub use backend::{TransactionalEnqueue, WorkerBackendExt};
pub use cancellation::Cancellation;
pub use error::TaskError;
pub use hooks::{Hooks, WithHooks};
pub use maintenance::scheduler::Periodic;
pub use result::{AttemptError, TaskId, TaskResult, TaskStatus};
pub use retry::RetryPolicy;
pub use task::{Disposition, Registry, Task, TaskContext, TaskFailure};
pub use worker::{Worker, WorkerBuilder, WorkerReport, shutdown_signal};

/// What a queue URL that names no scheme, or an unknown one, is told to use.
const SCHEMES: &str = "use sqlite:PATH, postgres://..., immediate: or dummy:";

/// Splits a queue URL into its scheme and the rest.
fn scheme(url: &str) -> Result<&str, TaskError> {
    url.split_once(':')
        .map(|(scheme, _)| scheme)
        .ok_or_else(|| {
            TaskError::configuration("queue", format!("`{url}` is not a queue URL; {SCHEMES}"))
        })
}

/// Opens a backend from a queue URL as a client (to enqueue tasks and read results):
/// `sqlite:PATH` (created and migrated if needed; `?queues=a,b` sets the known queues),
/// `postgres://user@host:port/db[?schema=NAME]` (feature `postgres`; see `PostgresOptions`
/// for its parameters), `immediate:`, `dummy:`. The immediate backend runs tasks from
/// `registry`; the others ignore it. A worker needs [`connect_worker`]. (URLs are parsed by `from_url` without I/O; `connect` opens from a URL, `connect_with` from options.)
pub async fn connect(url: &str, registry: &Registry) -> Result<Arc<dyn TaskBackend>, TaskError> {
    match scheme(url)? {
        "immediate" => Ok(Arc::new(ImmediateBackend::new(registry.clone()))),
        "dummy" => Ok(Arc::new(DummyBackend::new())),
        _ => Ok(connect_worker(url).await?),
    }
}

/// Opens a durable backend from a queue URL for a [`Worker`] (which also serves as a
/// client: `Arc<dyn WorkerBackend>` upcasts to `Arc<dyn TaskBackend>`): `sqlite:PATH` or
/// `postgres://...`, as for [`connect`].
///
/// # Errors
///
/// [`TaskError::Unsupported`] for `immediate:` and `dummy:`, which no worker can pull from
/// (the first runs each task inside enqueue, the second never runs any);
/// [`TaskError::Configuration`] (field `queue`) for a URL that is not a queue URL, names an
/// unknown scheme or a backend not compiled in, or is wrong for its backend.
pub async fn connect_worker(url: &str) -> Result<Arc<dyn WorkerBackend>, TaskError> {
    match scheme(url)? {
        "immediate" => Err(TaskError::Unsupported {
            backend: "immediate",
            operation: "workers: an `immediate:` queue runs each task inside enqueue; give the worker a sqlite:PATH or postgres://... queue",
        }),
        "dummy" => Err(TaskError::Unsupported {
            backend: "dummy",
            operation: "workers: a `dummy:` queue only records tasks and never runs them; give the worker a sqlite:PATH or postgres://... queue",
        }),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(SqliteBackend::connect(url).await?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PostgresBackend::connect(url).await?)),
        other => Err(durable_scheme_error(other)),
    }
}

/// Opens a durable backend from a queue URL in the operator's role ([`QueueOperations`]:
/// list, count, cancel and retry tasks; pause, resume and rate-limit queues):
/// `sqlite:PATH` or `postgres://...`, as for [`connect`]. `Arc<dyn QueueOperations>`
/// upcasts to `Arc<dyn TaskBackend>` to enqueue and read results too.
///
/// # Errors
///
/// [`TaskError::Unsupported`] for `immediate:` and `dummy:`, which keep no queue to
/// operate; [`TaskError::Configuration`] (field `queue`) as for [`connect_worker`].
pub async fn connect_operations(url: &str) -> Result<Arc<dyn QueueOperations>, TaskError> {
    match scheme(url)? {
        "immediate" => Err(TaskError::Unsupported {
            backend: "immediate",
            operation: "queue operations: an `immediate:` queue runs each task inside enqueue and keeps no queue; use a sqlite:PATH or postgres://... queue",
        }),
        "dummy" => Err(TaskError::Unsupported {
            backend: "dummy",
            operation: "queue operations: a `dummy:` queue only records tasks in memory; use a sqlite:PATH or postgres://... queue",
        }),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(SqliteBackend::connect(url).await?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PostgresBackend::connect(url).await?)),
        other => Err(durable_scheme_error(other)),
    }
}

/// The error for a durable queue scheme that is not compiled in, or unknown.
fn durable_scheme_error(scheme: &str) -> TaskError {
    match scheme {
        "sqlite" => TaskError::configuration(
            "queue",
            "the sqlite backend is not compiled in; enable the `sqlite` feature",
        ),
        "postgres" | "postgresql" => TaskError::configuration(
            "queue",
            "the postgres backend is not compiled in; enable the `postgres` feature",
        ),
        other => TaskError::configuration(
            "queue",
            format!("unknown queue scheme `{other}:`; {SCHEMES}"),
        ),
    }
}

/// The former name of [`connect`].
#[deprecated(note = "renamed `tasks::connect`: `connect` opens from a URL, `from_url` only parses")]
pub async fn open(url: &str, registry: &Registry) -> Result<Arc<dyn TaskBackend>, TaskError> {
    connect(url, registry).await
}

/// The former name of [`connect_worker`].
#[deprecated(note = "renamed `tasks::connect_worker`")]
pub async fn open_worker(url: &str) -> Result<Arc<dyn WorkerBackend>, TaskError> {
    connect_worker(url).await
}
