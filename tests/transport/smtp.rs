//! SMTP delivery against a real server (aiosmtpd): plain, STARTTLS, implicit TLS, AUTH,
//! SMTPUTF8 on and off, Bcc, partial rejection, batches over the pool.

use mail_parser::MessageParser;
use mailroom::transport::{self, SmtpTransport, TlsMode, Transport};
use mailroom::{Email, Error};

use super::aiosmtpd::{Aiosmtpd, Options};

fn email() -> Email {
    Email::builder()
        .from("Zoë Müller <zoe@example.com>")
        .to("Ann <ann@example.org>")
        .subject("Ваш заказ готов")
        .text("Your order is ready.\r\n.leading dot stays\r\n")
        .build()
        .unwrap()
}

#[tokio::test]
async fn plain_delivery_reports_accepted_reply_and_queue_id() {
    let server = Aiosmtpd::start(Options::default());
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let delivery = t.send(&email()).await.unwrap();
    assert_eq!(delivery.accepted, ["ann@example.org"]);
    assert!(delivery.rejected.is_empty());
    assert_eq!(delivery.reply.as_ref().unwrap().code, 250);
    assert!(
        delivery.queue_id.as_deref().unwrap().starts_with("QX"),
        "{delivery:?}"
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "zoe@example.com");
    assert!(!got[0].tls);
    let parsed = MessageParser::default().parse(&got[0].data).unwrap();
    assert_eq!(parsed.subject(), Some("Ваш заказ готов"));
    assert_eq!(
        parsed.message_id().map(|id| format!("<{id}>")),
        delivery.message_id
    );
    // Dot-stuffing was undone by the server: the body line is intact.
    assert!(
        got[0].text().contains("\r\n.leading dot stays\r\n"),
        "{}",
        got[0].text()
    );
}

#[tokio::test]
async fn starttls_with_auth_and_a_trusted_ca() {
    let server = Aiosmtpd::start(Options {
        tls: "starttls",
        auth: Some(("ann", "s3cret")),
        ..Default::default()
    });
    let url = format!(
        "smtp://ann:s3cret@localhost:{}?tls=starttls&{}",
        server.port,
        server.ca_query()
    );
    let t = transport::from_url(&url).unwrap();
    assert!(!format!("{t:?}").contains("s3cret"));
    t.send(&email()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls && got[0].authenticated, "{got:?}");
}

#[tokio::test]
async fn untrusted_certificate_is_a_permanent_error() {
    let server = Aiosmtpd::start(Options {
        tls: "starttls",
        ..Default::default()
    });
    let t = transport::from_url(&format!("smtp://localhost:{}?tls=starttls", server.port)).unwrap();
    let err = t.send(&email()).await.unwrap_err();
    assert!(matches!(err, Error::Permanent(_)), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_refused() {
    let server = Aiosmtpd::start(Options::default());
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}?tls=starttls", server.port)).unwrap();
    let err = t.send(&email()).await.unwrap_err();
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_with_auth() {
    let server = Aiosmtpd::start(Options {
        tls: "implicit",
        auth: Some(("ann", "p@ss word")),
        ..Default::default()
    });
    let url = format!(
        "smtps://ann:p%40ss%20word@127.0.0.1:{}?{}",
        server.port,
        server.ca_query()
    );
    let t = transport::from_url(&url).unwrap();
    t.send(&email()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls && got[0].authenticated, "{got:?}");
}

#[tokio::test]
async fn wrong_password_is_permanent() {
    let server = Aiosmtpd::start(Options {
        tls: "implicit",
        auth: Some(("ann", "right")),
        ..Default::default()
    });
    let pem = std::fs::read(&server.ca).unwrap();
    let t = SmtpTransport::builder("localhost")
        .port(server.port)
        .tls(TlsMode::Implicit)
        .credentials("ann", "wrong")
        .add_root_certificates_pem(pem)
        .build()
        .unwrap();
    let err = t.send(&email()).await.unwrap_err();
    assert!(
        matches!(err, Error::Permanent(ref f) if f.code == Some(535)),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong"));
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn smtputf8_used_when_needed_and_offered() {
    let server = Aiosmtpd::start(Options {
        smtputf8: true,
        ..Default::default()
    });
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let email = Email::builder()
        .from("zoë@bücher.example")
        .to("jürgen@bücher.example")
        .subject("Grüße")
        .text("hallo")
        .build()
        .unwrap();
    let delivery = t.send(&email).await.unwrap();
    assert_eq!(delivery.accepted, ["jürgen@bücher.example"]);
    let got = server.received();
    assert!(
        got[0].mail_options.iter().any(|o| o == "SMTPUTF8"),
        "{:?}",
        got[0].mail_options
    );
    assert_eq!(got[0].mail_from, "zoë@bücher.example");
    // Raw UTF-8 headers (RFC 6532), no encoded words.
    assert!(
        got[0].text().contains("Subject: Grüße"),
        "{}",
        got[0].text()
    );
}

#[tokio::test]
async fn ascii_message_does_not_use_smtputf8_even_when_offered() {
    let server = Aiosmtpd::start(Options {
        smtputf8: true,
        ..Default::default()
    });
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let email = Email::builder()
        .from("a@example.com")
        .to("b@bücher.example")
        .subject("Grüße")
        .text("x")
        .build()
        .unwrap();
    t.send(&email).await.unwrap();
    let got = server.received();
    assert!(
        !got[0].mail_options.iter().any(|o| o == "SMTPUTF8"),
        "{:?}",
        got[0].mail_options
    );
    assert_eq!(got[0].rcpt_tos, ["b@xn--bcher-kva.example"]);
    assert!(
        got[0].text().contains("Subject: =?utf-8?"),
        "{}",
        got[0].text()
    );
}

#[tokio::test]
async fn non_ascii_local_part_without_smtputf8_is_permanent_and_says_so() {
    let server = Aiosmtpd::start(Options {
        smtputf8: false,
        ..Default::default()
    });
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let email = Email::builder()
        .from("a@example.com")
        .to("jürgen@example.com")
        .text("x")
        .build()
        .unwrap();
    let err = t.send(&email).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("SMTPUTF8"), "{err}");
    // The connection stays usable for the next, ASCII, message.
    let ok = Email::builder()
        .from("a@example.com")
        .to("b@bücher.example")
        .text("x")
        .build()
        .unwrap();
    t.send(&ok).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_tos, ["b@xn--bcher-kva.example"]);
}

#[tokio::test]
async fn bcc_is_delivered_but_not_in_headers() {
    let server = Aiosmtpd::start(Options::default());
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let email = Email::builder()
        .from("a@example.com")
        .to("to@example.org")
        .cc("cc@example.org")
        .bcc("secret@example.net")
        .subject("s")
        .text("x")
        .build()
        .unwrap();
    let delivery = t.send(&email).await.unwrap();
    assert_eq!(
        delivery.accepted,
        ["to@example.org", "cc@example.org", "secret@example.net"]
    );
    let got = server.received();
    assert_eq!(
        got[0].rcpt_tos,
        ["to@example.org", "cc@example.org", "secret@example.net"]
    );
    let parsed = MessageParser::default().parse(&got[0].data).unwrap();
    assert!(parsed.bcc().is_none());
    assert!(!got[0].text().contains("secret@example.net"));
}

#[tokio::test]
async fn many_recipients_with_one_rejected() {
    let server = Aiosmtpd::start(Options {
        reject: vec!["nobody@example.org"],
        ..Default::default()
    });
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let mut builder = Email::builder()
        .from("a@example.com")
        .subject("news")
        .text("x");
    for i in 0..30 {
        builder = builder.to(format!("user{i}@example.org"));
    }
    builder = builder.bcc("nobody@example.org");
    let delivery = t.send(&builder.build().unwrap()).await.unwrap();
    assert_eq!(delivery.accepted.len(), 30);
    assert_eq!(delivery.rejected.len(), 1);
    assert_eq!(delivery.rejected[0].recipient, "nobody@example.org");
    assert_eq!(delivery.rejected[0].code, 550);
    let got = server.received();
    assert_eq!(got[0].rcpt_tos.len(), 30);
    assert!(!got[0].rcpt_tos.contains(&"nobody@example.org".to_owned()));
}

#[tokio::test]
async fn every_recipient_rejected_is_permanent() {
    let server = Aiosmtpd::start(Options {
        reject: vec!["nobody@example.org"],
        ..Default::default()
    });
    let t = transport::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let email = Email::builder()
        .from("a@example.com")
        .to("nobody@example.org")
        .text("x")
        .build()
        .unwrap();
    let err = t.send(&email).await.unwrap_err();
    assert!(
        matches!(err, Error::Permanent(ref f) if f.code == Some(550)),
        "{err}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn batch_over_the_pool_and_django_shaped_helpers() {
    let server = Aiosmtpd::start(Options::default());
    let t = SmtpTransport::builder("127.0.0.1")
        .port(server.port)
        .max_connections(3)
        .build()
        .unwrap();
    let emails: Vec<Email> = (0..12)
        .map(|i| {
            Email::builder()
                .from("a@example.com")
                .to(format!("u{i}@example.org"))
                .text("x")
                .build()
                .unwrap()
        })
        .collect();
    let results = t.send_batch(&emails).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(t.open_connections() <= 3);

    let sent = transport::send_text(
        "Hello",
        "Body",
        "a@example.com",
        &["x@example.org", "y@example.org"],
        &t,
    )
    .await
    .unwrap();
    assert_eq!(sent, 1);
    let mass = vec![
        ("S1", "B1", "a@example.com", vec!["p@example.org"]),
        ("S2", "B2", "a@example.com", vec!["q@example.org"]),
    ];
    assert_eq!(transport::send_text_batch(&mass, &t).await.unwrap(), 2);
    t.close().await;
    assert_eq!(t.open_connections(), 0);

    let got = server.received();
    assert_eq!(got.len(), 15);
    let mut rcpts: Vec<String> = got.iter().flat_map(|r| r.rcpt_tos.clone()).collect();
    rcpts.sort();
    assert!(
        rcpts.contains(&"u11@example.org".to_owned())
            && rcpts.contains(&"q@example.org".to_owned())
    );
}

#[tokio::test]
async fn auth_login_when_plain_is_not_offered() {
    let server = Aiosmtpd::start(Options {
        tls: "starttls",
        auth: Some(("ann", "s3cret")),
        exclude_auth: vec!["PLAIN"],
        ..Default::default()
    });
    let url = format!(
        "smtp://ann:s3cret@localhost:{}?{}",
        server.port,
        server.ca_query()
    );
    transport::from_url(&url)
        .unwrap()
        .send(&email())
        .await
        .unwrap();
    assert!(server.received()[0].authenticated);
}

#[tokio::test]
async fn auth_xoauth2_with_a_token() {
    let server = Aiosmtpd::start(Options {
        tls: "implicit",
        auth: Some(("ann", "unused-password")),
        exclude_auth: vec!["PLAIN", "LOGIN"],
        xoauth2_token: Some("ya29.token"),
        ..Default::default()
    });
    let url = format!(
        "smtps://ann:ya29.token@localhost:{}?auth=xoauth2&{}",
        server.port,
        server.ca_query()
    );
    transport::from_url(&url)
        .unwrap()
        .send(&email())
        .await
        .unwrap();
    assert!(server.received()[0].authenticated);
    // A wrong token is refused for good.
    let url = format!(
        "smtps://ann:wrong@localhost:{}?auth=xoauth2&{}",
        server.port,
        server.ca_query()
    );
    let err = transport::from_url(&url)
        .unwrap()
        .send(&email())
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert_eq!(server.received().len(), 1);
}
