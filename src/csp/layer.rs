//! [`CspLayer`]: a tower layer that puts a [`Policy`] (enforced, report-only, or both) on
//! every response of the service it wraps, with a fresh [`Nonce`] per response.
//!
//! Works with axum, hyper or any tower service over `http::Request` / `http::Response`.
//!
//! - **The nonce**: the layer makes one nonce per request (128 random bits), puts it in the
//!   request's extensions as a [`CspNonce`] (an axum extractor), and writes it into the
//!   policy where the [`NONCE`](super::NONCE) placeholder stands. The handler that writes
//!   `<script nonce="…">` and the header agree because they read the same value.
//! - **Override and exemption** (Django's `csp_override` / `csp_exempt`): a layer nearer the
//!   handler decides. It reuses the nonce the outer layer made, writes its own policies (or,
//!   [`CspLayer::exempt`], none) and marks the response, and every outer `CspLayer` then
//!   leaves the response alone.
//! - A response that already carries a `Content-Security-Policy` (or `…-Report-Only`)
//!   header keeps it: a handler that computes its own policy wins over the layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use tower::{Layer, Service};

use super::{HEADER, HEADER_REPORT_ONLY, Nonce, Policy};

/// The nonce of the current response, as the [`CspLayer`] in front of the handler made it.
///
/// Read it from the request's extensions (`request.extensions().get::<CspNonce>()`) or, in
/// axum, take it as an extractor:
///
/// ```
/// use mailroom::csp::CspNonce;
/// async fn page(nonce: CspNonce) -> String {
///     format!("<script nonce=\"{}\">…</script>", nonce.as_str())
/// }
/// ```
///
/// It serialises as the bare nonce, so templates can take it as their `csp_nonce`.
#[derive(Clone, PartialEq, Eq)]
pub struct CspNonce(Arc<Nonce>);

impl CspNonce {
    /// Wraps a nonce.
    pub fn new(nonce: Nonce) -> CspNonce {
        CspNonce(Arc::new(nonce))
    }

    /// A fresh nonce ([`Nonce::generate`]).
    pub fn generate() -> CspNonce {
        CspNonce::new(Nonce::generate())
    }

    /// The nonce for the `nonce="…"` attribute.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The nonce itself.
    pub fn nonce(&self) -> &Nonce {
        &self.0
    }
}

impl fmt::Debug for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A nonce is not a secret once sent, but logs need not repeat it.
        f.write_str("CspNonce(..)")
    }
}

impl fmt::Display for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CspNonce {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The rejection when a handler asks for a [`CspNonce`] and no [`CspLayer`] is in front of
/// it: a 500, since it is a wiring mistake, not a bad request.
#[derive(Debug, Clone, Copy)]
pub struct MissingCspNonce;

impl fmt::Display for MissingCspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no csp nonce in the request; add a `CspLayer` in front of this handler")
    }
}

impl std::error::Error for MissingCspNonce {}

impl axum::response::IntoResponse for MissingCspNonce {
    fn into_response(self) -> axum::response::Response {
        (http::StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CspNonce {
    type Rejection = MissingCspNonce;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CspNonce>()
            .cloned()
            .ok_or(MissingCspNonce)
    }
}

/// Marks a response whose policy a [`CspLayer`] has decided, so that outer layers leave it.
#[derive(Debug, Clone, Copy)]
struct Decided;

/// What a layer does to the responses it sees.
#[derive(Debug)]
enum Mode {
    Apply {
        enforce: Option<Policy>,
        report_only: Option<Policy>,
    },
    Exempt,
}

/// A tower [`Layer`] writing Content-Security-Policy headers with a per-response nonce.
///
/// ```
/// use axum::{Router, routing::get};
/// use mailroom::csp::{self, CspLayer, CspNonce, Policy};
///
/// let strict = Policy::new()
///     .list("default-src", [csp::NONE])
///     .list("script-src", [csp::NONCE]);
/// let app: Router = Router::new()
///     .route("/", get(|nonce: CspNonce| async move { format!("<script nonce={nonce}></script>") }))
///     // this route only: another policy (override)...
///     .route("/embed", get(|| async { "embeddable" })
///         .route_layer(CspLayer::new(Policy::new().list("frame-ancestors", ["*"]))))
///     // ...or none at all (exemption)
///     .route("/legacy", get(|| async { "old page" }).route_layer(CspLayer::exempt()))
///     .layer(CspLayer::new(strict).and_report_only(
///         Policy::new().list("require-trusted-types-for", ["'script'"]).list("report-uri", ["/csp-report"]),
///     ));
/// ```
#[derive(Debug, Clone)]
pub struct CspLayer {
    mode: Arc<Mode>,
}

impl CspLayer {
    /// Enforces `policy` (`Content-Security-Policy`).
    pub fn new(policy: Policy) -> CspLayer {
        CspLayer::with_mode(Mode::Apply {
            enforce: Some(policy),
            report_only: None,
        })
    }

    /// Only reports violations of `policy` (`Content-Security-Policy-Report-Only`).
    pub fn report_only(policy: Policy) -> CspLayer {
        CspLayer::with_mode(Mode::Apply {
            enforce: None,
            report_only: Some(policy),
        })
    }

    /// Adds a report-only policy beside the enforced one (replacing one set before).
    #[must_use]
    pub fn and_report_only(self, policy: Policy) -> CspLayer {
        let enforce = match &*self.mode {
            Mode::Apply { enforce, .. } => enforce.clone(),
            Mode::Exempt => None,
        };
        CspLayer::with_mode(Mode::Apply {
            enforce,
            report_only: Some(policy),
        })
    }

    /// No policy at all on the responses it wraps, whatever outer layers say
    /// (Django's `csp_exempt`). The request still gets a nonce.
    pub fn exempt() -> CspLayer {
        CspLayer::with_mode(Mode::Exempt)
    }

    fn with_mode(mode: Mode) -> CspLayer {
        CspLayer {
            mode: Arc::new(mode),
        }
    }

    /// The enforced policy, if any.
    pub fn policy(&self) -> Option<&Policy> {
        match &*self.mode {
            Mode::Apply { enforce, .. } => enforce.as_ref(),
            Mode::Exempt => None,
        }
    }

    /// The report-only policy, if any.
    pub fn report_only_policy(&self) -> Option<&Policy> {
        match &*self.mode {
            Mode::Apply { report_only, .. } => report_only.as_ref(),
            Mode::Exempt => None,
        }
    }
}

impl<S> Layer<S> for CspLayer {
    type Service = Csp<S>;

    fn layer(&self, inner: S) -> Csp<S> {
        Csp {
            inner,
            mode: Arc::clone(&self.mode),
        }
    }
}

/// The service [`CspLayer`] makes.
#[derive(Debug, Clone)]
pub struct Csp<S> {
    inner: S,
    mode: Arc<Mode>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Csp<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CspFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // An outer layer made the nonce already: keep it, so the handler and whichever
        // layer decides the header use the same one.
        let nonce = match request.extensions().get::<CspNonce>() {
            Some(nonce) => nonce.clone(),
            None => {
                let nonce = CspNonce::generate();
                request.extensions_mut().insert(nonce.clone());
                nonce
            }
        };
        CspFuture {
            inner: self.inner.call(request),
            mode: Arc::clone(&self.mode),
            nonce,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Csp`].
    pub struct CspFuture<F> {
        #[pin]
        inner: F,
        mode: Arc<Mode>,
        nonce: CspNonce,
    }
}

impl<F> fmt::Debug for CspFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CspFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for CspFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        if response.extensions().get::<Decided>().is_none() {
            if let Mode::Apply {
                enforce,
                report_only,
            } = &**this.mode
            {
                let nonce = this.nonce.nonce();
                if let Some(policy) = enforce {
                    set_header(&mut response, HEADER, policy, nonce);
                }
                if let Some(policy) = report_only {
                    set_header(&mut response, HEADER_REPORT_ONLY, policy, nonce);
                }
            }
            response.extensions_mut().insert(Decided);
        }
        Poll::Ready(Ok(response))
    }
}

/// Writes `policy` as header `name` unless the response has that header already.
fn set_header<B>(response: &mut Response<B>, name: &'static str, policy: &Policy, nonce: &Nonce) {
    let name = HeaderName::from_static(match name {
        HEADER => "content-security-policy",
        _ => "content-security-policy-report-only",
    });
    if response.headers().contains_key(&name) {
        return;
    }
    let value = policy.header_value(Some(nonce));
    if value.is_empty() {
        return;
    }
    let value = HeaderValue::from_str(&value).unwrap_or_else(|_| {
        // A source with a control character cannot be a header: fail closed.
        tracing::error!(
            header = %name,
            "the policy holds a character a header cannot carry; sending default-src 'none'"
        );
        HeaderValue::from_static("default-src 'none'")
    });
    response.headers_mut().insert(name, value);
}
