//! The transports without a server: memory (used the way an application's test uses
//! it), file, console, dummy.

use mail_parser::MessageParser;
use mailroom::testing;
use mailroom::transport::{self, ConsoleTransport, MemoryTransport, Outbox, Transport};
use mailroom::{Email, Error};

/// The application under test: signs a user up and sends a welcome message.
async fn sign_up(mail: &dyn Transport, name: &str, address: &str) -> mailroom::Result<()> {
    let email = Email::builder()
        .from("Shop <shop@example.com>")
        .to((name, address))
        .bcc("audit@example.com")
        .subject(format!("Welcome, {name}!"))
        .text(format!("Hello {name}, your account is ready."))
        .html(format!(
            "<p>Hello {name}, your account is <b>ready</b>.</p>"
        ))
        .build()?;
    mail.send(&email).await?;
    Ok(())
}

#[tokio::test]
async fn application_test_with_its_own_outbox() {
    let mail = MemoryTransport::new();
    let outbox = mail.outbox();
    outbox.assert_empty();

    sign_up(&mail, "Ann", "ann@example.org").await.unwrap();
    sign_up(&mail, "Jürgen", "jürgen@bücher.example")
        .await
        .unwrap();

    outbox.assert_count(2);
    let ann = outbox.assert_sent_to("ANN@example.org");
    assert_eq!(ann.subject(), Some("Welcome, Ann!"));
    assert!(ann.email().body_contains("account is"));
    assert_eq!(ann.envelope_from(), "shop@example.com");
    assert_eq!(ann.envelope_to(), ["ann@example.org", "audit@example.com"]);
    // Bcc is on the envelope, never in the rendered message.
    assert!(!ann.raw().contains("audit@example.com"));
    let parsed = MessageParser::default().parse(ann.bytes()).unwrap();
    assert_eq!(parsed.subject(), Some("Welcome, Ann!"));
    assert_eq!(
        parsed.message_id().map(|id| format!("<{id}>")).as_deref(),
        ann.message_id()
    );

    let jurgen = outbox.assert_subject_contains("Jürgen");
    // A non-ASCII local part is rendered for SMTPUTF8, as a capable server would get it.
    assert_eq!(jurgen.envelope_to()[0], "jürgen@bücher.example");
    assert_eq!(outbox.sent_to("audit@example.com").len(), 2);
    assert_eq!(outbox.body_contains("ready").len(), 2);
    outbox.assert_not_sent_to("eve@example.org");

    outbox.clear();
    outbox.assert_empty();
}

#[tokio::test]
#[should_panic(expected = "expected one message to nobody@example.org, found 0")]
async fn failed_assertions_say_what_the_outbox_holds() {
    let mail = MemoryTransport::new();
    sign_up(&mail, "Ann", "ann@example.org").await.unwrap();
    mail.outbox().assert_sent_to("nobody@example.org");
}

#[tokio::test]
async fn memory_urls_share_outboxes() {
    // `memory:NAME` writes to the named process-wide outbox; a second URL reaches it too.
    let one = transport::from_url("memory:local-tests").unwrap();
    let two = transport::from_url("memory:local-tests").unwrap();
    let outbox = Outbox::named("local-tests");
    outbox.clear();
    sign_up(&*one, "Ann", "ann@example.org").await.unwrap();
    sign_up(&*two, "Bob", "bob@example.org").await.unwrap();
    outbox.assert_count(2);

    // `memory:` writes to the default outbox (Django's mail.outbox).
    let default = transport::from_url("memory:").unwrap();
    sign_up(&*default, "Cy", "cy-unique-7@example.org")
        .await
        .unwrap();
    testing::outbox().assert_sent_to("cy-unique-7@example.org");
}

#[tokio::test]
async fn send_text_and_send_text_batch() {
    let mail = MemoryTransport::new();
    let n = transport::send_text(
        "Hi",
        "Body",
        "a@example.com",
        &["b@example.org", "c@example.org"],
        &mail,
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let data = vec![
        ("One", "first", "a@example.com", vec!["x@example.org"]),
        ("Two", "second", "a@example.com", vec!["y@example.org"]),
    ];
    assert_eq!(transport::send_text_batch(&data, &mail).await.unwrap(), 2);
    let outbox = mail.outbox();
    outbox.assert_count(3);
    assert!(
        outbox
            .assert_sent_to("y@example.org")
            .email()
            .body_contains("second")
    );
    let bad = transport::send_text("Hi", "Body", "not an address", &["b@example.org"], &mail)
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidAddress { .. }), "{bad}");
}

#[tokio::test]
async fn file_transport_writes_one_eml_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let t = transport::from_url(&format!("file:{}", target.display())).unwrap();
    sign_up(&*t, "Ann", "ann@example.org").await.unwrap();
    let delivery = t
        .send(
            &Email::builder()
                .from("a@example.com")
                .to("b@example.org")
                .subject("second")
                .text("x")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".eml") && !n.starts_with('.')),
        "{names:?}"
    );
    assert!(names.contains(delivery.queue_id.as_ref().unwrap()));
    let bytes = std::fs::read(target.join(delivery.queue_id.unwrap())).unwrap();
    let parsed = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(parsed.subject(), Some("second"));
}

#[tokio::test]
async fn console_transport_shows_each_rendered_message_then_a_separator() {
    let shown = testing::SharedBuffer::default();
    let t = ConsoleTransport::new().with_stream(shown.clone());
    sign_up(&t, "Zoë", "zoe@exämple.org").await.unwrap();
    sign_up(&t, "Ann", "ann@example.org").await.unwrap();
    let text = shown.text();
    let separator = format!("\n{}\n", "-".repeat(79));
    let parts: Vec<&str> = text.split(&separator).collect();
    assert_eq!(
        parts.len(),
        3,
        "two messages, each followed by the separator: {text}"
    );
    assert_eq!(parts[2], "");
    let first = MessageParser::default().parse(parts[0].as_bytes()).unwrap();
    assert_eq!(
        first.to().unwrap().first().unwrap().address(),
        Some("zoe@xn--exmple-cua.org")
    );
    assert!(first.body_text(0).unwrap().contains("Zoë"));
    let second = MessageParser::default().parse(parts[1].as_bytes()).unwrap();
    assert_eq!(
        second.to().unwrap().first().unwrap().address(),
        Some("ann@example.org")
    );
    assert!(parts.iter().all(|p| !p.contains("Bcc:")));
}

#[tokio::test]
async fn dummy_transport_accepts_everything_and_checks_recipients() {
    let t = transport::from_url("dummy:").unwrap();
    let d = t
        .send(
            &Email::builder()
                .from("a@example.com")
                .to("b@example.org")
                .text("x")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(d.accepted, ["b@example.org"]);
    let err = t
        .send(
            &Email::builder()
                .from("a@example.com")
                .text("x")
                .build()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("to"));
}

#[test]
fn bad_urls_are_configuration_errors() {
    for url in [
        "smtp://",
        "smtp://host?tls=sometimes",
        "ftp://x",
        "smtp://u:pw@mail.example.com?tls=none",
    ] {
        let err = transport::from_url(url).unwrap_err();
        assert!(matches!(err, Error::Configuration { .. }), "{url}: {err}");
        assert!(!err.to_string().contains(":pw@"), "{err}");
    }
}
