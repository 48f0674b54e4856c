//! The suppression list on SQLite and PostgreSQL (one suite, run per backend, each run on
//! fresh storage): the store itself, opt-outs from tokens, and `send_mail` honouring it for
//! To, Cc and Bcc with concurrent workers, checked against what a real SMTP server got.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use mailroom::deliverability::{
    Reason, Scope, SoftBouncePolicy, SuppressionStore, TokenError, TokenKey, Unsubscribe,
    parse_report,
};
use mailroom::send_mail::{self, SendMail, SendMailOutput};
use mailroom::tasks::{self, Registry, TaskStatus, Worker};
use mailroom::{Email, transport};
use sqlx::Connection;

use crate::transport::aiosmtpd::{Aiosmtpd, Options};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database with a fresh schema (dropped by the guard), or `None` (after a loud
/// message) when PostgreSQL is unreachable outside CI.
async fn pg_queue() -> Option<(String, DropSchema)> {
    let set = std::env::var("MAILROOM_TEST_POSTGRES_URL").ok();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let url = set.clone().unwrap_or_else(|| DEFAULT_PG.to_owned());
    if let Err(e) = sqlx::PgConnection::connect(&url).await {
        assert!(
            set.is_none() && !ci,
            "PostgreSQL at {url} is unreachable (CI=true or URL set): {e}"
        );
        eprintln!(
            "\n!!!!!!!! SKIPPING PostgreSQL suppression tests: {url} is unreachable ({e}) !!!!!!!!\n"
        );
        return None;
    }
    let schema = format!(
        "mailroom_s_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    Some((
        format!("{url}{sep}schema={schema}"),
        DropSchema { url, schema },
    ))
}

pub(crate) struct DropSchema {
    url: String,
    schema: String,
}

impl DropSchema {
    async fn drop(self) {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.ok();
    }
}

fn sqlite_queue(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("queue.db").display())
}

async fn store_suite(url: &str) {
    let store = SuppressionStore::connect(url).await.unwrap();
    // Connecting again finds the tables migrated (its own version table, not the tasks').
    let again = SuppressionStore::connect(url).await.unwrap();

    // Normalised: the domain's case and IDNA form; the local part as given.
    assert!(
        store
            .add(
                "Ann <ann@EXAMPLE.org>",
                &Scope::Global,
                Reason::Manual,
                "test"
            )
            .await
            .unwrap()
    );
    assert!(
        !again
            .add(
                "ann@example.org",
                &Scope::Global,
                Reason::Complaint,
                "again"
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .add(
                "jürgen@Bücher.example",
                &Scope::Global,
                Reason::HardBounce,
                "test"
            )
            .await
            .unwrap()
    );
    let found = store
        .suppressed(
            &[
                "ann@Example.ORG".to_owned(),
                "Ann@example.org".to_owned(),
                "jürgen@xn--bcher-kva.example".to_owned(),
                "bob@example.org".to_owned(),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(found, ["ann@Example.ORG", "jürgen@xn--bcher-kva.example"]);

    // Scopes: a list's suppression applies to that list only.
    store
        .add(
            "carl@example.org",
            &Scope::List("news.example.com".into()),
            Reason::Unsubscribe,
            "test",
        )
        .await
        .unwrap();
    let carl = ["carl@example.org".to_owned()];
    assert!(store.suppressed(&carl, None).await.unwrap().is_empty());
    assert!(
        store
            .suppressed(&carl, Some("offers.example.com"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .suppressed(&carl, Some("news.example.com"))
            .await
            .unwrap(),
        carl
    );

    let list = store.list().await.unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let ann = list
        .iter()
        .find(|s| s.address == "ann@example.org")
        .unwrap();
    assert_eq!(
        (ann.reason, ann.source.as_str(), &ann.scope),
        (Reason::Manual, "test", &Scope::Global)
    );
    assert!(
        store
            .remove("ann@example.org", &Scope::Global)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove("ann@example.org", &Scope::Global)
            .await
            .unwrap()
    );
    assert!(
        store
            .suppressed(&["ann@example.org".into()], None)
            .await
            .unwrap()
            .is_empty()
    );

    // Soft bounces: the third within the window suppresses.
    let policy = SoftBouncePolicy {
        threshold: 3,
        window: Duration::days(7),
    };
    for expect in [false, false, true] {
        assert_eq!(
            store
                .record_soft_bounce("dora@example.org", "4.2.2", "test", policy)
                .await
                .unwrap(),
            expect
        );
    }
    let dora = list_reason(&store, "dora@example.org").await;
    assert_eq!(dora, Some(Reason::SoftBounces));
    // Outside the window they do not add up.
    let short = SoftBouncePolicy {
        threshold: 2,
        window: Duration::zero(),
    };
    assert!(
        !store
            .record_soft_bounce("eve@example.org", "4.4.1", "test", short)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_soft_bounce("eve@example.org", "4.4.1", "test", short)
            .await
            .unwrap()
    );

    // Reports: hard bounces and complaints suppress.
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounces");
    for (file, address, reason) in [
        (
            "postfix_user_unknown.eml",
            "nobody@example.org",
            Reason::HardBounce,
        ),
        (
            "arf_yahoo_complaint.eml",
            "annoyed@yahoo.com",
            Reason::Complaint,
        ),
    ] {
        let bytes = std::fs::read(corpus.join(file)).unwrap();
        for bounce in parse_report(&bytes).unwrap() {
            store.record_bounce(&bounce, file, policy).await.unwrap();
        }
        assert_eq!(list_reason(&store, address).await, Some(reason), "{file}");
    }
    let vacation = std::fs::read(corpus.join("auto_reply_vacation.eml")).unwrap();
    for bounce in parse_report(&vacation).unwrap() {
        store
            .record_bounce(&bounce, "vacation", policy)
            .await
            .unwrap();
    }
    assert_eq!(list_reason(&store, "ann@example.org").await, None);

    // Opt-outs from one-click tokens: what the web handler calls; a second POST is
    // idempotent, and a bad token records nothing.
    let key = TokenKey::new(vec![42u8; 32]).unwrap();
    let unsubscribe = Unsubscribe::new(key, "https://example.com/unsubscribe/").unwrap();
    let link = unsubscribe
        .link("Fred@Example.org", "news.example.com", Utc::now())
        .unwrap();
    let token = link
        .strip_prefix("https://example.com/unsubscribe/")
        .unwrap();
    let first = unsubscribe
        .opt_out(&store, token, Utc::now())
        .await
        .unwrap();
    assert!(first.newly_recorded);
    assert_eq!(first.claims.recipient, "Fred@example.org");
    let second = unsubscribe
        .opt_out(&store, token, Utc::now())
        .await
        .unwrap();
    assert!(!second.newly_recorded);
    assert_eq!(
        store
            .suppressed(&["Fred@example.org".into()], Some("news.example.com"))
            .await
            .unwrap()
            .len(),
        1
    );
    let before = store.list().await.unwrap().len();
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);
    assert!(matches!(
        unsubscribe.opt_out(&store, &forged, Utc::now()).await,
        Err(mailroom::deliverability::OptOutError::Token(
            TokenError::Forged | TokenError::Malformed
        ))
    ));
    assert!(matches!(
        unsubscribe
            .opt_out(&store, token, Utc::now() + Duration::days(181))
            .await,
        Err(mailroom::deliverability::OptOutError::Token(
            TokenError::Expired
        ))
    ));
    assert_eq!(store.list().await.unwrap().len(), before);
}

async fn list_reason(store: &SuppressionStore, address: &str) -> Option<Reason> {
    store
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.address == address)
        .map(|s| s.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    store_suite(&sqlite_queue(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_on_postgres() {
    let Some((url, schema)) = pg_queue().await else {
        return;
    };
    store_suite(&url).await;
    schema.drop().await;
}

/// Suppressed To, Cc and Bcc recipients are left out of the envelope; a task with nobody
/// left succeeds with the outcome; the SMTP server sees only the others. Two workers run
/// at once, each with its own connection to the list.
async fn send_mail_suite(queue: &str) {
    let server = Aiosmtpd::start(Options::default());
    let store = SuppressionStore::connect(queue).await.unwrap();
    for (address, scope) in [
        ("gone@example.org", Scope::Global),
        ("cc-gone@example.org", Scope::Global),
        ("bcc-gone@example.org", Scope::Global),
        (
            "left-news@example.org",
            Scope::List("news.example.com".into()),
        ),
    ] {
        store
            .add(address, &scope, Reason::Manual, "test")
            .await
            .unwrap();
    }
    let backend = tasks::connect_worker(queue).await.unwrap();
    let message = |n: usize, to: &[&str], cc: &[&str], bcc: &[&str], list: bool| {
        let mut b = Email::builder()
            .from("news@example.com")
            .subject(format!("message {n}"))
            .text("hello")
            .message_id(format!("<s{n}@example.com>"));
        for a in to {
            b = b.to(*a);
        }
        for a in cc {
            b = b.cc(*a);
        }
        for a in bcc {
            b = b.bcc(*a);
        }
        if list {
            b = b.header("List-Id", "News <news.example.com>");
        }
        b.build().unwrap()
    };
    let emails = [
        // Mixed: one suppressed in each of To (the domain's case does not matter), Cc and
        // Bcc.
        message(
            0,
            &["keep@example.org", "gone@EXAMPLE.org"],
            &["cc-gone@example.org"],
            &["bcc-gone@example.org", "keep2@example.org"],
            false,
        ),
        // Nobody left.
        message(
            1,
            &["gone@example.org"],
            &["cc-gone@example.org"],
            &["bcc-gone@example.org"],
            false,
        ),
        // A list's opt-out applies to that list's mail only.
        message(2, &["left-news@example.org"], &[], &[], true),
        message(3, &["left-news@example.org"], &[], &[], false),
    ];
    let ids = send_mail::enqueue_many(backend.as_ref(), &emails, "default")
        .await
        .unwrap();
    let smtp = transport::from_url(&format!("smtp://127.0.0.1:{}?tls=none", server.port)).unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let task = SendMail::new()
            .transport("default", Arc::clone(&smtp))
            .suppressions(SuppressionStore::connect(queue).await.unwrap());
        let worker = Worker::builder(
            tasks::connect_worker(queue).await.unwrap(),
            Registry::new().with(task.clone()),
        )
        .concurrency(2)
        .burst(true)
        .routes(task.routes())
        .build();
        runs.push(tokio::spawn(async move {
            worker.run(std::future::pending()).await
        }));
    }
    for run in runs {
        run.await.unwrap().unwrap();
    }
    let mut outputs = Vec::new();
    for id in &ids {
        let result = backend.get_result(*id).await.unwrap();
        assert_eq!(result.status, TaskStatus::Successful, "{result:?}");
        let output: SendMailOutput = result.return_value_as().unwrap().unwrap();
        outputs.push((output, result.return_value.unwrap()));
    }
    let set = |v: &[String]| {
        v.iter()
            .map(|a| mailroom::deliverability::normalize_address(a).unwrap())
            .collect::<HashSet<_>>()
    };
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>();
    assert_eq!(
        set(&outputs[0].0.delivery.accepted),
        strings(&["keep@example.org", "keep2@example.org"])
    );
    assert_eq!(
        set(&outputs[0].0.suppressed),
        strings(&[
            "gone@example.org",
            "cc-gone@example.org",
            "bcc-gone@example.org"
        ])
    );
    assert!(outputs[1].0.delivery.accepted.is_empty());
    assert_eq!(
        set(&outputs[1].0.suppressed),
        strings(&[
            "gone@example.org",
            "cc-gone@example.org",
            "bcc-gone@example.org"
        ])
    );
    assert_eq!(
        outputs[1].1["suppressed"].as_array().unwrap().len(),
        3,
        "{}",
        outputs[1].1
    );
    assert_eq!(outputs[2].0.suppressed, ["left-news@example.org"]);
    assert_eq!(outputs[3].0.delivery.accepted, ["left-news@example.org"]);
    assert!(outputs[3].1.get("suppressed").is_none(), "{}", outputs[3].1);

    // What the server received: messages 0 and 3 only, to the kept recipients only.
    let received = server.received();
    let mut seen: Vec<(String, HashSet<String>)> = received
        .iter()
        .map(|r| {
            let parsed = mail_parser::MessageParser::default()
                .parse(&r.data)
                .unwrap();
            (
                parsed.subject().unwrap().to_owned(),
                r.rcpt_tos.iter().cloned().collect(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            (
                "message 0".to_owned(),
                strings(&["keep@example.org", "keep2@example.org"])
            ),
            ("message 3".to_owned(), strings(&["left-news@example.org"])),
        ]
    );
    // The headers still name the suppressed To and Cc: only the envelope changed.
    let zero = received
        .iter()
        .find(|r| r.text().contains("message 0"))
        .unwrap()
        .text();
    assert!(zero.contains("cc-gone@example.org"), "{zero}");
    assert!(!zero.contains("bcc-gone"), "{zero}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_mail_honours_the_list_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    send_mail_suite(&sqlite_queue(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_mail_honours_the_list_on_postgres() {
    let Some((url, schema)) = pg_queue().await else {
        return;
    };
    send_mail_suite(&url).await;
    schema.drop().await;
}
