//! A running `mailroom serve` app on a loopback port, and messages to put in its outbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mailroom::transport::{FileTransport, Transport as _};
use mailroom::web::App;
use mailroom::{Email, RenderOptions};

/// A valid 4×4 PNG.
pub(crate) const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x04\x00\x00\x00\x04\x08\x02\x00\x00\x00\x26\x93\x09\x29\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\x38\xa3\xa4\x04\x47\x0c\xc4\x71\x00\xc4\xe3\x11\x01\x60\x90\x41\x9f\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// An app served on 127.0.0.1 (a free port) in this runtime; stops when dropped.
pub(crate) struct Running {
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn start(app: App) -> Running {
    let router = app
        .poll_interval(Duration::from_millis(100))
        .router()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        mailroom::web::serve(listener, router).await.unwrap();
    });
    Running { url, task }
}

/// A plain client: no redirects followed, cookies kept by hand.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Sends `email` through a `file:` transport into `dir`, as an application would.
pub(crate) async fn deliver(dir: &Path, email: &Email) {
    FileTransport::new(dir).send(email).await.unwrap();
}

/// Sends `email` signed with `signer`.
pub(crate) async fn deliver_signed(dir: &Path, email: &Email, signer: mailroom::dkim::DkimSigner) {
    let rendered = email
        .prepare(&RenderOptions::new().signer(std::sync::Arc::new(signer)))
        .unwrap();
    FileTransport::new(dir)
        .send_rendered(&rendered)
        .await
        .unwrap();
}

pub(crate) fn email(subject: &str, to: &str) -> Email {
    Email::builder()
        .from("Shop <shop@example.com>")
        .to(to)
        .subject(subject)
        .text(format!("Text of {subject}"))
        .html(format!(
            "<p style=\"color: #036\">HTML of <b>{subject}</b></p>"
        ))
        .build()
        .unwrap()
}

/// A message as a hostile sender would write it: raw HTML with scripts, event handlers
/// and a frame-busting attempt, which nothing sanitised. `beacon` is where the scripts
/// report to.
pub(crate) fn hostile_eml(beacon: &str) -> String {
    format!(
        "From: Mallory <mallory@evil.example>\r\n\
         To: victim@example.com\r\n\
         Subject: Totally harmless\r\n\
         Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <hostile@evil.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <html><body><h1 id=\"x\">hello</h1>\r\n\
         <script>document.getElementById('x').textContent='PWNED';fetch('{beacon}/script');\
         try {{ parent.document.body.textContent='PWNED'; }} catch (e) {{}}\
         new Image().src='{beacon}/img';</script>\r\n\
         <img src=\"nope\" onerror=\"fetch('{beacon}/onerror')\">\r\n\
         <svg onload=\"fetch('{beacon}/svg')\"></svg>\r\n\
         <a href=\"javascript:fetch('{beacon}/js')\">click</a>\r\n\
         </body></html>\r\n"
    )
}

/// Where test artifacts go: `target/web/`.
pub(crate) fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("web");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Polls `check` every 50 ms until it gives a value, for at most 30 s.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of attribute `name` of every element carrying it in `html`.
pub(crate) fn attributes(html: &str, name: &str) -> Vec<String> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}
