//! The ready one-click unsubscribe endpoint (feature `web`): an axum router that a web app
//! nests where its [`Unsubscribe`] links point.
//!
//! - `POST /{token}` (RFC 8058: a receiver's one-click POST, body
//!   `List-Unsubscribe=One-Click`; or the confirmation form below) checks the token and
//!   records the opt-out: 200, and 200 again for a repeated POST (idempotent); 400 for a
//!   refused token (forged, expired, malformed: it will never work); 503 when the
//!   suppression list cannot be written (the receiver retries).
//! - `GET /{token}` (a person following the link) records nothing: it names the address
//!   and the list and shows a form that POSTs back, so that link scanners and prefetchers
//!   unsubscribe no one.
//!
//! The token in the URL is what authorises the opt-out (a mail client cannot carry a CSRF
//! token), so the POST takes no other credential. Every answer is served under
//! [`CspLayer`] with `default-src 'none'` and `form-action 'self'`; the pages hold no
//! script and no style.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;

use super::suppression::SuppressionStore;
use super::unsubscribe::{OptOutError, Unsubscribe};
use crate::csp::{self, CspLayer, Policy};

#[derive(Debug, Clone)]
struct Endpoint {
    unsubscribe: Unsubscribe,
    store: SuppressionStore,
}

/// The policy of the endpoint's pages: nothing but a form posting to itself.
fn policy() -> Policy {
    Policy::new()
        .list("default-src", [csp::NONE])
        .list("form-action", [csp::SELF])
        .list("base-uri", [csp::NONE])
        .list("frame-ancestors", [csp::NONE])
}

/// The one-click unsubscribe endpoint: `GET` and `POST` on `/{token}`. Nest it where the
/// links of `unsubscribe` point (`Router::new().nest("/unsubscribe", router)` for links
/// made with base `https://example.com/unsubscribe`); opt-outs are recorded in `store`.
pub fn unsubscribe_router(unsubscribe: Unsubscribe, store: SuppressionStore) -> Router {
    Router::new()
        .route("/{token}", get(confirm).post(opt_out))
        .with_state(Endpoint { unsubscribe, store })
        .layer(CspLayer::new(policy()))
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    )
}

fn refused() -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(page(
            "This unsubscribe link does not work",
            "<p>The link is not valid or has expired. Use the link of a more recent message.</p>",
        )),
    )
        .into_response()
}

async fn confirm(State(e): State<Endpoint>, Path(token): Path<String>) -> Response {
    match e.unsubscribe.verify(&token, Utc::now()) {
        Ok(claims) => Html(page(
            "Unsubscribe",
            &format!(
                "<p>Stop sending <strong>{list}</strong> to <strong>{to}</strong>?</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" \
                 value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>",
                list = escape(&claims.list),
                to = escape(&claims.recipient)
            ),
        ))
        .into_response(),
        Err(_) => refused(),
    }
}

async fn opt_out(State(e): State<Endpoint>, Path(token): Path<String>) -> Response {
    match e.unsubscribe.opt_out(&e.store, &token, Utc::now()).await {
        Ok(done) => {
            tracing::info!(list = %done.claims.list, newly_recorded = done.newly_recorded, "one-click unsubscribe recorded");
            Html(page(
                "Unsubscribed",
                &format!(
                    "<p>{to} will get no more {list}.</p>",
                    list = escape(&done.claims.list),
                    to = escape(&done.claims.recipient)
                ),
            ))
            .into_response()
        }
        Err(OptOutError::Token(_)) => refused(),
        Err(OptOutError::Storage(err)) => {
            tracing::error!(error = %err, "recording a one-click unsubscribe failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "60")],
                Html(page(
                    "Try again later",
                    "<p>The unsubscribe could not be recorded just now.</p>",
                )),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
