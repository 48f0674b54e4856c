//! Recipients a server defers (4xx to `RCPT TO`, e.g. greylisting) are told apart from
//! those it rejects (5xx), and [`Transport::send_to`] delivers the same message to them
//! alone later (issue 9, item 2).

use chrono::DateTime;
use mailroom::transport::{self, Delivery, MemoryTransport, Transport};
use mailroom::{Email, Error};

use super::fake_server::{FakeServer, Script};

/// A message with its Message-ID and Date fixed, as a queued message has them.
fn email(to: &[&str]) -> Email {
    let mut b = Email::builder()
        .from("shop@example.com")
        .subject("your order")
        .text("it shipped")
        .message_id("<order-17@example.com>")
        .date(DateTime::parse_from_rfc3339("2026-01-02T03:04:05+00:00").unwrap());
    for t in to {
        b = b.to(*t);
    }
    b.build().unwrap()
}

fn rcpt_lines(server: &FakeServer) -> Vec<String> {
    server
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("RCPT TO:"))
        .collect()
}

#[tokio::test]
async fn deferred_recipients_are_reported_and_retried_alone() {
    for pipelining in [false, true] {
        let server = FakeServer::start(Script {
            pipelining,
            greylist_rcpt: vec!["b@example.org"],
            reject_rcpt: vec!["c@example.org"],
            ..Default::default()
        })
        .await;
        let t = transport::from_url(&server.url("")).unwrap();
        let email = email(&["a@example.org", "b@example.org", "c@example.org"]);

        let first = t.send(&email).await.unwrap();
        assert_eq!(first.accepted, ["a@example.org"], "pipelining={pipelining}");
        assert_eq!(first.deferred.len(), 1, "{first:?}");
        assert_eq!(first.deferred[0].recipient, "b@example.org");
        assert_eq!(first.deferred[0].code, 451);
        assert!(
            first.deferred[0].message.contains("greylisted"),
            "{first:?}"
        );
        assert_eq!(first.rejected.len(), 1, "{first:?}");
        assert_eq!(first.rejected[0].recipient, "c@example.org");
        assert_eq!(first.rejected[0].code, 550);
        assert_eq!(first.message_id.as_deref(), Some("<order-17@example.com>"));
        assert_eq!(rcpt_lines(&server).len(), 3);

        // The retry goes to the deferred recipient only, with the very same message.
        let retry: Vec<String> = first.deferred.iter().map(|d| d.recipient.clone()).collect();
        let second = t.send_to(&email, &retry).await.unwrap();
        assert_eq!(second.accepted, ["b@example.org"]);
        assert!(second.deferred.is_empty() && second.rejected.is_empty());
        assert_eq!(second.message_id, first.message_id);
        let rcpts = rcpt_lines(&server);
        assert_eq!(rcpts.len(), 4, "{rcpts:?}");
        assert_eq!(rcpts[3], "RCPT TO:<b@example.org>\r\n");
        assert_eq!(
            server.messages(),
            [
                vec!["a@example.org".to_owned()],
                vec!["b@example.org".to_owned()]
            ]
        );
        let bodies = server.bodies();
        assert_eq!(bodies[0], bodies[1], "the retry must send the same bytes");
        assert!(bodies[1].contains("Message-ID: <order-17@example.com>\r\n"));
        // The headers still name every recipient, as in the first delivery.
        assert!(bodies[1].contains("a@example.org") && bodies[1].contains("c@example.org"));
    }
}

#[tokio::test]
async fn every_recipient_deferred_stays_transient() {
    for pipelining in [false, true] {
        let server = FakeServer::start(Script {
            pipelining,
            greylist_rcpt: vec!["b@example.org", "d@example.org"],
            reject_rcpt: vec!["c@example.org"],
            ..Default::default()
        })
        .await;
        let t = transport::from_url(&server.url("")).unwrap();
        let err = t.send(&email(&["b@example.org"])).await.unwrap_err();
        assert!(
            matches!(err, Error::Transient(ref f) if f.code == Some(451)),
            "{err}"
        );
        // Deferred and rejected, none accepted: still worth a retry.
        let err = t
            .send(&email(&["d@example.org", "c@example.org"]))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(server.messages().is_empty());
    }
}

#[tokio::test]
async fn send_to_refuses_recipients_the_message_does_not_have() {
    let server = FakeServer::start(Script::default()).await;
    let t = transport::from_url(&server.url("")).unwrap();
    let email = email(&["a@example.org", "b@example.org"]);
    let strangers: [&[&str]; 3] = [&[], &["x@example.org"], &["a@example.org", "x@example.org"]];
    for recipients in strangers {
        let recipients: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
        let err = t.send_to(&email, &recipients).await.unwrap_err();
        assert!(matches!(err, Error::InvalidMessage { .. }), "{err}");
        assert_eq!(err.field(), Some("recipients"), "{err}");
    }
    assert!(server.lines().is_empty(), "{:?}", server.lines());
    // Case does not matter; the envelope's spelling is used.
    let d = t
        .send_to(&email, &["B@EXAMPLE.ORG".to_owned()])
        .await
        .unwrap();
    assert_eq!(d.accepted, ["b@example.org"]);
}

#[tokio::test]
async fn memory_outbox_records_the_envelope_used() {
    let memory = MemoryTransport::new();
    let outbox = memory.outbox();
    let email = email(&["a@example.org", "b@example.org"]);
    let all = memory.send(&email).await.unwrap();
    let some = memory
        .send_to(&email, &["b@example.org".to_owned()])
        .await
        .unwrap();
    assert_eq!(all.accepted, ["a@example.org", "b@example.org"]);
    assert_eq!(some.accepted, ["b@example.org"]);
    let sent = outbox.messages();
    assert_eq!(sent[0].envelope_to(), ["a@example.org", "b@example.org"]);
    assert_eq!(sent[1].envelope_to(), ["b@example.org"]);
    assert!(sent[1].is_sent_to("b@example.org") && !sent[1].is_sent_to("a@example.org"));
    assert_eq!(sent[0].bytes(), sent[1].bytes());
}

#[test]
fn delivery_json_keeps_its_field_order_and_reads_old_results() {
    let delivery = Delivery {
        message_id: Some("<x@example.com>".into()),
        accepted: vec!["a@example.org".into()],
        deferred: Vec::new(),
        rejected: Vec::new(),
        reply: None,
        queue_id: None,
    };
    let json = serde_json::to_string(&delivery).unwrap();
    let order: Vec<usize> = [
        "message_id",
        "accepted",
        "deferred",
        "rejected",
        "reply",
        "queue_id",
    ]
    .iter()
    .map(|k| json.find(&format!("\"{k}\"")).unwrap())
    .collect();
    assert!(order.is_sorted(), "{json}");
    // A result stored before `deferred` existed still reads.
    let old = r#"{"message_id":null,"accepted":["a@example.org"],"rejected":[],"reply":null,"queue_id":null}"#;
    let read: Delivery = serde_json::from_str(old).unwrap();
    assert!(read.deferred.is_empty());
    assert_eq!(read.accepted, ["a@example.org"]);
}

#[tokio::test]
async fn every_transport_sends_to_a_subset_and_refuses_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let transports: Vec<std::sync::Arc<dyn Transport>> = vec![
        transport::from_url(&format!("file:{}", dir.path().display())).unwrap(),
        std::sync::Arc::new(
            transport::ConsoleTransport::new()
                .with_stream(mailroom::testing::SharedBuffer::default()),
        ),
        transport::from_url("dummy:").unwrap(),
        std::sync::Arc::new(MemoryTransport::new()),
    ];
    let email = email(&["a@example.org", "b@example.org"]);
    for t in transports {
        let d = t
            .send_to(&email, &["b@example.org".to_owned()])
            .await
            .unwrap();
        assert_eq!(d.accepted, ["b@example.org"], "{t:?}");
        assert_eq!(
            d.message_id.as_deref(),
            Some("<order-17@example.com>"),
            "{t:?}"
        );
        let err = t
            .send_to(&email, &["x@example.org".to_owned()])
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("recipients"), "{t:?}: {err}");
        let err = t.send_to(&email, &[]).await.unwrap_err();
        assert_eq!(err.field(), Some("recipients"), "{t:?}: {err}");
    }
    // The file transport wrote one message, not three.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
