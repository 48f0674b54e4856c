//! The PostgreSQL backend against the PostgreSQL on this machine: the shared conformance
//! suite, its own checks (schema choice, migrations, transactional enqueue, LISTEN/NOTIFY,
//! fencing after a takeover) and real worker processes (`examples/task_worker.rs`):
//! four draining 20,000 tasks, and a SIGKILL mid-run.
//!
//! The database comes from `MAILROOM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Each test works in a fresh schema of its own
//! and drops it at the end. When `CI=true` or the variable is set, an unreachable database
//! fails the tests; otherwise they skip, saying so loudly on stderr.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use mailroom::tasks::conformance::{self, CONFORMANCE_QUEUES};
use mailroom::tasks::{
    ClaimRequest, NewTask, PostgresBackend, PostgresOptions, Registry, Task, TaskBackend,
    TaskContext, TaskFailure, TaskStatus, Worker, WorkerBackend, WorkerBackendExt,
};
use sqlx::Connection;

use super::worker_process::{lines, spawn_worker, worker_exe};

/// A worker process on PostgreSQL; NOTIFY wakes it, so it polls only every 200 ms.
fn spawn(url: &str, out: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["--poll-ms", "200"];
    args.extend_from_slice(extra);
    spawn_worker(url, out, &args)
}

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database URL, or `None` (after a loud message) when the tests may skip.
pub(super) async fn pg_url() -> Option<String> {
    let set = std::env::var("MAILROOM_TEST_POSTGRES_URL").ok();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let url = set.clone().unwrap_or_else(|| DEFAULT_URL.to_owned());
    match sqlx::PgConnection::connect(&url).await {
        Ok(conn) => {
            conn.close().await.ok();
            Some(url)
        }
        Err(e) if set.is_none() && !ci => {
            eprintln!(
                "\n!!!!!!!! SKIPPING PostgreSQL tests: no MAILROOM_TEST_POSTGRES_URL and {url} is unreachable ({e}) !!!!!!!!\n"
            );
            None
        }
        Err(e) => panic!("PostgreSQL at {url} is unreachable (CI=true or URL set): {e}"),
    }
}

/// Fresh schemas for one test; [`Schemas::drop_all`] removes them.
pub(super) struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    pub(super) fn new(url: &str) -> Self {
        Schemas {
            url: url.to_owned(),
            names: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn fresh(&self) -> String {
        let name = format!(
            "mailroom_t_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        self.names.lock().unwrap().push(name.clone());
        name
    }

    async fn backend(&self, queues: &[&str]) -> PostgresBackend {
        let schema = self.fresh();
        PostgresBackend::connect_with(
            PostgresOptions::new(&self.url)
                .schema(schema)
                .queues(queues.iter().copied())
                .max_connections(4),
        )
        .await
        .unwrap()
    }

    pub(super) async fn drop_all(&self) {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let names = self.names.lock().unwrap().clone();
        for name in names {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.ok();
    }
}

/// Asserts that `schema` records every migration this mailroom knows, each once, in order.
async fn assert_every_version_applied(b: &PostgresBackend, schema: &str) {
    let versions: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM \"{schema}\".mailroom_schema_version ORDER BY version"
    ))
    .fetch_all(b.pool())
    .await
    .unwrap();
    assert_eq!(
        versions,
        (1..=PostgresBackend::latest_schema_version()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend_conforms() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    conformance::run_all(|| schemas.backend(&CONFORMANCE_QUEUES)).await;
    assert!(
        schemas.names.lock().unwrap().len() > 20,
        "every case got fresh storage"
    );
    schemas.drop_all().await;
}

#[tokio::test]
async fn schema_is_chosen_migrated_once_and_versioned() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let full = format!("{url}?schema={schema}&queues=default,mail");
    // Several processes' worth of opens at once: the advisory lock migrates once.
    let opens = (0..4).map(|_| {
        let full = full.clone();
        tokio::spawn(async move { PostgresBackend::connect(&full).await })
    });
    let mut backends = Vec::new();
    for o in opens {
        backends.push(o.await.unwrap().unwrap());
    }
    let b = &backends[0];
    assert_eq!(b.schema(), schema);
    assert_eq!(b.queues(), ["default", "mail"]);
    assert_every_version_applied(b, &schema).await;
    let id = b
        .enqueue(NewTask::new("t", serde_json::json!(1)).queue("mail"))
        .await
        .unwrap();
    // The task lives in the chosen schema and nowhere else.
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{schema}\".mailroom_tasks WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_one(b.pool())
    .await
    .unwrap();
    assert_eq!(n, 1);
    // A schema newer than this mailroom is refused.
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".mailroom_schema_version (version) VALUES (999)"
    ))
    .execute(b.pool())
    .await
    .unwrap();
    let err = PostgresBackend::connect(&full).await.unwrap_err();
    assert_eq!(err.field(), Some("schema_version"), "{err}");
    // tasks::connect knows the URL too.
    let other = schemas.fresh();
    let opened = mailroom::tasks::connect(&format!("{url}?schema={other}"), &Registry::new())
        .await
        .unwrap();
    assert_eq!(opened.name(), "postgres");
    drop(backends);
    schemas.drop_all().await;
}

/// A queue made by an older mailroom, at schema 3 with keyed, keyless, ready and running
/// tasks, opens at the latest schema with every task kept: keys still unique (an enqueue
/// under one finds its task), every task listed and counted through the new indexes.
#[tokio::test]
async fn a_schema_3_queue_opens_at_the_latest_schema_with_every_task_and_key_kept() {
    use mailroom::tasks::{QueueOperations, TaskFilter};
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let quoted = format!("\"{schema}\"");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut setup = format!(
        "CREATE SCHEMA {quoted}; CREATE TABLE {quoted}.mailroom_schema_version \
         (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()); "
    );
    for sql in [
        include_str!("../../migrations/postgres/0001_tasks.sql"),
        include_str!("../../migrations/postgres/0002_lease_expiries.sql"),
        include_str!("../../migrations/postgres/0003_operations.sql"),
    ] {
        setup.push_str(&sql.replace("{schema}", &quoted));
        setup.push('\n');
    }
    setup.push_str(&format!(
        "INSERT INTO {quoted}.mailroom_schema_version (version) VALUES (1), (2), (3); \
         INSERT INTO {quoted}.mailroom_tasks (id, task_name, queue_name, priority, args, status, \
           enqueued_at, run_after, max_attempts, idempotency_key, worker_id, lease_expires_at) VALUES \
         (gen_random_uuid(), 't', 'default', 0, '1', 'READY', now(), now(), 3, 'k1', NULL, NULL), \
         (gen_random_uuid(), 't', 'default', 0, '2', 'READY', now(), now(), 3, NULL, NULL, NULL), \
         (gen_random_uuid(), 't', 'default', 0, '3', 'RUNNING', now(), now(), 3, NULL, 'w', now() + interval '1 hour');"
    ));
    sqlx::raw_sql(&setup).execute(&mut conn).await.unwrap();
    let keyed: uuid::Uuid = sqlx::query_scalar(&format!(
        "SELECT id FROM {quoted}.mailroom_tasks WHERE idempotency_key = 'k1'"
    ))
    .fetch_one(&mut conn)
    .await
    .unwrap();

    let b = PostgresBackend::connect_with(PostgresOptions::new(&url).schema(&schema))
        .await
        .unwrap();
    assert_every_version_applied(&b, &schema).await;
    // The key still names its task; keyless tasks can still be added.
    let again = b
        .enqueue(NewTask::new("t", serde_json::json!(1)).idempotency_key("k1"))
        .await
        .unwrap();
    assert_eq!(again.0, keyed);
    b.enqueue(NewTask::new("t", serde_json::json!(4)))
        .await
        .unwrap();
    let counts = b.count_tasks().await.unwrap();
    let default = &counts.counts["default"];
    assert_eq!(default.get(&TaskStatus::Ready), Some(&3), "{counts:?}");
    assert_eq!(default.get(&TaskStatus::Running), Some(&1), "{counts:?}");
    let running = b
        .list_tasks(
            &TaskFilter {
                statuses: vec![TaskStatus::Running],
                ..TaskFilter::default()
            },
            50,
            None,
        )
        .await
        .unwrap();
    assert_eq!(running.tasks.len(), 1);
    conn.close().await.ok();
    drop(b);
    schemas.drop_all().await;
}

#[tokio::test]
async fn enqueue_joins_the_callers_transaction() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["default"]).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE app_orders (n int)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let ids = b
        .enqueue_in(&mut tx, vec![NewTask::new("t", serde_json::json!(1))])
        .await
        .unwrap();
    // Not visible to others before commit.
    assert!(matches!(
        b.get_result(ids[0]).await,
        Err(mailroom::tasks::TaskError::NotFound { .. })
    ));
    tx.commit().await.unwrap();
    assert_eq!(
        b.get_result(ids[0]).await.unwrap().status,
        TaskStatus::Ready
    );
    conn.close().await.unwrap();
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_enqueue_races_store_one_task() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["default"]).await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            b.enqueue(NewTask::new("t", serde_json::json!(1)).idempotency_key("once"))
                .await
                .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    for h in handles {
        ids.insert(h.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "racing enqueues got different ids: {ids:?}");
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".mailroom_tasks",
        b.schema()
    ))
    .fetch_one(b.pool())
    .await
    .unwrap();
    assert_eq!(n, 1);
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_after_takeover_is_rejected() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["default"]).await;
    let id = b
        .enqueue(NewTask::new("t", serde_json::json!(1)))
        .await
        .unwrap();
    let now = Utc::now();
    let req = |w: &str, now| ClaimRequest {
        worker_id: w.to_owned(),
        queues: vec!["default".to_owned()],
        limit: 10,
        lease: Duration::from_secs(5),
        now,
        // The takeover claims a task whose lease expired: only isolated claims take those.
        isolated: true,
        task_names: None,
        routes: None,
    };
    let slow = b.claim(&req("slow", now)).await.unwrap().remove(0);
    // The slow worker's lease expires; another worker's rescuer gives the task back and a
    // second worker takes it over.
    let later = now + chrono::Duration::seconds(60);
    assert_eq!(
        b.rescue_expired(later, mailroom::tasks::MAX_LEASE_EXPIRIES)
            .await
            .unwrap()
            .retried,
        1
    );
    let fast = b.claim(&req("fast", later)).await.unwrap().remove(0);
    assert_eq!(fast.lease.attempt, 2);
    assert!(
        !b.complete(&slow.lease, serde_json::json!("stale"))
            .await
            .unwrap(),
        "the completion of a lease that was taken over applied"
    );
    assert_eq!(
        b.heartbeat(
            std::slice::from_ref(&slow.lease),
            Duration::from_secs(5),
            later
        )
        .await
        .unwrap(),
        [false]
    );
    assert!(
        b.complete(&fast.lease, serde_json::json!("fresh"))
            .await
            .unwrap()
    );
    let r = b.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Successful);
    assert_eq!(r.return_value, Some(serde_json::json!("fresh")));
    assert_eq!(r.worker_ids, ["slow", "fast"]);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].kind, "lease_expired");
    schemas.drop_all().await;
}

struct Echo;

#[async_trait::async_trait]
impl Task for Echo {
    const NAME: &'static str = "echo";
    type Args = u64;
    type Output = u64;
    async fn run(&self, _ctx: TaskContext, n: u64) -> Result<u64, TaskFailure> {
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_an_idle_worker() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["default"]).await;
    let backend: std::sync::Arc<dyn WorkerBackend> = std::sync::Arc::new(b.clone());
    // A poll interval of an hour: only a notification can wake this worker in time.
    let worker = Worker::builder(backend, Registry::new().with(Echo))
        .poll_interval(Duration::from_secs(3600))
        .build();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run(async {
        stop_rx.await.ok();
    }));
    // Let the worker find the queue empty and go idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = b.enqueue(Echo::new_task(&7).unwrap()).await.unwrap();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = b.get_result(id).await.unwrap();
        if r.status == TaskStatus::Successful {
            assert_eq!(r.return_value, Some(serde_json::json!(7)));
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "the idle worker was never woken by NOTIFY"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(()).ok();
    run.await.unwrap().unwrap();
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_only_the_workers_of_the_enqueued_queue() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["mail", "bulk"]).await;
    let queue = |q: &str| vec![q.to_owned()];
    let task = |q: &str| Echo::new_task(&1).unwrap().queue(q);
    // Wait until LISTEN is up: a notification for `bulk` must cut a 2 s wait short.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let started = tokio::time::Instant::now();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                b.wait_for_tasks(&queue("bulk"), Duration::from_secs(2))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.enqueue(task("bulk")).await.unwrap();
        waiter.await.unwrap();
        if started.elapsed() < Duration::from_millis(1500) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "LISTEN never came up"
        );
    }
    // Spend the permit that notification may have left for a late waiter.
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.wait_for_tasks(&queue("bulk"), Duration::from_millis(10))
        .await;

    let wait = |q: &'static str| {
        let b = b.clone();
        tokio::spawn(async move { b.wait_for_tasks(&queue(q), Duration::from_secs(3600)).await })
    };
    let bulk_waiter = wait("bulk");
    let mail_waiter = wait("mail");
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.enqueue(task("mail")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), mail_waiter)
        .await
        .expect("a `mail` enqueue must wake the `mail` worker")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !bulk_waiter.is_finished(),
        "a `mail` enqueue woke the worker of `bulk`"
    );
    b.enqueue(task("bulk")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), bulk_waiter)
        .await
        .expect("a `bulk` enqueue must wake the `bulk` worker")
        .unwrap();
    schemas.drop_all().await;
}

// ---------------------------------------------------------------------------------------
// Real worker processes.

async fn enqueue(b: &PostgresBackend, count: u64) {
    let tasks: Vec<NewTask> = (0..count)
        .map(|n| NewTask::new("append", serde_json::json!({ "n": n })))
        .collect();
    let ids = b.enqueue_many(tasks).await.unwrap();
    assert_eq!(ids.len() as u64, count);
}

/// `(status, attempt) -> count` over the whole table.
async fn census(b: &PostgresBackend) -> HashMap<(String, i32), i64> {
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(&format!(
        "SELECT status, attempt, count(*) FROM \"{}\".mailroom_tasks GROUP BY 1, 2",
        b.schema()
    ))
    .fetch_all(b.pool())
    .await
    .unwrap();
    rows.into_iter().map(|(s, a, n)| ((s, a), n)).collect()
}

async fn wait_all_successful(b: &PostgresBackend, total: i64, secs: u64) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let c = census(b).await;
        let done: i64 = c
            .iter()
            .filter(|((s, _), _)| s == "SUCCESSFUL")
            .map(|(_, n)| n)
            .sum();
        if done == total {
            return;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "only {done} of {total} tasks completed: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_worker_processes_drain_20000_tasks_once_each() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["default"]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("side-effects.txt");
    let total = 20_000;
    let t = std::time::Instant::now();
    enqueue(&b, total).await;
    eprintln!("enqueued {total} tasks in {:?}", t.elapsed());
    let full = format!("{url}?schema={}", b.schema());
    let t = std::time::Instant::now();
    worker_exe();
    eprintln!("built the worker in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let args = ["--concurrency", "32", "--burst"];
    let children: Vec<Child> = (0..4).map(|_| spawn(&full, &out, &args)).collect();
    let _guard = crate::KillOnDrop(children.iter().map(Child::id).collect());
    for mut child in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
    }
    eprintln!("4 processes drained {total} tasks in {:?}", t.elapsed());
    let c = census(&b).await;
    assert_eq!(
        c,
        HashMap::from([(("SUCCESSFUL".to_owned(), 1), total as i64)]),
        "every task SUCCESSFUL after exactly one attempt"
    );
    let lines = lines(&out);
    let mut seen: HashMap<u64, String> = HashMap::new();
    for (n, attempt, worker) in &lines {
        assert_eq!(*attempt, 1);
        if let Some(first) = seen.insert(*n, worker.clone()) {
            panic!("task {n} ran twice: by {first} and {worker}");
        }
    }
    assert_eq!(seen.len(), total as usize, "every task ran");
    let workers: HashSet<&String> = seen.values().collect();
    eprintln!("{} worker processes shared the run", workers.len());
    assert!(workers.len() > 1, "the work was not shared");
    schemas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_tasks_are_rescued_by_the_others() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["default"]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("side-effects.txt");
    let total = 600;
    enqueue(&b, total).await;
    let full = format!("{url}?schema={}", b.schema());
    worker_exe();
    let args = [
        "--concurrency",
        "8",
        "--lease-ms",
        "1500",
        "--sleep-ms",
        "50",
    ];
    // The victim's tasks run for a minute, so it certainly holds its leases when killed
    // (with short tasks all finishing together, it can hold none between two claims).
    let mut victim_args = args.to_vec();
    victim_args[5] = "60000";
    let victim = spawn(&full, &out, &victim_args);
    let mut others: Vec<Child> = (0..2).map(|_| spawn(&full, &out, &args)).collect();
    let _guard = crate::KillOnDrop(others.iter().map(Child::id).chain([victim.id()]).collect());
    let victim_id = victim.id().to_string();
    // Kill the victim once the run is under way.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut victim = victim;
    let held: Vec<uuid::Uuid> = loop {
        // Mid-run: the others have worked a while and the victim holds leases.
        let others_lines = lines(&out).len();
        let holding: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{}\".mailroom_tasks WHERE status = 'RUNNING' AND worker_id LIKE $1",
            b.schema()
        ))
        .bind(format!("%-{victim_id}-%"))
        .fetch_one(b.pool())
        .await
        .unwrap();
        if others_lines >= 20 && holding >= 4 {
            victim.kill().unwrap(); // SIGKILL
            victim.wait().unwrap();
            break sqlx::query_scalar(&format!(
                "SELECT id FROM \"{}\".mailroom_tasks WHERE status = 'RUNNING' AND worker_id LIKE $1",
                b.schema()
            ))
            .bind(format!("%-{victim_id}-%"))
            .fetch_all(b.pool())
            .await
            .unwrap();
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "the victim never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        lines(&out).len() < total as usize,
        "the kill came too late to test anything"
    );
    assert!(!held.is_empty(), "the victim held no lease when killed");
    wait_all_successful(&b, total as i64, 180).await;
    for child in &mut others {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            child.wait().unwrap().success(),
            "SIGTERM ends a worker cleanly"
        );
    }
    // The dead worker's tasks were finished by the others, after a lease_expired error.
    for id in &held {
        let r = b.get_result(mailroom::tasks::TaskId(*id)).await.unwrap();
        assert_eq!(r.status, TaskStatus::Successful);
        assert_eq!(r.attempts, 2, "{r:?}");
        assert!(r.worker_ids[0].contains(&format!("-{victim_id}-")), "{r:?}");
        assert!(
            !r.worker_ids[1].contains(&format!("-{victim_id}-")),
            "{r:?}"
        );
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].kind, "lease_expired");
    }
    // Nothing lost; only the tasks running at the kill ran twice, never one attempt twice.
    let mut by_n: HashMap<u64, Vec<u32>> = HashMap::new();
    for (n, attempt, _) in lines(&out) {
        by_n.entry(n).or_default().push(attempt);
    }
    assert_eq!(by_n.len(), total as usize, "some task never ran");
    for (n, attempts) in &by_n {
        let distinct: HashSet<_> = attempts.iter().collect();
        assert_eq!(
            distinct.len(),
            attempts.len(),
            "task {n} ran one attempt twice"
        );
    }
    let twice = by_n.values().filter(|a| a.len() > 1).count();
    assert!(
        twice <= held.len(),
        "{twice} ran twice, {} were held",
        held.len()
    );
    eprintln!(
        "victim held {} leases; {twice} side effects repeated",
        held.len()
    );
    schemas.drop_all().await;
}

/// A port on the loopback interface that nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_connection_fails_naming_the_cause_and_never_the_password() {
    let port = closed_port();
    for url in [
        format!("postgres://u:s3cr3t@127.0.0.1:{port}/x?connect_timeout=5"),
        format!("postgres://u:s3%63r3t@127.0.0.1:{port}/x"),
        format!("postgres://u@127.0.0.1:{port}/x?password=s3cr3t"),
        "postgres://u:s3cr3t@127.0.0.1:1/x".to_owned(),
    ] {
        let err = PostgresBackend::connect(&url).await.unwrap_err();
        let shown = err.to_string();
        let debug = format!("{err:?}");
        assert!(
            shown.to_lowercase().contains("refused"),
            "{url}: the cause is missing: {shown}"
        );
        assert!(shown.contains("127.0.0.1"), "{url}: {shown}");
        for text in [&shown, &debug] {
            assert!(
                !text.contains("s3cr3t"),
                "{url}: the password leaked: {text}"
            );
        }
        // The same through `tasks::connect`, as the command line opens queues.
        let err = mailroom::tasks::connect(&url, &Registry::new())
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("s3cr3t"),
            "{url}: the password leaked: {shown}"
        );
        assert!(shown.to_lowercase().contains("refused"), "{url}: {shown}");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_fails_at_the_connect_timeout() {
    // Accepts TCP connections (the kernel's backlog) but never speaks PostgreSQL.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://u:s3cr3t@127.0.0.1:{port}/x?connect_timeout=1");
    let err = PostgresBackend::connect(&url).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("connect timeout of 1 s"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    drop(silent);
}

#[cfg(all(feature = "sqlite", feature = "cli"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_another_process_stops_a_worker_processes_task() {
    let Some(url) = pg_url().await else { return };
    let schemas = Schemas::new(&url);
    let b = schemas.backend(&["default"]).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("side-effects.txt");
    let full = format!("{url}?schema={}", b.schema());
    // Ten minutes' sleep before the side effect.
    let id = b
        .enqueue(NewTask::new("append", serde_json::json!({"n": 1})))
        .await
        .unwrap();
    let worker = spawn(&full, &out, &["--sleep-ms", "600000"]);
    let _guard = crate::KillOnDrop(vec![worker.id()]);
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    while b.get_result(id).await.unwrap().status != TaskStatus::Running {
        assert!(tokio::time::Instant::now() < give_up, "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    super::cancel_processes::cancel_from_the_command_line(&full, id);
    super::cancel_processes::assert_cancelled_and_never_rerun(&b, id, &out, worker, &full).await;
    schemas.drop_all().await;
}
