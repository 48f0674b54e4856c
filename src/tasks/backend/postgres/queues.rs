//! Per-queue settings — paused, rate limit — stored in `mailroom_queues`, and the cached copy
//! the claim path reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::PostgresBackend;
use crate::tasks::TaskError;
use crate::tasks::backend::operations::{QueueSettings, RateLimit};
use crate::tasks::backend::settings::check_queue;

impl PostgresBackend {
    fn queues_table(&self) -> String {
        format!("\"{}\".mailroom_queues", self.inner.schema)
    }

    /// Pauses (`true`) or resumes (`false`) `queue`.
    pub(crate) async fn store_pause(&self, queue: &str, paused: bool) -> Result<(), TaskError> {
        check_queue(queue, &self.inner.queues)?;
        let t = self.queues_table();
        sqlx::query(&format!(
            "INSERT INTO {t} (queue_name, paused_at, updated_at) VALUES ($1, $2, now()) \
             ON CONFLICT (queue_name) DO UPDATE SET \
               paused_at = CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE COALESCE({t}.paused_at, $2) END, \
               updated_at = now()"
        ))
        .bind(queue)
        .bind(paused.then(Utc::now))
        .execute(&self.inner.pool)
        .await?;
        self.inner.settings.invalidate();
        Ok(())
    }

    /// Sets or removes `queue`'s rate limit; its buckets start full again.
    pub(crate) async fn store_rate_limit(
        &self,
        queue: &str,
        limit: Option<&RateLimit>,
    ) -> Result<(), TaskError> {
        check_queue(queue, &self.inner.queues)?;
        if let Some(limit) = limit {
            limit.validate()?;
        }
        let t = self.queues_table();
        let key_by: Vec<String> = limit.map(|l| l.key_by.clone()).unwrap_or_default();
        let mut tx = self.inner.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO {t} (queue_name, rate_limit, rate_interval_ms, rate_key_by, updated_at) \
             VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (queue_name) DO UPDATE SET rate_limit = $2, rate_interval_ms = $3, \
               rate_key_by = $4, updated_at = now()"
        ))
        .bind(queue)
        .bind(limit.map(|l| i32::try_from(l.limit).unwrap_or(i32::MAX)))
        .bind(limit.map(|l| duration_ms(l.per)))
        .bind(key_by)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM \"{}\".mailroom_rate_buckets WHERE queue_name = $1",
            self.inner.schema
        ))
        .bind(queue)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.inner.settings.invalidate();
        Ok(())
    }

    /// Every queue's stored settings, read now.
    pub(crate) async fn load_settings(&self) -> Result<Vec<QueueSettings>, TaskError> {
        let rows = sqlx::query(&format!(
            "SELECT queue_name, paused_at, rate_limit, rate_interval_ms, rate_key_by \
             FROM {} ORDER BY queue_name",
            self.queues_table()
        ))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let limit: Option<i32> = row.try_get("rate_limit")?;
                let per: Option<i64> = row.try_get("rate_interval_ms")?;
                let rate_limit = match (limit, per) {
                    (Some(limit), Some(per)) => Some(RateLimit {
                        limit: u32::try_from(limit).unwrap_or(u32::MAX),
                        per: Duration::from_millis(u64::try_from(per).unwrap_or(1)),
                        key_by: row.try_get("rate_key_by")?,
                    }),
                    _ => None,
                };
                Ok(QueueSettings {
                    queue_name: row.try_get("queue_name")?,
                    paused_at: row.try_get::<Option<DateTime<Utc>>, _>("paused_at")?,
                    rate_limit,
                })
            })
            .collect()
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}
