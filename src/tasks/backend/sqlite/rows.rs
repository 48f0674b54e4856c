//! Row mapping: times are integer microseconds, JSON is text; stored rows into
//! [`TaskResult`]s and claimed tasks.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::tasks::backend::{ClaimedTask, Lease};
use crate::tasks::{AttemptError, TaskError, TaskId, TaskResult, TaskStatus};

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(super) fn from_micros(v: i64) -> Result<DateTime<Utc>, TaskError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| TaskError::Storage {
        message: format!("bad timestamp {v} in storage"),
        source: None,
    })
}

pub(super) fn opt_time(v: Option<i64>) -> Result<Option<DateTime<Utc>>, TaskError> {
    v.map(from_micros).transpose()
}

pub(super) fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> TaskError {
    TaskError::storage(format!("corrupt `{what}` in storage"), e)
}

pub(super) fn to_u32(v: i64, what: &str) -> Result<u32, TaskError> {
    u32::try_from(v).map_err(|e| corrupt(what, e))
}

pub(super) fn result_from_row(row: &SqliteRow) -> Result<TaskResult, TaskError> {
    let id: Uuid = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let args: String = row.try_get("args")?;
    let worker_ids: String = row.try_get("worker_ids")?;
    let errors: String = row.try_get("errors")?;
    let return_value: Option<String> = row.try_get("return_value")?;
    Ok(TaskResult {
        id: TaskId(id),
        task_name: row.try_get("task_name")?,
        queue_name: row.try_get("queue_name")?,
        priority: row.try_get("priority")?,
        args: serde_json::from_str(&args).map_err(|e| corrupt("args", e))?,
        status: TaskStatus::from_str(&status)?,
        enqueued_at: from_micros(row.try_get("enqueued_at")?)?,
        run_after: from_micros(row.try_get("run_after")?)?,
        started_at: opt_time(row.try_get("started_at")?)?,
        finished_at: opt_time(row.try_get("finished_at")?)?,
        last_attempted_at: opt_time(row.try_get("last_attempted_at")?)?,
        attempts: to_u32(row.try_get("attempt")?, "attempt")?,
        max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
        worker_ids: serde_json::from_str(&worker_ids).map_err(|e| corrupt("worker_ids", e))?,
        errors: serde_json::from_str(&errors).map_err(|e| corrupt("errors", e))?,
        return_value: return_value
            .map(|v| serde_json::from_str(&v))
            .transpose()
            .map_err(|e| corrupt("return_value", e))?,
        idempotency_key: row.try_get("idempotency_key")?,
        cancel_requested_at: opt_time(row.try_get("cancel_requested_at")?)?,
    })
}

pub(super) fn error_json(error: &AttemptError) -> Result<String, TaskError> {
    serde_json::to_string(error).map_err(|e| TaskError::storage("cannot serialise an error", e))
}

pub(super) fn args_json(value: &serde_json::Value) -> Result<String, TaskError> {
    serde_json::to_string(value).map_err(|e| TaskError::storage("cannot serialise arguments", e))
}

pub(super) fn return_json(value: &serde_json::Value) -> Result<String, TaskError> {
    serde_json::to_string(value)
        .map_err(|e| TaskError::storage("cannot serialise a return value", e))
}

/// The claimed task in a row the claim statement returned (its `RETURNING`: `id`,
/// `task_name`, `queue_name`, `args`, then `seq priority attempt max_attempts enqueued_at
/// run_after lease_expiries timeout_ms` as one space-separated text, `timeout_ms` empty when
/// NULL), with its `seq` (the claim order), under the lease of `worker_id` until
/// `lease_expires_at`.
pub(super) fn claimed_from_row(
    row: &SqliteRow,
    worker_id: &str,
    lease_expires_at: DateTime<Utc>,
) -> Result<(i64, ClaimedTask), TaskError> {
    let id: Uuid = row.try_get(0)?;
    let args: &str = row.try_get(3)?;
    let ints: &str = row.try_get(4)?;
    let mut fields = ints.split(' ');
    let mut next = |what: &str| -> Result<i64, TaskError> {
        fields
            .next()
            .ok_or_else(|| TaskError::Storage {
                message: format!("a claimed row lacks `{what}`"),
                source: None,
            })?
            .parse::<i64>()
            .map_err(|e| corrupt(what, e))
    };
    let seq = next("seq")?;
    let priority = i32::try_from(next("priority")?).map_err(|e| corrupt("priority", e))?;
    let attempt = to_u32(next("attempt")?, "attempt")?;
    let max_attempts = to_u32(next("max_attempts")?, "max_attempts")?;
    let enqueued_at = from_micros(next("enqueued_at")?)?;
    let run_after = from_micros(next("run_after")?)?;
    let lease_expiries = to_u32(next("lease_expiries")?, "lease_expiries")?;
    let timeout = match fields.next() {
        None | Some("") => None,
        Some(ms) => {
            let ms: i64 = ms.parse().map_err(|e| corrupt("timeout_ms", e))?;
            Some(std::time::Duration::from_millis(
                u64::try_from(ms).unwrap_or(0),
            ))
        }
    };
    Ok((
        seq,
        ClaimedTask {
            lease: Lease {
                id: TaskId(id),
                worker_id: worker_id.to_owned(),
                attempt,
            },
            task_name: row.try_get(1)?,
            queue_name: row.try_get(2)?,
            priority,
            args: serde_json::from_str(args).map_err(|e| corrupt("args", e))?,
            max_attempts,
            enqueued_at,
            run_after,
            lease_expires_at,
            lease_expiries,
            timeout,
        },
    ))
}
