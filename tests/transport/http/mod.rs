//! HTTP API transports against wiremock servers that check the exact request each
//! provider documents and answer with its documented bodies.

mod cli;
mod mailgun;
mod postmark;
mod resend;
mod sendgrid;
mod ses;
mod task;

use std::sync::Arc;

use mailroom::tasks::{self, Registry, TaskId, TaskStatus, Worker, WorkerBackend};
use mailroom::{Attachment, Email, RenderOptions, Rendered};
use wiremock::MockServer;

/// The key every test uses; no output may show it.
pub(crate) const KEY: &str = "s3cr3t-K3Y-never-shown";

/// `SCHEME://KEY@127.0.0.1:PORT?tls=none…` for `server`.
pub(crate) fn url(scheme: &str, userinfo: &str, server: &MockServer, path_query: &str) -> String {
    let address = server.address();
    let sep = if path_query.contains('?') { "&" } else { "?" };
    format!("{scheme}://{userinfo}@{address}{path_query}{sep}tls=none")
}

/// The request bodies the server received, as JSON.
pub(crate) async fn bodies(server: &MockServer) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null))
        .collect()
}

pub(crate) fn render(email: &Email) -> Rendered {
    email.prepare(&RenderOptions::default()).unwrap()
}

/// Text only.
pub(crate) fn text_only() -> Email {
    Email::builder()
        .from("zoe@example.com")
        .to("bob@example.org")
        .subject("hi")
        .text("hello")
        .message_id("<text-1@example.com>")
        .build()
        .unwrap()
}

/// Text and HTML, unicode names and subject, Cc, Bcc, Reply-To, custom headers.
pub(crate) fn alternative() -> Email {
    Email::builder()
        .from("Zoë Müller <zoe@example.com>")
        .to("Jürgen Groß <jurgen@example.org>")
        .cc("Ana <ana@example.org>")
        .bcc("Hidden <hidden@example.org>")
        .reply_to("Hilfe <help@example.com>")
        .subject("Ваш заказ готов ✓")
        .text("Ihre Bestellung ist fertig.")
        .html("<p>Ihre Bestellung ist <b>fertig</b>.</p>")
        .header("X-Campaign", "herbst-2026")
        .header("List-Unsubscribe", "<mailto:unsub@example.com>")
        .message_id("<alt-1@example.com>")
        .build()
        .unwrap()
}

/// An inline image the HTML references and a PDF attachment with a unicode file name.
pub(crate) fn with_files() -> Email {
    Email::builder()
        .from("zoe@example.com")
        .to("bob@example.org")
        .subject("files")
        .text("see the logo")
        .html(r#"<p><img src="cid:logo" alt="logo"></p>"#)
        .attachment(Attachment::inline(
            "logo",
            "logo.png",
            b"\x89PNG-bytes".to_vec(),
        ))
        .attachment(Attachment::new("rechnung-über.pdf", b"%PDF-1.4".to_vec()))
        .message_id("<files-1@example.com>")
        .build()
        .unwrap()
}

/// Runs burst workers until the task leaves READY (bounded; no timing asserted).
pub(crate) async fn work_until_settled(
    backend: &Arc<dyn WorkerBackend>,
    registry: &Registry,
    id: TaskId,
) {
    for _ in 0..100 {
        Worker::builder(Arc::clone(backend), registry.clone())
            .burst(true)
            .build()
            .run(std::future::pending())
            .await
            .unwrap();
        if backend.get_result(id).await.unwrap().status != TaskStatus::Ready {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Opens a SQLite queue in `dir` for `registry`.
pub(crate) async fn queue(dir: &std::path::Path, _registry: &Registry) -> Arc<dyn WorkerBackend> {
    let url = format!("sqlite:{}", dir.join("q.db").display());
    tasks::connect_worker(&url).await.unwrap()
}

/// Every file in `dir` (the queue and its WAL), searched byte for byte for `needle`.
pub(crate) fn files_contain(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}
