//! [`QueueOperations`] on PostgreSQL. Listings walk the status index `(queue_name, status,
//! seq)` backwards, one limited range per queue and status, merged (or the primary key in
//! `seq` order when the filter names neither); counts go through the same index (see
//! `operator.rs` for when they are estimates). RUNNING tasks are not in the status index:
//! they are found through the leases index, which holds exactly them (at most what the
//! workers have claimed), and counted exactly. Every statement names its statuses as SQL
//! literals, never as parameters: the planner uses a partial index only for a statement
//! whose conditions it can prove imply the index's, and `status = $1` proves nothing.
//! Cancel and retry lock their rows in `seq`
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
    self, CountsBuilder, EXACT_UP_TO, INDEXED_STATUSES, estimate, listing_pairs, page_limit,
    retry_statuses, sample_windows, unique_ids,
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

/// `status` as an SQL string literal (safe to splice: the names are fixed ASCII words).
fn literal(status: TaskStatus) -> String {
    format!("'{}'", status.as_str())
}

/// `status IN ('…', …)` for `statuses`, which must not be empty.
fn status_in(statuses: &[TaskStatus]) -> String {
    let names: Vec<String> = statuses.iter().map(|s| literal(*s)).collect();
    format!("status IN ({})", names.join(", "))
}

/// The statement behind [`PostgresBackend::status_queues`]: the queue names by a skip scan
/// of the status index, then one probe per queue and status; `statuses` must not be empty.
fn status_queues_sql(t: &str, statuses: &[TaskStatus]) -> String {
    let parts: Vec<String> = statuses
        .iter()
        .map(|status| {
            let s = literal(*status);
            if *status == TaskStatus::Running {
                format!(
                    "SELECT {s}::text, r.queue_name FROM (SELECT DISTINCT queue_name FROM {t} \
                     WHERE status = {s}) r"
                )
            } else {
                format!(
                    "SELECT {s}::text, q.name FROM q WHERE q.name IS NOT NULL AND EXISTS \
                     (SELECT 1 FROM {t} WHERE queue_name = q.name AND status = {s})"
                )
            }
        })
        .collect();
    format!(
        "WITH RECURSIVE q(name) AS (\
           SELECT (SELECT min(queue_name) FROM {t} WHERE status <> 'RUNNING') \
           UNION ALL \
           SELECT (SELECT min(t.queue_name) FROM {t} t \
             WHERE t.status <> 'RUNNING' AND t.queue_name > q.name) \
           FROM q WHERE q.name IS NOT NULL) {}",
        parts.join(" UNION ALL ")
    )
}

/// The statement behind [`PostgresBackend::running_counts`].
fn running_counts_sql(t: &str) -> String {
    format!("SELECT queue_name, count(*) FROM {t} WHERE status = 'RUNNING' GROUP BY queue_name")
}

/// The statement behind [`PostgresBackend::counts_up_to`], after `init` (empty, or
/// `EXPLAIN` in the plan tests); `None` when `pairs` is empty.
fn counts_query<'a>(
    init: &str,
    t: &str,
    pairs: &[(TaskStatus, String)],
) -> Option<QueryBuilder<'a, Postgres>> {
    let mut qb: QueryBuilder<'a, Postgres> = QueryBuilder::new(init);
    let mut first = true;
    for status in TaskStatus::ALL {
        let (queues, ords): (Vec<String>, Vec<i32>) = pairs
            .iter()
            .enumerate()
            .filter(|(_, (s, _))| *s == status)
            .map(|(i, (_, q))| (q.clone(), i32::try_from(i).unwrap_or(i32::MAX)))
            .unzip();
        if queues.is_empty() {
            continue;
        }
        if !first {
            qb.push(" UNION ALL ");
        }
        first = false;
        qb.push(format!(
            "SELECT p.ord, (SELECT count(*) FROM (SELECT 1 FROM {t} \
               WHERE queue_name = p.queue AND status = {} LIMIT ",
            literal(status)
        ))
        .push_bind(EXACT_UP_TO as i64 + 1)
        .push(") c) FROM unnest(")
        .push_bind(queues)
        .push("::text[], ")
        .push_bind(ords)
        .push("::int4[]) AS p(queue, ord)");
    }
    (!first).then_some(qb)
}

/// The two statements behind [`PostgresBackend::count_estimate`]: the lowest and highest
/// `seq` of `status` in queue `$1`, and the tasks in the windows `$2`..`$3` between them.
fn estimate_sql(t: &str, status: TaskStatus) -> (String, String) {
    let s = literal(status);
    (
        format!(
            "SELECT (SELECT min(seq) FROM {t} WHERE queue_name = $1 AND status = {s}), \
                    (SELECT max(seq) FROM {t} WHERE queue_name = $1 AND status = {s})"
        ),
        format!(
            "SELECT COALESCE(sum((SELECT count(*) FROM {t} WHERE queue_name = $1 AND status = {s} \
               AND seq >= w.a AND seq < w.b)), 0)::int8 \
             FROM unnest($2::int8[], $3::int8[]) AS w(a, b)"
        ),
    )
}

/// A page of a listing, after `init`: one backwards range of the status index per queue
/// and status in `pairs`, each limited, merged newest first; or, with `pairs` `None`, the
/// primary key backwards.
fn list_query<'a>(
    init: &str,
    t: &str,
    filter: &TaskFilter,
    pairs: Option<Vec<(TaskStatus, String)>>,
    limit: i64,
    after: Option<i64>,
) -> QueryBuilder<'a, Postgres> {
    let mut qb: QueryBuilder<'a, Postgres> = QueryBuilder::new(init);
    let Some(pairs) = pairs else {
        qb.push(format!("SELECT * FROM {t} WHERE true"));
        push_conditions(&mut qb, filter, after);
        qb.push(" ORDER BY seq DESC LIMIT ").push_bind(limit + 1);
        return qb;
    };
    qb.push("SELECT * FROM (");
    for (i, (status, queue)) in pairs.into_iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        qb.push(format!(
            "(SELECT * FROM {t} WHERE status = {} AND queue_name = ",
            literal(status)
        ))
        .push_bind(queue);
        push_conditions(&mut qb, filter, after);
        qb.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(limit + 1)
            .push(")");
    }
    qb.push(") u ORDER BY seq DESC LIMIT ").push_bind(limit + 1);
    qb
}

impl PostgresBackend {
    fn tasks_table(&self) -> String {
        format!("\"{}\".mailroom_tasks", self.inner.schema)
    }

    /// The queues holding tasks of each of `statuses`: the queue names by a skip scan of
    /// the status index (one index probe per queue, not a scan of the tasks), each checked
    /// for each status by one more probe; RUNNING ones through the leases index.
    async fn status_queues(
        &self,
        statuses: &[TaskStatus],
    ) -> Result<Vec<(TaskStatus, String)>, TaskError> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&status_queues_sql(&self.tasks_table(), statuses))
            .fetch_all(&self.inner.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get(0)?;
                Ok((TaskStatus::from_str(&status)?, row.try_get(1)?))
            })
            .collect()
    }

    /// Exactly how many RUNNING tasks each queue holds: one pass over the leases index,
    /// which holds only them.
    async fn running_counts(&self) -> Result<Vec<(String, i64)>, TaskError> {
        Ok(sqlx::query_as(&running_counts_sql(&self.tasks_table()))
            .fetch_all(&self.inner.pool)
            .await?)
    }

    /// Exactly how many tasks of each (status, queue) pair there are, `None` for those
    /// beyond [`EXACT_UP_TO`]; one statement for all, one bounded index range per pair.
    async fn counts_up_to(
        &self,
        pairs: &[(TaskStatus, String)],
    ) -> Result<Vec<Option<u64>>, TaskError> {
        let mut out = vec![None; pairs.len()];
        let Some(mut qb) = counts_query("", &self.tasks_table(), pairs) else {
            return Ok(out);
        };
        let rows: Vec<(i32, i64)> = qb.build_query_as().fetch_all(&self.inner.pool).await?;
        for (ord, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            if let Some(slot) = usize::try_from(ord).ok().and_then(|i| out.get_mut(i)) {
                *slot = (n <= EXACT_UP_TO).then_some(n);
            }
        }
        Ok(out)
    }

    /// An estimate of how many tasks of `status` `queue` holds (more than
    /// [`EXACT_UP_TO`]), from windows of the status index.
    async fn count_estimate(&self, status: TaskStatus, queue: &str) -> Result<u64, TaskError> {
        let (bounds, windows_sql) = estimate_sql(&self.tasks_table(), status);
        let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(&bounds)
            .bind(queue)
            .fetch_one(&self.inner.pool)
            .await?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(0);
        };
        let windows = sample_windows(lo, hi);
        let sampled: i64 = sqlx::query_scalar(&windows_sql)
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
        let pairs = listing_pairs(filter, |statuses| async move {
            self.status_queues(&statuses).await
        })
        .await?;
        if pairs.as_ref().is_some_and(Vec::is_empty) {
            return Ok(TaskPage {
                tasks: Vec::new(),
                next: None,
            });
        }
        let mut qb = list_query("", &self.tasks_table(), filter, pairs, limit, after);
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
        for (queue, n) in self.running_counts().await? {
            counts.exact(&queue, TaskStatus::Running, u64::try_from(n).unwrap_or(0));
        }
        let pairs = self.status_queues(&INDEXED_STATUSES).await?;
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
            "WITH locked AS (SELECT seq FROM {t} WHERE {}",
            status_in(&statuses)
        ));
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
             FROM locked WHERE t.seq = locked.seq AND t.",
        )
        .push(status_in(&statuses))
        .push(" RETURNING t.seq, t.id, t.queue_name");
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

/// The operator's statements on the real PostgreSQL: each reads the tasks through an index
/// (the status index, or for RUNNING tasks the leases index), never the whole table. With
/// sequential scans disabled the planner still plans one where no index can serve, so a
/// statement the status index cannot serve (one comparing `status` with a parameter, say)
/// shows up as a `Seq Scan`.
#[cfg(test)]
mod plan_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use sqlx::{Connection, PgConnection};

    use super::*;
    use crate::tasks::backend::postgres::sql::plan_tests::{fresh_backend, node_types, test_url};

    fn nodes(plan: &serde_json::Value) -> Vec<String> {
        let mut out = Vec::new();
        node_types(&plan[0]["Plan"], &mut out);
        out
    }

    /// The partial indexes, each on a condition on `status`: a statement that compares
    /// `status` with a parameter can use none of them.
    const PARTIAL: [&str; 4] = [
        "mailroom_tasks_status",
        "mailroom_tasks_finished",
        "mailroom_tasks_ready",
        "mailroom_tasks_leases",
    ];

    /// Asserts that `nodes` reads the tasks through indexes, each one of `allowed`, and
    /// never scans the table. Which of the allowed indexes the planner picks depends on
    /// how much of the table is all-visible, which a transaction open elsewhere (another
    /// test's migration, say) holds back, so the test does not pin one.
    fn assert_reads(what: &str, nodes: &[String], allowed: &[&str]) {
        assert!(
            !nodes.iter().any(|n| n == "Seq Scan"),
            "{what} scans the whole table: {nodes:?}"
        );
        let indexes: Vec<&str> = nodes
            .iter()
            .filter_map(|n| {
                n.strip_prefix("Index Scan ")
                    .or_else(|| n.strip_prefix("Index Only Scan "))
            })
            .collect();
        assert!(!indexes.is_empty(), "{what} reads no index: {nodes:?}");
        assert!(
            indexes.iter().all(|i| allowed.contains(i)),
            "{what} should read only {allowed:?}: {nodes:?}"
        );
    }

    #[tokio::test]
    async fn operator_statements_read_through_indexes() {
        let Some(url) = test_url() else {
            return;
        };
        let (backend, schema) = fresh_backend(&url).await;
        let t = backend.tasks_table();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        // 20,000 tasks in two queues and every status, vacuumed and analysed (as autovacuum
        // would have done), so that the planner chooses among the indexes as it would on a
        // queue in use.
        sqlx::query(&format!(
            "INSERT INTO {t} (id, task_name, queue_name, priority, args, status, enqueued_at, \
               run_after, max_attempts, finished_at, worker_id, lease_expires_at) \
             SELECT gen_random_uuid(), 'noop', CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END, \
               0, '1', s, now(), now(), 3, CASE WHEN s IN ('SUCCESSFUL', 'FAILED', 'CANCELLED') THEN now() END, \
               CASE WHEN s = 'RUNNING' THEN 'w' END, CASE WHEN s = 'RUNNING' THEN now() END \
             FROM (SELECT i, (ARRAY['SUCCESSFUL', 'SUCCESSFUL', 'FAILED', 'READY', 'RUNNING', 'CANCELLED'])[i % 6 + 1] AS s \
                   FROM generate_series(1, 20000) AS i) g"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(&format!("VACUUM ANALYZE {t}"))
            .execute(&mut conn)
            .await
            .unwrap();
        for (name, value) in [
            ("enable_seqscan", "off"),
            ("enable_bitmapscan", "off"),
            ("jit", "off"),
        ] {
            sqlx::query("SELECT set_config($1, $2, false)")
                .bind(name)
                .bind(value)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let explain = "EXPLAIN (FORMAT JSON) ";
        let leases = ["mailroom_tasks_leases"];
        // The bounds and the windows of an estimate are `seq` ranges, which the primary
        // key serves as well.
        let partial_or_key = [&PARTIAL[..], &["mailroom_tasks_pkey"]].concat();

        let plan: serde_json::Value = sqlx::query_scalar(&format!(
            "{explain}{}",
            status_queues_sql(&t, &INDEXED_STATUSES)
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_reads("finding the queues", &nodes(&plan), &PARTIAL);
        let plan: serde_json::Value = sqlx::query_scalar(&format!(
            "{explain}{}",
            status_queues_sql(&t, &[TaskStatus::Running])
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_reads("finding the running queues", &nodes(&plan), &leases);
        let plan: serde_json::Value =
            sqlx::query_scalar(&format!("{explain}{}", running_counts_sql(&t)))
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_reads("counting running tasks", &nodes(&plan), &leases);

        let pairs: Vec<(TaskStatus, String)> = INDEXED_STATUSES
            .iter()
            .map(|s| (*s, "default".to_owned()))
            .collect();
        let plan: serde_json::Value = counts_query(explain, &t, &pairs)
            .unwrap()
            .build_query_scalar()
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_reads("counting", &nodes(&plan), &PARTIAL);

        for status in TaskStatus::ALL {
            let filter = TaskFilter {
                statuses: vec![status],
                queue_name: Some("default".to_owned()),
                ..TaskFilter::default()
            };
            let pairs = vec![(status, "default".to_owned())];
            let plan: serde_json::Value = list_query(explain, &t, &filter, Some(pairs), 50, None)
                .build_query_scalar()
                .fetch_one(&mut conn)
                .await
                .unwrap();
            // Newest first, the primary key backwards is as good where the status is
            // common (the planner's choice); what matters is that no listing reads it all.
            let listing = nodes(&plan);
            assert!(
                !listing.iter().any(|n| n == "Seq Scan"),
                "listing {status} scans the whole table: {listing:?}"
            );
            if status == TaskStatus::Running {
                continue;
            }
            let (bounds, windows) = estimate_sql(&t, status);
            let plan: serde_json::Value = sqlx::query_scalar(&format!("{explain}{bounds}"))
                .bind("default")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_reads(
                &format!("bounding {status}"),
                &nodes(&plan),
                &partial_or_key,
            );
            let plan: serde_json::Value = sqlx::query_scalar(&format!("{explain}{windows}"))
                .bind("default")
                .bind(vec![1_i64, 100])
                .bind(vec![10_i64, 110])
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_reads(
                &format!("sampling {status}"),
                &nodes(&plan),
                &partial_or_key,
            );
        }
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
