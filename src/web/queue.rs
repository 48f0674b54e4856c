//! The queue pages: counts per queue × status (estimates marked), each queue's pause and
//! rate limit, the task list (filters by status, task name, queue name and enqueue and
//! finish times; keyset pages with `?after=`), one task's detail (arguments, attempts,
//! errors, result, cancel request), and the operator's actions — retry, cancel, pause,
//! resume — as POST forms (the CSRF token checked before any handler runs) answered with a
//! 303 back. All of it goes through [`QueueOperations`], as `mailroom tasks …` and
//! `mailroom queue …` do.
//!
//! Without a queue (no [`App::queue`](super::App::queue)), `/queue` says how to give one
//! (`mailroom serve --queue URL`); the actions and `/api/tasks` answer 404.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Form;
use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use http::StatusCode;
use minijinja::context;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};

use super::Shared;
use super::page::Page;
use crate::tasks::{
    CancelOutcome, QueueOperations, RetrySelection, TaskCursor, TaskError, TaskFilter, TaskId,
    TaskResult, TaskStatus,
};

/// Tasks per page when `?limit=` is not given.
const DEFAULT_PAGE: usize = 50;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/queue", get(overview))
        .route("/queue/tasks/{id}", get(task))
        .route("/queue/tasks/{id}/retry", post(retry))
        .route("/queue/tasks/{id}/cancel", post(cancel))
        .route("/queue/{name}/pause", post(pause))
        .route("/queue/{name}/resume", post(resume))
        .route("/api/tasks", get(api_tasks))
}

/// The time filters of a listing, by query key: enqueued at or after, enqueued before,
/// finished at or after, finished before (as [`TaskFilter`]'s fields and
/// `mailroom tasks list --enqueued-after …` have them).
const TIME_KEYS: [&str; 4] = [
    "enqueued_after",
    "enqueued_before",
    "finished_after",
    "finished_before",
];

/// Reads the time given as `key`: RFC 3339 (`2026-12-01T10:00:00Z`), or a date and time
/// without an offset, as a browser's `datetime-local` input sends it, taken as UTC.
fn parse_time(key: &'static str, value: &str) -> Result<DateTime<Utc>, TaskError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.to_utc());
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            TaskError::invalid(
                key,
                format!(
                    "`{value}` is not a time: RFC 3339 (2026-12-01T10:00:00Z) or a UTC date \
                     and time (2026-12-01T10:00)"
                ),
            )
        })
}

/// What a listing asks for, read from the query string (`status` may repeat).
#[derive(Debug, Default)]
struct ListQuery {
    statuses: Vec<TaskStatus>,
    task: String,
    queue_name: String,
    /// By [`TIME_KEYS`].
    times: [Option<DateTime<Utc>>; 4],
    after: Option<TaskCursor>,
    limit: usize,
}

impl ListQuery {
    /// Reads `status` (repeatable, any case), `task`, `queue_name`, the [`TIME_KEYS`],
    /// `after`, `limit`.
    fn parse(query: Option<&str>) -> Result<ListQuery, TaskError> {
        let mut q = ListQuery {
            limit: DEFAULT_PAGE,
            ..ListQuery::default()
        };
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match &*key {
                "status" => {
                    let status = TaskStatus::parse(value)?;
                    if !q.statuses.contains(&status) {
                        q.statuses.push(status);
                    }
                }
                "task" => value.clone_into(&mut q.task),
                "queue_name" => value.clone_into(&mut q.queue_name),
                "after" => q.after = Some(value.parse()?),
                "limit" => {
                    q.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=crate::tasks::MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            TaskError::invalid(
                                "limit",
                                format!(
                                    "`{value}` is not a page size from 1 to {}",
                                    crate::tasks::MAX_PAGE
                                ),
                            )
                        })?;
                }
                key => {
                    if let Some(i) = TIME_KEYS.iter().position(|k| *k == key) {
                        q.times[i] = Some(parse_time(TIME_KEYS[i], value)?);
                    }
                }
            }
        }
        Ok(q)
    }

    fn filter(&self) -> TaskFilter {
        // In the order of TIME_KEYS.
        let [
            enqueued_after,
            enqueued_before,
            finished_after,
            finished_before,
        ] = self.times;
        TaskFilter {
            statuses: self.statuses.clone(),
            task_name: Some(self.task.clone()).filter(|t| !t.is_empty()),
            queue_name: Some(self.queue_name.clone()).filter(|q| !q.is_empty()),
            enqueued_after,
            enqueued_before,
            finished_after,
            finished_before,
        }
    }

    /// Whether any filter is set.
    fn filtered(&self) -> bool {
        !self.statuses.is_empty()
            || !self.task.is_empty()
            || !self.queue_name.is_empty()
            || self.times.iter().any(Option::is_some)
    }

    /// The time filters as the form's `datetime-local` inputs show them (UTC, no offset),
    /// by [`TIME_KEYS`]; empty where unset.
    fn time_inputs(&self) -> Vec<(&'static str, String)> {
        TIME_KEYS
            .iter()
            .zip(&self.times)
            .map(|(key, t)| {
                let shown = t.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string());
                (*key, shown.unwrap_or_default())
            })
            .collect()
    }

    /// The query string of these filters (without `after`), for the page links.
    fn filters_query(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for status in &self.statuses {
            out.append_pair("status", status.as_str());
        }
        if !self.task.is_empty() {
            out.append_pair("task", &self.task);
        }
        if !self.queue_name.is_empty() {
            out.append_pair("queue_name", &self.queue_name);
        }
        for (key, t) in TIME_KEYS.iter().zip(&self.times) {
            if let Some(t) = t {
                out.append_pair(key, &t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            }
        }
        if self.limit != DEFAULT_PAGE {
            out.append_pair("limit", &self.limit.to_string());
        }
        out.finish()
    }
}

/// The queue operations, or the answer for an app without a queue.
fn ops(state: &Shared) -> Option<Arc<dyn QueueOperations>> {
    state.queue.clone()
}

/// The HTTP status for a queue error: the caller's fault (400), no such task (404), or
/// the queue's (500, logged).
fn status_of(err: &TaskError) -> StatusCode {
    match err {
        TaskError::Invalid { .. } | TaskError::Configuration { .. } => StatusCode::BAD_REQUEST,
        TaskError::NotFound { .. } => StatusCode::NOT_FOUND,
        e => {
            tracing::error!(error = %e, "queue operation failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn error_page(page: &Page, state: &Shared, err: &TaskError) -> Response {
    page.error(state, status_of(err), &err.to_string())
}

fn no_queue_page(page: &Page, state: &Shared) -> Response {
    page.error(
        state,
        StatusCode::NOT_FOUND,
        "no queue: start `mailroom serve --queue URL` (sqlite:PATH or postgres://…, or MAILROOM_QUEUE) to see and steer its tasks",
    )
}

/// A time as the pages show it.
fn when(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// One row of the task list.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    task_name: String,
    queue_name: String,
    status: &'static str,
    cancel_requested: bool,
    attempts: u32,
    max_attempts: u32,
    enqueued_at: Option<String>,
    finished_at: Option<String>,
}

impl Row {
    fn of(t: &TaskResult) -> Row {
        Row {
            id: t.id.to_string(),
            task_name: t.task_name.clone(),
            queue_name: t.queue_name.clone(),
            status: t.status.as_str(),
            cancel_requested: t.cancel_requested_at.is_some(),
            attempts: t.attempts,
            max_attempts: t.max_attempts,
            enqueued_at: when(Some(t.enqueued_at)),
            finished_at: when(t.finished_at),
        }
    }
}

/// One count cell of the counts table.
#[derive(Debug, Serialize)]
struct Count {
    status: &'static str,
    count: u64,
    estimated: bool,
}

/// One queue of the counts table, with its settings.
#[derive(Debug, Serialize)]
struct QueueRow {
    name: String,
    counts: Vec<Count>,
    paused_at: Option<String>,
    rate_limit: Option<String>,
}

/// `GET /queue`: counts, queue settings, and one page of the filtered task list.
async fn overview(page: Page, State(state): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let Some(ops) = ops(&state) else {
        return page.render(&state, "queue.html", context! { no_queue => true });
    };
    let query = match ListQuery::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return error_page(&page, &state, &e),
    };
    let filter = query.filter();
    let (counts, settings, listing) = tokio::join!(
        ops.count_tasks(),
        ops.queue_settings(),
        ops.list_tasks(&filter, query.limit, query.after)
    );
    let (counts, settings, listing) = match (counts, settings, listing) {
        (Ok(c), Ok(s), Ok(l)) => (c, s, l),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return error_page(&page, &state, &e);
        }
    };
    let names: BTreeSet<&str> = counts
        .counts
        .keys()
        .map(String::as_str)
        .chain(settings.iter().map(|s| s.queue_name.as_str()))
        .collect();
    let queues: Vec<QueueRow> = names
        .into_iter()
        .map(|name| {
            let by_status = counts.counts.get(name);
            let setting = settings.iter().find(|s| s.queue_name == name);
            QueueRow {
                name: name.to_owned(),
                counts: TaskStatus::ALL
                    .iter()
                    .map(|&status| Count {
                        status: status.as_str(),
                        count: by_status.and_then(|m| m.get(&status)).copied().unwrap_or(0),
                        estimated: counts.is_estimated(name, status),
                    })
                    .collect(),
                paused_at: setting.and_then(|s| when(s.paused_at)),
                rate_limit: setting.and_then(|s| s.rate_limit.as_ref().map(ToString::to_string)),
            }
        })
        .collect();
    let filters = query.filters_query();
    let next = listing.next.map(|cursor| {
        let mut q = url::form_urlencoded::Serializer::new(filters.clone());
        q.append_pair("after", &cursor.to_string());
        q.finish()
    });
    let rows: Vec<Row> = listing.tasks.iter().map(Row::of).collect();
    // Where the forms come back to: this page, without the last action's notice.
    let back = {
        let mut q = url::form_urlencoded::Serializer::new(filters.clone());
        if let Some(after) = query.after {
            q.append_pair("after", &after.to_string());
        }
        let q = q.finish();
        if q.is_empty() {
            "/queue".to_owned()
        } else {
            format!("/queue?{q}")
        }
    };
    let selected: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
    let filtered = query.filtered();
    let times = query.time_inputs();
    page.render(
        &state,
        "queue.html",
        context! {
            page => "queue",
            statuses => TaskStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            queues => Serde(&queues),
            exact => counts.exact,
            tasks => Serde(&rows),
            selected => selected,
            task => &query.task,
            queue_name => &query.queue_name,
            enqueued_after => &times[0].1,
            enqueued_before => &times[1].1,
            finished_after => &times[2].1,
            finished_before => &times[3].1,
            filtered => filtered,
            paged => query.after.is_some(),
            first => filters,
            next => next,
            back => back,
            notice => notice(done(raw.as_deref()).as_deref()),
        },
    )
}

/// One failed attempt, as the detail page shows it.
#[derive(Debug, Serialize)]
struct ErrorRow {
    attempt: u32,
    kind: String,
    message: String,
    worker_id: Option<String>,
    at: Option<String>,
}

/// Notices the actions leave on the page they redirect to (`?done=`): fixed texts, so
/// nothing of the query is echoed.
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "retried" => "Put back to READY: a worker runs it again.",
        "not_retried" => "Not retried: only FAILED or CANCELLED tasks can be retried.",
        "cancelled" => "Cancelled: it will not run.",
        "cancel_requested" => "Cancel requested: its worker stops the attempt.",
        "already_finished" => "Not cancelled: it had already finished.",
        "paused" => "Paused: workers stop claiming from the queue.",
        "resumed" => "Resumed: workers claim from the queue again.",
        _ => return None,
    })
}

/// The `done` of a query string.
fn done(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.into_owned())
}

fn parse_id(id: &str) -> Result<TaskId, TaskError> {
    id.parse()
}

/// `GET /queue/tasks/{id}`: everything the queue knows about one task.
async fn task(
    page: Page,
    State(state): State<Shared>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(ops) = ops(&state) else {
        return no_queue_page(&page, &state);
    };
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return page.error(&state, StatusCode::NOT_FOUND, &e.to_string()),
    };
    let t = match ops.get_result(id).await {
        Ok(t) => t,
        Err(e) => return error_page(&page, &state, &e),
    };
    let done = done(raw.as_deref());
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let errors: Vec<ErrorRow> = t
        .errors
        .iter()
        .map(|e| ErrorRow {
            attempt: e.attempt,
            kind: e.kind.clone(),
            message: e.message.clone(),
            worker_id: e.worker_id.clone(),
            at: when(Some(e.at)),
        })
        .collect();
    let retryable = matches!(t.status, TaskStatus::Failed | TaskStatus::Cancelled);
    let cancellable = matches!(t.status, TaskStatus::Ready | TaskStatus::Running)
        && t.cancel_requested_at.is_none();
    page.render(
        &state,
        "task.html",
        context! {
            page => "task",
            notice => notice(done.as_deref()),
            t => Serde(Row::of(&t)),
            priority => t.priority,
            run_after => when(Some(t.run_after)),
            started_at => when(t.started_at),
            last_attempted_at => when(t.last_attempted_at),
            cancel_requested_at => when(t.cancel_requested_at),
            idempotency_key => t.idempotency_key.clone(),
            worker_ids => t.worker_ids.clone(),
            args => pretty(&t.args),
            return_value => t.return_value.as_ref().map(pretty),
            errors => Serde(&errors),
            retryable => retryable,
            cancellable => cancellable,
        },
    )
}

/// The form of an action: the CSRF token (checked before the handler) and where to go
/// back to.
#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    back: Option<String>,
}

/// Where an action redirects: the form's `back` when it is a queue page of this site,
/// else `default`.
fn back_to(form: &ActionForm, default: String, done: &str) -> Response {
    let target = form
        .back
        .as_deref()
        .filter(|b| b.starts_with("/queue") && !b.contains(['\\', '\r', '\n']))
        .map_or(default, str::to_owned);
    let target = if done.is_empty() {
        target
    } else {
        let sep = if target.contains('?') { '&' } else { '?' };
        format!("{target}{sep}done={done}")
    };
    Redirect::to(&target).into_response()
}

/// `POST /queue/tasks/{id}/retry`: a FAILED or CANCELLED task back to READY.
async fn retry(
    page: Page,
    State(state): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(ops) = ops(&state) else {
        return no_queue_page(&page, &state);
    };
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return page.error(&state, StatusCode::NOT_FOUND, &e.to_string()),
    };
    if let Err(e) = ops.get_result(id).await {
        return error_page(&page, &state, &e);
    }
    match ops.retry(&RetrySelection::Ids(vec![id])).await {
        Ok(ids) => {
            let done = if ids.contains(&id) {
                "retried"
            } else {
                "not_retried"
            };
            back_to(&form, format!("/queue/tasks/{id}"), done)
        }
        Err(e) => error_page(&page, &state, &e),
    }
}

/// `POST /queue/tasks/{id}/cancel`: a READY task never runs; a RUNNING one is asked to stop.
async fn cancel(
    page: Page,
    State(state): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let Some(ops) = ops(&state) else {
        return no_queue_page(&page, &state);
    };
    let id = match parse_id(&id) {
        Ok(id) => id,
        Err(e) => return page.error(&state, StatusCode::NOT_FOUND, &e.to_string()),
    };
    match ops.cancel(&[id]).await {
        Ok(outcomes) => {
            let done = match outcomes.first().map(|(_, o)| *o) {
                Some(CancelOutcome::Cancelled) => "cancelled",
                Some(CancelOutcome::Requested) => "cancel_requested",
                Some(CancelOutcome::AlreadyFinished(_)) => "already_finished",
                Some(CancelOutcome::NotFound) | None => {
                    return page.error(&state, StatusCode::NOT_FOUND, "no such task");
                }
            };
            back_to(&form, format!("/queue/tasks/{id}"), done)
        }
        Err(e) => error_page(&page, &state, &e),
    }
}

/// `POST /queue/{name}/pause`.
async fn pause(
    page: Page,
    State(state): State<Shared>,
    Path(name): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    set_paused(page, state, name, form, true).await
}

/// `POST /queue/{name}/resume`.
async fn resume(
    page: Page,
    State(state): State<Shared>,
    Path(name): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    set_paused(page, state, name, form, false).await
}

/// Pauses or resumes queue `name`, then goes back with `paused` or `resumed`.
async fn set_paused(
    page: Page,
    state: Shared,
    name: String,
    form: ActionForm,
    paused: bool,
) -> Response {
    let Some(ops) = ops(&state) else {
        return no_queue_page(&page, &state);
    };
    let (done, notice) = if paused {
        (ops.pause_queue(&name).await, "paused")
    } else {
        (ops.resume_queue(&name).await, "resumed")
    };
    match done {
        Ok(()) => back_to(&form, "/queue".to_owned(), notice),
        Err(e) => error_page(&page, &state, &e),
    }
}

/// `GET /api/tasks`: `{"tasks": [TaskResult…], "next": CURSOR-or-null}`, as
/// `mailroom tasks list --json` prints it; errors as `{"error": "…"}`.
async fn api_tasks(State(state): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let json_error = |status: StatusCode, message: String| {
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    };
    let Some(ops) = ops(&state) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "no queue: start `mailroom serve --queue URL`".to_owned(),
        );
    };
    let query = match ListQuery::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return json_error(status_of(&e), e.to_string()),
    };
    match ops
        .list_tasks(&query.filter(), query.limit, query.after)
        .await
    {
        Ok(page) => Json(page).into_response(),
        Err(e) => json_error(status_of(&e), e.to_string()),
    }
}
