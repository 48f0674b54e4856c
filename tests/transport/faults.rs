//! Fault injection with the scriptable fake server: each failure must come back typed
//! (transient or permanent), within the configured timeout, and leave the pool healthy.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mailroom::transport;
use mailroom::{Email, Error};

use super::fake_server::{FakeServer, Script};

fn email(to: &[&str]) -> Email {
    let mut b = Email::builder()
        .from("a@example.com")
        .subject("s")
        .text("hello");
    for t in to {
        b = b.to(*t);
    }
    b.build().unwrap()
}

/// Guards against a hang: the send must finish (with any result) well before this.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the send hung past its timeout")
}

#[tokio::test]
async fn greeting_421_is_transient() {
    let server = FakeServer::start(Script {
        greeting: Some("421 4.3.2 too busy"),
        ..Default::default()
    })
    .await;
    let t = transport::from_url(&server.url("")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transient(ref f) if f.code == Some(421)),
        "{err}"
    );
}

#[tokio::test]
async fn rcpt_550_is_permanent_and_partial_rejection_is_reported() {
    for pipelining in [false, true] {
        let server = FakeServer::start(Script {
            pipelining,
            reject_rcpt: vec!["bad@example.org"],
            ..Default::default()
        })
        .await;
        let t = transport::from_url(&server.url("")).unwrap();
        let err = bounded(t.send(&email(&["bad@example.org"])))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Permanent(ref f) if f.code == Some(550)),
            "{err}"
        );
        // Same connection, next message: one good, one bad recipient.
        let delivery = bounded(t.send(&email(&["good@example.org", "bad@example.org"])))
            .await
            .unwrap();
        assert_eq!(delivery.accepted, ["good@example.org"]);
        assert_eq!(delivery.rejected[0].recipient, "bad@example.org");
        assert_eq!(delivery.queue_id.as_deref(), Some("FAKE1"));
        assert_eq!(server.messages(), [vec!["good@example.org".to_owned()]]);
        assert_eq!(
            server.stats.connections.load(Ordering::SeqCst),
            1,
            "pipelining={pipelining}"
        );
    }
}

#[tokio::test]
async fn reply_451_after_data_is_transient() {
    let server = FakeServer::start(Script {
        after_data: Some("451 4.3.0 try again later"),
        ..Default::default()
    })
    .await;
    let t = transport::from_url(&server.url("")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transient(ref f) if f.code == Some(451)),
        "{err}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn connection_dropped_mid_data_is_transient() {
    let server = FakeServer::start(Script {
        drop_mid_data: true,
        pipelining: true,
        ..Default::default()
    })
    .await;
    let t = transport::from_url(&server.url("")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn silent_server_fails_within_the_timeout() {
    let server = FakeServer::start(Script {
        silent: true,
        ..Default::default()
    })
    .await;
    let t = transport::from_url(&server.url("timeout=300ms")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("no answer"), "{err}");
}

#[tokio::test]
async fn server_silent_after_data_fails_within_the_timeout() {
    let server = FakeServer::start(Script {
        silent_after_data: true,
        ..Default::default()
    })
    .await;
    let t = transport::from_url(&server.url("timeout=300ms")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("end of DATA"), "{err}");
    // The timed-out connection is not reused.
    let _ = bounded(t.send(&email(&["b@example.org"]))).await;
    assert_eq!(server.stats.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let port = super::aiosmtpd::free_port();
    let t = transport::from_url(&format!("smtp://127.0.0.1:{port}?timeout=2s")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn pooled_connection_closed_by_the_server_is_replaced() {
    for (say_421, pipelining) in [(true, false), (false, true), (true, true)] {
        let server = FakeServer::start(Script {
            idle_close: Some((Duration::from_millis(100), say_421)),
            pipelining,
            ..Default::default()
        })
        .await;
        let t = transport::from_url(&server.url("idle=60s")).unwrap();
        bounded(t.send(&email(&["b@example.org"]))).await.unwrap();
        // Let the server close the idle pooled connection.
        tokio::time::sleep(Duration::from_millis(400)).await;
        bounded(t.send(&email(&["c@example.org"]))).await.unwrap();
        assert_eq!(server.messages().len(), 2);
        assert_eq!(
            server.stats.connections.load(Ordering::SeqCst),
            2,
            "421={say_421} pipelining={pipelining}"
        );
    }
}

#[tokio::test]
async fn pool_never_opens_more_than_its_cap() {
    let server = FakeServer::start(Script {
        pipelining: true,
        data_delay: Some(Duration::from_millis(20)),
        ..Default::default()
    })
    .await;
    let t = transport::from_url(&server.url("pool=3")).unwrap();
    let emails: Vec<Email> = (0..30)
        .map(|i| email(&[&format!("u{i}@example.org")]))
        .collect();
    let results = bounded(t.send_batch(&emails)).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.messages().len(), 30);
    assert!(server.stats.max_concurrent.load(Ordering::SeqCst) <= 3);
    assert!(server.stats.connections.load(Ordering::SeqCst) <= 3);
}

#[tokio::test]
async fn idle_connections_expire() {
    let server = FakeServer::start(Script {
        pipelining: true,
        ..Default::default()
    })
    .await;
    let t = mailroom::transport::SmtpTransport::builder("127.0.0.1")
        .port(server.port)
        .idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    use mailroom::transport::Transport as _;
    bounded(t.send(&email(&["b@example.org"]))).await.unwrap();
    assert_eq!(t.open_connections(), 1);
    // Well past the idle timeout: the pool has closed the connection by itself.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(t.open_connections(), 0);
    bounded(t.send(&email(&["c@example.org"]))).await.unwrap();
    assert_eq!(server.stats.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn batch_pipelines_across_messages_and_keeps_each_result_apart() {
    let server = FakeServer::start(Script {
        pipelining: true,
        reject_rcpt: vec!["bad@example.org"],
        tempfail_rcpt: vec!["later@example.org"],
        ..Default::default()
    })
    .await;
    let t = transport::from_url(&server.url("pool=2")).unwrap();
    let mut emails: Vec<Email> = (0..20)
        .map(|i| email(&[&format!("u{i}@example.org")]))
        .collect();
    emails[3] = email(&["later@example.org"]);
    emails[7] = email(&["bad@example.org"]);
    emails[11] = email(&["u11@example.org", "bad@example.org"]);
    let results = bounded(t.send_batch(&emails)).await;
    assert_eq!(results.len(), 20);
    for (i, r) in results.iter().enumerate() {
        match i {
            3 => assert!(
                matches!(r, Err(Error::Transient(f)) if f.code == Some(451)),
                "{r:?}"
            ),
            7 => assert!(
                matches!(r, Err(Error::Permanent(f)) if f.code == Some(550)),
                "{r:?}"
            ),
            11 => {
                let d = r.as_ref().unwrap();
                assert_eq!(d.accepted, ["u11@example.org"]);
                assert_eq!(d.rejected[0].recipient, "bad@example.org");
            }
            _ => assert_eq!(r.as_ref().unwrap().accepted, [format!("u{i}@example.org")]),
        }
    }
    let mut got: Vec<String> = server.messages().into_iter().flatten().collect();
    got.sort();
    assert_eq!(got.len(), 18);
    assert!(!got.contains(&"later@example.org".to_owned()));
    assert!(server.stats.connections.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn batch_to_an_unreachable_server_fails_every_message_quickly() {
    let port = super::aiosmtpd::free_port();
    let t = transport::from_url(&format!("smtp://127.0.0.1:{port}?pool=2")).unwrap();
    let emails: Vec<Email> = (0..50)
        .map(|i| email(&[&format!("u{i}@example.org")]))
        .collect();
    let results = bounded(t.send_batch(&emails)).await;
    assert_eq!(results.len(), 50);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(e) if e.is_transient())),
        "{results:?}"
    );
}
