//! [`QueueOperations`] on SQLite. Listings walk the status index `(status, queue_name,
//! seq)` backwards, one limited range per queue and status, merged (or the table itself in
//! `seq` order when the filter names neither); counts go through the same index (see
//! `operator.rs` for when they are estimates). RUNNING tasks, which the status index leaves
//! out (schema 4), go through the leases index instead, which holds their queues too
//! (schema 5). The pruner walks the status index too, reading finish times from its last
//! column (schema 6). Cancel and retry are one statement each on the single writer
//! connection, inside `BEGIN IMMEDIATE`, so a claim by another worker or process happens
//! wholly before or after them.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::SqliteBackend;
use super::rows::{micros, result_from_row};
use crate::tasks::backend::operations::{
    CancelOutcome, QueueOperations, QueueSettings, RateLimit, RetrySelection, TaskCounts,
    TaskCursor, TaskFilter, TaskPage,
};
use crate::tasks::backend::operator::{
    self, CountsBuilder, EXACT_UP_TO, FINISHED_STATUSES, INDEXED_STATUSES, estimate, listing_pairs,
    page_limit, retry_statuses, sample_windows, unique_ids,
};
use crate::tasks::{TaskError, TaskId, TaskStatus};

/// Ids per statement of a cancel or a retry by id.
const ID_CHUNK: usize = 500;

/// Appends the filter's conditions other than status and queue (`AND …`).
fn push_conditions(qb: &mut QueryBuilder<'_, Sqlite>, filter: &TaskFilter, after: Option<i64>) {
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
            qb.push(" AND ").push(cond).push_bind(micros(at));
        }
    }
}

/// The tasks of `status`, as `FROM` and `WHERE` clauses to continue with `AND …`, each
/// through the index that holds them: the status index for every status but RUNNING (its
/// condition `status <> 'RUNNING'` written out, as SQLite uses a partial index only for a
/// query that contains its condition), the leases index for RUNNING. The status is a
/// literal from [`TaskStatus::as_str`], never input.
fn tasks_of(status: TaskStatus) -> String {
    match status {
        TaskStatus::Running => {
            "mailroom_tasks INDEXED BY mailroom_tasks_leases WHERE status = 'RUNNING'".to_owned()
        }
        s => format!(
            "mailroom_tasks INDEXED BY mailroom_tasks_status WHERE status = '{}' AND {STATUS_INDEX}",
            s.as_str()
        ),
    }
}

/// The statement behind [`SqliteBackend::running_counts`].
fn running_counts_sql() -> String {
    format!(
        "SELECT queue_name, count(*) FROM {} GROUP BY queue_name",
        tasks_of(TaskStatus::Running)
    )
}

/// One slice of [`SqliteBackend::prune_finished`]: the `seq` of the tasks of `status` (a
/// finished one) in queue `?1` after `seq` `?2` that finished before `?3`, at most `?4`,
/// read from the status index alone (schema 6 keys it on `finished_at` last).
fn prune_slice_sql(status: TaskStatus) -> String {
    format!(
        "SELECT seq FROM {} AND queue_name = ?1 AND seq > ?2 AND finished_at < ?3 \
         ORDER BY seq LIMIT ?4",
        tasks_of(status)
    )
}

/// The condition of the status index (schema 4), as statements must write it for SQLite to
/// use the index.
const STATUS_INDEX: &str = "status <> 'RUNNING'";

impl SqliteBackend {
    /// The queues holding tasks of each of `statuses`, found by skipping through the status
    /// index (one seek per queue, not a scan of the tasks); RUNNING tasks, which the status
    /// index leaves out, through the leases index that holds just them.
    async fn status_queues(
        &self,
        statuses: &[TaskStatus],
    ) -> Result<Vec<(TaskStatus, String)>, TaskError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let mut ctes = Vec::with_capacity(statuses.len());
        let mut selects = Vec::with_capacity(statuses.len());
        for (i, status) in statuses.iter().enumerate() {
            let tasks = tasks_of(*status);
            ctes.push(match status {
                TaskStatus::Running => {
                    format!("q{i}(name) AS (SELECT DISTINCT queue_name FROM {tasks})")
                }
                _ => format!(
                    "q{i}(name) AS (SELECT (SELECT min(queue_name) FROM {tasks}) \
                     UNION ALL SELECT (SELECT min(queue_name) FROM {tasks} AND queue_name > q{i}.name) \
                     FROM q{i} WHERE q{i}.name IS NOT NULL)"
                ),
            });
            selects.push(format!(
                "SELECT '{}', name FROM q{i} WHERE name IS NOT NULL",
                status.as_str()
            ));
        }
        let sql = format!(
            "WITH RECURSIVE {} {}",
            ctes.join(", "),
            selects.join(" UNION ALL ")
        );
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get(0)?;
                Ok((TaskStatus::from_str(&status)?, row.try_get(1)?))
            })
            .collect()
    }

    /// Exactly how many RUNNING tasks each queue holds: one pass over the leases index,
    /// which holds only them, with their queues (schema 5), so the rows are not read.
    async fn running_counts(&self) -> Result<Vec<(String, i64)>, TaskError> {
        Ok(sqlx::query_as(&running_counts_sql())
            .fetch_all(&self.reader)
            .await?)
    }

    /// Exactly how many tasks of `status` `queue` holds, or `None` beyond [`EXACT_UP_TO`].
    async fn count_up_to(&self, status: TaskStatus, queue: &str) -> Result<Option<u64>, TaskError> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM {} AND queue_name = ? LIMIT ?)",
            tasks_of(status)
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(queue)
            .bind(EXACT_UP_TO as i64 + 1)
            .fetch_one(&self.reader)
            .await?;
        let n = u64::try_from(n).unwrap_or(0);
        Ok((n <= EXACT_UP_TO).then_some(n))
    }

    /// An estimate of how many tasks of `status` `queue` holds (more than
    /// [`EXACT_UP_TO`]), from windows of the status index.
    async fn count_estimate(&self, status: TaskStatus, queue: &str) -> Result<u64, TaskError> {
        let tasks = tasks_of(status);
        let sql = format!(
            "SELECT (SELECT min(seq) FROM {tasks} AND queue_name = ?1), \
                    (SELECT max(seq) FROM {tasks} AND queue_name = ?1)"
        );
        let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(&sql)
            .bind(queue)
            .fetch_one(&self.reader)
            .await?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(0);
        };
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new("SELECT 0");
        for (a, b) in sample_windows(lo, hi) {
            qb.push(" + (SELECT count(*) FROM ")
                .push(&tasks)
                .push(" AND queue_name = ")
                .push_bind(queue.to_owned())
                .push(" AND seq >= ")
                .push_bind(a)
                .push(" AND seq < ")
                .push_bind(b)
                .push(")");
        }
        let sampled: i64 = qb.build_query_scalar().fetch_one(&self.reader).await?;
        Ok(estimate(lo, hi, u64::try_from(sampled).unwrap_or(0)))
    }

    /// Deletes the finished tasks that finished before `before` (microseconds), `slice` at
    /// a time, and returns how many. Schema 6 keeps no index of finished tasks by finish
    /// time: the pruner walks the status index instead, one `(status, queue)` range of a
    /// finished status at a time in `seq` order, reading each finish time from the index
    /// alone ([`prune_slice_sql`]). The walk reads on a reader connection, so the write lock
    /// is held only to delete the slice it found, by `seq`; the delete checks the finish
    /// time again, so a task retried since is kept. Every task the walk passes over (one
    /// that finished after `before`) is read once per call, never once per slice.
    pub(super) async fn prune_finished(&self, before: i64, slice: usize) -> Result<u64, TaskError> {
        let limit = i64::try_from(slice).unwrap_or(i64::MAX);
        let mut total = 0;
        for (status, queue) in self.status_queues(&FINISHED_STATUSES).await? {
            let sql = prune_slice_sql(status);
            let mut after = i64::MIN;
            loop {
                let seqs: Vec<i64> = sqlx::query_scalar(&sql)
                    .bind(queue.as_str())
                    .bind(after)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(&self.reader)
                    .await?;
                let Some(&last) = seqs.last() else { break };
                after = last;
                let list = seqs
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let done = sqlx::query(
                    "DELETE FROM mailroom_tasks WHERE seq IN (SELECT value FROM json_each(?1)) \
                     AND finished_at < ?2",
                )
                .bind(format!("[{list}]"))
                .bind(before)
                .execute(&self.writer)
                .await?;
                total += done.rows_affected();
                if seqs.len() < slice {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// One cancel statement for `ids` (all in one transaction), then the status of the
    /// others.
    async fn cancel_once(
        &self,
        ids: &[Uuid],
    ) -> Result<(HashMap<Uuid, TaskStatus>, HashMap<Uuid, TaskStatus>), TaskError> {
        let now = micros(Utc::now());
        let mut changed = HashMap::new();
        let mut seen = HashMap::new();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in ids.chunks(ID_CHUNK) {
            let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "UPDATE mailroom_tasks SET \
                   status = CASE status WHEN 'READY' THEN 'CANCELLED' ELSE status END, \
                   finished_at = CASE status WHEN 'READY' THEN ",
            );
            qb.push_bind(now)
                .push(
                    " ELSE finished_at END, \
                   cancel_requested_at = CASE status WHEN 'RUNNING' THEN COALESCE(cancel_requested_at, ",
                )
                .push_bind(now)
                .push(
                    ") ELSE cancel_requested_at END \
                 WHERE status IN ('READY', 'RUNNING') AND id IN (",
                );
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(") RETURNING id, status");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let status: String = row.try_get(1)?;
                changed.insert(row.try_get::<Uuid, _>(0)?, TaskStatus::from_str(&status)?);
            }
            let mut qb: QueryBuilder<'_, Sqlite> =
                QueryBuilder::new("SELECT id, status FROM mailroom_tasks WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let status: String = row.try_get(1)?;
                seen.insert(row.try_get::<Uuid, _>(0)?, TaskStatus::from_str(&status)?);
            }
        }
        tx.commit().await?;
        Ok((changed, seen))
    }
}

/// The start of a retry statement: back to `READY`, at once, with room for one more
/// attempt; the errors (and the arguments an attempt handed on) stay. Lease expiries are
/// forgotten: an operator's retry is a fresh start, not a suspect's last chance.
fn retry_statement<'a>(now: i64, statuses: &[TaskStatus]) -> QueryBuilder<'a, Sqlite> {
    let mut qb: QueryBuilder<'a, Sqlite> =
        QueryBuilder::new("UPDATE mailroom_tasks SET status = 'READY', run_after = ");
    qb.push_bind(now).push(
        ", finished_at = NULL, cancel_requested_at = NULL, worker_id = NULL, \
         lease_expires_at = NULL, lease_expiries = 0, \
         max_attempts = max(max_attempts, attempt + 1) WHERE status IN (",
    );
    let mut list = qb.separated(", ");
    for s in statuses {
        list.push_bind(s.as_str());
    }
    // the status index's own condition, word for word, so that SQLite may use it
    qb.push(") AND ").push(STATUS_INDEX);
    qb
}

#[async_trait]
impl QueueOperations for SqliteBackend {
    async fn list_tasks(
        &self,
        filter: &TaskFilter,
        limit: usize,
        after: Option<TaskCursor>,
    ) -> Result<TaskPage, TaskError> {
        let limit = page_limit(limit)?;
        let after = after.map(|c| c.0);
        let mut qb: QueryBuilder<'_, Sqlite>;
        let pairs = listing_pairs(filter, |statuses| async move {
            self.status_queues(&statuses).await
        })
        .await?;
        if let Some(pairs) = pairs {
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
                qb.push("SELECT * FROM (SELECT * FROM ")
                    .push(tasks_of(status))
                    .push(" AND queue_name = ")
                    .push_bind(queue);
                push_conditions(&mut qb, filter, after);
                qb.push(" ORDER BY seq DESC LIMIT ")
                    .push_bind(limit + 1)
                    .push(")");
            }
            qb.push(") ORDER BY seq DESC LIMIT ").push_bind(limit + 1);
        } else {
            qb = QueryBuilder::new("SELECT * FROM mailroom_tasks WHERE 1 = 1");
            push_conditions(&mut qb, filter, after);
            qb.push(" ORDER BY seq DESC LIMIT ").push_bind(limit + 1);
        }
        let rows = qb.build().fetch_all(&self.reader).await?;
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
        for (queue, n) in self.running_counts().await? {
            counts.exact(&queue, TaskStatus::Running, u64::try_from(n).unwrap_or(0));
        }
        for (status, queue) in self.status_queues(&INDEXED_STATUSES).await? {
            match self.count_up_to(status, &queue).await? {
                Some(n) => counts.exact(&queue, status, n),
                None => {
                    let n = self.count_estimate(status, &queue).await?;
                    counts.estimated(&queue, status, n);
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
        let now = micros(Utc::now());
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut retried: Vec<(i64, Uuid)> = Vec::new();
        let mut statements = Vec::new();
        match selection {
            RetrySelection::Ids(ids) => {
                for chunk in unique_ids(ids).chunks(ID_CHUNK) {
                    let mut qb = retry_statement(now, &statuses);
                    qb.push(" AND id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    statements.push(qb);
                }
            }
            RetrySelection::Filter(filter) => {
                let mut qb = retry_statement(now, &statuses);
                if let Some(q) = &filter.queue_name {
                    qb.push(" AND queue_name = ").push_bind(q.clone());
                }
                push_conditions(&mut qb, filter, None);
                statements.push(qb);
            }
        }
        for mut qb in statements {
            qb.push(" RETURNING seq, id");
            for row in qb.build().fetch_all(&mut *tx).await? {
                retried.push((row.try_get(0)?, row.try_get(1)?));
            }
        }
        tx.commit().await?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tasks::SqliteOptions;

    /// The details of `EXPLAIN QUERY PLAN` for `sql` on a fresh file, with its `params`
    /// parameters bound to NULL.
    async fn query_plan(sql: &str, params: usize) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::connect_with(SqliteOptions::new(dir.path().join("t.db")))
            .await
            .unwrap();
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
        for _ in 0..params {
            query = query.bind(None::<i64>);
        }
        let plan = query.fetch_all(&backend.reader).await.unwrap();
        plan.into_iter().map(|r| r.3).collect()
    }

    /// Running tasks are counted, and their queues found, from the leases index alone
    /// (schema 5): without the queue in it every running task's row was read.
    #[tokio::test]
    async fn running_tasks_are_counted_from_the_leases_index_alone() {
        let distinct = format!(
            "SELECT DISTINCT queue_name FROM {}",
            tasks_of(TaskStatus::Running)
        );
        for sql in [running_counts_sql(), distinct] {
            let plan = query_plan(&sql, 0).await;
            assert!(
                plan.iter()
                    .any(|r| r.contains("COVERING INDEX mailroom_tasks_leases")),
                "{sql}: {plan:?}"
            );
        }
    }

    /// Pruning reads each finished status's ranges from the status index alone (schema 6
    /// keys it on `finished_at` last), in `seq` order without sorting.
    #[tokio::test]
    async fn pruning_reads_the_status_index_alone() {
        for status in FINISHED_STATUSES {
            let sql = prune_slice_sql(status);
            let plan = query_plan(&sql, 4).await;
            assert!(
                plan.iter()
                    .any(|r| r.contains("COVERING INDEX mailroom_tasks_status")),
                "{sql}: {plan:?}"
            );
            assert!(!plan.iter().any(|r| r.contains("TEMP B-TREE")), "{plan:?}");
        }
    }

    /// Every task that finished before the cut-off goes, in every finished status and
    /// queue, across slices and past tasks that finished later (which stay), and nothing
    /// else does: not a ready, a running or a retried task.
    #[tokio::test]
    async fn pruning_in_slices_deletes_exactly_the_tasks_finished_before_the_cut_off() {
        use crate::tasks::backend::{ClaimRequest, Outcome, OutcomeKind, TaskBackend};
        use crate::tasks::{AttemptError, NewTask, WorkerBackend};
        use std::time::Duration;

        let dir = tempfile::tempdir().unwrap();
        let b = SqliteBackend::connect_with(
            SqliteOptions::new(dir.path().join("t.db")).queues(["a", "b", "default"]),
        )
        .await
        .unwrap();
        let now = Utc::now();
        let cut_off = now + chrono::Duration::minutes(30);
        let (old, new) = (
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
        );
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        let mut failed_old = None;
        for queue in ["a", "b"] {
            let tasks = (0..13)
                .map(|i| NewTask::new("t", serde_json::json!(i)).queue(queue))
                .collect();
            let ids = b.enqueue_many(tasks).await.unwrap();
            let claimed = b
                .claim(&ClaimRequest {
                    worker_id: "w".into(),
                    queues: vec![queue.to_owned()],
                    limit: 12,
                    lease: Duration::from_secs(3600),
                    now: Utc::now(),
                    isolated: false,
                    task_names: None,
                    routes: None,
                })
                .await
                .unwrap();
            assert_eq!(claimed.len(), 12);
            let error = |at| AttemptError {
                attempt: 1,
                kind: "k".into(),
                message: "m".into(),
                worker_id: None,
                at,
            };
            let mut outcomes = Vec::new();
            for (i, c) in claimed.iter().enumerate() {
                // Old and new alternate in `seq` order, so each slice passes over new ones.
                let at = if i % 2 == 0 { old } else { new };
                let kind = if i < 8 {
                    OutcomeKind::Succeeded {
                        return_value: serde_json::json!(null),
                    }
                } else {
                    OutcomeKind::Failed {
                        error: error(at),
                        args: None,
                    }
                };
                outcomes.push(Outcome {
                    lease: c.lease.clone(),
                    at,
                    kind,
                });
                if i == 11 {
                    kept.push(c.lease.id); // left RUNNING
                    outcomes.pop();
                } else if at == old {
                    if i >= 8 {
                        failed_old.get_or_insert(c.lease.id);
                    }
                    gone.push(c.lease.id);
                } else {
                    kept.push(c.lease.id);
                }
            }
            assert!(b.finish(&outcomes).await.unwrap().iter().all(|a| *a));
            // The one task not claimed is cancelled now: before the cut-off.
            let unclaimed = ids[12];
            b.cancel(&[unclaimed]).await.unwrap();
            gone.push(unclaimed);
        }
        // A task that failed long ago, retried since: READY again, so it stays.
        let failed_old = failed_old.unwrap();
        b.retry(&RetrySelection::Ids(vec![failed_old]))
            .await
            .unwrap();
        gone.retain(|id| *id != failed_old);
        kept.push(failed_old);
        let ready = b
            .enqueue(NewTask::new("t", serde_json::json!("r")))
            .await
            .unwrap();
        kept.push(ready);

        let pruned = b.prune_finished(micros(cut_off), 2).await.unwrap();
        assert_eq!(pruned, gone.len() as u64);
        for id in &gone {
            assert!(
                matches!(b.get_result(*id).await, Err(TaskError::NotFound { .. })),
                "{id} finished before the cut-off and was kept"
            );
        }
        for id in &kept {
            b.get_result(*id).await.unwrap();
        }
        assert_eq!(b.prune_finished(micros(cut_off), 2).await.unwrap(), 0);
    }
}
