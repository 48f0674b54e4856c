//! The SQL text, built once per schema, and the planner settings its claim depends on.

/// The SQL, built once for the chosen schema.
#[derive(Debug)]
pub(super) struct Sql {
    pub(super) insert: String,
    pub(super) keyed_ids: String,
    pub(super) get: String,
    pub(super) claim: String,
    pub(super) heartbeat: String,
    pub(super) finish: String,
    pub(super) rescue: String,
    pub(super) prune: String,
    pub(super) cancel_requests: String,
    pub(super) release_keys: String,
    pub(super) channel: String,
}

impl Sql {
    pub(super) fn new(schema: &str, synchronous_worker_commits: bool) -> Self {
        let t = format!("\"{schema}\".mailroom_tasks");
        let q = format!("\"{schema}\".mailroom_queues");
        // Worker statements set `synchronous_commit` for their own (implicit) transaction.
        let commit = if synchronous_worker_commits {
            "on"
        } else {
            "off"
        };
        let cfg =
            format!("cfg AS (SELECT set_config('synchronous_commit', '{commit}', true) AS v)");
        let channel = format!("{schema}.mailroom_tasks");
        Sql {
            insert: format!(
                "WITH ins AS (\
                   INSERT INTO {t} (id, task_name, queue_name, priority, args, status, enqueued_at, run_after, max_attempts, idempotency_key, route, timeout_ms, labels, unique_scope, unique_until) \
                   SELECT u.id, u.task_name, u.queue_name, u.priority, u.args::json, 'READY', $9, u.run_after, u.max_attempts, u.idempotency_key, u.route, u.timeout_ms, u.labels::jsonb, u.unique_scope, u.unique_until \
                   FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::timestamptz[], $7::int4[], $8::text[], $11::text[], $12::int8[], $13::text[], $14::text[], $15::timestamptz[]) \
                     WITH ORDINALITY AS u(id, task_name, queue_name, priority, args, run_after, max_attempts, idempotency_key, route, timeout_ms, labels, unique_scope, unique_until, ord) \
                   ORDER BY u.ord \
                   ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING queue_name) \
                 SELECT n.inserted, CASE WHEN n.inserted > 0 THEN pg_notify($10, n.queues) END::text AS notified \
                 FROM (SELECT count(*) AS inserted, string_agg(DISTINCT queue_name, ',') AS queues FROM ins) n"
            ),
            keyed_ids: format!(
                "SELECT idempotency_key, id, task_name, COALESCE(enqueued_args, args) FROM {t} WHERE idempotency_key = ANY($1::text[])"
            ),
            get: format!(
                "SELECT id, task_name, queue_name, priority, args, status, enqueued_at, run_after, started_at, \
                 finished_at, last_attempted_at, attempt, max_attempts, worker_ids, errors, return_value, idempotency_key, \
                 cancel_requested_at FROM {t} WHERE id = $1"
            ),
            // The queue condition is written so that no index can take it as an index
            // condition: the status index `(queue_name, status, seq)` would then match
            // the claim better than the claim-order index, and on stale statistics the
            // planner would claim through it and sort every ready task (the plan test
            // below catches that).
            claim: format!(
                "WITH {cfg}, ready AS (\
                   SELECT seq FROM {t} \
                   WHERE status = 'READY' AND run_after <= $1 \
                     AND array_position($2::text[], queue_name) IS NOT NULL \
                     AND queue_name <> ALL (ARRAY(SELECT q.queue_name FROM {q} q \
                       WHERE q.paused_at IS NOT NULL OR q.rate_limit IS NOT NULL)) \
                     AND ($6::bool OR lease_expiries = 0) \
                     AND ($7::text[] IS NULL OR task_name = ANY($7::text[])) \
                     AND ($8::text[] IS NULL OR route IS NULL OR route = ANY($8::text[])) \
                   ORDER BY priority DESC, run_after, seq \
                   LIMIT $3 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE {t} t SET status = 'RUNNING', attempt = t.attempt + 1, worker_id = $4, \
                   lease_expires_at = $5, started_at = COALESCE(t.started_at, $1), last_attempted_at = $1, \
                   worker_ids = array_append(t.worker_ids, $4) \
                 FROM ready, cfg WHERE t.seq = ready.seq \
                 RETURNING t.seq, t.id, t.task_name, t.queue_name, t.priority, t.args, t.attempt, t.max_attempts, \
                   t.enqueued_at, t.run_after, t.lease_expiries, t.timeout_ms"
            ),
            // Rows are locked in `seq` order (here, in `finish` and nowhere else without
            // SKIP LOCKED), so a worker's heartbeat and completion batches cannot deadlock.
            heartbeat: format!(
                "WITH {cfg}, locked AS (\
                   SELECT t.seq, l.worker_id, l.attempt FROM {t} t \
                   JOIN UNNEST($1::uuid[], $2::text[], $3::int4[]) AS l(id, worker_id, attempt) \
                     ON t.id = l.id AND t.worker_id = l.worker_id AND t.attempt = l.attempt \
                   WHERE t.status = 'RUNNING' ORDER BY t.seq FOR UPDATE OF t) \
                 UPDATE {t} t SET lease_expires_at = $4 FROM locked, cfg \
                 WHERE t.seq = locked.seq AND t.status = 'RUNNING' \
                 RETURNING t.id, locked.worker_id, locked.attempt"
            ),
            finish: format!(
                "WITH {cfg}, locked AS (\
                   SELECT t.seq, o.worker_id, o.attempt, o.kind, o.at, o.value, o.error, o.run_after, o.args FROM {t} t \
                   JOIN UNNEST($1::uuid[], $2::text[], $3::int4[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::timestamptz[], $9::text[]) \
                     AS o(id, worker_id, attempt, kind, at, value, error, run_after, args) \
                     ON t.id = o.id AND t.worker_id = o.worker_id AND t.attempt = o.attempt \
                   WHERE t.status = 'RUNNING' ORDER BY t.seq FOR UPDATE OF t) \
                 UPDATE {t} t SET \
                   status = CASE WHEN o.kind = 'ok' THEN 'SUCCESSFUL' \
                     WHEN o.kind = 'cancel' OR (o.kind = 'retry' AND t.cancel_requested_at IS NOT NULL) THEN 'CANCELLED' \
                     WHEN o.kind = 'retry' THEN 'READY' ELSE 'FAILED' END, \
                   finished_at = CASE WHEN o.kind = 'retry' AND t.cancel_requested_at IS NULL THEN t.finished_at ELSE o.at END, \
                   return_value = CASE WHEN o.kind = 'ok' THEN o.value::json ELSE t.return_value END, \
                   run_after = CASE WHEN o.kind = 'retry' THEN o.run_after ELSE t.run_after END, \
                   enqueued_args = CASE WHEN o.args IS NULL THEN t.enqueued_args ELSE COALESCE(t.enqueued_args, t.args) END, \
                   args = CASE WHEN o.args IS NULL THEN t.args ELSE o.args::json END, \
                   errors = CASE WHEN o.kind = 'ok' THEN t.errors ELSE t.errors || jsonb_build_array(o.error::jsonb) END, \
                   worker_id = CASE WHEN o.kind = 'retry' AND t.cancel_requested_at IS NULL THEN NULL ELSE t.worker_id END, \
                   lease_expires_at = NULL \
                 FROM locked o, cfg WHERE t.seq = o.seq AND t.status = 'RUNNING' \
                 RETURNING t.id, o.worker_id, o.attempt"
            ),
            // SKIP LOCKED: rescuers of many workers never wait on (or deadlock with) each
            // other or with completions; a row locked now is looked at on the next pass.
            rescue: format!(
                "WITH {cfg}, expired AS (\
                   SELECT seq FROM {t} WHERE status = 'RUNNING' AND lease_expires_at < $1 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE {t} t SET \
                   status = CASE WHEN t.cancel_requested_at IS NOT NULL THEN 'CANCELLED' \
                     WHEN t.attempt >= t.max_attempts OR t.lease_expiries + 1 >= $3 THEN 'FAILED' ELSE 'READY' END, \
                   finished_at = CASE WHEN t.cancel_requested_at IS NOT NULL OR t.attempt >= t.max_attempts OR t.lease_expiries + 1 >= $3 THEN $1 ELSE NULL END, \
                   run_after = CASE WHEN t.cancel_requested_at IS NOT NULL OR t.attempt >= t.max_attempts OR t.lease_expiries + 1 >= $3 THEN t.run_after ELSE $1 END, \
                   errors = t.errors || jsonb_build_array(jsonb_build_object('attempt', t.attempt, 'kind', 'lease_expired', \
                     'message', CASE WHEN t.lease_expiries + 1 >= $3 THEN $5::text ELSE $4::text END, \
                     'worker_id', t.worker_id, 'at', $2::text)), \
                   lease_expiries = t.lease_expiries + 1, \
                   worker_id = NULL, lease_expires_at = NULL \
                 FROM expired, cfg WHERE t.seq = expired.seq RETURNING t.status"
            ),
            prune: format!(
                "DELETE FROM {t} WHERE seq IN (SELECT seq FROM {t} \
                 WHERE status IN ('SUCCESSFUL', 'FAILED', 'CANCELLED') AND finished_at < $1 LIMIT 5000 \
                 FOR UPDATE SKIP LOCKED)"
            ),
            // Served by the partial index `mailroom_tasks_cancel_requests`.
            cancel_requests: format!(
                "SELECT id, attempt FROM {t} \
                 WHERE worker_id = $1 AND status = 'RUNNING' AND cancel_requested_at IS NOT NULL"
            ),
            // A key whose unique scope has lapsed is taken from its old task, in the
            // enqueue's transaction: a concurrent enqueue under the same key waits on the
            // old row's lock, then finds the key gone from it and meets the new task in the
            // unique index instead (so one new task, whoever wins).
            release_keys: format!(
                "UPDATE {t} SET idempotency_key = NULL \
                 WHERE idempotency_key = ANY($1::text[]) \
                   AND ((unique_scope = 'unfinished' AND status IN ('SUCCESSFUL', 'FAILED', 'CANCELLED')) \
                     OR (unique_scope = 'until' AND unique_until <= $2))"
            ),
            channel,
        }
    }
}

/// Session settings for the backend's connections. A queue table changes faster than its
/// statistics: after a bulk enqueue into a table last analysed when nearly empty, the
/// planner expects a handful of ready rows and claims with a bitmap scan that reads and
/// sorts *every* ready task (measured: 3.6 ms for a claim of 32 out of 10,400 ready tasks,
/// growing with the queue) instead of walking the claim-order index and stopping after
/// `LIMIT` rows (0.09 ms). No mailroom query needs a bitmap scan.
pub const PLANNER_SETTINGS: [(&str, &str); 1] = [("enable_bitmapscan", "off")];

/// The claim's plan on the real PostgreSQL (`MAILROOM_TEST_POSTGRES_URL`, which `.ci/run`
/// sets; without it, and outside CI, the test says so and returns).
#[cfg(test)]
pub(super) mod plan_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
    use chrono::Utc;
    use sqlx::postgres::PgPool;
    use uuid::Uuid;

    use super::Sql;
    use crate::tasks::backend::postgres::{PostgresBackend, PostgresOptions};
    use crate::tasks::{NewTask, TaskBackend};

    /// Node types in an `EXPLAIN (FORMAT JSON)` plan, depth first, each with the index it
    /// reads (if any): `"Index Scan"`, `"Index Scan mailroom_tasks_ready"`.
    pub(in crate::tasks::backend::postgres) fn node_types(
        plan: &serde_json::Value,
        out: &mut Vec<String>,
    ) {
        if let Some(t) = plan.get("Node Type").and_then(|t| t.as_str()) {
            out.push(t.to_owned());
            if let Some(index) = plan.get("Index Name").and_then(|i| i.as_str()) {
                out.push(format!("{t} {index}"));
            }
        }
        for child in plan
            .get("Plans")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            node_types(child, out);
        }
    }

    async fn claim_plan(pool: &PgPool, sql: &Sql) -> Vec<String> {
        let now = Utc::now();
        let plan: serde_json::Value =
            sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", sql.claim))
                .bind(now)
                .bind(vec!["default".to_owned()])
                .bind(32_i64)
                .bind("w")
                .bind(now)
                .bind(false)
                .bind(Some(vec!["noop".to_owned()]))
                .bind(Some(vec!["smtp".to_owned()]))
                .fetch_one(pool)
                .await
                .unwrap();
        let mut nodes = Vec::new();
        node_types(&plan[0]["Plan"], &mut nodes);
        nodes
    }

    /// `MAILROOM_TEST_POSTGRES_URL`; without it a test says so and returns, except in CI,
    /// where it fails.
    pub(in crate::tasks::backend::postgres) fn test_url() -> Option<String> {
        match std::env::var("MAILROOM_TEST_POSTGRES_URL") {
            Ok(url) => Some(url),
            Err(_) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
                panic!("MAILROOM_TEST_POSTGRES_URL must be set in CI")
            }
            Err(_) => {
                eprintln!("SKIPPED: MAILROOM_TEST_POSTGRES_URL is not set");
                None
            }
        }
    }

    /// A backend on a fresh schema (dropped by the test when it is done), and its name.
    pub(in crate::tasks::backend::postgres) async fn fresh_backend(
        url: &str,
    ) -> (PostgresBackend, String) {
        let schema = format!(
            "mailroom_plan_{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let backend = PostgresBackend::connect_with(PostgresOptions::new(url).schema(&schema))
            .await
            .unwrap();
        (backend, schema)
    }

    #[tokio::test]
    async fn claims_walk_the_index_even_when_statistics_are_stale() {
        let Some(url) = test_url() else {
            return;
        };
        let (backend, schema) = fresh_backend(&url).await;
        // A bulk enqueue into a table never analysed since it was empty.
        let tasks = (0..5_000)
            .map(|n| NewTask::new("noop", serde_json::json!(n)))
            .collect();
        backend.enqueue_many(tasks).await.unwrap();

        let sql = &backend.inner.sql;
        let nodes = claim_plan(&backend.inner.pool, sql).await;
        assert!(
            nodes.iter().any(|n| n == "Index Scan mailroom_tasks_ready"),
            "the claim should walk the claim-order index: {nodes:?}"
        );
        assert!(
            !nodes.iter().any(|n| n == "Sort" || n.starts_with("Bitmap")),
            "the claim must not read and sort every ready task: {nodes:?}"
        );

        // Control: a plain pool, without the settings, plans the sort on this table, so
        // the assertions above are about the settings, not about luck.
        let plain = PgPool::connect(&url).await.unwrap();
        let nodes = claim_plan(&plain, sql).await;
        assert!(nodes.iter().any(|n| n == "Sort"), "{nodes:?}");
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&plain)
            .await
            .unwrap();
    }
}
