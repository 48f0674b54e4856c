//! A durable background Tasks framework in the manner of Django 6.0's, with a worker: it
//! knows nothing about email.
//!
//! - [`Task`]: a named unit of work with JSON arguments and output; [`Registry`] maps names
//!   to tasks for the worker.
//! - [`TaskBackend`]: the one storage trait; backends [`ImmediateBackend`] (runs inside
//!   enqueue), [`DummyBackend`] (records, never runs) and `SqliteBackend` (the embedded,
//!   durable default; feature `sqlite`). [`open`] picks one from a URL.
//! - [`Worker`]: runs tasks concurrently from several queues with leases and heartbeats,
//!   fenced completions, retries with backoff (a retry may hand its progress to the next
//!   attempt, [`TaskFailure::with_args`]), a rescuer for dead workers' tasks, a pruner and
//!   graceful shutdown. It claims only the tasks its [`Registry`] holds and the routes it
//!   serves ([`NewTask::route`]). A task whose attempt ended without an outcome (its worker
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
//! let backend = tasks::open("sqlite:/tmp/tasks.db", &registry).await?;
//! let id = backend.enqueue(Greet::new_task(&"Zoë".to_owned())?).await?;
//! Worker::builder(backend.clone(), registry).burst(true).build().run(std::future::pending()).await?;
//! let result = backend.get_result(id).await?;
//! assert_eq!(result.return_value, Some(serde_json::json!("hello Zoë")));
//! # Ok(()) }
//! ```

mod backend;
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
#[cfg(feature = "postgres")]
pub use backend::postgres::{PLANNER_SETTINGS, PostgresBackend, PostgresOptions};
#[cfg(feature = "sqlite")]
pub use backend::sqlite::{SqliteBackend, SqliteOptions};
pub use backend::{
    Capabilities, ClaimRequest, ClaimedTask, DEFAULT_QUEUE, Lease, MAX_LEASE_EXPIRIES,
    MAX_PRIORITY, MIN_PRIORITY, NewTask, Outcome, OutcomeKind, RescueReport, TaskBackend,
    TransactionalEnqueue, validate,
};
pub use error::TaskError;
pub use hooks::{Hooks, WithHooks};
pub use result::{AttemptError, TaskId, TaskResult, TaskStatus};
pub use retry::RetryPolicy;
pub use task::{Disposition, Registry, Task, TaskContext, TaskFailure};
pub use worker::{Worker, WorkerBuilder, WorkerReport, shutdown_signal};

/// Opens a backend from a queue URL: `sqlite:PATH` (created and migrated if needed;
/// `?queues=a,b` sets the known queues), `postgres://user@host:port/db[?schema=NAME]`
/// (feature `postgres`; see `PostgresOptions` for its parameters), `immediate:`, `dummy:`.
/// The immediate backend runs tasks from `registry`; the others ignore it.
pub async fn open(url: &str, registry: &Registry) -> Result<Arc<dyn TaskBackend>, TaskError> {
    let (scheme, rest) = url.split_once(':').ok_or_else(|| {
        TaskError::configuration(
            "queue",
            format!(
                "`{url}` is not a queue URL; use sqlite:PATH, postgres://..., immediate: or dummy:"
            ),
        )
    })?;
    match scheme {
        "immediate" => Ok(Arc::new(ImmediateBackend::new(registry.clone()))),
        "dummy" => Ok(Arc::new(DummyBackend::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let _ = rest;
            Ok(Arc::new(SqliteBackend::connect(url).await?))
        }
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => Err(TaskError::configuration(
            "queue",
            "the sqlite backend is not compiled in; enable the `sqlite` feature",
        )),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PostgresBackend::connect(url).await?)),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(TaskError::configuration(
            "queue",
            "the postgres backend is not compiled in; enable the `postgres` feature",
        )),
        other => {
            let _ = rest;
            Err(TaskError::configuration(
                "queue",
                format!(
                    "unknown queue scheme `{other}:`; use sqlite:PATH, postgres://..., immediate: or dummy:"
                ),
            ))
        }
    }
}
