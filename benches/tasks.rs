//! Task throughput on the embedded SQLite backend: batch enqueue rate, and the rate at
//! which a worker (concurrency 16) works no-op tasks. Anchors: River reports 46k jobs/s
//! worked on an 8-core laptop; graphile-worker 15.6k/s unbatched.
//!
//! `cargo bench --all-features --bench tasks`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailroom::tasks::{
    NewTask, Registry, SqliteBackend, SqliteOptions, Task, TaskBackend, TaskContext, TaskFailure,
    Worker, WorkerBackend,
};

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
const WORK: u64 = 20_000;

fn batch(n: u64) -> Vec<NewTask> {
    (0..n).map(|i| Noop::new_task(&i).unwrap()).collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = rt
        .block_on(SqliteBackend::connect_with(SqliteOptions::new(
            dir.path().join("bench.db"),
        )))
        .unwrap();

    let mut group = c.benchmark_group("tasks_sqlite");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));

    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("enqueue_batch_1000", |b| {
        b.to_async(&rt)
            .iter(|| async { backend.enqueue_many(batch(BATCH)).await.unwrap() });
    });

    group.throughput(Throughput::Elements(WORK));
    group.bench_function("work_noop_concurrency_16", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let dyn_backend: Arc<dyn WorkerBackend> = Arc::new(
                        SqliteBackend::connect_with(SqliteOptions::new(
                            dir.path()
                                .join(format!("work-{i}-{}.db", uuid::Uuid::new_v4())),
                        ))
                        .await
                        .unwrap(),
                    );
                    dyn_backend.enqueue_many(batch(WORK)).await.unwrap();
                    let start = Instant::now();
                    let report = Worker::builder(dyn_backend, Registry::new().with(Noop))
                        .concurrency(16)
                        .burst(true)
                        .retention(None)
                        .build()
                        .run(std::future::pending())
                        .await
                        .unwrap();
                    total += start.elapsed();
                    assert_eq!(report.succeeded, WORK);
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
