//! The templates pages: every email template of the templates directory rendered with its
//! sample context (`NAME.json` beside `NAME.html`, else `NAME.html.json`; none means `{}`),
//! subject, text and HTML side by side. Each request renders from the files as they are
//! now, and a watcher tells open pages (over `/events`) to reload when a file changes. A
//! template or context error shows in place of the rendering, naming the file and line.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode, header};
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::page::Page;
use super::{AppState, Event, Shared};
use crate::csp::{self, CspLayer};
use crate::html::HtmlOptions;
use crate::templates::Templates;

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/templates", get(list)).route(
        "/templates/{*name}",
        // `?view=html` serves the body under its own policy, as a message's HTML.
        get(one).route_layer(CspLayer::exempt()),
    )
}

/// One template, rendered.
#[derive(Debug, Serialize)]
struct Preview {
    name: String,
    context_file: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    has_html: bool,
    error: Option<String>,
}

/// The rendered parts, and the processed HTML with its policy.
struct Rendered {
    preview: Preview,
    html: Option<crate::html::ProcessedHtml>,
}

/// The email templates under `dir` (files that define a `subject` block), sorted.
fn email_templates(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if !name.ends_with(".json")
                && std::fs::read_to_string(&path).is_ok_and(|s| s.contains("block subject"))
                && let Ok(relative) = path.strip_prefix(dir)
            {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    found
}

/// The sample context file of template `name`, if there is one.
fn context_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let path = dir.join(name);
    let beside = path.with_extension("json");
    let appended = dir.join(format!("{name}.json"));
    [beside, appended].into_iter().find(|p| p.is_file())
}

fn render(dir: &Path, name: &str) -> Rendered {
    let mut preview = Preview {
        name: name.to_owned(),
        context_file: None,
        subject: None,
        text: None,
        has_html: false,
        error: None,
    };
    let context = match context_file(dir, name) {
        Some(path) => {
            let shown = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            preview.context_file = Some(shown.clone());
            match std::fs::read_to_string(&path) {
                Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(value) => value,
                    Err(e) => {
                        preview.error = Some(format!(
                            "{shown} line {} column {}: {e}",
                            e.line(),
                            e.column()
                        ));
                        return Rendered {
                            preview,
                            html: None,
                        };
                    }
                },
                Err(e) => {
                    preview.error = Some(format!("{shown}: {e}"));
                    return Rendered {
                        preview,
                        html: None,
                    };
                }
            }
        }
        None => serde_json::json!({}),
    };
    let parts = Templates::from_dir(dir).and_then(|t| t.parts(name, &context));
    let parts = match parts {
        Ok(parts) => parts,
        Err(e) => {
            preview.error = Some(e.to_string());
            return Rendered {
                preview,
                html: None,
            };
        }
    };
    preview.subject = Some(parts.subject);
    preview.text = parts.text;
    let base = dir.join(name);
    let base = base.parent().unwrap_or(dir);
    let html = match parts.html {
        Some(html) => {
            match crate::html::process_html(&html, &HtmlOptions::default().base_dir(base)) {
                Ok(processed) => {
                    preview.has_html = true;
                    if preview.text.is_none() {
                        preview.text = Some(processed.text.clone());
                    }
                    Some(processed)
                }
                Err(e) => {
                    preview.error = Some(format!("{name}: html: {e}"));
                    None
                }
            }
        }
        None => None,
    };
    Rendered { preview, html }
}

async fn list(page: Page, State(state): State<Shared>) -> Response {
    let Some(dir) = state.templates.clone() else {
        return page.error(
            &state,
            StatusCode::NOT_FOUND,
            "no templates directory (--templates DIR)",
        );
    };
    let previews = tokio::task::spawn_blocking(move || {
        email_templates(&dir)
            .iter()
            .map(|name| render(&dir, name).preview)
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    page.render(
        &state,
        "templates.html",
        context! { page => "templates", templates => Value::from(Serde(&previews)) },
    )
}

#[derive(Debug, Deserialize)]
struct View {
    view: Option<String>,
}

/// `/templates/{name}`: the page (under the UI's policy, set here since the route is
/// exempt from the outer layer), or with `?view=html` the body under its own.
async fn one(
    page: Page,
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Query(view): Query<View>,
) -> Response {
    let mut response = one_inner(&page, &state, name, view).await;
    if !response.headers().contains_key(csp::HEADER) {
        let value = super::ui_policy().header_value(Some(page.nonce()));
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(csp::HEADER, value);
        }
    }
    response
}

async fn one_inner(page: &Page, state: &AppState, name: String, view: View) -> Response {
    let Some(dir) = state.templates.clone() else {
        return page.error(
            state,
            StatusCode::NOT_FOUND,
            "no templates directory (--templates DIR)",
        );
    };
    let lookup = name.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        email_templates(&dir)
            .contains(&lookup)
            .then(|| render(&dir, &lookup))
    })
    .await
    .ok()
    .flatten();
    let Some(rendered) = rendered else {
        return page.error(state, StatusCode::NOT_FOUND, "no such email template");
    };
    if view.view.as_deref() == Some("html") {
        let Some(processed) = rendered.html else {
            return page.error(state, StatusCode::NOT_FOUND, "the template renders no HTML");
        };
        let mut html = processed.html.clone();
        for part in &processed.inline_parts {
            if let (Some(cid), Some(bytes)) = (part.content_id(), part.bytes()) {
                let data = format!(
                    "data:{};base64,{}",
                    part.content_type(),
                    STANDARD.encode(bytes)
                );
                html = html.replace(&format!("cid:{cid}"), &data);
            }
        }
        // The embedded `<meta>` policy says `img-src cid:`; read it as `data:` too.
        let html = html.replace("img-src cid:", "img-src data:");
        let policy = super::messages::shown_policy(&processed.policy);
        let mut response =
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
        let value = HeaderValue::from_str(&policy.header_value(None))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; sandbox"));
        response.headers_mut().insert(csp::HEADER, value);
        return response;
    }
    page.render(
        state,
        "template.html",
        context! { page => "templates", template => Value::from(Serde(&rendered.preview)) },
    )
}

/// What the directory looks like now: every file's path, size and modification time.
fn signature(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.push((
                    entry.path(),
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Announces `Event::Templates` whenever a file under `dir` changes, until the app is
/// dropped.
pub(crate) fn spawn_watcher(dir: PathBuf, state: &Arc<AppState>, every: Duration) {
    let weak: Weak<AppState> = Arc::downgrade(state);
    tokio::spawn(async move {
        let scan = |dir: PathBuf| tokio::task::spawn_blocking(move || signature(&dir));
        let Ok(mut last) = scan(dir.clone()).await else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            let Ok(now) = scan(dir.clone()).await else {
                break;
            };
            if now != last {
                last = now;
                let _ = state.events.send(Event::Templates);
            }
        }
    });
}
