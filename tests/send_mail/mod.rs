//! Integration tests: the send_mail task and the `send`, `enqueue`, `worker` and `status`
//! commands, run as a user runs them (real processes, real SQLite files, real SMTP server).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod crash;
mod deferred;
mod hardening;
mod pause;
mod rate_limit;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) fn mailroom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    c.env_remove("MAILROOM_TRANSPORT")
        .env_remove("MAILROOM_QUEUE")
        .stdin(Stdio::null());
    c
}

pub(crate) fn run(args: &[&str]) -> Output {
    mailroom().args(args).output().unwrap()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lines of standard output (task ids, for `enqueue`).
pub(crate) fn ids(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `mailroom status` of one task, as JSON.
pub(crate) fn status(queue: &str, id: &str) -> serde_json::Value {
    let out = run(&["status", "--queue", queue, id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes message JSON files `m{n}.json` with Message-ID `<n@example.com>`.
pub(crate) fn write_messages(dir: &Path, range: std::ops::Range<usize>, to: &str) -> Vec<PathBuf> {
    range
        .map(|n| {
            let path = dir.join(format!("m{n}.json"));
            let json = serde_json::json!({
                "from": "Zoë <zoe@example.com>",
                "to": [to],
                "subject": format!("Nachricht {n}"),
                "text": format!("body {n}"),
                "message_id": format!("<{n}@example.com>"),
            });
            std::fs::write(&path, json.to_string()).unwrap();
            path
        })
        .collect()
}

/// Message-IDs of the `.eml` files the file: transport wrote, one entry per file.
pub(crate) fn delivered_ids(outbox: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            if path.extension()? != "eml" {
                return None;
            }
            let bytes = std::fs::read(&path).ok()?;
            let parsed = mail_parser::MessageParser::default().parse(&bytes)?;
            parsed.message_id().map(str::to_owned)
        })
        .collect()
}

/// A queue URL on the test PostgreSQL in a fresh schema of its own, dropped when the guard
/// is.
pub(crate) struct PgQueue {
    pub(crate) url: String,
    server: String,
    schema: String,
}

impl PgQueue {
    pub(crate) fn fresh() -> PgQueue {
        let server = std::env::var("MAILROOM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!(
            "mailroom_sm_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        PgQueue {
            url: format!("{server}?schema={schema}"),
            server,
            schema,
        }
    }
}

impl Drop for PgQueue {
    fn drop(&mut self) {
        let (server, schema) = (self.server.clone(), self.schema.clone());
        // Its own thread and runtime: the guard may drop inside a test's runtime.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            })
        })
        .join();
    }
}
