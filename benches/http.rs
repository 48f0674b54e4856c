//! Throughput of the JSON provider transports (Postmark, Resend, SendGrid) against plain
//! `reqwest` posting the very same request bodies, to one local wiremock server, 2,000
//! messages at concurrency 16, in one run. `cargo bench --bench http`. `BENCH_ROUNDS`
//! sets the rounds per case (default 3; the best round counts). For profiling one case
//! (e.g. under callgrind), `BENCH_PROVIDERS=sendgrid` picks providers (comma-separated)
//! and `BENCH_SIDES=transport` (or `reqwest`, or empty for the setup alone) the sides.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use mailroom::transport::{self, Transport};
use mailroom::{Email, RenderOptions, Rendered};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const MESSAGES: usize = 2_000;
const CONCURRENCY: usize = 16;
const KEY: &str = "bench-key";

struct Provider {
    scheme: &'static str,
    path: &'static str,
    answer: fn() -> ResponseTemplate,
    auth: (&'static str, String),
}

fn providers() -> Vec<Provider> {
    vec![
        Provider {
            scheme: "postmark",
            path: "/email",
            answer: || {
                ResponseTemplate::new(200)
                    .set_body_json(json!({"ErrorCode": 0, "Message": "OK", "MessageID": "id"}))
            },
            auth: ("X-Postmark-Server-Token", KEY.to_owned()),
        },
        Provider {
            scheme: "resend",
            path: "/emails",
            answer: || ResponseTemplate::new(200).set_body_json(json!({"id": "id"})),
            auth: ("Authorization", format!("Bearer {KEY}")),
        },
        Provider {
            scheme: "sendgrid",
            path: "/v3/mail/send",
            answer: || ResponseTemplate::new(202).insert_header("X-Message-Id", "id"),
            auth: ("Authorization", format!("Bearer {KEY}")),
        },
    ]
}

fn messages() -> Vec<Rendered> {
    let body = "The quick brown fox jumps over the lazy dog. ".repeat(90);
    (0..MESSAGES)
        .map(|n| {
            Email::builder()
                .from("Bench <bench@example.com>")
                .to("sink@example.org")
                .subject(format!("benchmark message {n}"))
                .text(body.clone())
                .html(format!("<p>{body}</p>"))
                .message_id(format!("<bench-{n}@example.com>"))
                .build()
                .unwrap()
                .prepare(&RenderOptions::default())
                .unwrap()
        })
        .collect()
}

async fn server(p: &Provider, record: bool) -> MockServer {
    let builder = MockServer::builder();
    let builder = if record {
        builder
    } else {
        builder.disable_request_recording()
    };
    let server = builder.start().await;
    Mock::given(method("POST"))
        .respond_with((p.answer)())
        .mount(&server)
        .await;
    server
}

/// Messages per second through the transport.
async fn through_transport(t: &Arc<dyn Transport>, messages: &[Rendered]) -> f64 {
    let start = Instant::now();
    futures_util::stream::iter(messages)
        .map(|m| {
            let t = Arc::clone(t);
            async move { t.send_rendered(m).await.unwrap() }
        })
        .buffer_unordered(CONCURRENCY)
        .for_each(|_| async {})
        .await;
    messages.len() as f64 / start.elapsed().as_secs_f64()
}

/// Messages per second through one plain reqwest client posting `bodies`.
async fn through_reqwest(url: &str, auth: &(&str, String), bodies: &[Vec<u8>]) -> f64 {
    let client = reqwest::Client::new();
    let start = Instant::now();
    futures_util::stream::iter(bodies)
        .map(|b| {
            let request = client
                .post(url)
                .header(auth.0, auth.1.as_str())
                .header("Content-Type", "application/json")
                .body(b.clone());
            async move {
                let response = request.send().await.unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap();
            }
        })
        .buffer_unordered(CONCURRENCY)
        .for_each(|_| async {})
        .await;
    bodies.len() as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let picked = |var: &str, name: &str| {
        std::env::var(var)
            .ok()
            .is_none_or(|list| list.split(',').any(|n| n.trim() == name))
    };
    let messages = messages();
    println!("{MESSAGES} messages at concurrency {CONCURRENCY}, best of {rounds} rounds");
    for p in providers()
        .into_iter()
        .filter(|p| picked("BENCH_PROVIDERS", p.scheme))
    {
        // The bodies the transport posts, recorded once, for reqwest to post again.
        let recorder = server(&p, true).await;
        let url = |s: &MockServer| format!("{}://{KEY}@{}?tls=none", p.scheme, s.address());
        let t = transport::from_url(&url(&recorder)).unwrap();
        through_transport(&t, &messages[..200]).await;
        let mut bodies: Vec<Vec<u8>> = recorder
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.body)
            .collect();
        let sample = bodies.clone();
        while bodies.len() < MESSAGES {
            bodies.extend(sample.iter().take(MESSAGES - bodies.len()).cloned());
        }
        let bench = server(&p, false).await;
        let t = transport::from_url(&url(&bench)).unwrap();
        let raw_url = format!("http://{}{}", bench.address(), p.path);
        let (mut best_t, mut best_r) = (0f64, 0f64);
        for _ in 0..rounds {
            if picked("BENCH_SIDES", "transport") {
                best_t = best_t.max(through_transport(&t, &messages).await);
            }
            if picked("BENCH_SIDES", "reqwest") {
                best_r = best_r.max(through_reqwest(&raw_url, &p.auth, &bodies).await);
            }
        }
        println!(
            "{:<9} transport {:>8.0} msg/s   reqwest {:>8.0} msg/s   ratio {:.2}",
            p.scheme,
            best_t,
            best_r,
            best_t / best_r
        );
    }
}
