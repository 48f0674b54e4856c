//! Fetching remote images and stylesheets (feature `html-fetch`) against a wiremock server:
//! embedded within the limits, left remote beyond them.

use std::time::Duration;

use mailroom::Email;
use mailroom::html::{self, FetchLimits, HtmlOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::pipeline::fixtures;

async fn server() -> MockServer {
    let server = MockServer::start().await;
    let logo = std::fs::read(fixtures().join("legit/logo.png")).unwrap();
    let routes = [
        (
            "/img/logo.png",
            ResponseTemplate::new(200).set_body_raw(logo, "image/png"),
        ),
        (
            "/big.png",
            ResponseTemplate::new(200).set_body_raw(vec![0u8; 5000], "image/png"),
        ),
        (
            "/slow.png",
            ResponseTemplate::new(200)
                .set_body_raw(vec![1u8; 10], "image/png")
                .set_delay(Duration::from_secs(10)),
        ),
        ("/missing.png", ResponseTemplate::new(404)),
        (
            "/page",
            ResponseTemplate::new(200).set_body_raw(b"<p>not an image</p>".to_vec(), "text/html"),
        ),
        (
            "/style.css",
            ResponseTemplate::new(200)
                .set_body_raw(b"p { color: #123456 }".to_vec(), "text/css; charset=utf-8"),
        ),
    ];
    for (at, response) in routes {
        Mock::given(method("GET"))
            .and(path(at))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    server
}

fn email(uri: &str) -> Email {
    let html = format!(
        r#"<link rel="stylesheet" href="{uri}/style.css"><p>hello</p><img src="{uri}/img/logo.png"><img src="{uri}/big.png"><img src="{uri}/slow.png"><img src="{uri}/missing.png"><img src="{uri}/page">"#
    );
    Email::builder()
        .from("a@example.com")
        .to("b@example.org")
        .html(html)
        .build()
        .unwrap()
}

fn limits() -> FetchLimits {
    FetchLimits {
        max_bytes: 1000,
        max_resources: 10,
        timeout: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn remote_images_and_stylesheets_are_embedded_within_the_limits() {
    let server = server().await;
    let uri = server.uri();
    let out = html::process_fetching(&email(&uri), &HtmlOptions::default().fetch_remote(limits()))
        .await
        .unwrap();
    let body = out.html().unwrap();
    let parts: Vec<_> = out.attachments().iter().filter(|a| a.is_inline()).collect();
    assert_eq!(parts.len(), 1, "{body}");
    assert_eq!(
        parts[0].bytes().unwrap(),
        &std::fs::read(fixtures().join("legit/logo.png")).unwrap()[..]
    );
    assert_eq!(parts[0].filename(), Some("logo.png"));
    assert!(
        body.contains(&format!("src=\"cid:{}\"", parts[0].content_id().unwrap())),
        "{body}"
    );
    // too big, too slow, missing, not an image: left as they were
    for rest in ["big.png", "slow.png", "missing.png", "page"] {
        assert!(
            body.contains(&format!("src=\"{uri}/{rest}\"")),
            "{rest}: {body}"
        );
    }
    // the stylesheet was inlined, its link is gone
    assert!(
        body.contains(r#"<p style="color: #123456;">hello</p>"#) && !body.contains("<link"),
        "{body}"
    );
    let policy = html::policy(&out).to_string();
    assert!(policy.contains(&format!("img-src cid: {uri}")), "{policy}");
}

#[tokio::test]
async fn the_resource_count_is_limited() {
    let server = server().await;
    let limits = FetchLimits {
        max_resources: 1,
        ..limits()
    };
    let out = html::process_fetching(
        &email(&server.uri()),
        &HtmlOptions::default().fetch_remote(limits),
    )
    .await
    .unwrap();
    let fetched: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(
        fetched,
        ["/img/logo.png", "/style.css"],
        "one image and one stylesheet"
    );
    assert_eq!(out.attachments().len(), 1);
}

#[tokio::test]
async fn nothing_is_fetched_unless_asked() {
    let server = server().await;
    let out = html::process_fetching(&email(&server.uri()), &HtmlOptions::default())
        .await
        .unwrap();
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(out.attachments().is_empty());
    let out = html::process(&email(&server.uri()), &HtmlOptions::default()).unwrap();
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(out.attachments().is_empty());
}
