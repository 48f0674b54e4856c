//! The web UI of `mailroom serve`: an inbox of sent messages and previews of email
//! templates, every page under a strict Content-Security-Policy from [`CspLayer`].
//!
//! ```no_run
//! # async fn run() -> mailroom::Result<()> {
//! use mailroom::web::App;
//!
//! let router = App::new()
//!     .outbox_dir("outbox")          // what `file:outbox` wrote
//!     .templates_dir("templates")    // each template beside its sample NAME.json
//!     .queue(mailroom::tasks::connect_operations("sqlite:queue.db").await?)
//!     .router()
//!     .await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8025").await
//!     .map_err(|e| mailroom::Error::io("127.0.0.1:8025", e))?;
//! mailroom::web::serve(listener, router).await
//!     .map_err(|e| mailroom::Error::io("serve", e))?;
//! # Ok(()) }
//! ```
//!
//! | route | what |
//! |---|---|
//! | `/` | the inbox, newest first; `?to=` and `?subject=` search; live via `/events` |
//! | `/messages/{id}` | headers, DKIM result, text, HTML in a sandboxed iframe, parts, raw |
//! | `/messages/{id}/html` | the HTML body under the message's computed policy |
//! | `/messages/{id}/raw` | the message bytes |
//! | `/messages/{id}/parts/{n}` | attachment `n` (a download; `?inline` shows an image) |
//! | `/templates`, `/templates/{name}` | each email template rendered with its sample context |
//! | `/queue` | counts per queue × status, pause and rate limit per queue, the task list (`?status=`, `?task=`, `?queue_name=`, `?after=`) |
//! | `/queue/tasks/{id}` | one task: arguments, attempts, errors, result, cancel request |
//! | `POST /queue/tasks/{id}/retry`, `…/cancel`, `POST /queue/{name}/pause`, `…/resume` | the operator's actions (CSRF token required), answered with a 303 back |
//! | `/api/tasks` | `{"tasks": [TaskResult…], "next": CURSOR-or-null}`, as `mailroom tasks list --json` |
//! | `/api/messages` | `{"total", "start", "messages": [{"id", "subject", "from", "to", "date"}…]}`, newest first; `to`, `subject` search as the inbox does, `start` and `limit` take a window (Mailpit's names; no `limit`: every match) |
//! | `/events` | server-sent events: `message` (a new message), `templates` (a file changed) |
//! | `POST /csp-report` | violation reports ([`csp::report_route`]) |
//!
//! Every page is served under [`ui_policy`]: `default-src 'none'`, scripts and styles by a
//! fresh nonce only, everything from the binary. Pages work without JavaScript; the script
//! only adds live updates.
//!
//! **Access**: with an [`auth_token`](App::auth_token) every route answers 401 without
//! it; every state-changing request needs the CSRF token ([`CsrfToken`]) and answers 403
//! without.

mod access;
mod dkim;
mod inbox;
mod messages;
mod page;
mod previews;
mod queue;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use tokio::sync::broadcast;

pub use access::CsrfToken;

use crate::csp::{self, CspLayer, Policy};
use crate::error::Result;
use crate::tasks::QueueOperations;
use crate::transport::Outbox;

/// What the live-update stream announces.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A message arrived in the outbox.
    Message(Arc<inbox::Summary>),
    /// A file of the templates directory changed.
    Templates,
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) ui: page::Ui,
    pub(crate) inbox: Option<Arc<inbox::Inbox>>,
    pub(crate) templates: Option<PathBuf>,
    pub(crate) queue: Option<Arc<dyn QueueOperations>>,
    pub(crate) dkim: dkim::Verifier,
    pub(crate) events: broadcast::Sender<Event>,
}

type Shared = Arc<AppState>;

/// The policy every page of the UI is served under:
/// `default-src 'none'; script-src 'nonce-…'; style-src 'nonce-…'; img-src 'self' data:;
/// connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none';
/// frame-ancestors 'none'; report-uri /csp-report`.
pub fn ui_policy() -> Policy {
    Policy::new()
        .list("default-src", [csp::NONE])
        .list("script-src", [csp::NONCE])
        .list("style-src", [csp::NONCE])
        .list("img-src", [csp::SELF, "data:"])
        .list("connect-src", [csp::SELF])
        .list("frame-src", [csp::SELF])
        .list("form-action", [csp::SELF])
        .list("base-uri", [csp::NONE])
        .list("frame-ancestors", [csp::NONE])
        .list("report-uri", ["/csp-report"])
}

/// Builds the UI's router: what to show, and who may see it.
#[derive(Clone, Default)]
#[must_use]
pub struct App {
    outbox: Option<inbox::Source>,
    templates: Option<PathBuf>,
    queue: Option<Arc<dyn QueueOperations>>,
    auth_token: Option<String>,
    poll: Option<Duration>,
    dkim_records: Vec<(String, String)>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("outbox", &self.outbox)
            .field("templates", &self.templates)
            .field("queue", &self.queue.as_ref().map(|q| q.name()))
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl App {
    /// An app showing nothing yet.
    pub fn new() -> App {
        App::default()
    }

    /// Shows the messages of a `file:` outbox directory (created when missing).
    pub fn outbox_dir(mut self, dir: impl Into<PathBuf>) -> App {
        self.outbox = Some(inbox::Source::Dir(dir.into()));
        self
    }

    /// Shows the messages of a memory transport's outbox
    /// ([`MemoryTransport::outbox`](crate::transport::MemoryTransport::outbox)).
    pub fn memory_outbox(mut self, outbox: Outbox) -> App {
        self.outbox = Some(inbox::Source::Memory(outbox));
        self
    }

    /// Previews the email templates of `dir`, each with the sample context `NAME.json`
    /// beside it.
    pub fn templates_dir(mut self, dir: impl Into<PathBuf>) -> App {
        self.templates = Some(dir.into());
        self
    }

    /// Shows and steers the tasks of a durable queue (`/queue`): counts, the task list,
    /// task detail, and retry / cancel / pause / resume. Open one with
    /// [`tasks::connect_operations`](crate::tasks::connect_operations).
    pub fn queue(mut self, operations: Arc<dyn QueueOperations>) -> App {
        self.queue = Some(operations);
        self
    }

    /// Requires `token` on every request (see the [module docs](self)).
    pub fn auth_token(mut self, token: impl Into<String>) -> App {
        self.auth_token = Some(token.into());
        self
    }

    /// How often the outbox and the templates are checked for changes (default 250 ms).
    pub fn poll_interval(mut self, every: Duration) -> App {
        self.poll = Some(every);
        self
    }

    /// A DKIM key record known without DNS: `name` as
    /// `SELECTOR._domainkey.DOMAIN`, `record` the TXT value (`v=DKIM1; k=rsa; p=…`, as
    /// [`DkimSigner::dns_record`](crate::dkim::DkimSigner::dns_record) writes it).
    pub fn dkim_txt_record(mut self, name: impl Into<String>, record: impl Into<String>) -> App {
        self.dkim_records.push((name.into(), record.into()));
        self
    }

    /// The router: reads the outbox once, then keeps it current in the background (tasks
    /// that end when the router is dropped). Must be called within a tokio runtime.
    pub async fn router(self) -> Result<Router> {
        let poll = self.poll.unwrap_or(Duration::from_millis(250));
        let (events, _) = broadcast::channel(1024);
        let inbox = match self.outbox {
            Some(source) => {
                let inbox = inbox::Inbox::open(source, events.clone()).await?;
                inbox.spawn_poller(poll);
                Some(inbox)
            }
            None => None,
        };
        let state = Arc::new(AppState {
            ui: page::Ui::new(self.templates.is_some(), self.queue.is_some())?,
            inbox,
            templates: self.templates,
            queue: self.queue,
            dkim: dkim::Verifier::new(&self.dkim_records)?,
            events,
        });
        if let Some(dir) = &state.templates {
            previews::spawn_watcher(dir.clone(), &state, poll);
        }
        let token = self.auth_token.as_deref().map(access::AuthToken::new);
        // The layers below cover every route merged here.
        let routes = Router::new()
            .merge(messages::routes())
            .merge(previews::routes())
            .merge(queue::routes())
            .route("/events", get(events_stream))
            .route("/assets/style.css", get(style))
            .route("/assets/app.js", get(script))
            .route("/csp-report", csp::report_route())
            .fallback(not_found)
            .with_state(state);
        Ok(routes
            .layer(axum::middleware::from_fn(access::csrf))
            .layer(axum::middleware::from_fn_with_state(
                token,
                access::require_token,
            ))
            .layer(axum::middleware::from_fn(common_headers))
            .layer(CspLayer::new(ui_policy())))
    }
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// Headers every response gets: no sniffing, no referrer.
async fn common_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/style.css"))
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn not_found(page: page::Page, State(state): State<Shared>) -> Response {
    page.error(&state, StatusCode::NOT_FOUND, "no such page")
}

/// `message` events (the new message's summary as JSON) and `templates` events.
async fn events_stream(State(state): State<Shared>) -> impl IntoResponse {
    use axum::response::sse::Event as SseEvent;
    let receiver = state.events.subscribe();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            let event = match receiver.recv().await {
                Ok(Event::Message(summary)) => match serde_json::to_string(&*summary) {
                    Ok(json) => SseEvent::default().event("message").data(json),
                    Err(_) => continue,
                },
                Ok(Event::Templates) => SseEvent::default().event("templates").data("changed"),
                // Fell behind: the page reloads to catch up.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    SseEvent::default().event("reload").data("lagged")
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok::<_, std::convert::Infallible>(event), receiver));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
