//! Throughput of SMTP delivery to Postfix's `smtp-sink`: mailroom on 1 and 8 connections
//! against lettre's pooled `AsyncSmtpTransport` and Python's smtplib, 4 KB messages, in
//! one run. `cargo bench --bench smtp` (needs `smtp-sink` from Debian's `postfix` and
//! `python3`; `.ci/setup.d/20-smtp.sh` installs them). `BENCH_SECONDS` sets the time per
//! case (default 3).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::AsyncTransport;
use mailroom::transport::{SmtpTransport, TlsMode, Transport};
use mailroom::{Email, RenderOptions};

#[path = "common/sink.rs"]
mod sink;
use sink::start_sink;

fn message() -> Email {
    let line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n";
    let body: String = line.repeat(4096 / line.len() + 1)[..4096].to_owned();
    Email::builder()
        .from("Bench <bench@example.com>")
        .to("sink@example.org")
        .subject("benchmark message")
        .text(body)
        .build()
        .unwrap()
}

async fn mailroom_rate(port: u16, connections: usize, seconds: f64) -> f64 {
    let transport = Arc::new(
        SmtpTransport::builder("127.0.0.1")
            .port(port)
            .tls(TlsMode::None)
            .max_connections(connections)
            .build()
            .unwrap(),
    );
    let email = Arc::new(message());
    transport.send(&email).await.unwrap(); // warm up one connection
    let count = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (transport, email, count) = (
            Arc::clone(&transport),
            Arc::clone(&email),
            Arc::clone(&count),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                transport.send(&email).await.unwrap();
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// `send_batch` in chunks of 1000: the pool spreads each chunk over its connections and
/// pipelines each message's commands behind the previous body.
async fn mailroom_batch_rate(port: u16, connections: usize, seconds: f64) -> f64 {
    let transport = SmtpTransport::builder("127.0.0.1")
        .port(port)
        .tls(TlsMode::None)
        .max_connections(connections)
        .build()
        .unwrap();
    let chunk: Vec<Email> = (0..1000).map(|_| message()).collect();
    transport.send(&chunk[0]).await.unwrap();
    let start = Instant::now();
    let mut count = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        let results = transport.send_batch(&chunk).await;
        assert!(results.iter().all(Result::is_ok));
        count += results.len();
    }
    count as f64 / start.elapsed().as_secs_f64()
}

async fn lettre_rate(port: u16, seconds: f64) -> f64 {
    use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
    let transport = AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .pool_config(PoolConfig::new().max_size(1))
        .build();
    let bytes = message().render(&RenderOptions::new()).unwrap();
    let envelope = lettre::address::Envelope::new(
        Some("bench@example.com".parse().unwrap()),
        vec!["sink@example.org".parse().unwrap()],
    )
    .unwrap();
    transport.send_raw(&envelope, &bytes).await.unwrap();
    let start = Instant::now();
    let mut count = 0usize;
    while start.elapsed().as_secs_f64() < seconds {
        transport.send_raw(&envelope, &bytes).await.unwrap();
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn smtplib_rate(port: u16, seconds: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, message().render(&RenderOptions::new()).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/smtp_smtplib.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(seconds.to_string())
        .arg(&path)
        .output()
        .expect("python3 is required for the smtplib anchor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    let count: f64 = parts.next().unwrap().parse().unwrap();
    let elapsed: f64 = parts.next().unwrap().parse().unwrap();
    count / elapsed
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    // `cargo bench` passes `--bench`; other flags (filters) are ignored.
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // One thread is enough for a client bound by round trips, and leaves the second core
    // to smtp-sink.
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sink, port) = start_sink();
    println!("smtp bench: 4 KB messages to smtp-sink on 127.0.0.1:{port}, {seconds} s per case");

    let smtplib = smtplib_rate(port, seconds);
    let lettre = runtime.block_on(lettre_rate(port, seconds.min(2.0)));
    let one = single.block_on(mailroom_rate(port, 1, seconds));
    let one_batch = single.block_on(mailroom_batch_rate(port, 1, seconds));
    let eight = runtime.block_on(mailroom_rate(port, 8, seconds));
    let (me0, sink0) = (cpu_seconds("self"), cpu_seconds(&sink.0.id().to_string()));
    let eight_batch = single.block_on(mailroom_batch_rate(port, 8, seconds));
    let (me1, sink1) = (cpu_seconds("self"), cpu_seconds(&sink.0.id().to_string()));
    let n = eight_batch * seconds;
    println!(
        "cpu per message in the 8-connection batch: mailroom {:.1} us, smtp-sink {:.1} us",
        (me1 - me0) / n * 1e6,
        (sink1 - sink0) / n * 1e6
    );

    println!("{:<52} {:>8}", "case", "msg/s");
    println!("{:<52} {:>8.0}", "python smtplib, 1 connection", smtplib);
    println!(
        "{:<52} {:>8.0}",
        "lettre pooled AsyncSmtpTransport, 1 connection", lettre
    );
    println!("{:<52} {:>8.0}", "mailroom send(), 1 connection", one);
    println!(
        "{:<52} {:>8.0}",
        "mailroom send_batch(), 1 connection", one_batch
    );
    println!(
        "{:<52} {:>8.0}",
        "mailroom send() from 8 tasks, 8 connections", eight
    );
    println!(
        "{:<52} {:>8.0}",
        "mailroom send_batch(), 8 connections", eight_batch
    );
    println!(
        "1 connection: send() {:.2}x smtplib, send_batch() {:.2}x smtplib (target >= 1.5x); send() {:.0}x lettre",
        one / smtplib,
        one_batch / smtplib,
        one / lettre
    );
    println!(
        "8 connections: send_batch() {eight_batch:.0} msg/s, send() {eight:.0} msg/s (target >= 8000)"
    );
}
