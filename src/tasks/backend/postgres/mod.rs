//! The PostgreSQL backend: many worker processes on many hosts against one database.
//!
//! - Claims are one statement: a CTE picks ready rows in claim order `FOR UPDATE SKIP
//!   LOCKED` with a `LIMIT` (so concurrent workers skip each other's rows instead of
//!   waiting, and the planner cannot lock more than the limit), then an `UPDATE` marks them
//!   `RUNNING` under the worker's lease. A partial index on ready rows in the same order
//!   serves it.
//! - Every write about a running task is fenced by the whole lease (task, worker, attempt,
//!   status `RUNNING`); heartbeats and completions go in batches through `UNNEST`.
//! - Enqueue is one `INSERT … SELECT FROM UNNEST(…)` per 10,000 tasks; idempotency keys are
//!   a unique index with `ON CONFLICT DO NOTHING`, never a read-then-write race. The same
//!   statement calls `pg_notify` with the queues it wrote to, so a committed enqueue wakes the
//!   idle workers of those queues (`LISTEN`) and a rolled-back one wakes none; the worker's
//!   poll interval covers lost notifications.
//! - The tables live in a schema of the user's choice (default `mailroom`), created and
//!   migrated at open under an advisory lock, with the applied version recorded.
//!
//! The files: `options.rs` (URL parameters, schema names, passwords kept out of output),
//! `sql.rs` (the statements and planner settings), `enqueue.rs` (inserts and idempotency
//! keys), `notify.rs` (LISTEN/NOTIFY wake-ups), `migrate.rs`, `rows.rs` (row mapping);
//! this one holds the backend and its [`TaskBackend`] and [`WorkerBackend`] implementations.

mod claim;
mod enqueue;
mod migrate;
mod notify;
mod operations;
mod options;
mod queues;
mod rows;
mod sql;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use uuid::Uuid;

pub use options::PostgresOptions;
pub use sql::PLANNER_SETTINGS;

use super::{
    Capabilities, ClaimRequest, ClaimedTask, Lease, NewTask, Outcome, OutcomeKind, RescueReport,
    TaskBackend, WorkerBackend,
};
use crate::tasks::{TaskError, TaskId, TaskResult};
use enqueue::INSERT_CHUNK;
use notify::Listener;
use options::{check_schema, connection_error, redact};
use rows::{applied, error_json, result_from_row, to_i32};
use sql::Sql;

struct Inner {
    pool: PgPool,
    schema: String,
    queues: Vec<String>,
    sql: Sql,
    listener: OnceLock<Listener>,
    settings: super::settings::SettingsCache,
}

/// The PostgreSQL task backend. Cheap to clone (all clones share one pool).
#[derive(Clone)]
pub struct PostgresBackend {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("schema", &self.inner.schema)
            .field("queues", &self.inner.queues)
            .field("pool_size", &self.inner.pool.size())
            .finish()
    }
}

impl PostgresBackend {
    /// Connects to `postgres://…[?schema=NAME][&queues=a,b]` and migrates the schema.
    pub async fn connect(url: &str) -> Result<Self, TaskError> {
        Self::connect_with(PostgresOptions::from_url(url)?).await
    }

    /// The former name of [`connect_with`](Self::connect_with): `connect` takes a URL,
    /// `connect_with` options, `from_url` parses without connecting.
    #[deprecated(note = "renamed `connect_with`")]
    pub async fn open(options: PostgresOptions) -> Result<Self, TaskError> {
        Self::connect_with(options).await
    }

    /// Connects, creates the schema if missing and applies pending migrations.
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, TaskError> {
        check_schema(&options.schema)?;
        if options.queues.is_empty() {
            return Err(TaskError::configuration(
                "queues",
                "at least one queue is needed",
            ));
        }
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| {
                connection_error(
                    format!("`{}` is not a usable PostgreSQL URL", redact(&options.url)),
                    &options.url,
                    e,
                )
            })?
            .options(PLANNER_SETTINGS);
        // One connection first, within the connect timeout: a pool would retry a refused
        // connection until its acquire timeout and then report only that it timed out.
        let unreachable = |cause: sqlx::Error| {
            connection_error(
                format!("cannot connect to PostgreSQL at {}", redact(&options.url)),
                &options.url,
                cause,
            )
        };
        let timeout = options.connect_timeout;
        let probe = tokio::time::timeout(timeout, PgConnection::connect_with(&connect))
            .await
            .map_err(|_| {
                TaskError::Storage {
                    message: format!(
                        "cannot connect to PostgreSQL at {}: no connection within the connect timeout of {} s; check the host and port, or raise `connect_timeout`",
                        redact(&options.url),
                        timeout.as_secs_f64()
                    ),
                    source: None,
                }
            })?
            .map_err(unreachable)?;
        probe.close().await.map_err(unreachable)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(60).max(timeout))
            .connect_with(connect)
            .await
            .map_err(unreachable)?;
        Self::with_pool(
            pool,
            &options.schema,
            options.queues,
            options.synchronous_worker_commits,
        )
        .await
    }

    /// Uses an existing pool (e.g. the application's own), creating and migrating `schema`;
    /// worker bookkeeping commits asynchronously (see
    /// [`PostgresOptions::synchronous_worker_commits`]).
    ///
    /// Give the pool's connections the planner settings in [`PLANNER_SETTINGS`]
    /// (`PgConnectOptions::options`), as [`PostgresBackend::open`] does: without them a
    /// claim may sort every ready task while the table's statistics are stale.
    pub async fn from_pool(
        pool: PgPool,
        schema: &str,
        queues: Vec<String>,
    ) -> Result<Self, TaskError> {
        Self::with_pool(pool, schema, queues, false).await
    }

    async fn with_pool(
        pool: PgPool,
        schema: &str,
        queues: Vec<String>,
        synchronous_worker_commits: bool,
    ) -> Result<Self, TaskError> {
        check_schema(schema)?;
        if queues.is_empty() {
            return Err(TaskError::configuration(
                "queues",
                "at least one queue is needed",
            ));
        }
        let backend = PostgresBackend {
            inner: Arc::new(Inner {
                sql: Sql::new(schema, synchronous_worker_commits),
                pool,
                schema: schema.to_owned(),
                queues,
                listener: OnceLock::new(),
                settings: Default::default(),
            }),
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The connection pool (for the caller's own transactions, see
    /// [`PostgresBackend::enqueue_in`]).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }
}

#[async_trait]
impl TaskBackend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::DURABLE
    }

    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        let mut tasks = tasks;
        for task in &mut tasks {
            task.prepare(self.capabilities(), &self.inner.queues)?;
        }
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.inner.pool.acquire().await?;
        let keyed = tasks.iter().any(|t| t.idempotency_key.is_some());
        if tasks.len() <= INSERT_CHUNK && !keyed {
            // One statement: atomic on its own. (Keyed tasks are checked against the stored
            // ones after the insert, so a conflict must be able to roll it back.)
            self.insert(&mut conn, tasks).await
        } else {
            let mut tx = conn.begin().await?;
            let ids = self.insert(&mut tx, tasks).await?;
            tx.commit().await?;
            Ok(ids)
        }
    }

    async fn get_result(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        let row = sqlx::query(&self.inner.sql.get)
            .bind(id.0)
            .fetch_optional(&self.inner.pool)
            .await?
            .ok_or_else(|| TaskError::NotFound { id: id.to_string() })?;
        result_from_row(&row)
    }
}

#[async_trait]
impl WorkerBackend for PostgresBackend {
    fn queues(&self) -> &[String] {
        &self.inner.queues
    }

    async fn claim(&self, req: &ClaimRequest) -> Result<Vec<ClaimedTask>, TaskError> {
        self.claim_tasks(req).await
    }

    async fn held_back_by_rate_limits(&self, req: &ClaimRequest) -> Result<bool, TaskError> {
        self.waiting_for_tokens(req).await
    }

    async fn heartbeat(
        &self,
        leases: &[Lease],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, TaskError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let lease = chrono::Duration::from_std(lease)
            .map_err(|e| TaskError::storage("lease too long", e))?;
        let wanted: Vec<(Uuid, &str, i32)> = leases
            .iter()
            .map(|l| (l.id.0, l.worker_id.as_str(), to_i32(l.attempt)))
            .collect();
        let returned: Vec<(Uuid, String, i32)> = sqlx::query_as(&self.inner.sql.heartbeat)
            .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.1).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.2).collect::<Vec<_>>())
            .bind(now + lease)
            .fetch_all(&self.inner.pool)
            .await?;
        let mut got: HashSet<(Uuid, String, i32)> = returned.into_iter().collect();
        // Every copy of a held lease is held (unlike completions, which apply once).
        let held = wanted
            .iter()
            .map(|(id, w, a)| got.contains(&(*id, (*w).to_owned(), *a)))
            .collect();
        got.clear();
        Ok(held)
    }

    async fn finish(&self, outcomes: &[Outcome]) -> Result<Vec<bool>, TaskError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let n = outcomes.len();
        let mut wanted = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        let mut value: Vec<Option<String>> = Vec::with_capacity(n);
        let mut error: Vec<Option<String>> = Vec::with_capacity(n);
        let mut run_after: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut next_args: Vec<Option<String>> = Vec::with_capacity(n);
        let args_json = |args: &Option<serde_json::Value>| {
            args.as_ref()
                .map(|a| {
                    serde_json::to_string(a)
                        .map_err(|e| TaskError::storage("cannot serialise arguments", e))
                })
                .transpose()
        };
        for o in outcomes {
            wanted.push((
                o.lease.id.0,
                o.lease.worker_id.as_str(),
                to_i32(o.lease.attempt),
            ));
            at.push(o.at);
            match &o.kind {
                OutcomeKind::Succeeded { return_value } => {
                    kind.push("ok");
                    value.push(Some(serde_json::to_string(return_value).map_err(|e| {
                        TaskError::storage("cannot serialise a return value", e)
                    })?));
                    error.push(None);
                    run_after.push(None);
                    next_args.push(None);
                }
                OutcomeKind::Retry {
                    error: e,
                    run_after: r,
                    args,
                } => {
                    kind.push("retry");
                    value.push(None);
                    error.push(Some(error_json(e)?));
                    run_after.push(Some(*r));
                    next_args.push(args_json(args)?);
                }
                OutcomeKind::Failed { error: e, args } => {
                    kind.push("failed");
                    value.push(None);
                    error.push(Some(error_json(e)?));
                    run_after.push(None);
                    next_args.push(args_json(args)?);
                }
                OutcomeKind::Cancelled { error: e } => {
                    kind.push("cancel");
                    value.push(None);
                    error.push(Some(error_json(e)?));
                    run_after.push(None);
                    next_args.push(None);
                }
            }
        }
        let returned: Vec<(Uuid, String, i32)> = sqlx::query_as(&self.inner.sql.finish)
            .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.1).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.2).collect::<Vec<_>>())
            .bind(kind)
            .bind(at)
            .bind(value)
            .bind(error)
            .bind(run_after)
            .bind(next_args)
            .fetch_all(&self.inner.pool)
            .await?;
        Ok(applied(&wanted, returned))
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        max_lease_expiries: u32,
    ) -> Result<RescueReport, TaskError> {
        let at = serde_json::to_value(now)
            .map_err(|e| TaskError::storage("cannot serialise a time", e))?;
        let at = at.as_str().unwrap_or_default().to_owned();
        let limit = max_lease_expiries.max(1);
        let statuses: Vec<String> = sqlx::query_scalar(&self.inner.sql.rescue)
            .bind(now)
            .bind(at)
            .bind(to_i32(limit))
            .bind(super::LEASE_EXPIRED)
            .bind(super::lease_expired_too_often(limit))
            .fetch_all(&self.inner.pool)
            .await?;
        let failed = statuses.iter().filter(|s| *s != "READY").count() as u64;
        Ok(RescueReport {
            retried: statuses.len() as u64 - failed,
            failed,
        })
    }

    async fn cancel_requests(&self, worker_id: &str) -> Result<Vec<Lease>, TaskError> {
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(&self.inner.sql.cancel_requests)
            .bind(worker_id)
            .fetch_all(&self.inner.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, attempt)| Lease {
                id: TaskId(id),
                worker_id: worker_id.to_owned(),
                attempt: u32::try_from(attempt).unwrap_or(0),
            })
            .collect())
    }

    async fn prune(&self, finished_before: DateTime<Utc>) -> Result<u64, TaskError> {
        let mut total = 0;
        loop {
            let done = sqlx::query(&self.inner.sql.prune)
                .bind(finished_before)
                .execute(&self.inner.pool)
                .await?;
            total += done.rows_affected();
            if done.rows_affected() < 5000 {
                return Ok(total);
            }
        }
    }

    async fn wait_for_tasks(&self, queues: &[String], timeout: Duration) {
        self.wait_for_notification(queues, timeout).await;
    }
}
