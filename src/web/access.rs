//! Who may use the UI: the auth token (every route answers 401 without it, when one is
//! set) and the CSRF token every state-changing request needs (403 without).
//!
//! - **Auth**: `Authorization: Bearer TOKEN`, or the `mailroom_token` cookie that opening
//!   any page once with `?token=TOKEN` sets (the cookie holds the token's SHA-256, never the
//!   token). Tokens are compared as digests, so the comparison's time says nothing about
//!   the token.
//! - **CSRF** (double submit): every page response sets a random `mailroom_csrf` cookie
//!   (`SameSite=Strict`, `HttpOnly`) when the browser has none, and pages put the same value
//!   in their forms as `csrf_token` ([`CsrfToken`], in templates `{{ csrf_token }}`). A
//!   `POST`/`PUT`/`PATCH`/`DELETE` must carry it back as the form field `csrf_token` or the
//!   `X-CSRF-Token` header, equal to the cookie. Another site can make a browser send the
//!   cookie, but cannot read it to fill the field. `POST /csp-report` is exempt: browsers
//!   send reports without it.

use std::fmt;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use sha2::{Digest, Sha256};

/// The cookie that carries the auth token's digest.
const TOKEN_COOKIE: &str = "mailroom_token";
/// The cookie that carries the CSRF token.
const CSRF_COOKIE: &str = "mailroom_csrf";
/// The form field and header that carry it back.
pub(crate) const CSRF_FIELD: &str = "csrf_token";
const CSRF_HEADER: &str = "x-csrf-token";
/// Paths that take unsafe methods without a CSRF token.
const CSRF_EXEMPT: [&str; 1] = ["/csp-report"];
/// The largest form body read for its CSRF field.
const FORM_LIMIT: usize = 64 * 1024;

/// The auth token, kept as its digest.
#[derive(Clone)]
pub(crate) struct AuthToken {
    digest: String,
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(..)")
    }
}

impl AuthToken {
    pub(crate) fn new(token: &str) -> AuthToken {
        AuthToken {
            digest: digest(token),
        }
    }

    fn accepts(&self, candidate: &str) -> bool {
        digest(candidate) == self.digest
    }
}

fn digest(token: &str) -> String {
    let hash = Sha256::digest(token.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in the request.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Answers 401 unless the request carries the token (header, cookie, or `?token=` which
/// sets the cookie and redirects to the same URL without it).
pub(crate) async fn require_token(
    State(token): State<Option<AuthToken>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| token.accepts(b.trim()))
        || cookie(headers, TOKEN_COOKIE).is_some_and(|c| c == token.digest)
    {
        return next.run(request).await;
    }
    let uri = request.uri();
    if let Some(query) = uri.query() {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if let Some((_, given)) = pairs.iter().find(|(k, _)| k == "token")
            && token.accepts(given)
        {
            let rest: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "token").collect();
            let mut location = uri.path().to_owned();
            if !rest.is_empty() {
                location.push('?');
                location.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(rest)
                        .finish(),
                );
            }
            let mut response = Redirect::to(&location).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                token.digest
            )) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            return response;
        }
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "mailroom serve: this server needs its auth token (Authorization: Bearer TOKEN, or open it once with ?token=TOKEN)\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"mailroom\""),
    );
    response
}

/// The CSRF token of this browser, for forms: `<input type="hidden" name="csrf_token"
/// value="{{ csrf_token }}">`, or the `X-CSRF-Token` header of a script's request.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken(String);

impl CsrfToken {
    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

impl serde::Serialize for CsrfToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<CsrfToken>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "no csrf token: the route is outside the web module's router",
        ))
    }
}

/// A token is 128 random bits, URL-safe base64: the nonce generator serves.
fn fresh_token() -> String {
    crate::csp::Nonce::generate().as_str().to_owned()
}

fn valid_token(value: &str) -> bool {
    value.len() >= 22
        && value.len() <= 64
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Safe methods get the token (set as a cookie when new); unsafe methods must bring it
/// back (403 otherwise, and the handler never runs).
pub(crate) async fn csrf(request: Request, next: Next) -> Response {
    let existing = cookie(request.headers(), CSRF_COOKIE)
        .filter(|v| valid_token(v))
        .map(str::to_owned);
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if safe {
        let (token, new) = match existing {
            Some(t) => (t, false),
            None => (fresh_token(), true),
        };
        let mut request = request;
        request.extensions_mut().insert(CsrfToken(token.clone()));
        let mut response = next.run(request).await;
        if new
            && let Ok(value) = HeaderValue::from_str(&format!(
                "{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            ))
        {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    if CSRF_EXEMPT.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(expected) = existing else {
        return forbidden("no csrf cookie; load the page again and resubmit");
    };
    let from_header = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (request, given) = match from_header {
        Some(given) => (request, Some(given)),
        None => match form_field(request).await {
            Ok(pair) => pair,
            Err(response) => return response,
        },
    };
    // Both are the cookie's format, so comparing digests keeps the time independent of
    // where they differ.
    match given {
        Some(given) if digest(&given) == digest(&expected) => {
            let mut request = request;
            request.extensions_mut().insert(CsrfToken(expected));
            next.run(request).await
        }
        _ => forbidden("missing or wrong csrf token"),
    }
}

/// Reads a form body for its `csrf_token` and puts the body back for the handler.
async fn form_field(request: Request) -> Result<(Request, Option<String>), Response> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, FORM_LIMIT)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "form body too large\n").into_response());
        }
    };
    let given = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), given))
}

fn forbidden(why: &'static str) -> Response {
    (StatusCode::FORBIDDEN, format!("mailroom serve: {why}\n")).into_response()
}
