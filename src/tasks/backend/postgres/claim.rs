//! Claiming: one statement for the queues that are neither paused nor rate limited, and for
//! each rate-limited queue a transaction that locks the queue's settings row, takes tokens
//! from its buckets and claims the tasks they pay for, so the limit holds across every
//! worker on every machine. Bucket times are the database's clock, not the workers'.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

use super::PostgresBackend;
use super::rows::claimed_from_row;
use crate::tasks::TaskError;
use crate::tasks::backend::operations::{QueueSettings, RateLimit};
use crate::tasks::backend::rate::{Bucket, key_sql_names};
use crate::tasks::backend::{ClaimRequest, ClaimedTask, in_claim_order};

impl PostgresBackend {
    /// The cached queue settings, read again when stale.
    async fn claim_settings(&self) -> Result<Arc<Vec<QueueSettings>>, TaskError> {
        if let Some(s) = self.inner.settings.fresh() {
            return Ok(s);
        }
        let s = self.load_settings().await?;
        Ok(self.inner.settings.store(s))
    }

    /// [`WorkerBackend::claim`](crate::tasks::WorkerBackend::claim).
    pub(super) async fn claim_tasks(
        &self,
        req: &ClaimRequest,
    ) -> Result<Vec<ClaimedTask>, TaskError> {
        if req.limit == 0
            || req.queues.is_empty()
            || req.task_names.as_ref().is_some_and(Vec::is_empty)
        {
            return Ok(Vec::new());
        }
        // A claiming process will wait for work: LISTEN from now on.
        self.listener();
        let settings = self.claim_settings().await?;
        let mut open = Vec::new();
        let mut limited = Vec::new();
        for q in &req.queues {
            match settings.iter().find(|s| &s.queue_name == q) {
                Some(s) if s.paused_at.is_some() => {}
                Some(QueueSettings {
                    rate_limit: Some(rate),
                    ..
                }) => limited.push((q, rate)),
                _ => open.push(q.clone()),
            }
        }
        let expires = req.lease_expiry()?;
        let mut claimed = Vec::new();
        if !open.is_empty() {
            let rows = sqlx::query(&self.inner.sql.claim)
                .bind(req.now)
                .bind(&open)
                .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
                .bind(&req.worker_id)
                .bind(expires)
                .bind(req.isolated)
                .bind(&req.task_names)
                .bind(&req.routes)
                .fetch_all(&self.inner.pool)
                .await?;
            claimed = to_claimed(&rows, req, expires)?;
        }
        for (queue, rate) in limited {
            if claimed.len() >= req.limit {
                break;
            }
            let more = self
                .claim_limited(req, queue, rate, req.limit - claimed.len(), expires)
                .await?;
            claimed.extend(more);
        }
        Ok(claimed)
    }

    /// Whether a task a claim like `req` would take waits in a rate-limited queue.
    pub(super) async fn waiting_for_tokens(&self, req: &ClaimRequest) -> Result<bool, TaskError> {
        let settings = self.claim_settings().await?;
        let limited: Vec<String> = req
            .queues
            .iter()
            .filter(|q| {
                settings
                    .iter()
                    .any(|s| &s.queue_name == *q && s.paused_at.is_none() && s.rate_limit.is_some())
            })
            .cloned()
            .collect();
        if limited.is_empty() || req.task_names.as_ref().is_some_and(Vec::is_empty) {
            return Ok(false);
        }
        let waiting: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM \"{}\".mailroom_tasks WHERE status = 'READY' \
             AND queue_name = ANY($1::text[]) AND run_after <= $2 \
             AND ($3::bool OR lease_expiries = 0) \
             AND ($4::text[] IS NULL OR task_name = ANY($4::text[])) \
             AND ($5::text[] IS NULL OR route IS NULL OR route = ANY($5::text[])))",
            self.inner.schema
        ))
        .bind(&limited)
        .bind(req.now)
        .bind(req.isolated)
        .bind(&req.task_names)
        .bind(&req.routes)
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(waiting)
    }

    /// Claims up to `limit` tasks of a rate-limited queue, as many as its buckets have
    /// tokens for, in one transaction holding the queue's settings row.
    async fn claim_limited(
        &self,
        req: &ClaimRequest,
        queue: &str,
        cached: &RateLimit,
        limit: usize,
        expires: DateTime<Utc>,
    ) -> Result<Vec<ClaimedTask>, TaskError> {
        let schema = &self.inner.schema;
        let mut tx = self.inner.pool.begin().await?;
        let Some((rate, now)) = self.locked_limit(&mut tx, queue).await? else {
            tx.commit().await?;
            self.inner.settings.invalidate();
            return Ok(Vec::new());
        };
        if &rate != cached {
            self.inner.settings.invalidate();
        }
        let stored: Vec<(String, f64, DateTime<Utc>)> = sqlx::query_as(&format!(
            "SELECT rate_key, tokens, refilled_at FROM \"{schema}\".mailroom_rate_buckets \
             WHERE queue_name = $1"
        ))
        .bind(queue)
        .fetch_all(&mut *tx)
        .await?;
        let buckets: HashMap<String, Bucket> = stored
            .into_iter()
            .map(|(k, tokens, at)| (k, Bucket::stored(tokens, at).refilled(&rate, now)))
            .collect();
        let (keys, budgets): (Vec<&str>, Vec<i64>) = buckets
            .iter()
            .map(|(k, b)| (k.as_str(), b.whole_tokens()))
            .unzip();
        let key = key_expression(&rate.key_by);
        let t = format!("\"{schema}\".mailroom_tasks");
        let sql = format!(
            "WITH r AS (\
               SELECT seq, priority, run_after, {key} AS k, \
                 row_number() OVER (PARTITION BY {key} ORDER BY priority DESC, run_after, seq) AS rn \
               FROM {t} WHERE status = 'READY' AND queue_name = $1 AND run_after <= $2 \
                 AND ($3::bool OR lease_expiries = 0) \
                 AND ($4::text[] IS NULL OR task_name = ANY($4::text[])) \
                 AND ($5::text[] IS NULL OR route IS NULL OR route = ANY($5::text[]))), \
             pick AS (\
               SELECT r.seq, r.k FROM r LEFT JOIN UNNEST($6::text[], $7::int8[]) AS b(k, n) ON b.k = r.k \
               WHERE r.rn <= COALESCE(b.n, $8) ORDER BY r.priority DESC, r.run_after, r.seq LIMIT $9) \
             UPDATE {t} t SET status = 'RUNNING', attempt = t.attempt + 1, worker_id = $10, \
               lease_expires_at = $11, started_at = COALESCE(t.started_at, $2), last_attempted_at = $2, \
               worker_ids = array_append(t.worker_ids, $10) \
             FROM pick WHERE t.seq = pick.seq AND t.status = 'READY' \
             RETURNING t.seq, t.id, t.task_name, t.queue_name, t.priority, t.args, t.attempt, t.max_attempts, \
               t.enqueued_at, t.run_after, t.lease_expiries, t.timeout_ms, pick.k AS rate_key"
        );
        let rows = sqlx::query(&sql)
            .bind(queue)
            .bind(req.now)
            .bind(req.isolated)
            .bind(&req.task_names)
            .bind(&req.routes)
            .bind(&keys)
            .bind(&budgets)
            .bind(i64::from(rate.limit))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(&req.worker_id)
            .bind(expires)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut taken: HashMap<String, u32> = HashMap::new();
        for row in &rows {
            let k: String = row.try_get("rate_key")?;
            *taken.entry(k).or_default() += 1;
        }
        let mut keys = Vec::with_capacity(taken.len());
        let mut tokens = Vec::with_capacity(taken.len());
        for (k, n) in taken {
            let mut bucket = buckets
                .get(&k)
                .copied()
                .unwrap_or_else(|| Bucket::full(&rate, now));
            bucket.take(n);
            keys.push(k);
            tokens.push(bucket.tokens);
        }
        sqlx::query(&format!(
            "INSERT INTO \"{schema}\".mailroom_rate_buckets (queue_name, rate_key, tokens, refilled_at) \
             SELECT $1, k, n, $4 FROM UNNEST($2::text[], $3::float8[]) AS b(k, n) \
             ON CONFLICT (queue_name, rate_key) DO UPDATE SET tokens = EXCLUDED.tokens, \
               refilled_at = EXCLUDED.refilled_at"
        ))
        .bind(queue)
        .bind(&keys)
        .bind(&tokens)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        to_claimed(&rows, req, expires)
    }

    /// Locks `queue`'s settings row; its limit and the database's time when it is rate
    /// limited and not paused.
    async fn locked_limit(
        &self,
        conn: &mut PgConnection,
        queue: &str,
    ) -> Result<Option<(RateLimit, DateTime<Utc>)>, TaskError> {
        /// paused_at, rate_limit, rate_interval_ms, rate_key_by, the database's time.
        type StoredLimit = (
            Option<DateTime<Utc>>,
            Option<i32>,
            Option<i64>,
            Vec<String>,
            DateTime<Utc>,
        );
        let row: Option<StoredLimit> = sqlx::query_as(&format!(
            "SELECT paused_at, rate_limit, rate_interval_ms, rate_key_by, clock_timestamp() \
                 FROM \"{}\".mailroom_queues WHERE queue_name = $1 FOR UPDATE",
            self.inner.schema
        ))
        .bind(queue)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(match row {
            Some((None, Some(limit), Some(per), key_by, now)) => Some((
                RateLimit {
                    limit: u32::try_from(limit).unwrap_or(u32::MAX),
                    per: std::time::Duration::from_millis(u64::try_from(per).unwrap_or(1)),
                    key_by,
                },
                now,
            )),
            _ => None,
        })
    }
}

/// The SQL expression of a task's bucket key: its `key_by` labels' values joined by U+001F
/// (`''` for one bucket per queue); names are checked before they reach SQL text.
fn key_expression(key_by: &[String]) -> String {
    let parts: Vec<String> = key_sql_names(key_by)
        .map(|name| format!("COALESCE(labels->>'{name}', '')"))
        .collect();
    if parts.is_empty() {
        "''::text".to_owned()
    } else {
        parts.join(" || chr(31) || ")
    }
}

fn to_claimed(
    rows: &[PgRow],
    req: &ClaimRequest,
    expires: DateTime<Utc>,
) -> Result<Vec<ClaimedTask>, TaskError> {
    let claimed = rows
        .iter()
        .map(|row| claimed_from_row(row, &req.worker_id, expires))
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING gives no order; restore the claim order.
    Ok(in_claim_order(claimed))
}
