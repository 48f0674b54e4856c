//! Task throughput on the PostgreSQL backend (the same measures as `benches/tasks.rs` for
//! SQLite): batch enqueue rate, no-op tasks worked per second by one in-process worker, and
//! by 1 and 4 worker *processes* (`examples/task_worker`, built in release here).
//! Anchors: graphile-worker reports 15.6k jobs/s unbatched on a desktop i9.
//!
//! Needs `MAILROOM_TEST_POSTGRES_URL` or the PostgreSQL at
//! `postgres://postgres@127.0.0.1:5432/test`; each run works in a fresh schema, dropped after.
//!
//! `cargo bench --all-features --bench tasks_postgres`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailroom::tasks::{
    NewTask, PostgresBackend, PostgresOptions, Registry, Task, TaskBackend, TaskContext,
    TaskFailure, Worker, WorkerBackend,
};
use sqlx::Connection;

struct Noop;

#[async_trait::async_trait]
impl Task for Noop {
    const NAME: &'static str = "noop";
    type Args = u64;
    type Output = ();

    async fn run(&self, _ctx: TaskContext, _args: u64) -> Result<(), TaskFailure> {
        Ok(())
    }
}

const BATCH: u64 = 1000;
const BIG_BATCH: u64 = 10_000;
const WORK: u64 = 20_000;

fn batch(n: u64) -> Vec<NewTask> {
    (0..n).map(|i| Noop::new_task(&i).unwrap()).collect()
}

fn url() -> String {
    std::env::var("MAILROOM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn schema() -> String {
    format!(
        "mailroom_b_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

async fn open(schema: &str) -> PostgresBackend {
    PostgresBackend::connect_with(PostgresOptions::new(url()).schema(schema))
        .await
        .unwrap()
}

async fn drop_schema(schema: &str) {
    let mut conn = sqlx::PgConnection::connect(&url()).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Builds the example worker in release and returns its path.
fn worker_exe() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR")
            || key == "OUT_DIR"
        {
            build.env_remove(&*key);
        }
    }
    let status = build
        .args([
            "build",
            "--quiet",
            "--release",
            "--all-features",
            "--example",
            "task_worker",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success());
    let exe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/examples/task_worker");
    assert!(exe.exists(), "{} missing", exe.display());
    exe
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let enqueue_schema = schema();
    let backend = rt.block_on(open(&enqueue_schema));
    let exe = worker_exe();

    let mut group = c.benchmark_group("tasks_postgres");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));

    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("enqueue_batch_1000", |b| {
        b.to_async(&rt)
            .iter(|| async { backend.enqueue_many(batch(BATCH)).await.unwrap() });
    });
    group.throughput(Throughput::Elements(BIG_BATCH));
    group.bench_function("enqueue_batch_10000", |b| {
        b.to_async(&rt)
            .iter(|| async { backend.enqueue_many(batch(BIG_BATCH)).await.unwrap() });
    });

    group.throughput(Throughput::Elements(WORK));
    // With no-op tasks the concurrency is the claim batch size: 32 is latency-bound (one
    // claim round trip per few tasks), 256 shows what the backend sustains.
    for concurrency in [32usize, 256] {
        group.bench_function(
            format!("work_noop_in_process_concurrency_{concurrency}"),
            |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let s = schema();
                            let dyn_backend: Arc<dyn WorkerBackend> = Arc::new(open(&s).await);
                            dyn_backend.enqueue_many(batch(WORK)).await.unwrap();
                            let start = Instant::now();
                            let report = Worker::builder(dyn_backend, Registry::new().with(Noop))
                                .concurrency(concurrency)
                                .burst(true)
                                .retention(None)
                                .build()
                                .run(std::future::pending())
                                .await
                                .unwrap();
                            total += start.elapsed();
                            assert_eq!(report.succeeded, WORK);
                            drop_schema(&s).await;
                        }
                        total
                    })
                });
            },
        );
    }

    for (processes, concurrency) in [(1usize, 256usize), (4, 32), (4, 256)] {
        group.bench_function(
            format!("work_noop_{processes}_processes_concurrency_{concurrency}"),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let s = schema();
                        let backend = rt.block_on(open(&s));
                        rt.block_on(backend.enqueue_many(batch(WORK))).unwrap();
                        let full = format!("{}?schema={s}", url());
                        let start = Instant::now();
                        let children: Vec<_> = (0..processes)
                            .map(|_| {
                                Command::new(&exe)
                                    .args(["work", &full, "/dev/null", "--concurrency"])
                                    .arg(concurrency.to_string())
                                    .args(["--burst", "--poll-ms", "200"])
                                    .stdout(Stdio::null())
                                    .spawn()
                                    .unwrap()
                            })
                            .collect();
                        for mut child in children {
                            assert!(child.wait().unwrap().success());
                        }
                        total += start.elapsed();
                        let done: i64 = rt
                            .block_on(
                                sqlx::query_scalar(&format!(
                                    "SELECT count(*) FROM \"{s}\".mailroom_tasks WHERE status = 'SUCCESSFUL'"
                                ))
                                .fetch_one(backend.pool()),
                            )
                            .unwrap();
                        assert_eq!(done as u64, WORK);
                        drop(backend);
                        rt.block_on(drop_schema(&s));
                    }
                    total
                });
            },
        );
    }
    group.finish();
    drop(backend);
    rt.block_on(drop_schema(&enqueue_schema));
}

criterion_group!(benches, bench);
criterion_main!(benches);
