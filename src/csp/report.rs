//! Violation reports: parsing both formats browsers send, and a ready axum route that logs
//! each report as a `tracing` event.
//!
//! - `application/csp-report` (the `report-uri` directive): one object,
//!   `{"csp-report": {"document-uri": …, "violated-directive": …, …}}`.
//! - `application/reports+json` (the Reporting API, `report-to`): a list of reports, of
//!   which those of `"type": "csp-violation"` are read
//!   (`{"type": …, "url": …, "body": {"documentURL": …, "effectiveDirective": …, …}}`).

use std::fmt;

use axum::body::Body;
use axum::routing::{MethodRouter, post};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use http_body_util::LengthLimitError;
use serde::{Deserialize, Serialize};

/// The body size [`report_route`] accepts; larger bodies answer 413.
pub const REPORT_BODY_LIMIT: usize = 64 * 1024;

/// One Content-Security-Policy violation, from either report format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ViolationReport {
    /// The page whose policy was violated.
    pub document_uri: Option<String>,
    /// The directive whose check failed (`script-src-elem`, …).
    pub effective_directive: Option<String>,
    /// What was blocked: a URL, or `inline`, `eval`, …
    pub blocked_uri: Option<String>,
    /// `enforce` or `report`.
    pub disposition: Option<String>,
    /// The policy as the browser read it.
    pub original_policy: Option<String>,
    /// The file the violation happened in.
    pub source_file: Option<String>,
    /// Its line.
    pub line_number: Option<u64>,
    /// Its column.
    pub column_number: Option<u64>,
    /// The first characters of the blocked code (with `'report-sample'`).
    pub sample: Option<String>,
    /// The HTTP status of the page.
    pub status_code: Option<u64>,
}

/// Why a report body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The body is larger than the limit.
    #[error("report body over {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The content type is neither `application/csp-report` nor `application/reports+json`.
    #[error(
        "unsupported report content type {0:?}; expected application/csp-report or application/reports+json"
    )]
    UnsupportedType(String),
    /// The body is not a report of the format its content type names.
    #[error("invalid report: {0}")]
    Invalid(String),
}

impl ReportError {
    /// The status a report endpoint answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ReportError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ReportError::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ReportError::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LegacyBody {
    document_uri: Option<String>,
    violated_directive: Option<String>,
    effective_directive: Option<String>,
    blocked_uri: Option<String>,
    disposition: Option<String>,
    original_policy: Option<String>,
    source_file: Option<String>,
    line_number: Option<u64>,
    column_number: Option<u64>,
    script_sample: Option<String>,
    status_code: Option<u64>,
}

#[derive(Deserialize)]
struct Legacy {
    #[serde(rename = "csp-report")]
    csp_report: LegacyBody,
}

#[derive(Deserialize)]
struct ApiReport {
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    body: Option<ApiBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiBody {
    #[serde(rename = "documentURL")]
    document_url: Option<String>,
    effective_directive: Option<String>,
    #[serde(rename = "blockedURL")]
    blocked_url: Option<String>,
    disposition: Option<String>,
    original_policy: Option<String>,
    source_file: Option<String>,
    line_number: Option<u64>,
    column_number: Option<u64>,
    sample: Option<String>,
    status_code: Option<u64>,
}

/// The reports in `body`, read as its `content_type` says (parameters such as `charset`
/// ignored; `application/json` is read as the legacy format, as some browsers label it).
pub fn parse_reports(content_type: &str, body: &[u8]) -> Result<Vec<ViolationReport>, ReportError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let invalid = |e: serde_json::Error| ReportError::Invalid(e.to_string());
    match essence.as_str() {
        "application/csp-report" | "application/json" => {
            let r = serde_json::from_slice::<Legacy>(body)
                .map_err(invalid)?
                .csp_report;
            Ok(vec![ViolationReport {
                document_uri: r.document_uri,
                effective_directive: r.effective_directive.or(r.violated_directive),
                blocked_uri: r.blocked_uri,
                disposition: r.disposition,
                original_policy: r.original_policy,
                source_file: r.source_file,
                line_number: r.line_number,
                column_number: r.column_number,
                sample: r.script_sample,
                status_code: r.status_code,
            }])
        }
        "application/reports+json" => {
            let reports: Vec<ApiReport> = serde_json::from_slice(body).map_err(invalid)?;
            Ok(reports
                .into_iter()
                .filter(|r| r.kind == "csp-violation")
                .map(|r| {
                    let b = r.body.unwrap_or(ApiBody {
                        document_url: None,
                        effective_directive: None,
                        blocked_url: None,
                        disposition: None,
                        original_policy: None,
                        source_file: None,
                        line_number: None,
                        column_number: None,
                        sample: None,
                        status_code: None,
                    });
                    ViolationReport {
                        document_uri: b.document_url.or(r.url),
                        effective_directive: b.effective_directive,
                        blocked_uri: b.blocked_url,
                        disposition: b.disposition,
                        original_policy: b.original_policy,
                        source_file: b.source_file,
                        line_number: b.line_number,
                        column_number: b.column_number,
                        sample: b.sample,
                        status_code: b.status_code,
                    }
                })
                .collect())
        }
        other => Err(ReportError::UnsupportedType(other.to_owned())),
    }
}

/// Logs one report as a `tracing` warning (target `mailroom::csp::report`).
pub fn log_report(report: &ViolationReport) {
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    tracing::warn!(
        target: "mailroom::csp::report",
        document = %field(&report.document_uri),
        directive = %field(&report.effective_directive),
        blocked = %field(&report.blocked_uri),
        disposition = %field(&report.disposition),
        source = %field(&report.source_file),
        line = report.line_number.unwrap_or_default(),
        sample = %field(&report.sample),
        "content security policy violation"
    );
}

/// A `POST` route for violation reports, bodies up to [`REPORT_BODY_LIMIT`]: 204 for
/// reports read (each one logged by [`log_report`]), 413 for a larger body, 415 for another
/// content type, 400 for a body that does not parse.
///
/// ```
/// use axum::Router;
/// let app: Router = Router::new().route("/csp-report", mailroom::csp::report_route());
/// ```
pub fn report_route<S: Clone + Send + Sync + 'static>() -> MethodRouter<S> {
    report_route_with_limit(REPORT_BODY_LIMIT)
}

/// [`report_route`] with another body limit, in bytes.
pub fn report_route_with_limit<S: Clone + Send + Sync + 'static>(limit: usize) -> MethodRouter<S> {
    post(move |request: Request<Body>| async move {
        match read_reports(request, limit).await {
            Ok(reports) => {
                for report in &reports {
                    log_report(report);
                }
                StatusCode::NO_CONTENT
            }
            Err(e) => {
                tracing::debug!(target: "mailroom::csp::report", error = %e, "report refused");
                e.status()
            }
        }
    })
}

/// Reads and parses the reports of one request, refusing a body over `limit` bytes before
/// reading it when its length is announced, and as soon as it passes the limit otherwise.
pub async fn read_reports(
    request: Request<Body>,
    limit: usize,
) -> Result<Vec<ViolationReport>, ReportError> {
    let (parts, body) = request.into_parts();
    let content_type = content_type(&parts.headers);
    if declared_length(&parts.headers).is_some_and(|n| n > limit as u64) {
        return Err(ReportError::TooLarge { limit });
    }
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ReportError::TooLarge { limit });
        }
        Err(e) => return Err(ReportError::Invalid(format!("cannot read the body: {e}"))),
    };
    parse_reports(&content_type, &bytes)
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl fmt::Display for ViolationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} blocked {} on {}",
            self.effective_directive.as_deref().unwrap_or("?"),
            self.blocked_uri.as_deref().unwrap_or("?"),
            self.document_uri.as_deref().unwrap_or("?")
        )
    }
}
