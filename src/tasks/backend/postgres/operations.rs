//! [`QueueOperations`] on PostgreSQL. Listings walk the status index `(status, queue_name,
//! seq)` backwards, one limited range per queue and status, merged (or the primary key in
//! `seq` order when the filter names neither); counts go through the same index (see
//! `operator.rs` for when they are estimates). Cancel and retry lock their rows in `seq`
//! order (as heartbeats and completions do, so they cannot deadlock with a worker) and
//! re-check each row's status once its lock is theirs: a task a worker claimed meanwhile
//! is `RUNNING` by then, and gets a cancel request instead of being lost.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::PostgresBackend;
use super::rows::result_from_row;
use crate::tasks::backend::operations::{
    CancelOutcome, QueueOperations, QueueSettings, RateLimit, RetrySelection, TaskCounts,
    TaskCursor, TaskFilter, TaskPage,
};
use crate::tasks::backend::operator::{
    self, CountsBuilder, EXACT_UP_TO, estimate, index_statuses, page_limit, retry_statuses,
    sample_windows, unique_ids,
};
use crate::tasks::{TaskError, TaskId, TaskStatus};

/// Appends the filter's conditions other than status and queue (`AND …`).
fn push_conditions(qb: &mut QueryBuilder<'_, Postgres>, filter: &TaskFilter, after: Option<i64>) {
    if let Some(seq) = after {
        qb.push(" AND seq < ").push_bind(seq);
    }
    if let Some(name) = &filter.task_name {
        qb.push(" AND task_name = ").push_bind(name.clone());
    }
    let times = [
        ("enqueued_at >= ", filter.enqueued_after),
        ("enqueued_at < ", filter.enqueued_before),
        ("finished_at >= ", filter.finished_after),
        ("finished_at < ", filter.finished_before),
    ];
    for (cond, at) in times {
        if let Some(at) = at {
            qb.push(" AND ").push(cond).push_bind(at);
        }
    }
}

fn status_names(statuses: &[TaskStatus]) -> Vec<String> {
    statuses.iter().map(|s| s.as_str().to_owned()).collect()
}

impl PostgresBackend {
    fn tasks_table(&self) -> String {
        format!("\"{}\".mailroom_tasks", self.inner.schema)
    }

    /// The queues holding tasks of each of `statuses`, found by skipping through the status
    /// index (one index probe per queue, not a scan of the tasks).
    async fn status_queues(
        &self,
        statuses: &[TaskStatus],
    ) -> Result<Vec<(TaskStatus, String)>, TaskError> {
        let t = self.tasks_table();
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE q(status, name) AS (\
               SELECT s.status, (SELECT min(queue_name) FROM {t} WHERE status = s.status) \
               FROM unnest($1::text[]) AS s(status) \
               UNION ALL \
               SELECT q.status, (SELECT min(t.queue_name) FROM {t} t \
                 WHERE t.status = q.status AND t.queue_name > q.name) \
               FROM q WHERE q.name IS NOT NULL) \
             SELECT status, name FROM q WHERE name IS NOT NULL"
        ))
        .bind(status_names(statuses))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get(0)?;
                Ok((TaskStatus::from_str(&status)?, row.try_get(1)?))
            })
            .collect()
    }

    /// Exactly how many tasks of each (status, queue) pair there are, `None` for those
    /// beyond [`EXACT_UP_TO`]; one statement for all.
    async fn counts_up_to(
        &self,
        pairs: &[(TaskStatus, String)],
    ) -> Result<Vec<Option<u64>>, TaskError> {
        let t = self.tasks_table();
        let rows: Vec<(i32, i64)> = sqlx::query_as(&format!(
            "SELECT p.ord::int4, (SELECT count(*) FROM (SELECT 1 FROM {t} \
               WHERE status = p.status AND queue_name = p.queue LIMIT $3) c) \
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(status, queue, ord)"
        ))
        .bind(pairs.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>())
        .bind(pairs.iter().map(|(_, q)| q.as_str()).collect::<Vec<_>>())
        .bind(EXACT_UP_TO as i64 + 1)
        .fetch_all(&self.inner.pool)
        .await?;
        let mut out = vec![None; pairs.len()];
        for (ord, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = (n <= EXACT_UP_TO).then_some(n);
            }
        }
        Ok(out)
    }

    /// An estimate of how many tasks of `status` `queue` holds (more than
    /// [`EXACT_UP_TO`]), from windows of the status index.
    async fn count_estimate(&self, status: TaskStatus, queue: &str) -> Result<u64, TaskError> {
        let t = self.tasks_table();
        let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(&format!(
            "SELECT (SELECT min(seq) FROM {t} WHERE status = $1 AND queue_name = $2), \
                    (SELECT max(seq) FROM {t} WHERE status = $1 AND queue_name = $2)"
        ))
        .bind(status.as_str())
        .bind(queue)
        .fetch_one(&self.inner.pool)
        .await?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(0);
        };
        let windows = sample_windows(lo, hi);
        let sampled: i64 = sqlx::query_scalar(&format!(
            "SELECT COALESCE(sum((SELECT count(*) FROM {t} WHERE status = $1 AND queue_name = $2 \
               AND seq >= w.a AND seq < w.b)), 0)::int8 \
             FROM unnest($3::int8[], $4::int8[]) AS w(a, b)"
        ))
        .bind(status.as_str())
        .bind(queue)
        .bind(windows.iter().map(|w| w.0).collect::<Vec<_>>())
        .bind(windows.iter().map(|w| w.1).collect::<Vec<_>>())
        .fetch_one(&self.inner.pool)
        .await?;
        Ok(estimate(lo, hi, u64::try_from(sampled).unwrap_or(0)))
    }

    /// One cancel statement for `ids`, then the status of the others, in one transaction.
    async fn cancel_once(
        &self,
        ids: &[Uuid],
    ) -> Result<(HashMap<Uuid, TaskStatus>, HashMap<Uuid, TaskStatus>), TaskError> {
        let t = self.tasks_table();
        let mut tx = self.inner.pool.begin().await?;
        // FOR UPDATE re-reads a row that changed while it waited for the lock and keeps it
        // only if it still matches: a task claimed meanwhile is locked as RUNNING.
        let changed: Vec<(Uuid, String)> = sqlx::query_as(&format!(
            "WITH locked AS (SELECT seq FROM {t} WHERE id = ANY($1) \
               AND status IN ('READY', 'RUNNING') ORDER BY seq FOR UPDATE) \
             UPDATE {t} t SET \
               status = CASE WHEN t.status = 'READY' THEN 'CANCELLED' ELSE t.status END, \
               finished_at = CASE WHEN t.status = 'READY' THEN $2 ELSE t.finished_at END, \
               cancel_requested_at = CASE WHEN t.status = 'RUNNING' \
                 THEN COALESCE(t.cancel_requested_at, $2) ELSE t.cancel_requested_at END \
             FROM locked WHERE t.seq = locked.seq AND t.status IN ('READY', 'RUNNING') \
             RETURNING t.id, t.status"
        ))
        .bind(ids)
        .bind(Utc::now())
        .fetch_all(&mut *tx)
        .await?;
        let seen: Vec<(Uuid, String)> =
            sqlx::query_as(&format!("SELECT id, status FROM {t} WHERE id = ANY($1)"))
                .bind(ids)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let parse = |rows: Vec<(Uuid, String)>| {
            rows.into_iter()
                .map(|(id, s)| Ok((id, TaskStatus::from_str(&s)?)))
                .collect::<Result<HashMap<_, _>, TaskError>>()
        };
        Ok((parse(changed)?, parse(seen)?))
    }
}

#[async_trait]
impl QueueOperations for PostgresBackend {
    async fn list_tasks(
        &self,
        filter: &TaskFilter,
        limit: usize,
        after: Option<TaskCursor>,
    ) -> Result<TaskPage, TaskError> {
        let limit = page_limit(limit)?;
        let after = after.map(|c| c.0);
        let t = self.tasks_table();
        let mut qb: QueryBuilder<'_, Postgres>;
        if let Some(statuses) = index_statuses(filter) {
            let pairs: Vec<(TaskStatus, String)> = match &filter.queue_name {
                Some(q) => statuses.iter().map(|s| (*s, q.clone())).collect(),
                None => self.status_queues(&statuses).await?,
            };
            if pairs.is_empty() {
                return Ok(TaskPage {
                    tasks: Vec::new(),
                    next: None,
                });
            }
            // One backwards range of the status index per queue and status, each limited,
            // merged newest first.
            qb = QueryBuilder::new("SELECT * FROM (");
            for (i, (status, queue)) in pairs.into_iter().enumerate() {
                if i > 0 {
                    qb.push(" UNION ALL ");
                }
                qb.push(format!("(SELECT * FROM {t} WHERE status = "))
                    .push_bind(status.as_str())
                    .push(" AND queue_name = ")
                    .push_bind(queue);
                push_conditions(&mut qb, filter, after);
                qb.push(" ORDER BY seq DESC LIMIT ")
                    .push_bind(limit + 1)
                    .push(")");
            }
            qb.push(") u ORDER BY seq DESC LIMIT ").push_bind(limit + 1);
        } else {
            qb = QueryBuilder::new(format!("SELECT * FROM {t} WHERE true"));
            push_conditions(&mut qb, filter, after);
            qb.push(" ORDER BY seq DESC LIMIT ").push_bind(limit + 1);
        }
        let rows = qb.build().fetch_all(&self.inner.pool).await?;
        let more = rows.len() as i64 > limit;
        let mut tasks = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            tasks.push(result_from_row(row)?);
            last = Some(row.try_get::<i64, _>("seq")?);
        }
        Ok(TaskPage {
            tasks,
            next: if more { last.map(TaskCursor) } else { None },
        })
    }

    async fn count_tasks(&self) -> Result<TaskCounts, TaskError> {
        let mut counts = CountsBuilder::new();
        let pairs = self.status_queues(&TaskStatus::ALL).await?;
        let exact = self.counts_up_to(&pairs).await?;
        for ((status, queue), n) in pairs.iter().zip(exact) {
            match n {
                Some(n) => counts.exact(queue, *status, n),
                None => {
                    let n = self.count_estimate(*status, queue).await?;
                    counts.estimated(queue, *status, n);
                }
            }
        }
        Ok(counts.finish())
    }

    async fn cancel(&self, ids: &[TaskId]) -> Result<Vec<(TaskId, CancelOutcome)>, TaskError> {
        operator::cancel_with(ids, |unique| async move { self.cancel_once(&unique).await }).await
    }

    async fn retry(&self, selection: &RetrySelection) -> Result<Vec<TaskId>, TaskError> {
        let statuses = retry_statuses(selection)?;
        let t = self.tasks_table();
        let mut qb: QueryBuilder<'_, Postgres> = QueryBuilder::new(format!(
            "WITH locked AS (SELECT seq FROM {t} WHERE status = ANY("
        ));
        qb.push_bind(status_names(&statuses)).push("::text[])");
        match selection {
            RetrySelection::Ids(ids) => {
                qb.push(" AND id = ANY(")
                    .push_bind(unique_ids(ids))
                    .push(")");
            }
            RetrySelection::Filter(filter) => {
                if let Some(q) = &filter.queue_name {
                    qb.push(" AND queue_name = ").push_bind(q.clone());
                }
                push_conditions(&mut qb, filter, None);
            }
        }
        // Back to READY at once with room for one more attempt; errors (and arguments an
        // attempt handed on) stay. Lease expiries are forgotten: an operator's retry is a
        // fresh start, not a suspect's last chance.
        qb.push(format!(
            " ORDER BY seq FOR UPDATE) \
             UPDATE {t} t SET status = 'READY', run_after = "
        ))
        .push_bind(Utc::now())
        .push(
            ", finished_at = NULL, cancel_requested_at = NULL, worker_id = NULL, \
             lease_expires_at = NULL, lease_expiries = 0, \
             max_attempts = GREATEST(t.max_attempts, t.attempt + 1) \
             FROM locked WHERE t.seq = locked.seq AND t.status = ANY(",
        )
        .push_bind(status_names(&statuses))
        .push("::text[]) RETURNING t.seq, t.id, t.queue_name");
        let mut tx = self.inner.pool.begin().await?;
        let rows: Vec<(i64, Uuid, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        let mut queues: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        if !queues.is_empty() {
            // Wakes the idle workers of those queues once this commits, as an enqueue does.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.inner.sql.channel)
                .bind(queues.join(","))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let retried = rows.into_iter().map(|(seq, id, _)| (seq, id)).collect();
        Ok(operator::retried_in_order(selection, retried))
    }

    async fn pause_queue(&self, queue_name: &str) -> Result<(), TaskError> {
        self.store_pause(queue_name, true).await
    }

    async fn resume_queue(&self, queue_name: &str) -> Result<(), TaskError> {
        self.store_pause(queue_name, false).await
    }

    async fn set_rate_limit(
        &self,
        queue_name: &str,
        limit: Option<&RateLimit>,
    ) -> Result<(), TaskError> {
        self.store_rate_limit(queue_name, limit).await
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>, TaskError> {
        self.load_settings().await
    }
}
