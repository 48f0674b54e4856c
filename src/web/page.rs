//! Rendering the UI's pages: the embedded page templates, and the context every page gets
//! — `csp_nonce` (the response's nonce, as Django's `csp()` context processor gives it),
//! `csrf_token`, and the navigation.

use axum::extract::FromRequestParts;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use minijinja::{AutoEscape, Environment, Value, context};

use super::AppState;
use super::access::CsrfToken;
use crate::csp::CspNonce;
use crate::error::{Error, Result};

/// The page templates, compiled once.
#[derive(Debug)]
pub(crate) struct Ui {
    env: Environment<'static>,
    /// `(href, label)` of the navigation.
    nav: Vec<(&'static str, &'static str)>,
}

const PAGES: [(&str, &str); 9] = [
    ("base.html", include_str!("assets/base.html")),
    ("inbox.html", include_str!("assets/inbox.html")),
    ("message.html", include_str!("assets/message.html")),
    ("templates.html", include_str!("assets/templates.html")),
    ("template.html", include_str!("assets/template.html")),
    ("preview.html", include_str!("assets/preview.html")),
    ("error.html", include_str!("assets/error.html")),
    ("queue.html", include_str!("assets/queue.html")),
    ("task.html", include_str!("assets/task.html")),
];

impl Ui {
    pub(crate) fn new(with_templates: bool, with_queue: bool) -> Result<Ui> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("urlencode", path_segment);
        for (name, source) in PAGES {
            env.add_template(name, source)
                .map_err(|e| Error::configuration("ui template", format!("{name}: {e}")))?;
        }
        let mut nav = vec![("/", "Inbox")];
        if with_templates {
            nav.push(("/templates", "Templates"));
        }
        if with_queue {
            nav.push(("/queue", "Queue"));
        }
        Ok(Ui { env, nav })
    }
}

/// `value` as one URL path segment: everything but the unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) percent-encoded.
fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What every page needs from the request: the nonce and the CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    nonce: CspNonce,
    csrf: CsrfToken,
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let nonce = CspNonce::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let csrf = CsrfToken::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Page { nonce, csrf })
    }
}

impl Page {
    /// The response's nonce.
    pub(crate) fn nonce(&self) -> &crate::csp::Nonce {
        self.nonce.nonce()
    }

    /// Renders page template `name` with `context` and the common variables.
    pub(crate) fn render(&self, state: &AppState, name: &str, ctx: Value) -> Response {
        self.render_status(state, StatusCode::OK, name, ctx)
    }

    pub(crate) fn render_status(
        &self,
        state: &AppState,
        status: StatusCode,
        name: &str,
        ctx: Value,
    ) -> Response {
        let full = context! {
            csp_nonce => self.nonce.as_str(),
            csrf_token => self.csrf.as_str(),
            nav => state.ui.nav.clone(),
            ..ctx
        };
        match state.ui.env.get_template(name).and_then(|t| t.render(full)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(page = name, error = %e, "page template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("page {name}: {e}\n"),
                )
                    .into_response()
            }
        }
    }

    /// An error page.
    pub(crate) fn error(&self, state: &AppState, status: StatusCode, message: &str) -> Response {
        self.render_status(
            state,
            status,
            "error.html",
            context! { status => status.as_u16(), message => message },
        )
    }
}
