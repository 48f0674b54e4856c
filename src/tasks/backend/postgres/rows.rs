//! Row mapping: stored rows into [`TaskResult`]s and claimed tasks, values into the column
//! types, and which rows a fenced batch statement changed.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::tasks::backend::{ClaimedTask, Lease};
use crate::tasks::{AttemptError, TaskError, TaskId, TaskResult, TaskStatus};

pub(super) fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> TaskError {
    TaskError::storage(format!("corrupt `{what}` in storage"), e)
}

pub(super) fn to_u32(v: i32, what: &str) -> Result<u32, TaskError> {
    u32::try_from(v).map_err(|e| corrupt(what, e))
}

pub(super) fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

pub(super) fn result_from_row(row: &PgRow) -> Result<TaskResult, TaskError> {
    let status: String = row.try_get("status")?;
    let errors: serde_json::Value = row.try_get("errors")?;
    Ok(TaskResult {
        id: TaskId(row.try_get("id")?),
        task_name: row.try_get("task_name")?,
        queue_name: row.try_get("queue_name")?,
        priority: row.try_get("priority")?,
        args: row.try_get("args")?,
        status: TaskStatus::from_str(&status)?,
        enqueued_at: row.try_get("enqueued_at")?,
        run_after: row.try_get("run_after")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        last_attempted_at: row.try_get("last_attempted_at")?,
        attempts: to_u32(row.try_get("attempt")?, "attempt")?,
        max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
        worker_ids: row.try_get("worker_ids")?,
        errors: serde_json::from_value(errors).map_err(|e| corrupt("errors", e))?,
        return_value: row.try_get("return_value")?,
        idempotency_key: row.try_get("idempotency_key")?,
        cancel_requested_at: row.try_get("cancel_requested_at")?,
    })
}

pub(super) fn error_json(error: &AttemptError) -> Result<String, TaskError> {
    serde_json::to_string(error).map_err(|e| TaskError::storage("cannot serialise an error", e))
}

/// Marks each `(id, worker, attempt)` in `wanted` as applied if the statement returned it,
/// the first occurrence only (a repeated lease in one batch is applied once).
pub(super) fn applied(
    wanted: &[(Uuid, &str, i32)],
    returned: Vec<(Uuid, String, i32)>,
) -> Vec<bool> {
    let mut got: HashSet<(Uuid, String, i32)> = returned.into_iter().collect();
    wanted
        .iter()
        .map(|(id, w, a)| got.remove(&(*id, (*w).to_owned(), *a)))
        .collect()
}

/// The claimed task in a row the claim statement returned, with its `seq` (the claim
/// order), under the lease of `worker_id` until `lease_expires_at`.
pub(super) fn claimed_from_row(
    row: &PgRow,
    worker_id: &str,
    lease_expires_at: DateTime<Utc>,
) -> Result<(i64, ClaimedTask), TaskError> {
    let seq: i64 = row.try_get("seq")?;
    Ok((
        seq,
        ClaimedTask {
            lease: Lease {
                id: TaskId(row.try_get("id")?),
                worker_id: worker_id.to_owned(),
                attempt: to_u32(row.try_get("attempt")?, "attempt")?,
            },
            task_name: row.try_get("task_name")?,
            queue_name: row.try_get("queue_name")?,
            priority: row.try_get("priority")?,
            args: row.try_get("args")?,
            max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
            enqueued_at: row.try_get("enqueued_at")?,
            run_after: row.try_get("run_after")?,
            lease_expires_at,
            lease_expiries: to_u32(row.try_get("lease_expiries")?, "lease_expiries")?,
            timeout: row
                .try_get::<Option<i64>, _>("timeout_ms")?
                .map(|ms| std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        },
    ))
}
