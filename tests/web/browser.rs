//! The UI in a real browser: Debian's chromium driven over WebDriver (chromium-driver's
//! `chromedriver`, fantoccini). Every page loads with zero CSP violations (Chromium's
//! console log, read back through the driver; a control proves a violation would show),
//! a hostile message's HTML runs no script (a control page with the same HTML and no
//! sandbox reaches the beacon, the message's never does), and a new message appears in
//! the open inbox without a reload. Screenshots of the inbox and of a message are kept
//! under `target/web/`.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use mailroom::web::App;
use mailroom::{Attachment, Email};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::{self, artifacts, deliver, email, eventually, start};

/// One browser at a time: the machine has two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn find_binary(names: &[&str]) -> PathBuf {
    for candidate in names {
        if let Ok(out) = std::process::Command::new("which").arg(candidate).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!(
        "{names:?} is required: apt-get install chromium chromium-driver (see .ci/setup.d/40-html.sh)"
    );
}

/// chromedriver on a free port, and a headless Chromium session on it.
struct Browser {
    client: Client,
    driver_url: String,
    session: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(find_binary(&["chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let driver_url = format!("http://127.0.0.1:{port}");
        eventually("chromedriver to be ready", || async {
            let r = support::client()
                .get(format!("{driver_url}/status"))
                .send()
                .await
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
            v["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": find_binary(&["chromium", "chromium-browser"]),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-extensions",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    "--force-device-scale-factor=1", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = tokio::time::timeout(
            Duration::from_secs(120),
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&driver_url),
        )
        .await
        .expect("chromium did not start within 120 s")
        .unwrap();
        let session = client.session_id().await.unwrap().unwrap().to_string();
        Browser {
            client,
            driver_url,
            session,
            _driver: driver,
            _profile: profile,
        }
    }

    /// The console messages logged since the last call.
    async fn console(&self) -> Vec<String> {
        let r = support::client()
            .post(format!(
                "{}/session/{}/se/log",
                self.driver_url, self.session
            ))
            .header("content-type", "application/json")
            .body(r#"{"type":"browser"}"#)
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        v["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no log from chromedriver: {v}"))
            .iter()
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The console messages about Content-Security-Policy since the last call.
    async fn violations(&self) -> Vec<String> {
        self.console()
            .await
            .into_iter()
            .filter(|m| {
                m.contains("Content Security Policy") || m.contains("Content-Security-Policy")
            })
            .collect()
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// A legitimate message: text, HTML with a style attribute, a `<style>`, an inline image.
fn rich_message() -> Email {
    Email::builder()
        .from("Shop <shop@example.com>")
        .to("Ann <ann@example.org>")
        .subject("Your order 42 has shipped")
        .text("Hi Ann,\n\nyour order 42 has shipped.\n")
        .html(
            "<html><head><style>h1 { color: #2857c5; font-family: sans-serif; }</style></head>\
             <body><h1>Order 42 has shipped</h1>\
             <p style=\"color: #555; font-size: 15px\">It should arrive on Friday.</p>\
             <p><img alt=\"logo\" width=\"40\" height=\"40\" src=\"cid:logo\"></p></body></html>",
        )
        .attachment(Attachment::inline(
            "logo",
            "logo.png",
            support::PNG.to_vec(),
        ))
        .attach("invoice.pdf", b"%PDF-1.4 fake".to_vec())
        .build()
        .unwrap()
}

async fn page_text(browser: &Browser) -> String {
    browser
        .client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_in_chromium_with_zero_csp_violations() {
    let _one = BROWSER.lock().await;
    let outbox = tempfile::tempdir().unwrap();
    for (subject, to) in [
        ("Welcome aboard", "ann@example.org"),
        ("Password reset", "bob@example.net"),
        ("Weekly digest", "ann@example.org"),
    ] {
        deliver(outbox.path(), &email(subject, to)).await;
    }
    deliver(outbox.path(), &rich_message()).await;
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("order.html"),
        "{% block subject %}Order {{ order.id }}{% endblock %}\
         {% block text %}Hi {{ name }}{% endblock %}\
         {% block html %}<h1 style=\"color: #036\">Hi {{ name }}</h1>{% endblock %}",
    )
    .unwrap();
    std::fs::write(
        templates.path().join("order.json"),
        r#"{"name": "Ann", "order": {"id": 1}}"#,
    )
    .unwrap();
    std::fs::write(
        templates.path().join("broken.html"),
        "{% block subject %}{{ nope }}{% endblock %}",
    )
    .unwrap();
    let app = start(
        App::new()
            .outbox_dir(outbox.path())
            .templates_dir(templates.path()),
    )
    .await;
    let browser = Browser::start().await;
    let c = &browser.client;

    c.goto(&format!("{}/", app.url)).await.unwrap();
    let rich_href = c
        .find(Locator::LinkText("Your order 42 has shipped"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let _ = browser.console().await;
    let pages = [
        "/".to_owned(),
        "/?to=ann&subject=".to_owned(),
        rich_href.clone(),
        format!("{rich_href}/html"),
        "/templates".to_owned(),
        "/templates/order.html".to_owned(),
        "/templates/order.html?view=html".to_owned(),
        "/no/such/page".to_owned(),
    ];
    for page in &pages {
        c.goto(&format!("{}{page}", app.url)).await.unwrap();
        // wait until the page and its frames have loaded
        eventually("the page to load", || async {
            let state = c.execute("return document.readyState", vec![]).await.ok()?;
            (state == "complete").then_some(())
        })
        .await;
        if page == &rich_href {
            // the stylesheet applied (a nonce'd <link>), the inline image shown
            let color = c
                .execute(
                    "return getComputedStyle(document.querySelector('header.top')).backgroundColor",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                color, "rgb(29, 35, 48)",
                "the UI's stylesheet did not apply"
            );
            let shot = c.screenshot().await.unwrap();
            std::fs::write(artifacts().join("message.png"), shot).unwrap();
        }
        if page == "/" {
            let shot = c.screenshot().await.unwrap();
            std::fs::write(artifacts().join("inbox.png"), shot).unwrap();
        }
        let violations = browser.violations().await;
        assert_eq!(violations, Vec::<String>::new(), "{page}: CSP violations");
    }
    // the message's HTML frame showed its styled body and the cid: image
    c.goto(&format!("{}{rich_href}/html", app.url))
        .await
        .unwrap();
    let h1 = c
        .execute(
            "return getComputedStyle(document.querySelector('h1')).color",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(h1, "rgb(40, 87, 197)", "the body's <style> was blocked");
    let loaded = c
        .execute(
            "var i = document.querySelector('img'); return i.complete && i.naturalWidth > 0",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(loaded, true, "the cid: image did not show");
    assert!(browser.violations().await.is_empty());
    // the template error shows in place, with file and line
    c.goto(&format!("{}/templates", app.url)).await.unwrap();
    assert!(
        page_text(&browser)
            .await
            .contains("broken.html line 1: undefined value nope")
    );

    // the control: an inline style the policy does not allow must show as a violation
    c.goto(&format!("{}/", app.url)).await.unwrap();
    let _ = browser.violations().await;
    c.execute(
        "var s = document.createElement('style'); s.textContent = 'body { color: red }'; document.head.appendChild(s); return true;",
        vec![],
    )
    .await
    .unwrap();
    let seen = eventually("the control violation", || async {
        let v = browser.violations().await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert!(seen[0].contains("style-src"), "{seen:?}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_message_runs_no_script_in_chromium() {
    let _one = BROWSER.lock().await;
    let beacon = MockServer::start().await;
    // the same HTML, not sandboxed and without a policy: its scripts reach the beacon
    let control = support::hostile_eml(&format!("{}/control", beacon.uri()));
    let control_html = control[control.find("<html>").unwrap()..].to_owned();
    Mock::given(method("GET"))
        .and(path("/page"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(control_html, "text/html"))
        .mount(&beacon)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&beacon)
        .await;
    let outbox = tempfile::tempdir().unwrap();
    std::fs::write(
        outbox.path().join("hostile.eml"),
        support::hostile_eml(&format!("{}/message", beacon.uri())),
    )
    .unwrap();
    let app = start(App::new().outbox_dir(outbox.path())).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    for page in ["/messages/hostile", "/messages/hostile/html"] {
        c.goto(&format!("{}{page}", app.url)).await.unwrap();
        eventually("the page to load", || async {
            let state = c.execute("return document.readyState", vec![]).await.ok()?;
            (state == "complete").then_some(())
        })
        .await;
    }
    c.goto(&format!("{}/messages/hostile", app.url))
        .await
        .unwrap();
    // the page is still the UI (the script would have replaced its body)
    let text = page_text(&browser).await;
    assert!(
        text.contains("Totally harmless") && text.contains("Raw source"),
        "{text}"
    );
    assert!(!text.starts_with("PWNED"), "the script reached the page");
    c.clone().enter_frame(0).await.unwrap();
    let heading = c
        .find(Locator::Id("x"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "hello", "the script ran in the frame");
    c.clone().enter_parent_frame().await.unwrap();

    // the control page runs its scripts; once it has reached the beacon, the message's
    // frame (loaded before it) has had its chance too
    c.goto(&format!("{}/page", beacon.uri())).await.unwrap();
    eventually("the control script to reach the beacon", || async {
        let requests = beacon.received_requests().await?;
        requests
            .iter()
            .any(|r| r.url.path().starts_with("/control/"))
            .then_some(())
    })
    .await;
    assert!(
        page_text(&browser).await.contains("PWNED"),
        "control: the script did not run"
    );
    let from_message: Vec<String> = beacon
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .filter(|p| p.starts_with("/message"))
        .collect();
    assert_eq!(
        from_message,
        Vec::<String>::new(),
        "the hostile message reached the beacon"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_message_appears_in_the_open_inbox_without_a_reload() {
    let _one = BROWSER.lock().await;
    let outbox = tempfile::tempdir().unwrap();
    deliver(outbox.path(), &email("Already there", "ann@example.org")).await;
    let app = start(App::new().outbox_dir(outbox.path())).await;
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&format!("{}/", app.url)).await.unwrap();
    c.find(Locator::LinkText("Already there")).await.unwrap();
    // a mark that a reload would wipe
    c.execute("window.__mailroomMark = 'still here'; return true;", vec![])
        .await
        .unwrap();
    // wait until the page's event stream is connected: its script has run
    eventually("the event stream", || async {
        let state = c
            .execute("return document.body.getAttribute('data-events')", vec![])
            .await
            .ok()?;
        (state == "open").then_some(())
    })
    .await;
    deliver(outbox.path(), &email("Appears live", "zed@example.org")).await;
    let link = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::LinkText("Appears live"))
        .await
        .expect("the new message did not appear");
    assert!(
        link.attr("href")
            .await
            .unwrap()
            .unwrap()
            .starts_with("/messages/")
    );
    let mark = c
        .execute("return window.__mailroomMark", vec![])
        .await
        .unwrap();
    assert_eq!(mark, "still here", "the page was reloaded");
    // newest first: the new row is the first
    let first = c
        .find(Locator::Css("#messages tr:first-child a"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(first, "Appears live");
    // a search the new message does not match keeps it out
    c.goto(&format!("{}/?subject=already", app.url))
        .await
        .unwrap();
    c.find(Locator::LinkText("Already there")).await.unwrap();
    deliver(outbox.path(), &email("Second live", "zed@example.org")).await;
    deliver(outbox.path(), &email("Already again", "zed@example.org")).await;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::LinkText("Already again"))
        .await
        .unwrap();
    assert!(!page_text(&browser).await.contains("Second live"));
    assert!(browser.violations().await.is_empty());
    browser.close().await;
}

/// The queue pages in Chromium: `/queue` and a task page load with zero CSP violations;
/// clicking "retry" on a FAILED `send_mail` task makes it READY, and a worker
/// (`mailroom worker --burst` with a `file:` transport) then delivers it.
#[cfg(all(feature = "sqlite", feature = "test-util"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_failed_task_in_chromium_lets_a_worker_deliver_it() {
    use mailroom::tasks::{self, TaskStatus};

    use super::queue::{enqueue_mail, fail_next, queue_url};

    let _one = BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = queue_url(dir.path());
    let worker = tasks::connect_worker(&url).await.unwrap();
    let failed = enqueue_mail(&worker, "Retry me please").await;
    assert_eq!(fail_next(&worker, "default").await, failed);
    let waiting = enqueue_mail(&worker, "Still waiting").await;
    let ops = tasks::connect_operations(&url).await.unwrap();
    assert_eq!(
        ops.get_result(failed).await.unwrap().status,
        TaskStatus::Failed
    );
    let outbox = dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let app = start(App::new().outbox_dir(&outbox).queue(ops.clone())).await;
    let browser = Browser::start().await;
    let c = &browser.client;

    let loaded = || async {
        eventually("the page to load", || async {
            let state = c.execute("return document.readyState", vec![]).await.ok()?;
            (state == "complete").then_some(())
        })
        .await;
    };
    c.goto(&format!("{}/queue", app.url)).await.unwrap();
    loaded().await;
    let color = c
        .execute(
            "return getComputedStyle(document.querySelector('header.top')).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        color, "rgb(29, 35, 48)",
        "the UI's stylesheet did not apply"
    );
    let text = page_text(&browser).await;
    assert!(
        text.contains("FAILED") && text.contains("send_mail"),
        "{text}"
    );
    let shot = c.screenshot().await.unwrap();
    std::fs::write(artifacts().join("queue.png"), shot).unwrap();
    assert_eq!(browser.violations().await, Vec::<String>::new(), "/queue");
    // the filter form works without JavaScript
    c.find(Locator::Css("input[name=status][value=FAILED]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form.search button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the filtered list", || async {
        let at = c.current_url().await.ok()?;
        at.query()
            .is_some_and(|q| q.contains("status=FAILED"))
            .then_some(())
    })
    .await;
    loaded().await;
    assert!(
        c.find(Locator::Id(&format!("t-{waiting}"))).await.is_err(),
        "the READY task is filtered out"
    );
    c.find(Locator::LinkText(&failed.to_string()))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = c
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id("status"))
        .await
        .unwrap();
    assert_eq!(status.text().await.unwrap(), "FAILED");
    loaded().await;
    assert!(page_text(&browser).await.contains("mailbox <unavailable>"));
    assert_eq!(
        browser.violations().await,
        Vec::<String>::new(),
        "task page"
    );

    // retry: a POST form with the CSRF token; the 303 brings the browser back
    c.find(Locator::Id("retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the task page to show READY", || async {
        let status = c.find(Locator::Id("status")).await.ok()?;
        (status.text().await.ok()? == "READY").then_some(())
    })
    .await;
    let current = c.current_url().await.unwrap();
    assert_eq!(current.path(), format!("/queue/tasks/{failed}"));
    assert_eq!(current.query(), Some("done=retried"));
    assert!(page_text(&browser).await.contains("Put back to READY"));
    assert_eq!(
        ops.get_result(failed).await.unwrap().status,
        TaskStatus::Ready
    );
    loaded().await;
    assert_eq!(
        browser.violations().await,
        Vec::<String>::new(),
        "after retry"
    );

    // a worker delivers it (and the one that was waiting)
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(["worker", "--queue", &url, "--burst", "--via"])
        .arg(format!("file:{}", outbox.display()))
        .env_remove("MAILROOM_QUEUE")
        .env_remove("MAILROOM_TRANSPORT")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = ops.get_result(failed).await.unwrap();
    assert_eq!(result.status, TaskStatus::Successful, "{result:?}");
    assert_eq!(result.errors.len(), 1, "the first refusal is kept");
    // the delivered message is in the outbox, and the inbox shows it
    c.goto(&format!("{}/", app.url)).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::LinkText("Retry me please"))
        .await
        .expect("the retried message was not delivered");
    c.goto(&format!("{}/queue/tasks/{failed}", app.url))
        .await
        .unwrap();
    let status = c.find(Locator::Id("status")).await.unwrap();
    assert_eq!(status.text().await.unwrap(), "SUCCESSFUL");
    loaded().await;
    assert_eq!(browser.violations().await, Vec::<String>::new());
    browser.close().await;
}
