//! `mailroom serve`: time to the first byte of the inbox with 10,000 messages in a `file:`
//! outbox, over a real loopback connection (one HTTP/1.1 request per connection, as a
//! browser's first visit): the first page, a recipient search, a subject search that
//! matches nothing, and `/api/messages` (all 10,000). The anchor is the static stylesheet
//! route, the cheapest response the same stack gives.
//!
//! `cargo bench --all-features --bench serve`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const MESSAGES: usize = 10_000;

/// Writes `MESSAGES` files as a `file:` transport names them.
fn fill(dir: &std::path::Path) {
    for i in 0..MESSAGES {
        let eml = format!(
            "From: Shop <shop@example.com>\r\nTo: User {i} <user{i}@example.org>\r\n\
             Subject: Order {i} has shipped\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\
             Message-ID: <{i}@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nOrder {i} is on its way.\r\n"
        );
        let name = format!("20261201T100000.{i:06}Z-{:032x}.eml", i);
        std::fs::write(dir.join(name), eml).unwrap();
    }
}

/// Sends one GET on a fresh connection; the time until the first response byte.
async fn first_byte(addr: std::net::SocketAddr, path: &str) -> Duration {
    let start = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await.unwrap();
    let elapsed = start.elapsed();
    // drain, so the server finishes its work before the next request
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(
        rest.starts_with(b"TTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&rest[..rest.len().min(200)])
    );
    elapsed
}

fn bench_inbox(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let addr = rt.block_on(async {
        let router = mailroom::web::App::new()
            .outbox_dir(dir.path())
            .router()
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { mailroom::web::serve(listener, router).await.unwrap() });
        addr
    });
    let mut group = c.benchmark_group("serve_inbox_10000_first_byte");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    for (name, path) in [
        ("stylesheet_anchor", "/assets/style.css"),
        ("inbox_first_page", "/"),
        ("search_recipient", "/?to=user9999%40"),
        ("search_subject_no_match", "/?subject=nothing+matches"),
        ("api_messages_all", "/api/messages"),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += first_byte(addr, path).await;
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_inbox);
criterion_main!(benches);
