//! `mailroom serve` over HTTP: the inbox (file and memory outboxes, newest first, search,
//! live events), message pages (headers, text, sandboxed HTML under its own policy, parts,
//! raw, DKIM), template previews (re-rendered on change, errors with file and line), the
//! strict policy on every page, access (401 without the token) and CSRF (403 without).

use std::time::Duration;

use mailroom::transport::{MemoryTransport, Transport as _};
use mailroom::web::App;
use mailroom::{Attachment, Email, csp};

use super::support::{self, PNG, attributes, client, deliver, email, eventually, start};

async fn get(url: &str) -> (reqwest::StatusCode, reqwest::header::HeaderMap, String) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The UI's policy, with this page's nonce, is on the response, and every script and
/// stylesheet of the page carries that nonce.
pub(crate) fn assert_strict(headers: &reqwest::header::HeaderMap, html: &str) {
    let policy = headers[csp::HEADER].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'; "), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let nonces = attributes(html, "nonce");
    assert_eq!(nonces.len(), 2, "one stylesheet and one script: {nonces:?}");
    for nonce in &nonces {
        assert!(
            policy.contains(&format!("script-src 'nonce-{nonce}'")),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("style-src 'nonce-{nonce}'")),
            "{policy}"
        );
    }
    assert!(
        !html.contains(" style=\""),
        "a style attribute would be blocked"
    );
    assert!(
        !html.contains(" onclick="),
        "an event handler would be blocked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_lists_newest_first_and_searches_by_recipient_and_subject() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), &email("First order", "ann@example.org")).await;
    deliver(dir.path(), &email("Second order", "bob@example.net")).await;
    deliver(dir.path(), &email("Password reset", "ann@example.org")).await;
    // the file transport's temporary files are not messages
    std::fs::write(dir.path().join(".half.eml.tmp"), "From: x").unwrap();
    let app = start(App::new().outbox_dir(dir.path())).await;

    let (status, headers, html) = get(&format!("{}/", app.url)).await;
    assert_eq!(status, 200);
    assert_strict(&headers, &html);
    let order: Vec<usize> = ["Password reset", "Second order", "First order"]
        .iter()
        .map(|s| html.find(s).unwrap_or_else(|| panic!("{s} missing")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "not newest first");
    assert!(html.contains(">3</span> of 3 messages"), "{html}");

    let (_, _, html) = get(&format!("{}/?to=ANN@", app.url)).await;
    assert!(html.contains("First order") && html.contains("Password reset"));
    assert!(!html.contains("Second order"));
    let (_, _, html) = get(&format!("{}/?to=ann&subject=order", app.url)).await;
    assert!(html.contains("First order"));
    assert!(!html.contains("Password reset") && !html.contains("Second order"));

    let (status, headers, json) = get(&format!("{}/api/messages?subject=order", app.url)).await;
    assert_eq!(status, 200);
    assert!(
        headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let messages = json["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["subject"], "Second order");
    assert_eq!(messages[0]["to"], serde_json::json!(["bob@example.net"]));
    assert_eq!(messages[0]["from"], "Shop <shop@example.com>");
    assert!(messages[0]["date"].as_str().unwrap().starts_with("20"));
    let keys: Vec<&String> = messages[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!(json["total"], 2);

    // A window of the matches, newest first, as Mailpit's `start` and `limit` give it.
    let page = |query: &str| {
        let url = format!("{}/api/messages?{query}", app.url);
        async move {
            let (status, _, json) = get(&url).await;
            assert_eq!(status, 200, "{url}: {json}");
            let json: serde_json::Value = serde_json::from_str(&json).unwrap();
            let subjects: Vec<String> = json["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["subject"].as_str().unwrap().to_owned())
                .collect();
            (
                json["total"].as_u64().unwrap(),
                json["start"].as_u64().unwrap(),
                subjects,
            )
        }
    };
    assert_eq!(
        page("limit=2").await,
        (3, 0, vec!["Password reset".into(), "Second order".into()])
    );
    assert_eq!(
        page("start=2&limit=2").await,
        (3, 2, vec!["First order".into()])
    );
    assert_eq!(page("start=3").await, (3, 3, vec![]));
    assert_eq!(
        page("subject=order&start=1").await,
        (2, 1, vec!["First order".into()])
    );
    let (status, _, body) = get(&format!("{}/api/messages?limit=ten", app.url)).await;
    assert_eq!(status, 400);
    assert!(body.contains("limit"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_outbox_is_shown_and_follows_new_sends() {
    let transport = MemoryTransport::new();
    transport
        .send(&email("From memory", "m@example.com"))
        .await
        .unwrap();
    let app = start(App::new().memory_outbox(transport.outbox())).await;
    let (_, _, html) = get(&format!("{}/", app.url)).await;
    assert!(html.contains("From memory"));
    transport
        .send(&email("Second from memory", "m@example.com"))
        .await
        .unwrap();
    let html = eventually("the second message", || async {
        let (_, _, html) = get(&format!("{}/", app.url)).await;
        html.contains("Second from memory").then_some(html)
    })
    .await;
    assert!(html.find("Second from memory").unwrap() < html.find(">From memory").unwrap());
    let (status, _, page) = get(&format!("{}/messages/2", app.url)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Text of Second from memory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_is_announced_on_the_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(App::new().outbox_dir(dir.path())).await;
    let mut events = client()
        .get(format!("{}/events", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.headers()[reqwest::header::CONTENT_TYPE],
        "text/event-stream"
    );
    deliver(dir.path(), &email("Live one", "live@example.com")).await;
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("Live one") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "no event for the new message: {seen}");
    assert!(seen.contains("event: message"), "{seen}");
    let data = seen.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(summary["subject"], "Live one");
    assert_eq!(summary["to"], serde_json::json!(["live@example.com"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_page_shows_headers_text_sandboxed_html_parts_and_raw() {
    let dir = tempfile::tempdir().unwrap();
    let message = Email::builder()
        .from("Zoë <zoe@example.com>")
        .to("Jürgen <jurgen@example.org>")
        .cc("copy@example.org")
        .subject("Rechnung über 5 €")
        .header("X-Campaign", "fall")
        .text("Plain text part")
        .html("<p>Logo: <img alt=\"logo\" src=\"cid:logo\"></p><p style=\"color:red\">red</p>")
        .attachment(Attachment::inline("logo", "logo.png", PNG.to_vec()))
        .attach("rechnung-über.pdf", b"%PDF-1.4 fake".to_vec())
        .build()
        .unwrap();
    deliver(dir.path(), &message).await;
    let app = start(App::new().outbox_dir(dir.path())).await;
    let (_, _, json) = get(&format!("{}/api/messages", app.url)).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id = json["messages"][0]["id"].as_str().unwrap().to_owned();

    let (status, headers, html) = get(&format!("{}/messages/{id}", app.url)).await;
    assert_eq!(status, 200);
    assert_strict(&headers, &html);
    assert!(html.contains("Rechnung über 5 €"));
    assert!(
        html.contains("Jürgen &lt;jurgen@example.org&gt;"),
        "decoded To"
    );
    assert!(
        html.contains("X-Campaign") && html.contains("fall"),
        "raw headers"
    );
    assert!(html.contains("Plain text part"));
    // the HTML part in a sandbox: no scripts, no same origin
    let iframe = &html[html.find("<iframe").unwrap()..];
    let iframe = &iframe[..iframe.find('>').unwrap()];
    assert!(iframe.contains("sandbox=\"\""), "{iframe}");
    assert!(!iframe.contains("allow-"), "{iframe}");
    assert!(
        iframe.contains(&format!("src=\"/messages/{id}/html\"")),
        "{iframe}"
    );
    // parts: the PDF to download, the logo shown
    assert!(html.contains("rechnung-über.pdf"));
    assert!(html.contains("application&#x2f;pdf"), "{html}");
    assert!(html.contains("?inline=1"), "the inline image is shown");
    // raw source
    assert!(html.contains("MIME-Version: 1.0"));

    // the HTML body under its computed policy, cid: as data:, sandboxed
    let (status, headers, body) = get(&format!("{}/messages/{id}/html", app.url)).await;
    assert_eq!(status, 200);
    let policy = headers[csp::HEADER].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(policy.contains("img-src data:"), "{policy}");
    assert!(
        policy.contains("'unsafe-hashes' 'sha256-"),
        "the style attribute's hash: {policy}"
    );
    assert!(
        policy.contains("frame-ancestors 'self'") && policy.ends_with("sandbox"),
        "{policy}"
    );
    assert!(
        !policy.contains("nonce-"),
        "the UI's policy is not on the body: {policy}"
    );
    assert!(body.contains("src=\"data:image/png;base64,"), "{body}");
    assert!(!body.contains("cid:logo"));

    // attachments download as octet-stream, named; images show inline only on request
    let parts: Vec<String> = attributes(&html, "href")
        .into_iter()
        .filter(|h| h.contains("/parts/"))
        .collect();
    let mut found_pdf = false;
    for href in parts {
        let response = client()
            .get(format!("{}{href}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()[reqwest::header::CONTENT_TYPE],
            "application/octet-stream"
        );
        let disposition = response.headers()[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.bytes().await.unwrap();
        if disposition.contains("rechnung-%C3%BCber.pdf") {
            assert_eq!(&bytes[..], b"%PDF-1.4 fake");
            found_pdf = true;
        }
    }
    assert!(found_pdf, "the PDF did not download");
    let img = attributes(&html, "src")
        .into_iter()
        .find(|s| s.contains("?inline=1"))
        .unwrap();
    let response = client()
        .get(format!("{}{img}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "image/png"
    );
    assert_eq!(&response.bytes().await.unwrap()[..], PNG);

    let (status, headers, raw) = get(&format!("{}/messages/{id}/raw", app.url)).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers[reqwest::header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    let file = std::fs::read_to_string(dir.path().join(format!("{id}.eml"))).unwrap();
    assert_eq!(raw, file);

    let (status, headers, html) = get(&format!("{}/messages/nope", app.url)).await;
    assert_eq!(status, 404);
    assert_strict(&headers, &html);
    let (status, _, _) = get(&format!("{}/messages/..%2F..%2Fetc%2Fpasswd/raw", app.url)).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_body_is_served_sandboxed_with_no_script_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hostile.eml"),
        support::hostile_eml("http://127.0.0.1:9"),
    )
    .unwrap();
    let app = start(App::new().outbox_dir(dir.path())).await;
    let (status, headers, _) = get(&format!("{}/messages/hostile/html", app.url)).await;
    assert_eq!(status, 200);
    let policy = headers[csp::HEADER].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(!policy.contains("script-src"), "{policy}");
    assert!(policy.contains("sandbox"), "{policy}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_message_shows_its_dkim_result() {
    let dir = tempfile::tempdir().unwrap();
    let signer = crate::html::dkim::rsa();
    let record = signer.dns_record();
    let name = signer.dns_name();
    support::deliver_signed(dir.path(), &email("Signed", "s@example.org"), signer).await;
    deliver(dir.path(), &email("Unsigned", "u@example.org")).await;
    let app = start(
        App::new()
            .outbox_dir(dir.path())
            .dkim_txt_record(&name, &record),
    )
    .await;
    let (_, _, json) = get(&format!("{}/api/messages", app.url)).await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id_of = |subject: &str| {
        json["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["subject"] == subject)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let signed = id_of("Signed");
    let (_, _, html) = get(&format!("{}/messages/{signed}", app.url)).await;
    assert!(
        html.contains("<strong>pass</strong> d=example.com s=rsa"),
        "{html}"
    );
    let (_, _, html) = get(&format!("{}/messages/{}", app.url, id_of("Unsigned"))).await;
    assert!(
        !html.contains("DKIM"),
        "an unsigned message shows no DKIM section"
    );

    // the same signed bytes with a signed header changed fail; with the body changed,
    // the body hash no longer matches
    let path = dir.path().join(format!("{signed}.eml"));
    let original = std::fs::read_to_string(&path).unwrap();
    for (name, from, to, expected) in [
        (
            "header",
            "Subject: Signed",
            "Subject: Forged",
            "<strong>fail</strong> d=example.com s=rsa",
        ),
        (
            "body",
            "Text of Signed",
            "Text of Forged",
            "body hash does not match",
        ),
    ] {
        assert!(original.contains(from));
        std::fs::write(
            dir.path().join(format!("{name}.eml")),
            original.replace(from, to),
        )
        .unwrap();
        let html = eventually("the tampered message", || async {
            let (status, _, html) = get(&format!("{}/messages/{name}", app.url)).await;
            (status == 200).then_some(html)
        })
        .await;
        assert!(html.contains(expected), "{name}: {html}");
        assert!(!html.contains("<strong>pass</strong>"), "{name}");
    }
}

fn templates_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("order.html"),
        "{% block subject %}Order {{ order.id }} is ready{% endblock %}\n\
         {% block text %}Hi {{ name }}, order {{ order.id }} is ready.{% endblock %}\n\
         {% block html %}<p>Hi <b>{{ name }}</b></p>{% endblock %}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("order.json"),
        r#"{"name": "Zoë", "order": {"id": 42}}"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("account")).unwrap();
    std::fs::write(
        dir.path().join("account/reset.html"),
        "{% block subject %}Reset{% endblock %}\n\
         {% block text %}\nYour code:\n{{ code }}{% endblock %}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("account/reset.json"), "{\"name\": 1}").unwrap();
    // a layout is not an email template: no subject block
    std::fs::write(
        dir.path().join("layout.html"),
        "<main>{% block body %}{% endblock %}</main>",
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_render_with_their_sample_context_and_errors_name_file_and_line() {
    let dir = templates_dir();
    let app = start(App::new().templates_dir(dir.path())).await;
    let (status, headers, html) = get(&format!("{}/templates", app.url)).await;
    assert_eq!(status, 200);
    assert_strict(&headers, &html);
    assert!(html.contains("Order 42 is ready"), "{html}");
    assert!(html.contains("Hi Zoë, order 42 is ready."));
    assert!(html.contains("src=\"/templates/order.html?view=html\""));
    assert!(html.contains("with order.json"));
    assert!(!html.contains("layout.html"), "a layout is not listed");
    assert!(
        html.replace("&#x2f;", "/")
            .contains("account/reset.html line 4: undefined value code"),
        "the error names file, line and value: {html}"
    );

    let (status, headers, body) = get(&format!("{}/templates/order.html?view=html", app.url)).await;
    assert_eq!(status, 200);
    assert!(body.contains("<p>Hi <b>Zoë</b></p>"), "{body}");
    let policy = headers[csp::HEADER].to_str().unwrap();
    assert!(
        policy.starts_with("default-src 'none'") && policy.contains("sandbox"),
        "{policy}"
    );

    let (status, headers, page) = get(&format!("{}/templates/order.html", app.url)).await;
    assert_eq!(status, 200);
    assert_strict(&headers, &page);
    assert!(page.contains("Order 42 is ready"));

    // a change to a file shows on the next render, and open pages are told
    let mut events = client()
        .get(format!("{}/events", app.url))
        .send()
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("order.json"),
        r#"{"name": "Ann", "order": {"id": 7}}"#,
    )
    .unwrap();
    let (_, _, page) = get(&format!("{}/templates/order.html", app.url)).await;
    assert!(page.contains("Order 7 is ready"), "{page}");
    let mut seen = String::new();
    let told = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: templates") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(told, "no templates event: {seen}");

    // a syntax error and a broken context file name their file and line
    std::fs::write(
        dir.path().join("order.json"),
        "{\n  \"name\": \"Ann\",\n  oops\n}",
    )
    .unwrap();
    let (_, _, page) = get(&format!("{}/templates/order.html", app.url)).await;
    assert!(page.contains("order.json line 3 column"), "{page}");
    std::fs::write(
        dir.path().join("order.html"),
        "{% block subject %}Order{% endblock %}\n{% block text %}\n{% if %}{% endblock %}",
    )
    .unwrap();
    std::fs::write(dir.path().join("order.json"), "{}").unwrap();
    let (_, _, page) = get(&format!("{}/templates/order.html", app.url)).await;
    assert!(page.contains("order.html line 3: syntax error"), "{page}");

    let (status, _, _) = get(&format!("{}/templates/nope.html", app.url)).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&format!("{}/templates/..%2F..%2Fetc%2Fpasswd", app.url)).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_route_answers_401_without_it() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), &email("Secret stuff", "a@example.com")).await;
    let app = start(App::new().outbox_dir(dir.path()).auth_token("s3cret-token")).await;
    for path in [
        "/",
        "/api/messages",
        "/events",
        "/messages/x",
        "/templates",
        "/assets/app.js",
        "/nope",
    ] {
        let (status, headers, body) = get(&format!("{}{path}", app.url)).await;
        assert_eq!(status, 401, "{path}");
        assert!(!body.contains("Secret stuff"));
        assert!(
            headers.contains_key(csp::HEADER),
            "{path}: even a 401 has the policy"
        );
    }
    let response = client()
        .post(format!("{}/csp-report", app.url))
        .header("content-type", "application/csp-report")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let wrong = client()
        .get(format!("{}/", app.url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client()
        .get(format!("{}/", app.url))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("Secret stuff"));

    // a browser opens ?token= once: a cookie (not the token itself) and a clean URL
    let once = client()
        .get(format!("{}/?subject=Secret&token=s3cret-token", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(once.status(), 303);
    assert_eq!(once.headers()["location"], "/?subject=Secret");
    let cookie = once.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("s3cret-token"),
        "the cookie holds a digest, not the token"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = client()
        .get(format!("{}/", app.url))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 200);
    let bad = client()
        .get(format!("{}/?token=nope", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_changing_request_without_the_csrf_token_answers_403() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(App::new().outbox_dir(dir.path())).await;
    // a page sets the cookie and carries the token for forms
    let response = client().get(format!("{}/", app.url)).send().await.unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("mailroom_csrf=") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let token = pair.strip_prefix("mailroom_csrf=").unwrap().to_owned();
    // a browser that has the cookie keeps it: no new one
    let again = client()
        .get(format!("{}/", app.url))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert!(again.headers().get("set-cookie").is_none());

    let post = |body: String, cookie: Option<String>, header: Option<String>| {
        let url = format!("{}/", app.url);
        async move {
            let mut request = client()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            if let Some(c) = cookie {
                request = request.header("cookie", c);
            }
            if let Some(h) = header {
                request = request.header("x-csrf-token", h);
            }
            request.send().await.unwrap().status()
        }
    };
    // no cookie, no field, a wrong field, a field without the cookie: 403
    assert_eq!(post(String::new(), None, None).await, 403);
    assert_eq!(post(String::new(), Some(pair.clone()), None).await, 403);
    assert_eq!(
        post(
            "csrf_token=AAAAAAAAAAAAAAAAAAAAAA".into(),
            Some(pair.clone()),
            None
        )
        .await,
        403
    );
    assert_eq!(post(format!("csrf_token={token}"), None, None).await, 403);
    assert_eq!(
        post(String::new(), Some(pair.clone()), Some("wrong".into())).await,
        403
    );
    // with the token (form field or header) the request gets past the check: `/` takes
    // no POST, so 405 — not 403
    assert_eq!(
        post(format!("a=1&csrf_token={token}"), Some(pair.clone()), None).await,
        405
    );
    assert_eq!(
        post(String::new(), Some(pair.clone()), Some(token.clone())).await,
        405
    );
    // violation reports come from browsers without it
    let response = client()
        .post(format!("{}/csp-report", app.url))
        .header("content-type", "application/csp-report")
        .body(r#"{"csp-report":{"blocked-uri":"inline"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

/// `mailroom serve` itself: a non-loopback address without a token exits 64; with
/// `MAILROOM_SERVE_TOKEN` it serves, answering 401 without the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_refuses_a_public_bind_without_a_token() {
    let bin = env!("CARGO_BIN_EXE_mailroom");
    let out = tokio::process::Command::new(bin)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("MAILROOM_SERVE_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--auth-token"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), &email("Over the CLI", "cli@example.com")).await;
    for (listen, token) in [("0.0.0.0:0", Some("tok-123")), ("127.0.0.1:0", None)] {
        let mut command = tokio::process::Command::new(bin);
        command
            .args(["serve", "--listen", listen, "--outbox"])
            .arg(dir.path())
            .env_remove("MAILROOM_SERVE_TOKEN")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = token {
            command.env("MAILROOM_SERVE_TOKEN", token);
        }
        let mut child = command.spawn().unwrap();
        let _kill = crate::KillOnDrop(vec![child.id().unwrap()]);
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let port = line
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned();
        let url = format!("http://127.0.0.1:{port}/");
        let plain = client().get(&url).send().await.unwrap();
        match token {
            Some(token) => {
                assert_eq!(plain.status(), 401, "{listen}");
                let authed = client().get(&url).bearer_auth(token).send().await.unwrap();
                assert_eq!(authed.status(), 200);
                assert!(authed.text().await.unwrap().contains("Over the CLI"));
            }
            None => {
                assert_eq!(plain.status(), 200, "loopback needs no login");
                assert!(plain.text().await.unwrap().contains("Over the CLI"));
            }
        }
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }
}
