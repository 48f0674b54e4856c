//! How closely a rate-limited queue holds its rate: one worker drains no-op tasks from a
//! queue limited to 1,000/s, on SQLite and on PostgreSQL, and the steady rate is printed
//! beside the limit (issue 15: within 5 %). 4,000 tasks are queued; a full bucket lets
//! 1,000 through at once, and a bucket allows at most `limit + rate × t` starts within `t`,
//! so the rate is `(4,000 − 1,000) / t` over the span of the start times the tasks record.
//!
//! `cargo bench --all-features --bench rate_limit`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailroom::tasks::{
    NewTask, PostgresBackend, PostgresOptions, QueueOperations, RateLimit, Registry, SqliteBackend,
    SqliteOptions, Task, TaskContext, TaskFailure, Worker, WorkerBackend,
};

/// Records when it started.
struct Noop(Arc<Mutex<Vec<Instant>>>);

#[async_trait::async_trait]
impl Task for Noop {
    const NAME: &'static str = "noop";
    type Args = u64;
    type Output = ();

    async fn run(&self, _ctx: TaskContext, _args: u64) -> Result<(), TaskFailure> {
        self.0.lock().unwrap().push(Instant::now());
        Ok(())
    }
}

const LIMIT: u32 = 1000;
const TIMED: u64 = 3000;

/// Runs one worker (as users run it, not in burst mode) until `total` tasks have started.
async fn drain(backend: Arc<dyn WorkerBackend>, starts: &Arc<Mutex<Vec<Instant>>>, total: u64) {
    let seen = starts.clone();
    let all_started = async move {
        while (seen.lock().unwrap().len() as u64) < total {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    Worker::builder(backend, Registry::new().with(Noop(starts.clone())))
        .concurrency(32)
        .retention(None)
        .build()
        .run(all_started)
        .await
        .unwrap();
}

/// Queues the burst and the timed tasks, drains them, and returns the rate of the timed
/// ones in tasks per second.
async fn measure<B: WorkerBackend + QueueOperations>(backend: Arc<B>) -> f64 {
    backend
        .set_rate_limit(
            "default",
            Some(&RateLimit::new(LIMIT, Duration::from_secs(1))),
        )
        .await
        .unwrap();
    let total = u64::from(LIMIT) + TIMED;
    let tasks: Vec<NewTask> = (0..total)
        .map(|i| NewTask::new(Noop::NAME, serde_json::json!(i)))
        .collect();
    backend.enqueue_many(tasks).await.unwrap();
    let starts = Arc::new(Mutex::new(Vec::new()));
    drain(backend.clone(), &starts, total).await;
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    // A token bucket lets at most `limit + rate × t` tasks start within `t` of the first:
    // the rate is what came after the burst, over the whole span.
    let first = starts[0];
    let last = starts[starts.len() - 1];
    (starts.len() - LIMIT as usize) as f64 / (last - first).as_secs_f64()
}

fn report(name: &str, rate: f64) {
    let ratio = rate / f64::from(LIMIT);
    println!(
        "{name}: limit {LIMIT}/s, measured {rate:.0}/s ({:+.1} %)",
        (ratio - 1.0) * 100.0
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteBackend::connect_with(SqliteOptions::new(dir.path().join("q.db")))
            .await
            .unwrap();
        report("sqlite", measure(Arc::new(sqlite)).await);

        let url = std::env::var("MAILROOM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!(
            "mailroom_rl_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let pg = PostgresBackend::connect_with(PostgresOptions::new(url).schema(&schema))
            .await
            .unwrap();
        let pool = pg.pool().clone();
        report("postgres", measure(Arc::new(pg)).await);
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&pool)
            .await
            .unwrap();
    });
}
