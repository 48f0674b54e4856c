//! The inbox and message pages.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode, header};
use mail_parser::{MessageParser, MimeHeaders as _, PartType};
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::page::Page;
use super::{AppState, Shared};
use crate::csp::{self, CspLayer, Policy, Sources};

/// Messages per inbox page.
const PAGE_SIZE: usize = 50;
/// The raw source shown on a message page (the whole message is at `/raw`).
const RAW_SHOWN: usize = 256 * 1024;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(inbox))
        .route("/api/messages", get(api_messages))
        .route("/messages/{id}", get(message))
        // The body's own computed policy, set by the handler: the UI's policy stays off.
        .route(
            "/messages/{id}/html",
            get(message_html).route_layer(CspLayer::exempt()),
        )
        .route("/messages/{id}/raw", get(raw))
        .route("/messages/{id}/parts/{n}", get(part))
}

/// The query of the inbox and of `/api/messages`: the search, then the inbox's `page`, or
/// the API's window of the matches as Mailpit's API has it (`start` matches skipped, then
/// at most `limit`; no `limit`: all).
#[derive(Debug, Default, Deserialize)]
struct Search {
    #[serde(default)]
    to: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    start: usize,
    limit: Option<usize>,
}

async fn inbox(page: Page, State(state): State<Shared>, Query(q): Query<Search>) -> Response {
    let Some(inbox) = &state.inbox else {
        return page.render(&state, "inbox.html", context! { no_outbox => true });
    };
    let found = inbox.list(&q.to.to_lowercase(), &q.subject.to_lowercase());
    let pages = found.len().div_ceil(PAGE_SIZE).max(1);
    let current = q.page.unwrap_or(1).clamp(1, pages);
    let shown: Vec<_> = found
        .iter()
        .skip((current - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|s| &**s)
        .collect();
    let query = |p: usize| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("to", &q.to)
            .append_pair("subject", &q.subject)
            .append_pair("page", &p.to_string())
            .finish()
    };
    page.render(
        &state,
        "inbox.html",
        context! {
            page => "inbox",
            messages => Value::from(Serde(&shown)),
            found => found.len(),
            total => inbox.len(),
            to => &q.to,
            subject => &q.subject,
            current => current,
            pages => pages,
            prev => (current > 1).then(|| query(current - 1)),
            next => (current < pages).then(|| query(current + 1)),
            live => current == 1,
        },
    )
}

#[derive(Serialize)]
struct ApiMessages<'a> {
    /// How many messages match the search, on every page.
    total: usize,
    /// How many matching messages, newest first, come before this page.
    start: usize,
    messages: Vec<&'a super::inbox::Summary>,
}

async fn api_messages(State(state): State<Shared>, Query(q): Query<Search>) -> Response {
    let found = match &state.inbox {
        Some(inbox) => inbox.list(&q.to.to_lowercase(), &q.subject.to_lowercase()),
        None => Vec::new(),
    };
    let window = found
        .iter()
        .skip(q.start)
        .take(q.limit.unwrap_or(usize::MAX));
    Json(ApiMessages {
        total: found.len(),
        start: q.start,
        messages: window.map(|s| &**s).collect(),
    })
    .into_response()
}

/// The bytes of message `id`, or the 404 page.
async fn load(page: &Page, state: &AppState, id: &str) -> Result<Arc<[u8]>, Response> {
    let not_found = || page.error(state, StatusCode::NOT_FOUND, "no such message");
    let Some(inbox) = &state.inbox else {
        return Err(not_found());
    };
    match inbox.bytes(id).await {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(not_found()),
        Err(e) => Err(page.error(state, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
    }
}

#[derive(Serialize)]
struct PartRow {
    n: usize,
    filename: String,
    content_type: String,
    size: usize,
    content_id: Option<String>,
    inline: bool,
    image: bool,
}

/// Image types a page may show from this origin (not SVG: it can carry script).
fn showable_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

fn part_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned())
        .to_ascii_lowercase()
}

async fn message(page: Page, State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let bytes = match load(&page, &state, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(parsed) = MessageParser::default().parse(&*bytes) else {
        return page.error(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the message does not parse",
        );
    };
    let headers: Vec<(String, String)> = parsed
        .headers_raw()
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    let text = parsed
        .text_bodies()
        .find(|p| matches!(p.body, PartType::Text(_)))
        .and_then(|p| p.text_contents())
        .map(str::to_owned);
    let has_html = parsed
        .html_bodies()
        .any(|p| matches!(p.body, PartType::Html(_)));
    let parts: Vec<PartRow> = parsed
        .attachments()
        .enumerate()
        .map(|(n, p)| {
            let content_type = part_type(p);
            PartRow {
                n,
                filename: p
                    .attachment_name()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("part-{n}")),
                image: showable_image(&content_type),
                content_type,
                size: p.contents().len(),
                content_id: p
                    .content_id()
                    .map(|c| c.trim_matches(['<', '>']).to_owned()),
                inline: p.content_disposition().is_some_and(|d| d.is_inline()),
            }
        })
        .collect();
    let raw = String::from_utf8_lossy(&bytes[..bytes.len().min(RAW_SHOWN)]).into_owned();
    let dkim = state.dkim.verify(&bytes).await;
    let summary = state.inbox.as_ref().and_then(|i| i.get(&id));
    page.render(
        &state,
        "message.html",
        context! {
            page => "message",
            id => id,
            subject => parsed.subject().unwrap_or_default(),
            from => super::inbox::addresses(parsed.from()).join(", "),
            to => super::inbox::addresses(parsed.to()).join(", "),
            cc => super::inbox::addresses(parsed.cc()).join(", "),
            date => summary.and_then(|s| s.date.clone()),
            headers => headers,
            text => text,
            has_html => has_html,
            parts => Value::from(Serde(&parts)),
            raw => raw,
            raw_truncated => bytes.len() > RAW_SHOWN,
            dkim => Value::from(Serde(&dkim)),
        },
    )
}

/// The HTML body, with each `cid:` reference as a `data:` URI of its part (a browser cannot
/// fetch `cid:`, a mail client shows the part), under the body's computed policy with
/// `cid:` read as `data:`, plus `sandbox` and `frame-ancestors 'self'`.
async fn message_html(page: Page, State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let mut response = message_html_inner(&page, &state, &id).await;
    if !response.headers().contains_key(csp::HEADER) {
        // An error page: the UI's own policy.
        let value = super::ui_policy().header_value(Some(page.nonce()));
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(csp::HEADER, value);
        }
    }
    response
}

async fn message_html_inner(page: &Page, state: &AppState, id: &str) -> Response {
    let bytes = match load(page, state, id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(parsed) = MessageParser::default().parse(&*bytes) else {
        return page.error(
            state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the message does not parse",
        );
    };
    let Some(mut html) = parsed.html_bodies().find_map(|p| match &p.body {
        PartType::Html(h) => Some(h.to_string()),
        _ => None,
    }) else {
        return page.error(state, StatusCode::NOT_FOUND, "the message has no HTML part");
    };
    let policy = shown_policy(&crate::html::policy_for(&html));
    for p in parsed.attachments() {
        if let Some(cid) = p.content_id() {
            let cid = cid.trim_matches(['<', '>']);
            let reference = format!("cid:{cid}");
            if html.contains(&reference) {
                let data = format!(
                    "data:{};base64,{}",
                    part_type(p),
                    STANDARD.encode(p.contents())
                );
                html = html.replace(&reference, &data);
            }
        }
    }
    // A policy embedded by the sender (mailroom's pipeline writes one) reads `cid:` as
    // `data:` too, as the header does.
    let html = html.replace("img-src cid:", "img-src data:");
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    match HeaderValue::from_str(&policy.header_value(None)) {
        Ok(value) => {
            response.headers_mut().insert(csp::HEADER, value);
        }
        Err(_) => {
            response.headers_mut().insert(
                csp::HEADER,
                HeaderValue::from_static("default-src 'none'; sandbox"),
            );
        }
    }
    response
}

/// The policy a message body is shown under: its own, `cid:` read as `data:`, sandboxed,
/// framable only by the UI.
pub(crate) fn shown_policy(computed: &Policy) -> Policy {
    let mut policy = Policy::new();
    for (name, sources) in computed.directives() {
        let sources: Vec<String> = sources
            .into_iter()
            .map(|s| {
                if s == "cid:" {
                    "data:".to_owned()
                } else {
                    s.to_owned()
                }
            })
            .collect();
        policy = if sources.is_empty() {
            policy.with(name, Sources::Bare)
        } else {
            policy.list(name, sources)
        };
    }
    policy.list("frame-ancestors", [csp::SELF]).bare("sandbox")
}

async fn raw(page: Page, State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match load(&page, &state, &id).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            bytes.to_vec(),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct PartQuery {
    inline: Option<String>,
}

/// Attachment `n`: a download (`application/octet-stream`, so nothing of the message
/// renders in the UI's origin), or with `?inline` a PNG/JPEG/GIF/WebP image.
async fn part(
    page: Page,
    State(state): State<Shared>,
    Path((id, n)): Path<(String, usize)>,
    Query(q): Query<PartQuery>,
) -> Response {
    let bytes = match load(&page, &state, &id).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(parsed) = MessageParser::default().parse(&*bytes) else {
        return page.error(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the message does not parse",
        );
    };
    let Some(p) = parsed.attachments().nth(n) else {
        return page.error(&state, StatusCode::NOT_FOUND, "no such part");
    };
    let content_type = part_type(p);
    if q.inline.is_some() && showable_image(&content_type) {
        return (
            [(header::CONTENT_TYPE, content_type)],
            p.contents().to_vec(),
        )
            .into_response();
    }
    let name = p
        .attachment_name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("part-{n}"));
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut response = p.contents().to_vec().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
