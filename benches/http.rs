//! Throughput of the JSON provider transports (Postmark, Resend, SendGrid) against plain
//! `reqwest` posting the very same request bodies, to one local wiremock server, 2,000
//! messages at concurrency 16, in one run. `cargo bench --bench http`. The two sides run
//! in turn, round by round (transport, reqwest, transport, reqwest, …), so that a slow
//! spell of a shared machine falls on both; `BENCH_ROUNDS` sets the rounds per side
//! (default 9), and each provider's line gives the median of each side's rounds, the
//! median of the per-round ratios transport / reqwest and their range. For profiling one
//! case (e.g. under callgrind), `BENCH_PROVIDERS=sendgrid` picks providers
//! (comma-separated) and `BENCH_SIDES=transport` (or `reqwest`, or empty for the setup
//! alone) the sides.
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

/// Messages per second through `client`, a plain reqwest client, posting `bodies`.
async fn through_reqwest(
    client: &reqwest::Client,
    url: &str,
    auth: &(&str, String),
    bodies: &[Vec<u8>],
) -> f64 {
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

/// The median of `values` (the mean of the middle two for an even count); NaN for none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// `12,345` for a rate, `-` for a side not run.
fn rate(value: f64) -> String {
    if value.is_nan() {
        return "-".to_owned();
    }
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(9);
    let picked = |var: &str, name: &str| {
        std::env::var(var)
            .ok()
            .is_none_or(|list| list.split(',').any(|n| n.trim() == name))
    };
    let (run_t, run_r) = (
        picked("BENCH_SIDES", "transport"),
        picked("BENCH_SIDES", "reqwest"),
    );
    let messages = messages();
    println!(
        "{MESSAGES} messages at concurrency {CONCURRENCY}, {rounds} rounds per side, \
         interleaved; medians, ratio = median of the per-round ratios transport / reqwest"
    );
    println!();
    println!(
        "| provider | transport | reqwest | ratio | ratio range | transport rounds | reqwest rounds |"
    );
    println!("|---|---|---|---|---|---|---|");
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
        // One client per side for the whole run: each keeps its connections from round
        // to round.
        let t = transport::from_url(&url(&bench)).unwrap();
        let client = reqwest::Client::new();
        let raw_url = format!("http://{}{}", bench.address(), p.path);
        let (mut sent, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            if run_t {
                sent.push(through_transport(&t, &messages).await);
            }
            if run_r {
                raw.push(through_reqwest(&client, &raw_url, &p.auth, &bodies).await);
            }
        }
        let ratios: Vec<f64> = sent.iter().zip(&raw).map(|(t, r)| t / r).collect();
        let (low, high) = ratios
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &r| {
                (l.min(r), h.max(r))
            });
        let list = |values: &[f64]| {
            values
                .iter()
                .map(|&v| format!("{:.1}k", v / 1000.0))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "| {} | {} msg/s | {} msg/s | {} | {} | {} | {} |",
            p.scheme,
            rate(median(&sent)),
            rate(median(&raw)),
            if ratios.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2}", median(&ratios))
            },
            if ratios.is_empty() {
                "-".to_owned()
            } else {
                format!("{low:.2}–{high:.2}")
            },
            list(&sent),
            list(&raw),
        );
    }
}
