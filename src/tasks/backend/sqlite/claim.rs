//! Claiming: one statement for the queues that are neither paused nor rate limited, and for
//! each rate-limited queue a `BEGIN IMMEDIATE` transaction that takes tokens from its
//! buckets and claims the tasks they pay for, so the limit holds across every worker
//! process sharing the file.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteBackend;
use super::rows::{claimed_from_row, micros};
use crate::tasks::TaskError;
use crate::tasks::backend::operations::{QueueSettings, RateLimit};
use crate::tasks::backend::rate::{Bucket, key_sql_names};
use crate::tasks::backend::settings::key_by_from_json;
use crate::tasks::backend::{ClaimRequest, ClaimedTask, in_claim_order};

/// The columns a claim returns: the texts and the id as they are, the eight integers as one
/// text ([`claimed_from_row`] reads them back). sqlx copies every returned value on its own
/// (a `sqlite3_value_dup` and an `Arc`, each freed again): five values a row instead of
/// twelve. `timeout_ms` is written with `%s`, so that NULL (no timeout) is the empty last
/// field.
const RETURNING: &str = " RETURNING id, task_name, queue_name, args, \
    printf('%d %d %d %d %d %d %d %s', seq, priority, attempt, max_attempts, enqueued_at, \
    run_after, lease_expiries, timeout_ms)";

impl SqliteBackend {
    /// The cached queue settings, read again when stale.
    async fn claim_settings(&self) -> Result<Arc<Vec<QueueSettings>>, TaskError> {
        if let Some(s) = self.settings.fresh() {
            return Ok(s);
        }
        let s = self.load_settings().await?;
        Ok(self.settings.store(s))
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
                _ => open.push(q),
            }
        }
        let mut claimed = if open.is_empty() {
            Vec::new()
        } else {
            self.claim_open(req, &open).await?
        };
        for (queue, rate) in limited {
            if claimed.len() >= req.limit {
                break;
            }
            let more = self
                .claim_limited(req, queue, rate, req.limit - claimed.len())
                .await?;
            claimed.extend(more);
        }
        Ok(claimed)
    }

    /// Whether a task a claim like `req` would take waits in a rate-limited queue.
    pub(super) async fn waiting_for_tokens(&self, req: &ClaimRequest) -> Result<bool, TaskError> {
        let settings = self.claim_settings().await?;
        let limited: Vec<&String> = req
            .queues
            .iter()
            .filter(|q| {
                settings
                    .iter()
                    .any(|s| &s.queue_name == *q && s.paused_at.is_none() && s.rate_limit.is_some())
            })
            .collect();
        if limited.is_empty() || req.task_names.as_ref().is_some_and(Vec::is_empty) {
            return Ok(false);
        }
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "SELECT EXISTS (SELECT 1 FROM mailroom_tasks WHERE status = 'READY' AND queue_name IN (",
        );
        let mut list = qb.separated(", ");
        for q in limited {
            list.push_bind(q.clone());
        }
        qb.push(") AND run_after <= ").push_bind(micros(req.now));
        push_filters(&mut qb, req);
        qb.push(")");
        let waiting: bool = qb.build_query_scalar().fetch_one(&self.reader).await?;
        Ok(waiting)
    }

    /// Claims from queues that were neither paused nor rate limited when the settings were
    /// cached; the statement checks again, so a queue paused or limited since is skipped.
    async fn claim_open(
        &self,
        req: &ClaimRequest,
        queues: &[&String],
    ) -> Result<Vec<ClaimedTask>, TaskError> {
        let now = micros(req.now);
        let expires = req.lease_expiry()?;
        let mut qb = claim_update(req, now, expires);
        qb.push(" WHERE seq IN (SELECT seq FROM (");
        // One index-ordered, limited scan per queue, merged: `queue_name IN (...)` over
        // several queues would sort every ready row of those queues on each claim.
        let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
        for (i, q) in queues.iter().enumerate() {
            if i > 0 {
                qb.push(" UNION ALL ");
            }
            qb.push(
                "SELECT * FROM (SELECT seq, priority, run_after FROM mailroom_tasks \
                 WHERE status = 'READY' AND queue_name = ",
            )
            .push_bind(q.as_str())
            .push(" AND run_after <= ")
            .push_bind(now);
            push_filters(&mut qb, req);
            qb.push(" AND NOT EXISTS (SELECT 1 FROM mailroom_queues WHERE queue_name = ")
                .push_bind(q.as_str())
                .push(" AND (paused_at IS NOT NULL OR rate_limit IS NOT NULL))");
            qb.push(" ORDER BY priority DESC, run_after, seq LIMIT ")
                .push_bind(limit)
                .push(")");
        }
        qb.push(") ORDER BY priority DESC, run_after, seq LIMIT ")
            .push_bind(limit)
            .push(")")
            .push(RETURNING);
        let rows = qb.build().fetch_all(&self.writer).await?;
        claimed(&rows, req, expires)
    }

    /// Claims up to `limit` tasks of a rate-limited queue, as many as its buckets have
    /// tokens for, in one write transaction: read the queue's settings and buckets again,
    /// pick the first ready tasks of each key within its bucket, claim them, take the tokens.
    async fn claim_limited(
        &self,
        req: &ClaimRequest,
        queue: &str,
        cached: &RateLimit,
        limit: usize,
    ) -> Result<Vec<ClaimedTask>, TaskError> {
        let now_dt = req.now;
        let now = micros(now_dt);
        let expires = req.lease_expiry()?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(rate) = stored_limit(&mut tx, queue).await? else {
            // Paused or no longer limited since the settings were cached.
            tx.commit().await?;
            self.settings.invalidate();
            return Ok(Vec::new());
        };
        if &rate != cached {
            self.settings.invalidate();
        }
        let buckets = load_buckets(&mut tx, queue, &rate, now_dt).await?;
        let key = key_expression(&rate.key_by);
        let budgets: Vec<serde_json::Value> = buckets
            .iter()
            .map(|(k, b)| serde_json::json!({"k": k, "n": b.whole_tokens()}))
            .collect();
        let budgets = serde_json::Value::Array(budgets).to_string();
        let full = i64::from(rate.limit);
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "SELECT r.seq, r.k FROM (SELECT seq, priority, run_after, k, ROW_NUMBER() OVER \
             (PARTITION BY k ORDER BY priority DESC, run_after, seq) AS rn FROM (SELECT seq, \
             priority, run_after, ",
        );
        qb.push(&key)
            .push(" AS k FROM mailroom_tasks WHERE status = 'READY' AND queue_name = ");
        qb.push_bind(queue)
            .push(" AND run_after <= ")
            .push_bind(now);
        push_filters(&mut qb, req);
        qb.push(")) AS r LEFT JOIN (SELECT json_extract(value, '$.k') AS k, json_extract(value, '$.n') AS n FROM json_each(")
            .push_bind(budgets)
            .push(")) AS b ON b.k = r.k WHERE r.rn <= COALESCE(b.n, ")
            .push_bind(full)
            .push(") ORDER BY r.priority DESC, r.run_after, r.seq LIMIT ")
            .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let picked: Vec<(i64, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        if picked.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut qb = claim_update(req, now, expires);
        qb.push(" WHERE status = 'READY' AND seq IN (");
        let mut list = qb.separated(", ");
        for (seq, _) in &picked {
            list.push_bind(*seq);
        }
        qb.push(")").push(RETURNING);
        let rows = qb.build().fetch_all(&mut *tx).await?;
        let mut taken: HashMap<&str, u32> = HashMap::new();
        for (_, k) in &picked {
            *taken.entry(k.as_str()).or_default() += 1;
        }
        for (k, n) in taken {
            let mut bucket = buckets
                .get(k)
                .copied()
                .unwrap_or_else(|| Bucket::full(&rate, now_dt));
            bucket.take(n);
            sqlx::query(
                "INSERT INTO mailroom_rate_buckets (queue_name, rate_key, tokens, refilled_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (queue_name, rate_key) DO UPDATE SET \
                 tokens = ?3, refilled_at = ?4",
            )
            .bind(queue)
            .bind(k)
            .bind(bucket.tokens)
            .bind(micros(bucket.refilled_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        claimed(&rows, req, expires)
    }
}

/// `UPDATE … SET` of a claim (the caller adds the `WHERE`).
fn claim_update(req: &ClaimRequest, now: i64, expires: DateTime<Utc>) -> QueryBuilder<'_, Sqlite> {
    let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
        "UPDATE mailroom_tasks SET status = 'RUNNING', attempt = attempt + 1, worker_id = ",
    );
    qb.push_bind(&req.worker_id)
        .push(", lease_expires_at = ")
        .push_bind(micros(expires))
        .push(", started_at = COALESCE(started_at, ")
        .push_bind(now)
        .push("), last_attempted_at = ")
        .push_bind(now)
        .push(", worker_ids = json_insert(worker_ids, '$[#]', ")
        .push_bind(&req.worker_id)
        .push(")");
    qb
}

/// The filters of a claim beyond queue, status and time: suspects, task names, routes.
fn push_filters(qb: &mut QueryBuilder<'_, Sqlite>, req: &ClaimRequest) {
    if !req.isolated {
        qb.push(" AND lease_expiries = 0");
    }
    if let Some(names) = &req.task_names {
        qb.push(" AND task_name IN (");
        let mut list = qb.separated(", ");
        for name in names {
            list.push_bind(name.clone());
        }
        qb.push(")");
    }
    if let Some(routes) = &req.routes {
        qb.push(" AND (route IS NULL");
        if !routes.is_empty() {
            qb.push(" OR route IN (");
            let mut list = qb.separated(", ");
            for route in routes {
                list.push_bind(route.clone());
            }
            qb.push(")");
        }
        qb.push(")");
    }
}

/// The SQL expression of a task's bucket key: its `key_by` labels' values joined by U+001F
/// (`''` for one bucket per queue). Label names are checked
/// ([`is_label_name`](crate::tasks::is_label_name)) before they are stored, so they are safe
/// inside the JSON path literal.
fn key_expression(key_by: &[String]) -> String {
    if key_by.is_empty() {
        return "''".to_owned();
    }
    key_sql_names(key_by)
        .map(|name| format!("COALESCE(json_extract(labels, '$.\"{name}\"'), '')"))
        .collect::<Vec<_>>()
        .join(" || char(31) || ")
}

/// The stored limit of `queue` when it is rate limited and not paused.
async fn stored_limit(
    conn: &mut SqliteConnection,
    queue: &str,
) -> Result<Option<RateLimit>, TaskError> {
    /// paused_at, rate_limit, rate_interval_ms, rate_key_by.
    type StoredLimit = (Option<i64>, Option<i64>, Option<i64>, String);
    let row: Option<StoredLimit> = sqlx::query_as(
        "SELECT paused_at, rate_limit, rate_interval_ms, rate_key_by FROM mailroom_queues \
         WHERE queue_name = ?",
    )
    .bind(queue)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some((None, Some(limit), Some(per), key_by)) => Some(RateLimit {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            per: std::time::Duration::from_millis(u64::try_from(per).unwrap_or(1)),
            key_by: key_by_from_json(&key_by)?,
        }),
        _ => None,
    })
}

/// The queue's buckets, refilled to `now`.
async fn load_buckets(
    conn: &mut SqliteConnection,
    queue: &str,
    rate: &RateLimit,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Bucket>, TaskError> {
    let rows: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT rate_key, tokens, refilled_at FROM mailroom_rate_buckets WHERE queue_name = ?",
    )
    .bind(queue)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(k, tokens, at)| {
            let at = super::rows::from_micros(at)?;
            Ok((k, Bucket::stored(tokens, at).refilled(rate, now)))
        })
        .collect()
}

fn claimed(
    rows: &[SqliteRow],
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use crate::tasks::{NewTask, SqliteOptions, TaskBackend, WorkerBackend};

    fn req(limit: usize, now: DateTime<Utc>) -> ClaimRequest {
        ClaimRequest {
            worker_id: "w".to_owned(),
            queues: vec!["default".to_owned()],
            limit,
            lease: Duration::from_secs(30),
            now,
            isolated: false,
            task_names: None,
            routes: None,
        }
    }

    #[tokio::test]
    async fn a_limited_queue_claims_what_each_keys_bucket_pays_for_and_a_paused_one_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::connect_with(SqliteOptions::new(dir.path().join("t.db")))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..15 {
            tasks.push(NewTask::new("t", serde_json::json!(i)).label("domain", "slow.example"));
        }
        for i in 0..3 {
            tasks.push(NewTask::new("t", serde_json::json!(i)).label("domain", "fast.example"));
        }
        backend.enqueue_many(tasks).await.unwrap();
        let rate = RateLimit::new(5, Duration::from_secs(1)).key_by(["domain"]);
        backend
            .store_rate_limit("default", Some(&rate))
            .await
            .unwrap();
        let t0 = Utc::now();
        let first = backend.claim(&req(100, t0)).await.unwrap();
        assert_eq!(
            first.len(),
            8,
            "5 of the slow domain's bucket, all 3 of the fast one"
        );
        let again = backend.claim(&req(100, t0)).await.unwrap();
        assert!(again.is_empty(), "the slow bucket is empty: {again:?}");
        let later = backend
            .claim(&req(100, t0 + chrono::Duration::milliseconds(400)))
            .await
            .unwrap();
        assert_eq!(later.len(), 2, "0.4 s at 5/s refills 2 tokens");

        backend.store_pause("default", true).await.unwrap();
        let paused = backend
            .claim(&req(100, t0 + chrono::Duration::seconds(10)))
            .await
            .unwrap();
        assert!(paused.is_empty());
        backend.store_pause("default", false).await.unwrap();
        backend.store_rate_limit("default", None).await.unwrap();
        let open = backend
            .claim(&req(100, t0 + chrono::Duration::seconds(10)))
            .await
            .unwrap();
        assert_eq!(open.len(), 8, "the rest, unlimited");
    }
}
