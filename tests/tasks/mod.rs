//! Integration tests: tasks — the backend conformance suite per backend, the SQLite
//! backend's own checks, crash safety and concurrency with real worker processes, and the
//! operator's commands.

#[cfg(feature = "test-util")]
mod backends;
#[cfg(all(feature = "sqlite", feature = "cli"))]
mod cancel_processes;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "sqlite")]
mod periodic;
#[cfg(all(feature = "postgres", feature = "test-util"))]
mod postgres;
#[cfg(feature = "sqlite")]
mod processes;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
mod worker_process;
