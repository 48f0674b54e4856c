//! The SQLite backend's own checks (pragmas read back, migrations, URLs, the caller's
//! transaction) and the worker's behaviour on it (graceful shutdown, heartbeats, hooks,
//! panics).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mailroom::tasks::{
    self, ClaimedTask, DummyBackend, Hooks, NewTask, OutcomeKind, Registry, SqliteBackend,
    SqliteOptions, Task, TaskBackend, TaskContext, TaskError, TaskFailure, TaskId, TaskStatus,
    WithHooks, Worker, WorkerBackend,
};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::Notify;

async fn fresh() -> (tempfile::TempDir, SqliteBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::connect_with(SqliteOptions::new(dir.path().join("t.db")))
        .await
        .unwrap();
    (dir, backend)
}

async fn raw(backend: &SqliteBackend) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", backend.path().display()))
        .await
        .unwrap()
}

async fn journal_mode(conn: &mut SqliteConnection) -> String {
    sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn open_leaves_the_file_in_wal_mode() {
    let (_dir, backend) = fresh().await;
    let mut conn = raw(&backend).await;
    let mode = journal_mode(&mut conn).await;
    assert_eq!(mode, "wal");
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM mailroom_schema_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, SqliteBackend::latest_schema_version());
    assert_eq!(version, 6, "schema 6 prunes through the status index");
}

#[tokio::test]
async fn open_refuses_a_database_without_wal() {
    // An in-memory database cannot use WAL: SQLite answers `memory` to the pragma, and the
    // read-back must catch it instead of running without WAL.
    let err = SqliteBackend::connect_with(SqliteOptions::new(":memory:"))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("journal_mode"), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
}

#[tokio::test]
async fn migrations_apply_once_even_when_opened_concurrently() {
    // Several rounds on new files, each opened 12 times at once: switching a new file to WAL
    // takes a lock SQLite does not wait for, so this used to fail with "database is locked"
    // now and then (it did once in CI). Every open must succeed and migrate exactly once.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let opens = (0..12).map(|_| SqliteBackend::connect_with(SqliteOptions::new(&path)));
        let backends = futures_util::future::join_all(opens).await;
        for b in &backends {
            assert!(b.is_ok(), "round {round}: {b:?}");
        }
        let backend = SqliteBackend::connect_with(SqliteOptions::new(&path))
            .await
            .unwrap();
        let mut conn = raw(&backend).await;
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mailroom_schema_version")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            rows,
            SqliteBackend::latest_schema_version(),
            "round {round}: one row per migration"
        );
        let mode = journal_mode(&mut conn).await;
        assert_eq!(mode, "wal", "round {round}");
    }
}

#[tokio::test]
async fn open_waits_while_another_connection_holds_a_new_file_locked() {
    // A file still in rollback-journal mode whose write lock another process holds: the
    // switch to WAL needs a lock SQLite does not wait for, so open must retry, not fail.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut holder = SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE app (x INTEGER)")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut tx = holder.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO app VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.commit().await.unwrap();
    };
    let (opened, ()) = tokio::join!(
        SqliteBackend::connect_with(SqliteOptions::new(path.clone())),
        release
    );
    let backend = opened.unwrap();
    let mut conn = raw(&backend).await;
    let mode = journal_mode(&mut conn).await;
    assert_eq!(mode, "wal");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the other connection's commit is kept");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let (dir, backend) = fresh().await;
    let mut conn = raw(&backend).await;
    sqlx::query("INSERT INTO mailroom_schema_version (version) VALUES (99)")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = SqliteBackend::connect_with(SqliteOptions::new(dir.path().join("t.db")))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("schema_version"), "{err}");
}

#[tokio::test]
async fn urls_pick_and_configure_backends() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite:{}?queues=mail,bulk",
        dir.path().join("q.db").display()
    );
    let backend = tasks::connect_worker(&url).await.unwrap();
    assert_eq!(backend.name(), "sqlite");
    assert_eq!(backend.queues(), ["mail", "bulk"]);
    let err = backend
        .enqueue(NewTask::new("x", json!(null)))
        .await
        .unwrap_err();
    assert_eq!(
        err.field(),
        Some("queue_name"),
        "the default queue is not configured: {err}"
    );
    backend
        .enqueue(NewTask::new("x", json!(null)).queue("bulk"))
        .await
        .unwrap();

    for bad in [
        "sqlite:",
        "sqlite::memory:",
        "sqlite:/tmp/x.db?color=red",
        "ftp://x",
        "nonsense",
        "sqlite:/tmp/x?queues=",
    ] {
        let err = tasks::connect(bad, &Registry::new()).await.unwrap_err();
        assert!(
            matches!(err, TaskError::Configuration { .. }),
            "{bad}: {err:?}"
        );
        assert_eq!(err.field(), Some("queue"), "{bad}: {err}");
    }
    assert_eq!(
        tasks::connect("dummy:", &Registry::new())
            .await
            .unwrap()
            .name(),
        "dummy"
    );
    // Every URL opens as a client; only durable ones open for a worker, and the others
    // are refused naming their scheme.
    for client_only in ["dummy:", "immediate:"] {
        let err = tasks::connect_worker(client_only).await.unwrap_err();
        assert!(matches!(err, TaskError::Unsupported { .. }), "{err:?}");
        assert!(err.to_string().contains(client_only), "{err}");
    }
    for bad in ["ftp://x", "nonsense", "sqlite:"] {
        let err = tasks::connect_worker(bad).await.unwrap_err();
        assert_eq!(err.field(), Some("queue"), "{bad}: {err}");
    }
}

struct Double;

#[async_trait]
impl Task for Double {
    const NAME: &'static str = "double";
    type Args = i64;
    type Output = i64;
    async fn run(&self, _ctx: TaskContext, n: i64) -> Result<i64, TaskFailure> {
        Ok(n * 2)
    }
}

#[tokio::test]
async fn immediate_backend_runs_inside_enqueue() {
    let backend = tasks::connect("immediate:", &Registry::new().with(Double))
        .await
        .unwrap();
    let id = backend
        .enqueue(Double::new_task(&21).unwrap())
        .await
        .unwrap();
    let r = backend.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Successful);
    assert_eq!(r.return_value_as::<i64>().unwrap().unwrap(), 42);
    assert_eq!(r.attempts, 1);
    let err = backend
        .enqueue(NewTask::new("unregistered", json!(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, TaskError::UnknownTask { .. }), "{err:?}");
    let err = backend
        .enqueue(Double::new_task(&1).unwrap().run_after(chrono::Utc::now()))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("run_after"));
    // A worker has nothing to do on it: it has no worker role (`Worker::builder` does not
    // take it), and its URL cannot be opened for a worker.
    let err = tasks::connect_worker("immediate:").await;
    assert!(matches!(err, Err(TaskError::Unsupported { .. })), "{err:?}");
}

#[tokio::test]
async fn dummy_backend_records_and_clears() {
    let backend = DummyBackend::new();
    let id = backend
        .enqueue(Double::new_task(&1).unwrap())
        .await
        .unwrap();
    assert_eq!(backend.results().len(), 1);
    assert_eq!(
        backend.get_result(id).await.unwrap().status,
        TaskStatus::Ready
    );
    backend.clear();
    assert!(backend.results().is_empty());
    assert!(matches!(
        backend.get_result(id).await,
        Err(TaskError::NotFound { .. })
    ));
}

#[tokio::test]
async fn enqueue_joins_the_callers_transaction() {
    let (_dir, backend) = fresh().await;
    let mut conn = raw(&backend).await;
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();

    // Rolled back: neither the order nor its task exists.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (item) VALUES ('book')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let lost = backend
        .enqueue_in(&mut tx, vec![Double::new_task(&1).unwrap()])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(matches!(
        backend.get_result(lost[0]).await,
        Err(TaskError::NotFound { .. })
    ));

    // Committed: both exist, and the task runs.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (item) VALUES ('pen')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let kept = backend
        .enqueue_in(&mut tx, vec![Double::new_task(&4).unwrap()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    let backend: Arc<dyn WorkerBackend> = Arc::new(backend);
    Worker::builder(backend.clone(), Registry::new().with(Double))
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!(
        backend.get_result(kept[0]).await.unwrap().return_value,
        Some(json!(8))
    );
}

/// Waits on a shared `Notify` before finishing, so a test controls when it ends.
struct Gate {
    started: Arc<Notify>,
    release: Arc<Notify>,
}

#[async_trait]
impl Task for Gate {
    const NAME: &'static str = "gate";
    type Args = ();
    type Output = String;
    async fn run(&self, _ctx: TaskContext, _: ()) -> Result<String, TaskFailure> {
        self.started.notify_one();
        self.release.notified().await;
        Ok("done".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_tasks_finish() {
    let (_dir, backend) = fresh().await;
    let backend: Arc<dyn WorkerBackend> = Arc::new(backend);
    let id = backend.enqueue(Gate::new_task(&()).unwrap()).await.unwrap();
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let stop = Arc::new(Notify::new());
    let worker = Worker::builder(
        backend.clone(),
        Registry::new().with(Gate {
            started: started.clone(),
            release: release.clone(),
        }),
    )
    .poll_interval(Duration::from_millis(10))
    .build();
    let stopper = stop.clone();
    let handle = tokio::spawn(worker.run(async move { stopper.notified().await }));
    started.notified().await;
    stop.notify_one();
    // Shutdown was asked while the task runs; it is still allowed to finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        backend.get_result(id).await.unwrap().status,
        TaskStatus::Running
    );
    release.notify_one();
    let report = handle.await.unwrap().unwrap();
    assert_eq!(report.succeeded, 1);
    assert_eq!(report.abandoned, 0);
    let r = backend.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Successful);
    assert_eq!(r.return_value, Some(json!("done")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deadline_abandons_tasks_to_the_rescuer() {
    let (_dir, backend) = fresh().await;
    let backend: Arc<dyn WorkerBackend> = Arc::new(backend);
    let id = backend.enqueue(Gate::new_task(&()).unwrap()).await.unwrap();
    let started = Arc::new(Notify::new());
    let never = Arc::new(Notify::new());
    let worker = Worker::builder(
        backend.clone(),
        Registry::new().with(Gate {
            started: started.clone(),
            release: never,
        }),
    )
    .shutdown_timeout(Duration::from_millis(20))
    .build();
    let started2 = started.clone();
    let report = worker
        .run(async move { started2.notified().await })
        .await
        .unwrap();
    assert_eq!(report.abandoned, 1);
    assert_eq!(report.succeeded, 0);
    // Nothing half-done was written: the attempt is still leased, for the rescuer.
    let r = backend.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Running);
    assert!(r.errors.is_empty());
    let rescued = backend
        .rescue_expired(
            chrono::Utc::now() + chrono::Duration::hours(1),
            mailroom::tasks::MAX_LEASE_EXPIRIES,
        )
        .await
        .unwrap();
    assert_eq!(rescued.retried, 1);
}

struct Slow;

#[async_trait]
impl Task for Slow {
    const NAME: &'static str = "slow";
    type Args = u64;
    type Output = u32;
    async fn run(&self, ctx: TaskContext, ms: u64) -> Result<u32, TaskFailure> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ctx.attempt)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_long_task_leased() {
    let (_dir, backend) = fresh().await;
    let backend: Arc<dyn WorkerBackend> = Arc::new(backend);
    // The task outlives its lease several times over; heartbeats must keep it, while a
    // rescuer runs all the while.
    let id = backend
        .enqueue(Slow::new_task(&3000).unwrap())
        .await
        .unwrap();
    let report = Worker::builder(backend.clone(), Registry::new().with(Slow))
        .lease(Duration::from_millis(1200))
        .heartbeat_interval(Duration::from_millis(50))
        .rescue_interval(Duration::from_millis(50))
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.succeeded, 1);
    assert_eq!(report.rejected, 0);
    let r = backend.get_result(id).await.unwrap();
    assert_eq!(r.status, TaskStatus::Successful);
    assert_eq!(r.attempts, 1);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Hooks for Recorder {
    fn enqueued(&self, ids: &[TaskId], _tasks: &[NewTask]) {
        self.0
            .lock()
            .unwrap()
            .push(format!("enqueued {}", ids.len()));
    }
    fn started(&self, task: &ClaimedTask) {
        self.0
            .lock()
            .unwrap()
            .push(format!("started {}", task.task_name));
    }
    fn finished(&self, task: &ClaimedTask, outcome: &OutcomeKind, applied: bool) {
        let kind = match outcome {
            OutcomeKind::Succeeded { .. } => "ok",
            OutcomeKind::Retry { .. } => "retry",
            OutcomeKind::Failed { .. } => "failed",
            OutcomeKind::Cancelled { .. } => "cancelled",
        };
        self.0
            .lock()
            .unwrap()
            .push(format!("finished {} {kind} {applied}", task.task_name));
    }
}

struct Panics;

#[async_trait]
impl Task for Panics {
    const NAME: &'static str = "panics";
    const MAX_ATTEMPTS: u32 = 1;
    type Args = ();
    type Output = ();
    async fn run(&self, _ctx: TaskContext, _: ()) -> Result<(), TaskFailure> {
        panic!("boom")
    }
}

#[tokio::test]
async fn hooks_see_the_life_of_tasks_and_panics_become_failures() {
    let (_dir, backend) = fresh().await;
    let recorder = Arc::new(Recorder::default());
    let backend: Arc<dyn WorkerBackend> = Arc::new(WithHooks::new(backend, recorder.clone()));
    let ids = backend
        .enqueue_many(vec![
            Double::new_task(&1).unwrap(),
            Panics::new_task(&()).unwrap().priority(-1),
        ])
        .await
        .unwrap();
    Worker::builder(backend.clone(), Registry::new().with(Double).with(Panics))
        .concurrency(1)
        .hooks(recorder.clone())
        .burst(true)
        .build()
        .run(std::future::pending())
        .await
        .unwrap();
    let events = recorder.0.lock().unwrap().clone();
    // Outcomes are written by a separate completer, so only per-task order is fixed.
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("no `{e}` in {events:?}"))
    };
    assert_eq!(pos("enqueued 2"), 0);
    assert!(pos("started double") < pos("finished double ok true"));
    assert!(pos("started panics") < pos("finished panics failed true"));
    assert!(
        pos("started double") < pos("started panics"),
        "priority order: {events:?}"
    );
    assert_eq!(events.len(), 5, "{events:?}");
    let r = backend.get_result(ids[1]).await.unwrap();
    assert_eq!(r.status, TaskStatus::Failed);
    assert_eq!(r.errors[0].kind, "panic");
    assert_eq!(r.errors[0].message, "boom");
}

/// Runs a burst worker that must fail with a storage error, and returns that error.
async fn burst_storage_error(backend: Arc<dyn WorkerBackend>, what: &str) -> TaskError {
    let result = Worker::builder(backend, Registry::new().with(Double))
        .burst(true)
        .poll_interval(Duration::from_millis(5))
        .retention(None)
        .build()
        .run(std::future::pending())
        .await;
    let err = result.unwrap_err();
    assert!(matches!(err, TaskError::Storage { .. }), "{what}: {err:?}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_worker_on_a_corrupt_database_returns_the_storage_error() {
    let (_dir, backend) = fresh().await;
    let path = backend.path().to_path_buf();
    let backend: Arc<dyn WorkerBackend> = Arc::new(backend);
    backend
        .enqueue(NewTask::new("double", json!(1)))
        .await
        .unwrap();
    // Corrupt the file under the open backend, as a disk fault would: the table's pages
    // are now past the end of the file (SQLite's own corruption, SQLITE_CORRUPT).
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let version: i64 = sqlx::query_scalar("PRAGMA schema_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "PRAGMA writable_schema = ON; \
         UPDATE sqlite_schema SET rootpage = 100000 WHERE tbl_name = 'mailroom_tasks'; \
         PRAGMA schema_version = {}; PRAGMA writable_schema = OFF;",
        version + 1
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let err = burst_storage_error(backend, "a burst worker whose claims fail").await;
    let shown = err.to_string();
    eprintln!("{shown}");
    assert!(shown.contains("claiming tasks failed"), "{shown}");
    // The cause is named, not just "database error".
    assert!(
        shown.contains("not a database") || shown.contains("malformed"),
        "{shown}"
    );
}

#[tokio::test]
async fn migration_2_counts_the_lease_expiries_already_in_the_errors() {
    // A version-1 file with a task whose lease expired twice (and one retried error).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("../../migrations/sqlite/0001_tasks.sql"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE mailroom_schema_version (version INTEGER NOT NULL); \
         INSERT INTO mailroom_schema_version (version) VALUES (1);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let id = TaskId::new();
    let at = "2026-01-01T00:00:00Z";
    let errors = json!([
        {"attempt": 1, "kind": "lease_expired", "message": "m", "worker_id": "w", "at": at},
        {"attempt": 2, "kind": "transient", "message": "m", "worker_id": "w", "at": at},
        {"attempt": 3, "kind": "lease_expired", "message": "m", "worker_id": "w", "at": at},
    ]);
    sqlx::query(
        "INSERT INTO mailroom_tasks (id, task_name, queue_name, priority, args, status, enqueued_at, \
         run_after, attempt, max_attempts, errors) VALUES (?, 'noop', 'default', 0, '1', 'READY', 0, 0, 3, 10, ?)",
    )
    .bind(id.0)
    .bind(errors.to_string())
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let backend = SqliteBackend::connect_with(SqliteOptions::new(&path))
        .await
        .unwrap();
    let req = |isolated| mailroom::tasks::ClaimRequest {
        worker_id: "w".into(),
        queues: vec!["default".into()],
        limit: 1,
        lease: Duration::from_secs(30),
        now: chrono::Utc::now(),
        isolated,
        task_names: None,
        routes: None,
    };
    assert!(
        backend.claim(&req(false)).await.unwrap().is_empty(),
        "a task with expiries is a suspect after the migration"
    );
    let claimed = backend.claim(&req(true)).await.unwrap().remove(0);
    assert_eq!((claimed.lease.id, claimed.lease_expiries), (id, 2));
    // One more expiry reaches the limit of 3.
    let report = backend
        .rescue_expired(
            chrono::Utc::now() + chrono::Duration::hours(1),
            tasks::MAX_LEASE_EXPIRIES,
        )
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
}

/// The SQLite backend, except that recording outcomes always fails (a fault injected where
/// a full disk would fail the completer's writes but not the claims before them).
#[derive(Debug)]
struct FinishFails(SqliteBackend);

#[async_trait]
impl TaskBackend for FinishFails {
    fn name(&self) -> &'static str {
        "finish-fails"
    }
    fn capabilities(&self) -> tasks::Capabilities {
        self.0.capabilities()
    }
    async fn enqueue_many(&self, t: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        self.0.enqueue_many(t).await
    }
    async fn get_result(&self, id: TaskId) -> Result<tasks::TaskResult, TaskError> {
        self.0.get_result(id).await
    }
}

#[async_trait]
impl WorkerBackend for FinishFails {
    fn queues(&self) -> &[String] {
        self.0.queues()
    }
    async fn claim(&self, req: &tasks::ClaimRequest) -> Result<Vec<ClaimedTask>, TaskError> {
        self.0.claim(req).await
    }
    async fn heartbeat(
        &self,
        leases: &[tasks::Lease],
        lease: Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<bool>, TaskError> {
        self.0.heartbeat(leases, lease, now).await
    }
    async fn finish(&self, _outcomes: &[tasks::Outcome]) -> Result<Vec<bool>, TaskError> {
        Err(TaskError::storage(
            "database or disk is full",
            std::io::Error::other("ENOSPC"),
        ))
    }
    async fn rescue_expired(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        max: u32,
    ) -> Result<tasks::RescueReport, TaskError> {
        self.0.rescue_expired(now, max).await
    }
    async fn prune(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, TaskError> {
        self.0.prune(before).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_outcomes_cannot_be_recorded_returns_the_storage_error() {
    let (_dir, backend) = fresh().await;
    let backend: Arc<dyn WorkerBackend> = Arc::new(FinishFails(backend));
    let id = backend
        .enqueue(Double::new_task(&21).unwrap())
        .await
        .unwrap();
    // The completer retries with backoff (about 20 s in all) before it gives up.
    let err = burst_storage_error(backend.clone(), "a worker that lost outcomes").await;
    let shown = err.to_string();
    assert!(shown.contains("recording the outcomes"), "{shown}");
    assert!(shown.contains("disk is full"), "{shown}");
    // Nothing was recorded: the attempt stays leased, for the rescuer to run again.
    assert_eq!(
        backend.get_result(id).await.unwrap().status,
        TaskStatus::Running
    );
}

/// Schema 6's indexes: the status index leaves RUNNING tasks out, so that a claim and a
/// completion each touch it once, and holds each task's finish time last, so that the
/// pruner walks it; no other index holds finished tasks by finish time, so a completion
/// writes one index entry fewer than schema 5's.
#[tokio::test]
async fn schema_6_prunes_through_the_status_index_and_keeps_running_tasks_out_of_it() {
    let (_dir, backend) = fresh().await;
    let mut conn = raw(&backend).await;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name = 'mailroom_tasks' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "mailroom_tasks_cancel_requests",
            "mailroom_tasks_leases",
            "mailroom_tasks_ready",
            "mailroom_tasks_status"
        ],
        "{indexes:?}"
    );
    let status_index = &indexes[3].1;
    assert!(
        status_index
            .ends_with("(status, queue_name, seq, finished_at)\n    WHERE status <> 'RUNNING'"),
        "{status_index}"
    );
}
