//! The operator's queries on a large table, SQLite and PostgreSQL: 1,000,000 tasks (90%
//! SUCCESSFUL, 5% FAILED, 3% READY, 1% RUNNING, 1% CANCELLED; two thirds in queue
//! `default`, one third in `other`), filled by one bulk `INSERT … SELECT`. Timed: the first
//! page of 50 with no filter, with a status filter, with a status and a queue; the page of
//! 50 after a cursor 900,000 tasks deep; and `count_tasks`. The bar is ≤ 50 ms for
//! each. Also prints how far each estimated count is from the true one. Beside them, a
//! pruner pass that finds nothing to delete (`prune_nothing_due`: every finished task is
//! younger than the cut-off), the pass a worker makes every five minutes.
//!
//! PostgreSQL comes from `MAILROOM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), in a fresh schema dropped afterwards; the
//! table is `VACUUM ANALYZE`d after the fill, as autovacuum would have done.
//!
//! `cargo bench --all-features --bench operations`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mailroom::tasks::{
    PostgresBackend, PostgresOptions, QueueOperations, SqliteBackend, SqliteOptions, TaskCursor,
    TaskFilter, TaskStatus, WorkerBackend,
};
use sqlx::Connection;

const TASKS: i64 = 1_000_000;

/// The status of task `i` (the same rule on both backends).
const STATUS_CASE: &str = "CASE WHEN i % 100 < 90 THEN 'SUCCESSFUL' WHEN i % 100 < 95 THEN 'FAILED' \
    WHEN i % 100 < 98 THEN 'READY' WHEN i % 100 < 99 THEN 'RUNNING' ELSE 'CANCELLED' END";

fn url() -> String {
    std::env::var("MAILROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn fill_sqlite(path: &std::path::Path) {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {TASKS}) \
         INSERT INTO mailroom_tasks (id, task_name, queue_name, priority, args, status, \
           enqueued_at, run_after, started_at, finished_at, attempt, max_attempts, worker_id, \
           lease_expires_at) \
         SELECT randomblob(16), 'send_mail', CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END, \
           0, '{{\"n\":1}}', s, 1700000000000000 + i * 1000, 1700000000000000 + i * 1000, \
           CASE WHEN s = 'READY' THEN NULL ELSE 1700000000000000 + i * 1000 END, \
           CASE WHEN s IN ('SUCCESSFUL', 'FAILED', 'CANCELLED') THEN 1700000000000500 + i * 1000 END, \
           CASE WHEN s = 'READY' THEN 0 ELSE 1 END, 10, \
           CASE WHEN s = 'RUNNING' THEN 'w' END, \
           CASE WHEN s = 'RUNNING' THEN 4000000000000000 END \
         FROM (SELECT i, {STATUS_CASE} AS s FROM n)"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

async fn fill_postgres(schema: &str) {
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".mailroom_tasks (id, task_name, queue_name, priority, args, status, \
           enqueued_at, run_after, started_at, finished_at, attempt, max_attempts, worker_id, \
           lease_expires_at) \
         SELECT gen_random_uuid(), 'send_mail', CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END, \
           0, '{{\"n\":1}}', s, t, t, CASE WHEN s = 'READY' THEN NULL ELSE t END, \
           CASE WHEN s IN ('SUCCESSFUL', 'FAILED', 'CANCELLED') THEN t END, \
           CASE WHEN s = 'READY' THEN 0 ELSE 1 END, 10, \
           CASE WHEN s = 'RUNNING' THEN 'w' END, \
           CASE WHEN s = 'RUNNING' THEN now() + interval '1 day' END \
         FROM (SELECT i, {STATUS_CASE} AS s, timestamptz '2026-01-01' + i * interval '1 ms' AS t \
               FROM generate_series(1, {TASKS}) AS i) g"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(&format!("VACUUM ANALYZE \"{schema}\".mailroom_tasks"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// The true counts, for comparing the estimates with.
fn truth(queue: &str, status: TaskStatus) -> u64 {
    let rank = match status {
        TaskStatus::Successful => 0..90,
        TaskStatus::Failed => 90..95,
        TaskStatus::Ready => 95..98,
        TaskStatus::Running => 98..99,
        TaskStatus::Cancelled => 99..100,
    };
    (1..=TASKS)
        .filter(|i| rank.contains(&(i % 100)) && ((i % 3 == 0) == (queue == "other")))
        .count() as u64
}

fn run<B: QueueOperations + WorkerBackend>(
    c: &mut Criterion,
    name: &str,
    rt: &tokio::runtime::Runtime,
    ops: Arc<B>,
) {
    let counts = rt.block_on(ops.count_tasks()).unwrap();
    for (queue, by_status) in &counts.counts {
        for (status, n) in by_status {
            let real = truth(queue, *status);
            eprintln!(
                "{name}: {queue} {status}: {n} ({}; true {real}, off by {:+.2}%)",
                if counts.is_estimated(queue, *status) {
                    "estimated"
                } else {
                    "exact"
                },
                (*n as f64 - real as f64) / real as f64 * 100.0
            );
        }
    }
    // A cursor 900,000 tasks deep: the first seq is 1 on both backends' fresh tables.
    let cursor: TaskCursor = "t100000".parse().unwrap();
    let failed = TaskFilter {
        statuses: vec![TaskStatus::Failed],
        ..TaskFilter::default()
    };
    let ready_default = TaskFilter {
        statuses: vec![TaskStatus::Ready],
        queue_name: Some("default".into()),
        ..TaskFilter::default()
    };
    let mut group = c.benchmark_group(format!("operations_{name}"));
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let cases: [(&str, TaskFilter, Option<TaskCursor>); 4] = [
        ("first_page_50", TaskFilter::default(), None),
        ("first_page_50_status", failed, None),
        ("first_page_50_status_queue", ready_default, None),
        (
            "page_50_after_deep_cursor",
            TaskFilter::default(),
            Some(cursor),
        ),
    ];
    for (label, filter, after) in cases {
        let page = rt.block_on(ops.list_tasks(&filter, 50, after)).unwrap();
        assert_eq!(page.tasks.len(), 50, "{label}");
        group.bench_function(label, |b| {
            b.to_async(rt)
                .iter(|| async { ops.list_tasks(&filter, 50, after).await.unwrap() });
        });
    }
    group.bench_function("count_tasks", |b| {
        b.to_async(rt)
            .iter(|| async { ops.count_tasks().await.unwrap() });
    });
    // Before every finish time on both backends: nothing is deleted, so every sample
    // times the same pass over the same table.
    let cut_off = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    group.bench_function("prune_nothing_due", |b| {
        b.to_async(rt).iter(|| async {
            assert_eq!(ops.prune(cut_off).await.unwrap(), 0);
        });
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operations.db");
    let sqlite = rt
        .block_on(SqliteBackend::connect_with(
            SqliteOptions::new(&path).queues(["default", "other"]),
        ))
        .unwrap();
    rt.block_on(fill_sqlite(&path));
    run(c, "sqlite", &rt, Arc::new(sqlite));

    let schema = format!(
        "mailroom_ops_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let pg = rt
        .block_on(PostgresBackend::connect_with(
            PostgresOptions::new(url())
                .schema(&schema)
                .queues(["default", "other"]),
        ))
        .unwrap();
    rt.block_on(fill_postgres(&schema));
    run(c, "postgres", &rt, Arc::new(pg));
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
