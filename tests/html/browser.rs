//! Processed bodies in a real browser: headless Chromium (Debian's `chromium`) loads each
//! page from a local server (wiremock) under the body's computed policy, sent as a
//! `Content-Security-Policy` header with a `report-uri` on the same server.
//!
//! Violations are collected two ways: Chromium's console (`--enable-logging=stderr`), where
//! every CSP violation is logged, and the reports POSTed to the report endpoint.
//!
//! `cid:` images: a browser cannot fetch `cid:` URLs, so the page served swaps each
//! `cid:ID` for a `data:` URI of that part and the policy's `img-src cid:` for
//! `img-src data:` — what a mail client does when it shows an inline part. (Style
//! attributes carry no `cid:` in these bodies, so their hashes are untouched.)
//!
//! Legitimate bodies: zero violations, and the page renders pixel for pixel as it does with
//! no policy at all (styles applied, images shown). A control run under a policy without
//! the style hashes must differ and log violations, so the comparison can fail.
//!
//! Hostile bodies: no injected script runs — no request reaches the beacon URLs the
//! scripts call, and the DOM never shows the marker they write — both under the policy and
//! with no policy at all (the sanitizer alone). A control run of the raw hostile body
//! without policy must hit the beacon, so the check can fail.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use mailroom::html::{self, HtmlOptions, ProcessedHtml};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::hostile::hostile_cases;
use super::pipeline::{legit_options, read};

/// The legitimate bodies (fixtures/html/legit/NAME.html); css-escapes holds the CSS shapes
/// a browser decodes (`@\\69mport`, `\\75 rl()`, `image-set()`, `@font-face`) that the
/// computed policy must agree with.
const LEGIT_PAGES: [&str; 3] = ["newsletter", "inline-styles", "css-escapes"];

/// What one Chromium run saw.
#[derive(Debug)]
struct Run {
    url: String,
    /// Console lines about Content-Security-Policy.
    violations: Vec<String>,
    /// `--dump-dom` output, or the screenshot's bytes.
    output: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Capture {
    Dom,
    Screenshot,
}

fn chromium_binary() -> PathBuf {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = std::process::Command::new("which").arg(candidate).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    panic!("headless Chromium is required: apt-get install chromium (see .ci/setup.d/40-html.sh)");
}

async fn chromium(url: String, capture: Capture) -> Run {
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("shot.png");
    let mut cmd = tokio::process::Command::new(chromium_binary());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--window-size=800,900",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=3000",
    ])
    .arg(format!(
        "--user-data-dir={}",
        profile.path().join("profile").display()
    ))
    .kill_on_drop(true);
    match capture {
        Capture::Dom => cmd.arg("--dump-dom"),
        Capture::Screenshot => cmd.arg(format!("--screenshot={}", shot.display())),
    };
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.arg(&url).output())
        .await
        .expect("chromium did not finish within 90 s")
        .expect("chromium could not be started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let violations = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") && l.contains("Content Security Policy"))
        .map(str::to_owned)
        .collect();
    let output = match capture {
        Capture::Dom => out.stdout,
        Capture::Screenshot => {
            std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot of {url}: {e}\n{stderr}"))
        }
    };
    assert!(
        !output.is_empty(),
        "chromium produced nothing for {url}:\n{stderr}"
    );
    Run {
        url,
        violations,
        output,
    }
}

/// Runs Chromium on each URL, two at a time.
async fn chromium_all(urls: Vec<(String, Capture)>) -> Vec<Run> {
    let mut runs: Vec<Run> = futures_util::stream::iter(urls)
        .map(|(u, c)| chromium(u, c))
        .buffer_unordered(2)
        .collect()
        .await;
    runs.sort_by(|a, b| a.url.cmp(&b.url));
    runs
}

async fn serve(server: &MockServer, at: &str, html: &str, policy: Option<&str>) {
    let mut response = ResponseTemplate::new(200)
        .set_body_raw(html.as_bytes().to_vec(), "text/html; charset=utf-8");
    if let Some(policy) = policy {
        response = response.insert_header(
            "Content-Security-Policy",
            format!("{policy}; report-uri {}/csp-report", server.uri()),
        );
    }
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(response)
        .mount(server)
        .await;
}

/// The page a mail client would show: `cid:` parts as `data:` URIs, and the policy to match.
fn as_shown(processed: &ProcessedHtml) -> (String, String) {
    let mut page = processed.html.clone();
    for part in &processed.inline_parts {
        let data = format!(
            "data:{};base64,{}",
            part.content_type(),
            STANDARD.encode(part.bytes().unwrap())
        );
        page = page.replace(&format!("cid:{}", part.content_id().unwrap()), &data);
    }
    let policy = processed
        .policy
        .header_value(None)
        .replace("img-src cid:", "img-src data:");
    (page.replace("img-src cid:", "img-src data:"), policy)
}

fn by_suffix<'a>(runs: &'a [Run], suffix: &str) -> &'a Run {
    runs.iter().find(|r| r.url.ends_with(suffix)).unwrap()
}

async fn reports(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/csp-report")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_bodies_render_under_their_policy_with_nothing_blocked() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/csp-report"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut urls = Vec::new();
    for name in LEGIT_PAGES {
        let source = read(&format!("legit/{name}.html"));
        let processed = html::process_html(&source, &legit_options()).unwrap();
        let (page, policy) = as_shown(&processed);
        assert!(page.contains("<meta http-equiv=\"Content-Security-Policy\""));
        // the same body without the embedded policy, shown with no policy at all
        let plain = html::process_html(&source, &legit_options().embed_policy(false)).unwrap();
        let (reference, _) = as_shown(&plain);
        // a policy that lacks the style hashes: styles must be blocked (the control)
        let strict = "default-src 'none'; img-src data:";
        serve(&server, &format!("/{name}/policy"), &page, Some(&policy)).await;
        serve(&server, &format!("/{name}/reference"), &reference, None).await;
        serve(
            &server,
            &format!("/{name}/control"),
            &reference,
            Some(strict),
        )
        .await;
        for kind in ["policy", "reference", "control"] {
            urls.push((
                format!("{}/{name}/{kind}", server.uri()),
                Capture::Screenshot,
            ));
        }
    }
    let runs = chromium_all(urls).await;
    for name in LEGIT_PAGES {
        let under_policy = by_suffix(&runs, &format!("/{name}/policy"));
        let reference = by_suffix(&runs, &format!("/{name}/reference"));
        let control = by_suffix(&runs, &format!("/{name}/control"));
        assert_eq!(
            under_policy.violations,
            Vec::<String>::new(),
            "{name}: violations under the computed policy"
        );
        assert!(
            under_policy.output == reference.output,
            "{name}: the page under its policy renders differently from the page without one"
        );
        assert!(
            !control.violations.is_empty(),
            "{name}: the control policy should have blocked styles"
        );
        assert!(
            control.output != reference.output,
            "{name}: blocking the styles changed nothing, so the comparison proves nothing"
        );
    }
    let reports: Vec<String> = reports(&server)
        .await
        .into_iter()
        .filter(|r| !r.contains("/control"))
        .collect();
    assert_eq!(
        reports,
        Vec::<String>::new(),
        "violation reports for pages under their computed policy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_injected_script_runs_with_or_without_the_policy() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/csp-report"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut urls = Vec::new();
    let cases = hostile_cases();
    for (name, source) in &cases {
        let source = source.replace(
            "http://beacon.invalid",
            &format!("{}/beacon/{name}", server.uri()),
        );
        let processed = html::process_html(&source, &HtmlOptions::default()).unwrap();
        let (page, policy) = as_shown(&processed);
        serve(&server, &format!("/{name}/policy"), &page, Some(&policy)).await;
        let bare =
            html::process_html(&source, &HtmlOptions::default().embed_policy(false)).unwrap();
        serve(
            &server,
            &format!("/{name}/sanitized-only"),
            &bare.html,
            None,
        )
        .await;
        urls.push((format!("{}/{name}/policy", server.uri()), Capture::Dom));
        urls.push((
            format!("{}/{name}/sanitized-only", server.uri()),
            Capture::Dom,
        ));
        if name == "scripts.html" {
            // the control: the raw body, no policy — its script must reach the beacon
            let raw = read("hostile/scripts.html").replace(
                "http://beacon.invalid",
                &format!("{}/beacon/control", server.uri()),
            );
            serve(&server, "/control/raw", &raw, None).await;
            urls.push((format!("{}/control/raw", server.uri()), Capture::Dom));
        }
    }
    let runs = chromium_all(urls).await;
    let requests = server.received_requests().await.unwrap();
    let beacons = |case: &str| -> Vec<String> {
        requests
            .iter()
            .map(|r| r.url.path().to_owned())
            .filter(|p| p.starts_with(&format!("/beacon/{case}")))
            .collect()
    };
    let control = by_suffix(&runs, "/control/raw");
    assert!(
        String::from_utf8_lossy(&control.output).contains("PWNED"),
        "control: the raw script did not run"
    );
    assert!(
        !beacons("control").is_empty(),
        "control: the raw script did not reach the beacon"
    );
    for (name, _) in &cases {
        for kind in ["policy", "sanitized-only"] {
            let run = by_suffix(&runs, &format!("/{name}/{kind}"));
            let dom = String::from_utf8_lossy(&run.output);
            assert!(dom.contains("<body"), "{name} {kind}: no DOM dumped");
            assert!(
                !dom.contains("PWNED"),
                "{name} {kind}: an injected script ran:\n{dom}"
            );
        }
        assert_eq!(
            beacons(name),
            Vec::<String>::new(),
            "{name}: injected content reached the beacon"
        );
    }
}
