//! Per-queue settings — paused, rate limit — stored in `mailroom_queues`, and the cached copy
//! the claim path reads.

use std::time::Duration;

use chrono::Utc;
use sqlx::Row;

use super::SqliteBackend;
use super::rows::{micros, opt_time};
use crate::tasks::TaskError;
use crate::tasks::backend::operations::{QueueSettings, RateLimit};
use crate::tasks::backend::settings::{check_queue, key_by_from_json};

impl SqliteBackend {
    /// Pauses (`true`) or resumes (`false`) `queue`.
    pub(crate) async fn store_pause(&self, queue: &str, paused: bool) -> Result<(), TaskError> {
        check_queue(queue, &self.queues)?;
        let now = micros(Utc::now());
        sqlx::query(
            "INSERT INTO mailroom_queues (queue_name, paused_at, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (queue_name) DO UPDATE SET \
               paused_at = CASE WHEN ?2 IS NULL THEN NULL ELSE COALESCE(mailroom_queues.paused_at, ?2) END, \
               updated_at = ?3",
        )
        .bind(queue)
        .bind(paused.then_some(now))
        .bind(now)
        .execute(&self.writer)
        .await?;
        self.settings.invalidate();
        Ok(())
    }

    /// Sets or removes `queue`'s rate limit; its buckets start full again.
    pub(crate) async fn store_rate_limit(
        &self,
        queue: &str,
        limit: Option<&RateLimit>,
    ) -> Result<(), TaskError> {
        check_queue(queue, &self.queues)?;
        if let Some(limit) = limit {
            limit.validate()?;
        }
        let now = micros(Utc::now());
        let key_by = limit
            .map(|l| serde_json::to_string(&l.key_by))
            .transpose()
            .map_err(|e| TaskError::storage("cannot serialise key_by", e))?
            .unwrap_or_else(|| "[]".to_owned());
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO mailroom_queues (queue_name, rate_limit, rate_interval_ms, rate_key_by, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (queue_name) DO UPDATE SET rate_limit = ?2, rate_interval_ms = ?3, \
               rate_key_by = ?4, updated_at = ?5",
        )
        .bind(queue)
        .bind(limit.map(|l| i64::from(l.limit)))
        .bind(limit.map(|l| duration_ms(l.per)))
        .bind(key_by)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM mailroom_rate_buckets WHERE queue_name = ?")
            .bind(queue)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.settings.invalidate();
        Ok(())
    }

    /// Every queue's stored settings, read now.
    pub(crate) async fn load_settings(&self) -> Result<Vec<QueueSettings>, TaskError> {
        let rows = sqlx::query(
            "SELECT queue_name, paused_at, rate_limit, rate_interval_ms, rate_key_by \
             FROM mailroom_queues ORDER BY queue_name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let limit: Option<i64> = row.try_get("rate_limit")?;
                let per: Option<i64> = row.try_get("rate_interval_ms")?;
                let key_by: String = row.try_get("rate_key_by")?;
                let rate_limit = match (limit, per) {
                    (Some(limit), Some(per)) => Some(RateLimit {
                        limit: u32::try_from(limit).unwrap_or(u32::MAX),
                        per: Duration::from_millis(u64::try_from(per).unwrap_or(1)),
                        key_by: key_by_from_json(&key_by)?,
                    }),
                    _ => None,
                };
                Ok(QueueSettings {
                    queue_name: row.try_get("queue_name")?,
                    paused_at: opt_time(row.try_get("paused_at")?)?,
                    rate_limit,
                })
            })
            .collect()
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}
