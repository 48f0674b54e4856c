//! Fault injection with the scriptable fake server: each failure must come back typed
//! (transient or permanent), within the configured timeout, and leave the pool healthy.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mailroom::transport;
use mailroom::{Email, Error};

use super::fake_server::{ENDLESS_CAP, FakeServer, Script};

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

/// An address of this machine that is not loopback: the source address of its default
/// route (a UDP `connect` sends nothing), else the first one `hostname -I` lists.
fn non_loopback_ip() -> std::net::IpAddr {
    let by_route = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("203.0.113.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip());
    if let Ok(ip) = by_route
        && !ip.is_loopback()
        && !ip.is_unspecified()
    {
        return ip;
    }
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.parse::<std::net::IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .expect("this test needs a non-loopback IPv4 address on this machine")
}

fn saw_credentials(lines: &[String]) -> bool {
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0mailer\0s3cret-pw");
    let password = base64::engine::general_purpose::STANDARD.encode("s3cret-pw");
    lines.iter().any(|l| {
        l.to_ascii_uppercase().starts_with("AUTH")
            || l.contains("s3cret-pw")
            || l.contains(&plain)
            || l.contains(&password)
    })
}

#[tokio::test]
async fn credentials_never_go_in_clear_text_to_a_remote_server_without_starttls() {
    // A server on a non-loopback address that offers AUTH but no STARTTLS: what a
    // STARTTLS-stripping attacker presents. Whatever `tls=` asks, no AUTH may go out.
    let script = Script {
        auth_in_clear: true,
        ..Default::default()
    };
    let ip = non_loopback_ip();
    let server = FakeServer::start_on(ip, script.clone()).await;
    let base = format!("smtp://mailer:s3cret-pw@{ip}:{}", server.port);

    // The default for a remote host: STARTTLS required, so the send fails permanently.
    let t = transport::from_url(&format!("{base}?timeout=5")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Permanent(_)), "{err}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");

    // Opportunistic TLS finds no STARTTLS and must refuse to authenticate.
    let t = transport::from_url(&format!("{base}?tls=opportunistic&timeout=5")).unwrap();
    let err = bounded(t.send(&email(&["b@example.org"])))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("smtp.tls"), "{err}");
    assert!(err.to_string().contains("clear text"), "{err}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");

    // Plain text with credentials is refused before connecting.
    let err = transport::from_url(&format!("{base}?tls=none")).unwrap_err();
    assert_eq!(err.field(), Some("transport.tls"), "{err}");

    let lines = server.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("EHLO")),
        "the client did connect: {lines:?}"
    );
    assert!(!saw_credentials(&lines), "credentials went out: {lines:?}");
    assert!(server.messages().is_empty());

    // Control: the same server on loopback gets AUTH (development setups may send there
    // in clear), so the check above would see credentials if they were sent.
    let local = FakeServer::start(script).await;
    let t = transport::from_url(&format!(
        "smtp://mailer:s3cret-pw@127.0.0.1:{}?tls=opportunistic",
        local.port
    ))
    .unwrap();
    bounded(t.send(&email(&["b@example.org"]))).await.unwrap();
    assert!(saw_credentials(&local.lines()), "{:?}", local.lines());
}

#[tokio::test]
async fn an_endless_reply_is_cut_off_with_a_transient_error() {
    // The greeting, the EHLO reply, a pipelined RCPT reply and the final reply; one
    // endless line, or endless short lines.
    for (at, pipelining, lines) in [
        ("", false, false),
        ("EHLO", false, false),
        ("RCPT TO", true, false),
        ("RCPT TO", false, false),
        (".", false, false),
        ("", false, true),
        ("MAIL FROM", true, true),
    ] {
        let server = FakeServer::start(Script {
            endless_reply: Some(at),
            endless_lines: lines,
            pipelining,
            ..Default::default()
        })
        .await;
        // Without a bound the client reads all ENDLESS_CAP octets (until the server hangs up).
        let t = transport::from_url(&server.url("timeout=5")).unwrap();
        let err = bounded(t.send(&email(&["b@example.org"])))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Transient(_)), "{at}: {err}");
        assert!(err.to_string().contains("over-long reply"), "{at}: {err}");
        // Short lines are cut off by their number, before lettre's reparsing of a long
        // reply at each line costs minutes of CPU.
        let what = if lines {
            "lines in one reply"
        } else {
            "octets"
        };
        assert!(err.to_string().contains(what), "{at}: {err}");
        // The client hung up long before the server ran out of line to send.
        let written = bounded(server.endless_written()).await;
        assert!(
            written < ENDLESS_CAP,
            "{at}: the server wrote {written} octets"
        );
        assert!(server.messages().is_empty());
    }
}
