//! The queue pages of `mailroom serve` over HTTP, against a real SQLite queue file: counts
//! per queue × status, the task list with its filters and keyset pages, task detail, and
//! the operator's actions (retry, cancel, pause, resume) as CSRF-protected POST forms that
//! change the queue as `mailroom tasks …` / `mailroom queue …` would; `/api/tasks` in the
//! `tasks list --json` form; and an app without a queue saying how to give one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailroom::tasks::{
    self, AttemptError, ClaimRequest, NewTask, QueueOperations, TaskFilter, TaskId, TaskPage,
    TaskStatus, WorkerBackend, WorkerBackendExt as _,
};
use mailroom::web::App;
use serde_json::json;

use super::serve::assert_strict;
use super::support::{attributes, client, email, start};

/// A SQLite queue file under `dir` with the queues `default` and `mail`.
pub(crate) fn queue_url(dir: &Path) -> String {
    format!("sqlite:{}?queues=default,mail", dir.join("q.db").display())
}

/// Enqueues a `send_mail` task for `subject` through the transport named `default` (what
/// `mailroom worker --via file:DIR` calls its transport).
pub(crate) async fn enqueue_mail(worker: &Arc<dyn WorkerBackend>, subject: &str) -> TaskId {
    let backend: &dyn tasks::TaskBackend = &**worker;
    mailroom::send_mail::enqueue(backend, &email(subject, "ann@example.org"), "default")
        .await
        .unwrap()
}

/// Has a worker claim the next task of `queue` and record a permanent failure for it, as
/// a worker records a refusal: the task is `FAILED`. Returns its id.
pub(crate) async fn fail_next(worker: &Arc<dyn WorkerBackend>, queue: &str) -> TaskId {
    let claimed = worker
        .claim(&ClaimRequest {
            worker_id: "test-worker".into(),
            queues: vec![queue.into()],
            limit: 1,
            lease: Duration::from_secs(300),
            now: chrono::Utc::now(),
            isolated: false,
            task_names: None,
            routes: None,
        })
        .await
        .unwrap();
    let lease = claimed[0].lease.clone();
    let applied = worker
        .fail(
            &lease,
            AttemptError {
                attempt: lease.attempt,
                kind: "permanent".into(),
                message: "550 5.1.1 <ann@example.org>: mailbox <unavailable>".into(),
                worker_id: Some("test-worker".into()),
                at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
    assert!(applied);
    lease.id
}

/// Undoes the HTML escaping of an attribute value.
pub(crate) fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A browser's session: the CSRF cookie a page set, and the token its forms carry.
struct Session {
    cookie: String,
    token: String,
}

async fn page(url: &str, session: Option<&Session>) -> (reqwest::StatusCode, String) {
    let mut request = client().get(url);
    if let Some(s) = session {
        request = request.header("cookie", &s.cookie);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Opens `url` as a browser does the first time: the page sets the CSRF cookie and puts
/// the token in its forms.
async fn open(url: &str) -> (Session, String) {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    let tokens: Vec<String> = html
        .match_indices("name=\"csrf_token\" value=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect();
    assert!(!tokens.is_empty(), "no form carries the CSRF token: {html}");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(
        cookie.strip_prefix("mailroom_csrf="),
        Some(tokens[0].as_str())
    );
    let token = tokens[0].clone();
    (Session { cookie, token }, html)
}

/// POSTs a form; `with_token` false leaves the CSRF token out (as another site would).
async fn post(
    url: &str,
    session: &Session,
    fields: &[(&str, &str)],
    with_token: bool,
) -> reqwest::Response {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    if with_token {
        form.append_pair("csrf_token", &session.token);
    }
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    client()
        .post(url)
        .header("cookie", &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.finish())
        .send()
        .await
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 303, "an action answers 303 See Other");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The ids of the task rows of a list page, in order.
fn listed(html: &str) -> Vec<String> {
    attributes(html, "id")
        .into_iter()
        .filter_map(|id| id.strip_prefix("t-").map(str::to_owned))
        .collect()
}

/// The `rel="next"` link of a list page.
fn next_link(html: &str) -> Option<String> {
    let at = html.find("rel=\"next\"")?;
    let start = html[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + html[start..].find('"')?;
    Some(unescape(&html[start..end]))
}

/// The count cell of `status` in the row of `queue`.
fn count(html: &str, queue: &str, status: &str) -> String {
    let row_start = html
        .find(&format!("id=\"queue-{queue}\""))
        .unwrap_or_else(|| panic!("no row for queue {queue}"));
    let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
    let cell = row
        .find(&format!("data-status=\"{status}\""))
        .unwrap_or_else(|| panic!("no {status} cell for {queue}: {row}"));
    let from = cell + row[cell..].find('>').unwrap() + 1;
    row[from..from + row[from..].find('<').unwrap()].to_owned()
}

struct Fixture {
    _dir: tempfile::TempDir,
    ops: Arc<dyn QueueOperations>,
    /// `send_mail` tasks on `default`, oldest first; the first one FAILED.
    mails: Vec<TaskId>,
    /// `report` tasks on `mail`, oldest first.
    reports: Vec<TaskId>,
}

/// Five `send_mail` tasks on `default` (the first FAILED after a permanent refusal) and
/// two `report` tasks on `mail`.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = queue_url(dir.path());
    let worker = tasks::connect_worker(&url).await.unwrap();
    let mut mails = Vec::new();
    for n in 0..5 {
        mails.push(enqueue_mail(&worker, &format!("Order {n}")).await);
    }
    assert_eq!(fail_next(&worker, "default").await, mails[0]);
    let mut reports = Vec::new();
    for n in 0..2 {
        reports.push(
            worker
                .enqueue(NewTask::new("report", json!({"week": n})).queue("mail"))
                .await
                .unwrap(),
        );
    }
    let ops = tasks::connect_operations(&url).await.unwrap();
    Fixture {
        _dir: dir,
        ops,
        mails,
        reports,
    }
}

fn ids(ids: &[TaskId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_page_counts_lists_filters_and_pages() {
    let f = fixture().await;
    let app = start(App::new().queue(f.ops.clone())).await;

    let response = client()
        .get(format!("{}/queue", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert_strict(&headers, &html);
    assert!(
        html.contains("<a href=\"&#x2f;queue\">Queue</a>")
            || html.contains("href=\"/queue\">Queue</a>"),
        "the navigation links the queue"
    );
    // counts per queue × status, every status shown
    assert_eq!(count(&html, "default", "READY"), "4");
    assert_eq!(count(&html, "default", "FAILED"), "1");
    assert_eq!(count(&html, "default", "SUCCESSFUL"), "0");
    assert_eq!(count(&html, "mail", "READY"), "2");
    assert_eq!(count(&html, "mail", "FAILED"), "0");
    assert!(!html.contains("id=\"estimated\""), "small counts are exact");
    // newest first: every task, reports (enqueued last) on top
    let mut newest_first: Vec<TaskId> = f.mails.iter().chain(&f.reports).copied().collect();
    newest_first.reverse();
    assert_eq!(listed(&html), ids(&newest_first));
    assert!(next_link(&html).is_none(), "one page holds all seven");

    // filters: status, task name, queue name (and together)
    let (_, html) = page(&format!("{}/queue?status=failed", app.url), None).await;
    assert_eq!(listed(&html), ids(&f.mails[..1]));
    assert!(
        html.contains("value=\"FAILED\" checked"),
        "the filter stays selected"
    );
    let (_, html) = page(&format!("{}/queue?task=report", app.url), None).await;
    assert_eq!(listed(&html), ids(&[f.reports[1], f.reports[0]]));
    let (_, html) = page(
        &format!("{}/queue?queue_name=default&status=READY", app.url),
        None,
    )
    .await;
    assert_eq!(
        listed(&html),
        ids(&[f.mails[4], f.mails[3], f.mails[2], f.mails[1]])
    );
    let (_, html) = page(
        &format!(
            "{}/queue?status=READY&status=FAILED&task=send_mail",
            app.url
        ),
        None,
    )
    .await;
    assert_eq!(listed(&html).len(), 5);
    let (_, html) = page(&format!("{}/queue?task=nothing", app.url), None).await;
    assert!(listed(&html).is_empty() && html.contains("No tasks match"));

    // time filters: enqueued from the third mail on; finished at all (the failed one)
    let all = f
        .ops
        .list_tasks(&TaskFilter::default(), 50, None)
        .await
        .unwrap();
    let third = all.tasks.iter().find(|t| t.id == f.mails[2]).unwrap();
    let from = third
        .enqueued_at
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let (status, html) = page(
        &format!("{}/queue?limit=2&enqueued_after={from}", app.url),
        None,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(listed(&html), ids(&[f.reports[1], f.reports[0]]));
    let next = next_link(&html).expect("a second page");
    assert!(
        next.contains("enqueued_after="),
        "the filter is kept: {next}"
    );
    let (_, html) = page(&format!("{}{next}", app.url), None).await;
    assert_eq!(listed(&html), ids(&[f.mails[4], f.mails[3]]));
    let (_, html) = page(&format!("{}{}", app.url, next_link(&html).unwrap()), None).await;
    assert_eq!(listed(&html), ids(&[f.mails[2]]));
    let (_, html) = page(
        &format!("{}/queue?finished_after=2000-01-01T00:00", app.url),
        None,
    )
    .await;
    assert_eq!(listed(&html), ids(&f.mails[..1]));
    assert!(
        html.contains("name=\"finished_after\" value=\"2000-01-01T00:00:00\""),
        "the time stays in the form"
    );
    let (_, html) = page(
        &format!("{}/queue?finished_before=2000-01-01T00:00:00Z", app.url),
        None,
    )
    .await;
    assert!(listed(&html).is_empty());
    let (status, html) = page(
        &format!("{}/queue?enqueued_before=yesterday", app.url),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        html.contains("enqueued_before") && html.contains("yesterday"),
        "{html}"
    );

    // keyset pages of three, following the "older" links, keep the filters
    let mut url = "/queue?limit=3&queue_name=default".to_owned();
    let mut pages = Vec::new();
    loop {
        let (status, html) = page(&format!("{}{url}", app.url), None).await;
        assert_eq!(status, 200);
        pages.push(listed(&html));
        match next_link(&html) {
            Some(next) => {
                assert!(
                    next.contains("after=t") && next.contains("queue_name=default"),
                    "{next}"
                );
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 2]);
    let mut mails_newest_first = f.mails.clone();
    mails_newest_first.reverse();
    assert_eq!(pages.concat(), ids(&mails_newest_first));

    // a bad filter is the caller's fault, and says which
    let (status, html) = page(&format!("{}/queue?status=bogus", app.url), None).await;
    assert_eq!(status, 400);
    assert!(html.contains("bogus"), "{html}");
    let (status, _) = page(&format!("{}/queue?after=nope", app.url), None).await;
    assert_eq!(status, 400);
    let (status, _) = page(&format!("{}/queue?limit=0", app.url), None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_page_shows_arguments_attempts_errors_and_result() {
    let f = fixture().await;
    let app = start(App::new().queue(f.ops.clone())).await;
    let failed = f.mails[0];
    let response = client()
        .get(format!("{}/queue/tasks/{failed}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    assert_strict(&headers, &html);
    assert!(html.contains("<dd id=\"status\">FAILED</dd>"), "{html}");
    assert!(html.contains("<dd id=\"attempts\">1 of "), "{html}");
    // the error, escaped (it holds angle brackets), with its kind and worker
    assert!(
        html.contains("550 5.1.1 &lt;ann@example.org&gt;: mailbox &lt;unavailable&gt;"),
        "{html}"
    );
    assert!(!html.contains("<unavailable>"));
    assert!(html.contains("<td>permanent</td>") && html.contains("test-worker"));
    // the arguments: the message as JSON
    let text = unescape(&html);
    assert!(text.contains("Order 0") && text.contains("\"transport\": \"default\""));
    // a FAILED task can be retried, not cancelled
    assert!(html.contains("id=\"retry\"") && !html.contains("id=\"cancel\""));

    // a ready task: cancellable, no errors; a successful one shows its result
    let (_, html) = page(&format!("{}/queue/tasks/{}", app.url, f.reports[0]), None).await;
    assert!(html.contains("<dd id=\"status\">READY</dd>"));
    assert!(html.contains("id=\"cancel\"") && !html.contains("id=\"retry\""));
    assert!(unescape(&html).contains("\"week\": 0"), "{html}");
    let worker = tasks::connect_worker(&queue_url(f._dir.path()))
        .await
        .unwrap();
    let claimed = worker
        .claim(&ClaimRequest {
            worker_id: "w2".into(),
            queues: vec!["mail".into()],
            limit: 1,
            lease: Duration::from_secs(300),
            now: chrono::Utc::now(),
            isolated: false,
            task_names: None,
            routes: None,
        })
        .await
        .unwrap();
    assert_eq!(claimed[0].lease.id, f.reports[0]);
    // running: a cancel is a request, shown on the page
    let (session, html) = open(&format!("{}/queue/tasks/{}", app.url, f.reports[0])).await;
    assert!(html.contains("<dd id=\"status\">RUNNING</dd>") && html.contains("id=\"cancel\""));
    let back = location(
        &post(
            &format!("{}/queue/tasks/{}/cancel", app.url, f.reports[0]),
            &session,
            &[],
            true,
        )
        .await,
    );
    assert_eq!(
        back,
        format!("/queue/tasks/{}?done=cancel_requested", f.reports[0])
    );
    let (_, html) = page(&format!("{}{back}", app.url), Some(&session)).await;
    assert!(html.contains("id=\"cancel-requested\"") && html.contains("Cancel requested"));
    assert!(!html.contains("id=\"cancel\""), "no second cancel button");
    worker
        .complete(&claimed[0].lease, json!({"rows": 12}))
        .await
        .unwrap();
    let (_, html) = page(&format!("{}/queue/tasks/{}", app.url, f.reports[0]), None).await;
    assert!(html.contains("id=\"result\""), "{html}");
    assert!(unescape(&html).contains("\"rows\": 12"), "{html}");

    // unknown and malformed ids
    let (status, _) = page(
        &format!(
            "{}/queue/tasks/01a23521-7053-72da-a8a6-000000000000",
            app.url
        ),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = page(&format!("{}/queue/tasks/not-an-id", app.url), None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_failed_task_needs_the_csrf_token_and_makes_it_ready() {
    let f = fixture().await;
    let app = start(App::new().queue(f.ops.clone())).await;
    let failed = f.mails[0];
    let (session, _) = open(&format!("{}/queue/tasks/{failed}", app.url)).await;
    let retry = format!("{}/queue/tasks/{failed}/retry", app.url);

    // without the token (or with a wrong one): 403, and the task is unchanged
    let refused = post(&retry, &session, &[], false).await;
    assert_eq!(refused.status(), 403);
    let forged = post(
        &retry,
        &session,
        &[("csrf_token", "AAAAAAAAAAAAAAAAAAAAAA")],
        false,
    )
    .await;
    assert_eq!(forged.status(), 403);
    let before = f.ops.get_result(failed).await.unwrap();
    assert_eq!(before.status, TaskStatus::Failed);

    let back = location(&post(&retry, &session, &[], true).await);
    assert_eq!(back, format!("/queue/tasks/{failed}?done=retried"));
    let after = f.ops.get_result(failed).await.unwrap();
    assert_eq!(after.status, TaskStatus::Ready);
    assert!(after.max_attempts > after.attempts, "the retry may run");
    assert_eq!(after.errors, before.errors, "the error history is kept");
    let (_, html) = page(&format!("{}{back}", app.url), Some(&session)).await;
    assert!(html.contains("<dd id=\"status\">READY</dd>"));
    assert!(html.contains("id=\"notice\">Put back to READY"), "{html}");

    // retrying it again (it is READY) changes nothing and says so
    let back = location(&post(&retry, &session, &[], true).await);
    assert!(back.ends_with("?done=not_retried"), "{back}");
    assert_eq!(
        f.ops.get_result(failed).await.unwrap().status,
        TaskStatus::Ready
    );
    // a `back` of this site's queue pages is followed; anything else is not
    let back = location(&post(&retry, &session, &[("back", "/queue?status=FAILED")], true).await);
    assert_eq!(back, "/queue?status=FAILED&done=not_retried");
    let back = location(&post(&retry, &session, &[("back", "https://evil.example/")], true).await);
    assert!(
        back.starts_with(&format!("/queue/tasks/{failed}")),
        "{back}"
    );
    let response = post(
        &format!(
            "{}/queue/tasks/01a23521-7053-72da-a8a6-000000000000/retry",
            app.url
        ),
        &session,
        &[],
        true,
    )
    .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_ready_task_and_pausing_a_queue_go_through_the_forms() {
    let f = fixture().await;
    let app = start(App::new().queue(f.ops.clone())).await;
    let ready = f.mails[2];
    let (session, html) = open(&format!("{}/queue", app.url)).await;
    assert!(
        html.contains("action=\"&#x2f;queue&#x2f;mail&#x2f;pause\"")
            || html.contains("action=\"/queue/mail/pause\""),
        "{html}"
    );

    // cancel without the token: 403, still READY
    let cancel = format!("{}/queue/tasks/{ready}/cancel", app.url);
    assert_eq!(post(&cancel, &session, &[], false).await.status(), 403);
    assert_eq!(
        f.ops.get_result(ready).await.unwrap().status,
        TaskStatus::Ready
    );
    let back = location(&post(&cancel, &session, &[], true).await);
    assert_eq!(back, format!("/queue/tasks/{ready}?done=cancelled"));
    assert_eq!(
        f.ops.get_result(ready).await.unwrap().status,
        TaskStatus::Cancelled
    );
    let (_, html) = page(&format!("{}/queue", app.url), Some(&session)).await;
    assert_eq!(count(&html, "default", "CANCELLED"), "1");
    assert_eq!(count(&html, "default", "READY"), "3");
    // cancelling it again: already finished
    let back = location(&post(&cancel, &session, &[], true).await);
    assert!(back.ends_with("?done=already_finished"), "{back}");

    // pause: stored in the queue's settings, shown on the page
    let pause = format!("{}/queue/mail/pause", app.url);
    assert_eq!(post(&pause, &session, &[], false).await.status(), 403);
    let paused = |settings: Vec<mailroom::tasks::QueueSettings>| {
        settings
            .iter()
            .find(|s| s.queue_name == "mail")
            .is_some_and(|s| s.paused_at.is_some())
    };
    assert!(!paused(f.ops.queue_settings().await.unwrap()));
    let back = location(&post(&pause, &session, &[("back", "/queue?task=report")], true).await);
    assert_eq!(back, "/queue?task=report&done=paused");
    assert!(paused(f.ops.queue_settings().await.unwrap()));
    let (_, html) = page(&format!("{}{back}", app.url), Some(&session)).await;
    let row_start = html.find("id=\"queue-mail\"").unwrap();
    let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
    assert!(
        row.contains("class=\"paused\">paused") && row.contains(">resume</button>"),
        "{row}"
    );
    assert!(html.contains("Paused: workers stop claiming"));

    let resume = format!("{}/queue/mail/resume", app.url);
    assert_eq!(post(&resume, &session, &[], false).await.status(), 403);
    assert!(paused(f.ops.queue_settings().await.unwrap()));
    let back = location(&post(&resume, &session, &[], true).await);
    assert_eq!(back, "/queue?done=resumed");
    assert!(!paused(f.ops.queue_settings().await.unwrap()));
    let (_, html) = page(&format!("{}/queue", app.url), Some(&session)).await;
    let row_start = html.find("id=\"queue-mail\"").unwrap();
    let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
    assert!(
        row.contains(">pause</button>") && !row.contains("class=\"paused\""),
        "{row}"
    );

    // a rate limit set elsewhere shows; an unknown queue cannot be paused
    f.ops
        .set_rate_limit(
            "default",
            Some(&mailroom::tasks::RateLimit::new(20, Duration::from_secs(1)).key_by(["domain"])),
        )
        .await
        .unwrap();
    let (_, html) = page(&format!("{}/queue", app.url), Some(&session)).await;
    assert!(
        unescape(&html).contains("<td>20/s per domain</td>"),
        "{html}"
    );
    let response = post(
        &format!("{}/queue/nowhere/pause", app.url),
        &session,
        &[],
        true,
    )
    .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_tasks_as_tasks_list_json_does() {
    let f = fixture().await;
    let app = start(App::new().queue(f.ops.clone())).await;
    let get = |url: String| async move {
        let response = client().get(url).send().await.unwrap();
        let status = response.status();
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (status, kind, response.text().await.unwrap())
    };
    let (status, kind, body) = get(format!("{}/api/tasks?status=READY&limit=4", app.url)).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/json"), "{kind}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let first: TaskPage = serde_json::from_value(json.clone()).unwrap();
    let expected = f
        .ops
        .list_tasks(
            &TaskFilter {
                statuses: vec![TaskStatus::Ready],
                ..TaskFilter::default()
            },
            4,
            None,
        )
        .await
        .unwrap();
    assert_eq!(first, expected);
    assert_eq!(json["tasks"][0]["status"], "READY");
    assert_eq!(json["tasks"][0]["task_name"], "report");
    assert_eq!(json["tasks"][0]["queue_name"], "mail");
    let next = json["next"].as_str().expect("a next cursor");
    let (_, _, body) = get(format!(
        "{}/api/tasks?status=READY&limit=4&after={next}",
        app.url
    ))
    .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["next"], serde_json::Value::Null);
    let second: TaskPage = serde_json::from_value(json).unwrap();
    let mut all: Vec<TaskId> = first
        .tasks
        .iter()
        .chain(&second.tasks)
        .map(|t| t.id)
        .collect();
    all.sort();
    let mut ready: Vec<TaskId> = f.mails[1..].iter().chain(&f.reports).copied().collect();
    ready.sort();
    assert_eq!(all, ready);
    let (status, _, body) = get(format!(
        "{}/api/tasks?task=send_mail&status=failed",
        app.url
    ))
    .await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(json["tasks"][0]["errors"][0]["kind"], "permanent");
    let (status, _, body) = get(format!(
        "{}/api/tasks?finished_after=2000-01-01T00:00:00Z",
        app.url
    ))
    .await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["tasks"].as_array().unwrap().len(),
        1,
        "only the failed task"
    );
    let (status, _, body) = get(format!("{}/api/tasks?status=nope", app.url)).await;
    assert_eq!(status, 400);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(json["error"].as_str().unwrap().contains("nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_queue_the_page_says_how_to_give_one() {
    let app = start(App::new()).await;
    let (session, html) = match client().get(format!("{}/queue", app.url)).send().await {
        Ok(response) => {
            assert_eq!(response.status(), 200);
            let cookie = response.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let token = cookie.strip_prefix("mailroom_csrf=").unwrap().to_owned();
            (Session { cookie, token }, response.text().await.unwrap())
        }
        Err(e) => panic!("{e}"),
    };
    assert!(
        html.contains("id=\"no-queue\"") && html.contains("--queue URL"),
        "{html}"
    );
    assert!(!html.contains(">Queue</a>"), "no queue in the navigation");
    let (status, body) = page(&format!("{}/api/tasks", app.url), None).await;
    assert_eq!(status, 404);
    assert!(body.contains("--queue"));
    let (status, _) = page(
        &format!(
            "{}/queue/tasks/01a23521-7053-72da-a8a6-000000000000",
            app.url
        ),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let response = post(
        &format!(
            "{}/queue/tasks/01a23521-7053-72da-a8a6-000000000000/retry",
            app.url
        ),
        &session,
        &[],
        true,
    )
    .await;
    assert_eq!(response.status(), 404);
}

/// `mailroom serve --queue URL` (or `MAILROOM_QUEUE`) shows that queue; a queue without
/// one to operate (`immediate:`) is a usage error (64).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_shows_the_queue_given_by_flag_or_environment() {
    let f = fixture().await;
    let url = queue_url(f._dir.path());
    let bin = env!("CARGO_BIN_EXE_mailroom");
    let out = tokio::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--queue", "immediate:"])
        .env_remove("MAILROOM_QUEUE")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for by_env in [false, true] {
        let mut command = tokio::process::Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("MAILROOM_QUEUE")
            .env_remove("MAILROOM_SERVE_TOKEN")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if by_env {
            command.env("MAILROOM_QUEUE", &url);
        } else {
            command.args(["--queue", &url]);
        }
        let mut child = command.spawn().unwrap();
        let _kill = crate::KillOnDrop(vec![child.id().unwrap()]);
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let base = line.trim_end_matches('/').to_owned();
        let (status, html) = page(&format!("{base}/queue"), None).await;
        assert_eq!(status, 200);
        assert_eq!(count(&html, "default", "FAILED"), "1", "by_env={by_env}");
        assert_eq!(count(&html, "mail", "READY"), "2");
        let (status, body) = page(&format!("{base}/api/tasks?status=FAILED"), None).await;
        assert_eq!(status, 200);
        assert!(body.contains(&f.mails[0].to_string()), "{body}");
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }
}

/// With an auth token, the queue pages and their actions answer 401 without it and
/// change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_queue_pages_answer_401_without_it() {
    let f = fixture().await;
    let app = start(App::new().queue(f.ops.clone()).auth_token("s3cret-token")).await;
    for path in [
        "/queue",
        &format!("/queue/tasks/{}", f.mails[0]),
        "/api/tasks",
    ] {
        let (status, body) = page(&format!("{}{path}", app.url), None).await;
        assert_eq!(status, 401, "{path}");
        assert!(
            !body.contains(&f.mails[0].to_string()),
            "{path} leaked a task"
        );
    }
    let response = client()
        .post(format!("{}/queue/tasks/{}/retry", app.url, f.mails[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        f.ops.get_result(f.mails[0]).await.unwrap().status,
        TaskStatus::Failed
    );
    let authed = client()
        .get(format!("{}/queue", app.url))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(authed.status(), 200);
    assert!(
        authed
            .text()
            .await
            .unwrap()
            .contains(&f.mails[0].to_string())
    );
}
