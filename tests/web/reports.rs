//! Violation reports: both formats parsed, each report a tracing event, bodies over the
//! limit refused with 413 (announced or streamed), other content types 415, bad JSON 400.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use mailroom::csp::{self, ReportError, ViolationReport};
use tower::ServiceExt as _;

const LEGACY: &str = r#"{"csp-report":{"document-uri":"http://127.0.0.1:8025/","referrer":"","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"default-src 'none'; report-uri /csp-report","disposition":"enforce","blocked-uri":"inline","line-number":12,"column-number":3,"source-file":"http://127.0.0.1:8025/","status-code":200,"script-sample":"alert(1)"}}"#;

const REPORTING_API: &str = r#"[
  {"age":2,"type":"csp-violation","url":"http://127.0.0.1:8025/messages/1","user_agent":"Chromium",
   "body":{"blockedURL":"https://evil.example/x.js","disposition":"report","documentURL":"http://127.0.0.1:8025/messages/1",
           "effectiveDirective":"script-src-elem","lineNumber":4,"columnNumber":9,"originalPolicy":"script-src 'none'",
           "referrer":"","sample":"","sourceFile":"http://127.0.0.1:8025/messages/1","statusCode":200}},
  {"age":1,"type":"deprecation","url":"http://127.0.0.1:8025/","body":{"id":"x","message":"old api"}}
]"#;

#[test]
fn the_legacy_format_is_read() {
    let reports = csp::parse_reports("application/csp-report", LEGACY.as_bytes()).unwrap();
    assert_eq!(
        reports,
        vec![ViolationReport {
            document_uri: Some("http://127.0.0.1:8025/".into()),
            effective_directive: Some("script-src-elem".into()),
            blocked_uri: Some("inline".into()),
            disposition: Some("enforce".into()),
            original_policy: Some("default-src 'none'; report-uri /csp-report".into()),
            source_file: Some("http://127.0.0.1:8025/".into()),
            line_number: Some(12),
            column_number: Some(3),
            sample: Some("alert(1)".into()),
            status_code: Some(200),
        }]
    );
    // a charset parameter and the application/json label some browsers use
    assert_eq!(
        csp::parse_reports("application/json; charset=utf-8", LEGACY.as_bytes()).unwrap(),
        reports
    );
}

#[test]
fn the_reporting_api_format_is_read_and_other_report_types_skipped() {
    let reports = csp::parse_reports("application/reports+json", REPORTING_API.as_bytes()).unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!(
        r.document_uri.as_deref(),
        Some("http://127.0.0.1:8025/messages/1")
    );
    assert_eq!(r.blocked_uri.as_deref(), Some("https://evil.example/x.js"));
    assert_eq!(r.effective_directive.as_deref(), Some("script-src-elem"));
    assert_eq!(r.disposition.as_deref(), Some("report"));
    assert_eq!((r.line_number, r.column_number), (Some(4), Some(9)));
}

#[test]
fn wrong_bodies_are_typed_errors() {
    assert!(matches!(
        csp::parse_reports("text/plain", b"hi"),
        Err(ReportError::UnsupportedType(t)) if t == "text/plain"
    ));
    assert!(matches!(
        csp::parse_reports("application/csp-report", b"{\"nope\": 1}"),
        Err(ReportError::Invalid(_))
    ));
    assert!(matches!(
        csp::parse_reports("application/reports+json", b"{}"),
        Err(ReportError::Invalid(_))
    ));
}

fn app() -> Router {
    Router::new().route("/csp-report", csp::report_route())
}

async fn post(content_type: &str, body: Body, length: Option<usize>) -> StatusCode {
    let mut request = Request::post("/csp-report").header(header::CONTENT_TYPE, content_type);
    if let Some(n) = length {
        request = request.header(header::CONTENT_LENGTH, n);
    }
    app()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap()
        .status()
}

/// Captures what the tracing subscriber of this thread writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_route_logs_each_report_as_a_tracing_event() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    assert_eq!(
        post("application/csp-report", Body::from(LEGACY), None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post("application/reports+json", Body::from(REPORTING_API), None).await,
        StatusCode::NO_CONTENT
    );
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("content security policy violation"))
        .collect();
    assert_eq!(events.len(), 2, "{log}");
    assert!(
        events[0].contains("blocked=inline") && events[0].contains("directive=script-src-elem"),
        "{}",
        events[0]
    );
    assert!(
        events[1].contains("blocked=https://evil.example/x.js"),
        "{}",
        events[1]
    );
    assert!(events.iter().all(|e| e.contains("mailroom::csp::report")));
}

#[tokio::test]
async fn bad_requests_get_their_status() {
    assert_eq!(
        post("text/plain", Body::from("hello"), None).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        post("application/csp-report", Body::from("not json"), None).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    // a valid report, padded past the limit inside a JSON string
    let padded = LEGACY.replace(
        "\"alert(1)\"",
        &format!("\"{}\"", "a".repeat(csp::REPORT_BODY_LIMIT)),
    );
    assert!(padded.len() > csp::REPORT_BODY_LIMIT);
    // announced by Content-Length: refused before reading
    assert_eq!(
        post(
            "application/csp-report",
            Body::from(padded.clone()),
            Some(padded.len())
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // streamed without a length: refused once it passes the limit
    let chunks: Vec<Result<String, std::io::Error>> = padded
        .as_bytes()
        .chunks(4096)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let stream = Body::from_stream(futures_util::stream::iter(chunks));
    assert_eq!(
        post("application/csp-report", stream, None).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // just under the limit is fine
    let fits = LEGACY.replace(
        "\"alert(1)\"",
        &format!("\"{}\"", "a".repeat(csp::REPORT_BODY_LIMIT - LEGACY.len())),
    );
    assert!(fits.len() <= csp::REPORT_BODY_LIMIT);
    assert_eq!(
        post("application/csp-report", Body::from(fits), None).await,
        StatusCode::NO_CONTENT
    );
    // and a smaller limit of one's own
    let small = Router::new().route("/r", csp::report_route_with_limit(100));
    let response = small
        .oneshot(
            Request::post("/r")
                .header(header::CONTENT_TYPE, "application/csp-report")
                .body(Body::from(LEGACY))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
