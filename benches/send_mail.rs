//! End-to-end throughput of background sending: `send_mail` tasks enqueued in batches on a
//! queue, worked by one in-process worker (concurrency 32) delivering over SMTP to Postfix's
//! `smtp-sink`. Reports messages per second from the first claim to the last completion.
//!
//! cargo bench --bench send_mail
//! MAILROOM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --all-features --bench send_mail
//!
//! `BENCH_MESSAGES` sets the number of messages (default 5000).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;
use std::time::Instant;

use mailroom::send_mail::{self, SendMail};
use mailroom::tasks::{self, Registry, Worker, WorkerBackend};
use mailroom::{Email, transport};

#[path = "common/sink.rs"]
mod sink;
use sink::start_sink;

fn message(n: usize) -> Email {
    Email::builder()
        .from("Zoë Müller <zoe@example.com>")
        .to("bob@example.org")
        .subject(format!("Nachricht {n}"))
        .text("x".repeat(60).repeat(60))
        .message_id(format!("<{n}@bench.example>"))
        .build()
        .unwrap()
}

async fn run(label: &str, queue: &str, port: u16, count: usize) {
    let pool: usize = std::env::var("BENCH_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let smtp =
        transport::from_url(&format!("smtp://127.0.0.1:{port}?tls=none&pool={pool}")).unwrap();
    let send = SendMail::new().transport("default", smtp);
    let registry = Registry::new().with(send.clone());
    let backend: Arc<dyn WorkerBackend> = tasks::connect_worker(queue).await.unwrap();

    let start = Instant::now();
    let batch: Vec<_> = (0..count)
        .map(|n| send_mail::new_task(&message(n), "default").unwrap())
        .collect();
    for chunk in batch.chunks(1000) {
        backend.enqueue_many(chunk.to_vec()).await.unwrap();
    }
    let enqueue = start.elapsed();

    let start = Instant::now();
    let report = Worker::builder(Arc::clone(&backend), registry)
        .concurrency(32)
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    let work = start.elapsed();
    send.close().await;
    println!(
        "{label}: enqueued {count} send_mail tasks in {:.3}s ({:.0}/s); delivered in {:.3}s = {:.0} messages/s end to end ({report:?})",
        enqueue.as_secs_f64(),
        count as f64 / enqueue.as_secs_f64(),
        work.as_secs_f64(),
        count as f64 / work.as_secs_f64()
    );
}

fn main() {
    let count: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let (_sink, port) = start_sink();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("bench.db").display());
    runtime.block_on(run("sqlite", &sqlite, port, count));
    // With the `postgres` feature and MAILROOM_TEST_POSTGRES_URL set: the same against
    // PostgreSQL, in a schema of its own.
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("MAILROOM_TEST_POSTGRES_URL") {
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let sep = if url.contains('?') { '&' } else { '?' };
        runtime.block_on(run(
            "postgres",
            &format!("{url}{sep}schema={schema}"),
            port,
            count,
        ));
    }
}
