//! What a hostile or mistaken transport URL can do: credentials never show in errors or
//! `Debug` output however the URL is malformed (issue 9, item 6), and no URL parameter
//! puts a second command on the wire (item 7).

use std::sync::atomic::Ordering;

use mailroom::transport::{self, SmtpTransport};
use mailroom::{Email, Error};

use super::fake_server::{FakeServer, Script};

const PASSWORD: &str = "s3cr3t-PW";

/// Each malformed shape (`{s}` is the scheme, `{p}` the password) and what its error must
/// still say; `[smtp, smtps]` when the two schemes answer differently.
const SHAPES: &[(&str, [&str; 2])] = &[
    ("{s}://user:{p}@mail.example.com:99999", ["invalid port"; 2]),
    ("{s}://user:{p}@mail.example.com:-1", ["invalid port"; 2]),
    ("{s}://user:{p}@mail.example.com:25:26", ["invalid port"; 2]),
    ("{s}://{p}@mail.example.com:0x19", ["invalid port"; 2]),
    (
        "{s}://user:{p}@mail example.com",
        ["invalid domain character"; 2],
    ),
    ("{s}://user:{p}@[::1", ["invalid IPv6 address"; 2]),
    ("{s}://user:{p}@[v1.x]", ["invalid IPv6 address"; 2]),
    ("{s}://user:{p}@", ["empty host"; 2]),
    ("{s}://user:{p}@:25", ["empty host"; 2]),
    ("{s}:user:{p}@mail.example.com", ["names no host"; 2]),
    ("{s}:/user:{p}@mail.example.com", ["names no host"; 2]),
    ("{s}:user:{p}@", ["names no host"; 2]),
    (
        "{s} ://user:{p}@mail.example.com",
        ["is not a transport URL"; 2],
    ),
    (
        "{s}://user:{p}@mail.exa%zzmple.com",
        ["not a valid DNS name"; 2],
    ),
    (
        "{s}://user:{p}@999.999.999.999",
        ["not a valid DNS name"; 2],
    ),
    // Unencoded delimiters and `@` inside the password, unicode in the user information.
    (
        "{s}://user:{p}@x@mail.example.com:99999",
        ["invalid port"; 2],
    ),
    ("{s}://user:{p}/x@mail.example.com", ["percent-encode"; 2]),
    ("{s}://user:{p}?x@mail.example.com", ["percent-encode"; 2]),
    ("{s}://user:{p}#x@mail.example.com", ["percent-encode"; 2]),
    (
        "{s}://üser:{p}ü@mail.example.com:99999",
        ["invalid port"; 2],
    ),
    // Bad percent-encoding and characters that would split the AUTH message.
    (
        "{s}://user:{p}%zz@mail.example.com",
        ["transport.password"; 2],
    ),
    (
        "{s}://user:{p}%C3@mail.example.com",
        ["transport.password"; 2],
    ),
    (
        "{s}://user:{p}%00@mail.example.com",
        ["transport.password"; 2],
    ),
    ("{s}://us%00er:{p}@mail.example.com", ["transport.user"; 2]),
    ("{s}://:{p}@mail.example.com", ["transport.user"; 2]),
    // Bad query parameters.
    (
        "{s}://user:{p}@mail.example.com?tls=maybe",
        ["not a TLS mode", "always implicit TLS"],
    ),
    (
        "{s}://user:{p}@mail.example.com?tls=none",
        ["clear text", "always implicit TLS"],
    ),
    (
        "{s}://user:{p}@mail.example.com?pool=0",
        ["transport.pool"; 2],
    ),
    (
        "{s}://user:{p}@mail.example.com?timeout=forever",
        ["transport.timeout"; 2],
    ),
    (
        "{s}://user:{p}@mail.example.com?timeout=1e999",
        ["transport.timeout"; 2],
    ),
    (
        "{s}://user:{p}@mail.example.com?bogus=1",
        ["unknown option `bogus`"; 2],
    ),
    (
        "{s}://user:{p}@mail.example.com?auth=cram-md5",
        ["transport.auth"; 2],
    ),
    (
        "{s}://user:{p}@mail.example.com?helo=x%0D%0ARSET",
        ["transport.helo"; 2],
    ),
    (
        "{s}://user:{p}@mail.example.com?helo=",
        ["transport.helo"; 2],
    ),
    (
        "{s}://user:{p}@mail.example.com?ca=/nonexistent/ca.pem",
        ["/nonexistent/ca.pem"; 2],
    ),
    // Other schemes and no scheme at all.
    (
        "gopher://user:{p}@mail.example.com",
        ["unknown transport scheme `gopher:`"; 2],
    ),
    ("{p}@mail.example.com", ["is not a transport URL"; 2]),
    (
        "user:{p}@mail.example.com",
        ["unknown transport scheme `user:`"; 2],
    ),
];

#[test]
fn malformed_smtp_urls_never_show_the_password() {
    for scheme in ["smtp", "smtps"] {
        for (shape, expected) in SHAPES {
            let url = shape.replace("{s}", scheme).replace("{p}", PASSWORD);
            let expected = expected[usize::from(scheme == "smtps")];
            let err = transport::from_url(&url).expect_err(&url);
            let (shown, debug) = (err.to_string(), format!("{err:?}"));
            assert!(
                !shown.contains(PASSWORD) && !debug.contains(PASSWORD),
                "{url}: the password leaked: {shown} / {debug}"
            );
            assert!(shown.contains(expected), "{url}: {shown}");
            // Where the URL is shown, its user information is masked, not dropped.
            if shown.contains('@') {
                assert!(shown.contains("****@"), "{url}: {shown}");
            }
        }
    }
}

#[test]
fn transports_that_parse_keep_the_password_out_of_debug() {
    for url in [
        format!("smtp://user:{PASSWORD}@mail.example.com"),
        format!("smtps://user:{PASSWORD}@mail.example.com:465?helo=client.example"),
        format!("smtp://user:{PASSWORD}@x@127.0.0.1:2525?tls=none"),
        format!("smtp://üser:{PASSWORD}@localhost?auth=xoauth2"),
    ] {
        let t = transport::from_url(&url).unwrap();
        let debug = format!("{t:?}");
        assert!(!debug.contains(PASSWORD), "{url}: {debug}");
        assert!(debug.contains("user"), "{url}: {debug}");
    }
}

fn email() -> Email {
    Email::builder()
        .from("a@example.com")
        .to("b@example.org")
        .subject("s")
        .text("hello")
        .build()
        .unwrap()
}

/// `helo=` values that would end the `EHLO` line and open another command, or are not a
/// name RFC 5321 allows there.
const BAD_HELO: &[&str] = &[
    "x%0D%0AMAIL%20FROM:%3Cevil@attacker.example%3E",
    "x%0ARCPT%20TO:%3Cevil@attacker.example%3E",
    "x%0DRSET",
    "x%20RSET",
    "x%09y",
    "x%00y",
    "x%C2%85RSET",
    "b%C3%BCcher.example",
    "-x.example",
    "x..example",
    "[127.0.0.1",
    "[IPv6:nonsense]",
    "x@y",
    "",
];

#[tokio::test]
async fn helo_cannot_inject_smtp_commands() {
    let server = FakeServer::start(Script::default()).await;
    for helo in BAD_HELO {
        let url = server.url(&format!("helo={helo}"));
        let err = transport::from_url(&url).expect_err(&url);
        assert!(matches!(err, Error::Configuration { .. }), "{url}: {err}");
        assert_eq!(err.field(), Some("transport.helo"), "{url}: {err}");
        let shown = err.to_string();
        assert!(!shown.contains(['\r', '\n', '\0']), "{url}: {shown:?}");
    }
    // The builder checks the same name the same way.
    let err = SmtpTransport::builder("127.0.0.1")
        .port(server.port)
        .hello_name("x\r\nRSET")
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("smtp.helo"), "{err}");
    assert_eq!(server.stats.connections.load(Ordering::SeqCst), 0);

    // Valid names still go out, as given, and only as EHLO.
    for helo in ["client.example", "[127.0.0.1]", "[IPv6:::1]"] {
        let before = server.lines().len();
        let t = transport::from_url(&server.url(&format!("helo={helo}"))).unwrap();
        t.send(&email()).await.unwrap();
        let lines = server.lines()[before..].to_vec();
        let ehlo: Vec<&String> = lines.iter().filter(|l| l.starts_with("EHLO")).collect();
        assert!(!ehlo.is_empty(), "{lines:?}");
        assert!(
            ehlo.iter().all(|l| **l == format!("EHLO {helo}\r\n")),
            "{lines:?}"
        );
        t.close().await;
    }
    let lines = server.lines();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("evil") && !l.starts_with("RSET")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn credentials_that_would_split_the_auth_message_are_refused() {
    for (url, field) in [
        ("smtp://us%0D%0Aer:pw@127.0.0.1:1", "transport.user"),
        ("smtp://us%00er:pw@127.0.0.1:1", "transport.user"),
        ("smtp://user:p%00w@127.0.0.1:1", "transport.password"),
        (
            "smtp://user:tok%01en@127.0.0.1:1?auth=xoauth2",
            "transport.password",
        ),
    ] {
        let err = transport::from_url(url).expect_err(url);
        assert_eq!(err.field(), Some(field), "{url}: {err}");
        assert!(!err.to_string().contains("pw") || field == "transport.user");
    }
    // ^A is only a separator in XOAUTH2: a PLAIN password may hold it.
    transport::from_url("smtp://user:p%01w@127.0.0.1:1").unwrap();
}
