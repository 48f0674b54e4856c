//! The SQLite backend: the embedded, durable default.
//!
//! One file, WAL mode, a busy timeout and `synchronous=NORMAL` — each read back and checked
//! at open, so a misconfigured database fails loudly instead of running without WAL. All of
//! this process's writes go through a single connection (SQLite has one writer anyway);
//! reads use a small pool. Several processes may share the file: every write transaction is
//! `BEGIN IMMEDIATE`, so they queue on the busy timeout instead of failing on lock upgrade.

//!
//! The files: `options.rs` (the URL), `open.rs` (connections, WAL, pragma checks),
//! `migrate.rs`, `enqueue.rs` (inserts and idempotency keys), `queues.rs` (per-queue
//! settings), `operations.rs` (the operator's role), `rows.rs` (row mapping); this
//! one holds the backend and its [`TaskBackend`] and [`WorkerBackend`] implementations.

mod claim;
mod enqueue;
mod migrate;
mod open;
mod operations;
mod options;
mod queues;
mod rows;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

pub use options::SqliteOptions;

use super::{
    Capabilities, ClaimRequest, ClaimedTask, Lease, NewTask, Outcome, OutcomeKind, RescueReport,
    TaskBackend, WorkerBackend,
};
use crate::tasks::{TaskError, TaskId, TaskResult};
use enqueue::insert_tasks;
use rows::{args_json, error_json, micros, result_from_row, return_json};

/// Successes per bulk `UPDATE ... FROM (VALUES ...)` (5 parameters each).
const FINISH_CHUNK: usize = 500;

/// Tasks per delete of the pruner, so that the write lock is never held for long.
const PRUNE_SLICE: usize = 5000;

/// The embedded SQLite task backend.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    queues: Vec<String>,
    path: PathBuf,
    settings: super::settings::SettingsCache,
}

impl SqliteBackend {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Marks the successes among `outcomes` (indexes and JSON return values in `successes`)
/// with one statement per chunk: a join against the outcomes, fenced like the single-row
/// updates, returning the rows it changed. The outcomes' strings are bound borrowed, and
/// each changed row comes back as two values (its id, and `ATTEMPT WORKER_ID` as one text):
/// sqlx copies every bound and every returned value on its own.
async fn success_updates(
    conn: &mut SqliteConnection,
    outcomes: &[Outcome],
    successes: &[(usize, String)],
    applied: &mut [bool],
) -> Result<(), TaskError> {
    for chunk in successes.chunks(FINISH_CHUNK) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "UPDATE mailroom_tasks SET status = 'SUCCESSFUL', finished_at = v.column4, \
                 return_value = v.column5, lease_expires_at = NULL FROM (",
        );
        qb.push_values(chunk, |mut b, (i, value)| {
            let o = &outcomes[*i];
            b.push_bind(o.lease.id.0)
                .push_bind(o.lease.worker_id.as_str())
                .push_bind(i64::from(o.lease.attempt))
                .push_bind(micros(o.at))
                .push_bind(value.as_str());
        });
        qb.push(
            ") AS v WHERE mailroom_tasks.id = v.column1 AND mailroom_tasks.worker_id = v.column2 \
                 AND mailroom_tasks.attempt = v.column3 AND mailroom_tasks.status = 'RUNNING' \
                 RETURNING mailroom_tasks.id, \
                 mailroom_tasks.attempt || ' ' || mailroom_tasks.worker_id",
        );
        let rows = qb.build().fetch_all(&mut *conn).await?;
        let mut done = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get(0)?;
            let held: &str = row.try_get(1)?;
            let (attempt, worker) = held.split_once(' ').ok_or_else(|| TaskError::Storage {
                message: format!("a finished row returned `{held}`, not `ATTEMPT WORKER_ID`"),
                source: None,
            })?;
            let attempt: i64 = attempt
                .parse()
                .map_err(|e| TaskError::storage("corrupt `attempt` in storage", e))?;
            done.insert((id, attempt, worker));
        }
        for (i, _) in chunk {
            let l = &outcomes[*i].lease;
            applied[*i] = done.contains(&(l.id.0, i64::from(l.attempt), l.worker_id.as_str()));
        }
    }
    Ok(())
}

#[async_trait]
impl TaskBackend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::DURABLE
    }

    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        let mut tasks = tasks;
        for task in &mut tasks {
            task.prepare(self.capabilities(), &self.queues)?;
        }
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let ids = insert_tasks(&mut tx, tasks, Utc::now()).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn get_result(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        let row = sqlx::query("SELECT * FROM mailroom_tasks WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| TaskError::NotFound { id: id.to_string() })?;
        result_from_row(&row)
    }
}

#[async_trait]
impl WorkerBackend for SqliteBackend {
    fn queues(&self) -> &[String] {
        &self.queues
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
        let expires = micros(now + lease);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut held = Vec::with_capacity(leases.len());
        for l in leases {
            let done = sqlx::query(
                "UPDATE mailroom_tasks SET lease_expires_at = ? \
                 WHERE id = ? AND worker_id = ? AND attempt = ? AND status = 'RUNNING'",
            )
            .bind(expires)
            .bind(l.id.0)
            .bind(&l.worker_id)
            .bind(i64::from(l.attempt))
            .execute(&mut *tx)
            .await?;
            held.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn finish(&self, outcomes: &[Outcome]) -> Result<Vec<bool>, TaskError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut applied = vec![false; outcomes.len()];
        let mut successes = Vec::new();
        if outcomes.len() <= FINISH_CHUNK
            && outcomes
                .iter()
                .all(|o| matches!(o.kind, OutcomeKind::Succeeded { .. }))
        {
            // The common case: one statement, atomic by itself — no BEGIN/COMMIT round trips.
            for (i, o) in outcomes.iter().enumerate() {
                if let OutcomeKind::Succeeded { return_value } = &o.kind {
                    successes.push((i, return_json(return_value)?));
                }
            }
            let mut conn = self.writer.acquire().await?;
            success_updates(&mut conn, outcomes, &successes, &mut applied).await?;
            return Ok(applied);
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for (i, o) in outcomes.iter().enumerate() {
            let at = micros(o.at);
            let query = match &o.kind {
                OutcomeKind::Succeeded { return_value } => {
                    successes.push((i, return_json(return_value)?));
                    continue;
                }
                OutcomeKind::Retry {
                    error,
                    run_after,
                    args,
                } => sqlx::query(
                    // Cancelled meanwhile: it never runs again.
                    "UPDATE mailroom_tasks SET \
                     status = CASE WHEN cancel_requested_at IS NULL THEN 'READY' ELSE 'CANCELLED' END, \
                     finished_at = CASE WHEN cancel_requested_at IS NULL THEN finished_at ELSE ?1 END, \
                     worker_id = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE worker_id END, \
                     run_after = ?2, errors = json_insert(errors, '$[#]', json(?3)), \
                     enqueued_args = CASE WHEN ?4 IS NULL THEN enqueued_args ELSE COALESCE(enqueued_args, args) END, \
                     args = COALESCE(?4, args), lease_expires_at = NULL \
                     WHERE id = ?5 AND worker_id = ?6 AND attempt = ?7 AND status = 'RUNNING'",
                )
                .bind(at)
                .bind(micros(*run_after))
                .bind(error_json(error)?)
                .bind(args.as_ref().map(args_json).transpose()?),
                OutcomeKind::Failed { error, args } => sqlx::query(
                    "UPDATE mailroom_tasks SET status = 'FAILED', finished_at = ?, errors = json_insert(errors, '$[#]', json(?)), \
                     enqueued_args = CASE WHEN ? IS NULL THEN enqueued_args ELSE COALESCE(enqueued_args, args) END, \
                     args = COALESCE(?, args), lease_expires_at = NULL \
                     WHERE id = ? AND worker_id = ? AND attempt = ? AND status = 'RUNNING'",
                )
                .bind(at)
                .bind(error_json(error)?)
                .bind(args.as_ref().map(args_json).transpose()?)
                .bind(args.as_ref().map(args_json).transpose()?),
                OutcomeKind::Cancelled { error } => sqlx::query(
                    "UPDATE mailroom_tasks SET status = 'CANCELLED', finished_at = ?, \
                     errors = json_insert(errors, '$[#]', json(?)), lease_expires_at = NULL \
                     WHERE id = ? AND worker_id = ? AND attempt = ? AND status = 'RUNNING'",
                )
                .bind(at)
                .bind(error_json(error)?),
            };
            let done = query
                .bind(o.lease.id.0)
                .bind(&o.lease.worker_id)
                .bind(i64::from(o.lease.attempt))
                .execute(&mut *tx)
                .await?;
            applied[i] = done.rows_affected() == 1;
        }
        success_updates(&mut tx, outcomes, &successes, &mut applied).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        max_lease_expiries: u32,
    ) -> Result<RescueReport, TaskError> {
        let now_us = micros(now);
        let at = serde_json::to_value(now)
            .map_err(|e| TaskError::storage("cannot serialise a time", e))?;
        let at = at.as_str().unwrap_or_default().to_owned();
        let limit = max_lease_expiries.max(1);
        // Every right-hand side reads the row as it was before this update.
        let statuses: Vec<String> = sqlx::query_scalar(
            "UPDATE mailroom_tasks SET \
               status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'CANCELLED' \
                 WHEN attempt >= max_attempts OR lease_expiries + 1 >= ?3 THEN 'FAILED' ELSE 'READY' END, \
               finished_at = CASE WHEN cancel_requested_at IS NOT NULL OR attempt >= max_attempts OR lease_expiries + 1 >= ?3 THEN ?1 ELSE NULL END, \
               run_after = CASE WHEN cancel_requested_at IS NOT NULL OR attempt >= max_attempts OR lease_expiries + 1 >= ?3 THEN run_after ELSE ?1 END, \
               errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'kind', 'lease_expired', \
                 'message', CASE WHEN lease_expiries + 1 >= ?3 THEN ?5 ELSE ?4 END, \
                 'worker_id', worker_id, 'at', ?2)), \
               lease_expiries = lease_expiries + 1, \
               worker_id = NULL, lease_expires_at = NULL \
             WHERE status = 'RUNNING' AND lease_expires_at < ?1 RETURNING status",
        )
        .bind(now_us)
        .bind(at)
        .bind(i64::from(limit))
        .bind(super::LEASE_EXPIRED)
        .bind(super::lease_expired_too_often(limit))
        .fetch_all(&self.writer)
        .await?;
        let failed = statuses.iter().filter(|s| *s != "READY").count() as u64;
        Ok(RescueReport {
            retried: statuses.len() as u64 - failed,
            failed,
        })
    }

    async fn cancel_requests(&self, worker_id: &str) -> Result<Vec<Lease>, TaskError> {
        // Served by the partial index `mailroom_tasks_cancel_requests`; a read, so it never
        // waits for the writer.
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT id, attempt FROM mailroom_tasks \
             WHERE worker_id = ? AND status = 'RUNNING' AND cancel_requested_at IS NOT NULL",
        )
        .bind(worker_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(id, attempt)| {
                Ok(Lease {
                    id: TaskId(id),
                    worker_id: worker_id.to_owned(),
                    attempt: rows::to_u32(attempt, "attempt")?,
                })
            })
            .collect()
    }

    async fn prune(&self, finished_before: DateTime<Utc>) -> Result<u64, TaskError> {
        self.prune_finished(micros(finished_before), PRUNE_SLICE)
            .await
    }
}
