//! The SQLite backend: the embedded, durable default.
//!
//! One file, WAL mode, a busy timeout and `synchronous=NORMAL` — each read back and checked
//! at open, so a misconfigured database fails loudly instead of running without WAL. All of
//! this process's writes go through a single connection (SQLite has one writer anyway);
//! reads use a small pool. Several processes may share the file: every write transaction is
//! `BEGIN IMMEDIATE`, so they queue on the busy timeout instead of failing on lock upgrade.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::{
    Capabilities, ClaimRequest, ClaimedTask, DEFAULT_QUEUE, Lease, NewTask, Outcome, OutcomeKind,
    RescueReport, TaskBackend, TransactionalEnqueue, validate,
};
use crate::tasks::{AttemptError, TaskError, TaskId, TaskResult, TaskStatus};

/// The schema migrations, in order; `schema_version` records how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../../migrations/sqlite/0001_tasks.sql"),
    include_str!("../../../../migrations/sqlite/0002_lease_expiries.sql"),
];

/// Rows per multi-row `INSERT` (9 parameters each, well under SQLite's 32766 limit).
const INSERT_CHUNK: usize = 1000;

/// Successes per bulk `UPDATE ... FROM (VALUES ...)` (5 parameters each).
const FINISH_CHUNK: usize = 500;

/// How to open a [`SqliteBackend`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file (created if missing).
    pub path: PathBuf,
    /// The queue names tasks may be enqueued on.
    pub queues: Vec<String>,
    /// How long a writer waits for another process's write lock.
    pub busy_timeout: Duration,
    /// Connections in the read pool.
    pub read_connections: u32,
}

impl SqliteOptions {
    /// Defaults for `path`: queue `default`, 5 s busy timeout, 4 readers.
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            queues: vec![DEFAULT_QUEUE.to_owned()],
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
        }
    }

    /// Sets the known queues.
    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queues: I) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Parses `sqlite:PATH[?queues=a,b]` (also `sqlite://PATH`).
    pub fn from_url(url: &str) -> Result<Self, TaskError> {
        let rest = url.strip_prefix("sqlite:").ok_or_else(|| {
            TaskError::configuration("queue", format!("`{url}` is not a sqlite:PATH URL"))
        })?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() || path == ":memory:" {
            return Err(TaskError::configuration(
                "queue",
                "sqlite:PATH needs a file path (an in-memory database cannot be shared or use WAL)",
            ));
        }
        let mut options = SqliteOptions::new(path);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("queues", list)) => {
                    let queues: Vec<String> = list
                        .split(',')
                        .map(str::trim)
                        .filter(|q| !q.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if queues.is_empty() {
                        return Err(TaskError::configuration(
                            "queue",
                            "`queues=` lists no queue",
                        ));
                    }
                    options.queues = queues;
                }
                _ => {
                    return Err(TaskError::configuration(
                        "queue",
                        format!(
                            "unknown sqlite URL parameter `{pair}`; only `queues=a,b` is known"
                        ),
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// The embedded SQLite task backend.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    queues: Vec<String>,
    path: PathBuf,
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> Result<DateTime<Utc>, TaskError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| TaskError::Storage {
        message: format!("bad timestamp {v} in storage"),
        source: None,
    })
}

fn opt_time(v: Option<i64>) -> Result<Option<DateTime<Utc>>, TaskError> {
    v.map(from_micros).transpose()
}

fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> TaskError {
    TaskError::storage(format!("corrupt `{what}` in storage"), e)
}

fn to_u32(v: i64, what: &str) -> Result<u32, TaskError> {
    u32::try_from(v).map_err(|e| corrupt(what, e))
}

impl SqliteBackend {
    /// Opens (creating if needed) and migrates the database at `sqlite:PATH[?queues=a,b]`.
    pub async fn connect(url: &str) -> Result<Self, TaskError> {
        Self::open(SqliteOptions::from_url(url)?).await
    }

    /// Opens (creating if needed) and migrates the database, then checks its pragmas.
    pub async fn open(options: SqliteOptions) -> Result<Self, TaskError> {
        if options.queues.is_empty() {
            return Err(TaskError::configuration(
                "queues",
                "at least one queue is needed",
            ));
        }
        // `journal_mode` is not among the connect options: switching a file to WAL takes an
        // exclusive lock that SQLite does not wait for with the busy timeout, so processes
        // opening a new file together would fail with "database is locked". `enable_wal`
        // switches it on the writer, retrying for as long as the busy timeout allows; WAL is
        // then a property of the file that every later connection sees (and the read-back
        // below checks).
        let connect = SqliteConnectOptions::new()
            .filename(&options.path)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(connect.clone())
            .await
            .map_err(|e| {
                TaskError::storage(
                    format!("cannot open sqlite database {}", options.path.display()),
                    e,
                )
            })?;
        enable_wal(&writer, options.busy_timeout, &options.path).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|e| {
                TaskError::storage(
                    format!("cannot open sqlite database {}", options.path.display()),
                    e,
                )
            })?;
        let backend = SqliteBackend {
            writer,
            reader,
            queues: options.queues.clone(),
            path: options.path,
        };
        backend
            .check_pragmas(&backend.writer, options.busy_timeout)
            .await?;
        backend
            .check_pragmas(&backend.reader, options.busy_timeout)
            .await?;
        backend.migrate().await?;
        Ok(backend)
    }

    /// Reads back the pragmas that crash safety and concurrency depend on.
    async fn check_pragmas(&self, pool: &SqlitePool, busy: Duration) -> Result<(), TaskError> {
        let mut conn = pool.acquire().await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(TaskError::configuration(
                "journal_mode",
                format!(
                    "{} runs in `{mode}` journal mode, not `wal`; use a file on a local file system",
                    self.path.display()
                ),
            ));
        }
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await?;
        let want = i64::try_from(busy.as_millis()).unwrap_or(i64::MAX);
        if timeout != want {
            return Err(TaskError::configuration(
                "busy_timeout",
                format!("is {timeout} ms after setting {want} ms"),
            ));
        }
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        if sync != 1 {
            return Err(TaskError::configuration(
                "synchronous",
                format!("is {sync} after setting NORMAL (1)"),
            ));
        }
        Ok(())
    }

    /// Applies the migrations not yet applied, under the write lock so that several
    /// processes opening one file at once migrate it once.
    async fn migrate(&self) -> Result<(), TaskError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS mailroom_schema_version (version INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM mailroom_schema_version")
                .fetch_one(&mut *tx)
                .await?;
        let current = usize::try_from(current.unwrap_or(0)).unwrap_or(0);
        if current > MIGRATIONS.len() {
            return Err(TaskError::configuration(
                "schema_version",
                format!(
                    "the database has schema version {current}, newer than this mailroom knows ({}); upgrade mailroom",
                    MIGRATIONS.len()
                ),
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO mailroom_schema_version (version) VALUES (?)")
                .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            tracing::info!(version = i + 1, "applied sqlite task schema migration");
        }
        tx.commit().await?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates `tasks` and inserts them through the caller's own connection or
    /// transaction (`&mut *tx`): they exist only if the caller commits. The connection must
    /// be to the same database file (opened by [`SqliteBackend::open`] first, which
    /// migrates it).
    pub async fn enqueue_in(
        &self,
        conn: &mut SqliteConnection,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<TaskId>, TaskError> {
        for task in &tasks {
            validate(task, self.capabilities(), &self.queues)?;
        }
        insert_tasks(conn, tasks, Utc::now()).await
    }
}

/// Switches the file to WAL mode, retrying while another connection holds the lock the
/// switch needs (SQLite answers `SQLITE_BUSY` at once instead of waiting), until `patience`
/// has passed. A file that cannot use WAL (`:memory:`) keeps its mode; the pragma read-back
/// reports it.
async fn enable_wal(pool: &SqlitePool, patience: Duration, path: &Path) -> Result<(), TaskError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        let result: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA journal_mode=WAL")
            .fetch_one(pool)
            .await;
        match result {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(e))
                if is_busy(e.code().as_deref()) && started.elapsed() < patience =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(TaskError::storage(
                    format!("cannot switch sqlite database {} to WAL", path.display()),
                    e,
                ));
            }
        }
    }
}

/// Whether a SQLite (extended) result code is `SQLITE_BUSY` or `SQLITE_LOCKED`.
fn is_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

async fn insert_tasks(
    conn: &mut SqliteConnection,
    tasks: Vec<NewTask>,
    now: DateTime<Utc>,
) -> Result<Vec<TaskId>, TaskError> {
    let now_us = micros(now);
    let mut ids: Vec<Option<TaskId>> = vec![None; tasks.len()];
    // A key repeated within the batch is the task of its first use; a key already stored
    // is the stored task's. Both are checked to be the same task; the rest are inserted.
    // The caller's `BEGIN IMMEDIATE` holds the write lock, so no key appears in between.
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        if let Some(key) = task.idempotency_key.as_deref() {
            match first_use.get(key) {
                Some(&first) => repeats.push((i, first)),
                None => {
                    first_use.insert(key, i);
                }
            }
        }
    }
    let keys: Vec<&str> = first_use.keys().copied().collect();
    for chunk in keys.chunks(INSERT_CHUNK) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "SELECT idempotency_key, id, task_name, COALESCE(enqueued_args, args) FROM mailroom_tasks WHERE idempotency_key IN (",
        );
        let mut list = qb.separated(", ");
        for key in chunk {
            list.push_bind(*key);
        }
        qb.push(")");
        let stored: Vec<(String, Uuid, String, String)> =
            qb.build_query_as().fetch_all(&mut *conn).await?;
        for (key, id, name, args) in stored {
            let args: serde_json::Value =
                serde_json::from_str(&args).map_err(|e| corrupt("args", e))?;
            if let Some(&i) = first_use.get(key.as_str()) {
                ids[i] = Some(super::same_keyed_task(
                    &key,
                    (TaskId(id), &name, &args),
                    &tasks[i],
                )?);
            }
        }
    }
    let fresh: Vec<(usize, &NewTask)> = tasks
        .iter()
        .enumerate()
        .filter(|(i, task)| {
            ids[*i].is_none()
                && task
                    .idempotency_key
                    .as_deref()
                    .is_none_or(|key| first_use.get(key) == Some(i))
        })
        .collect();
    for chunk in fresh.chunks(INSERT_CHUNK) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "INSERT INTO mailroom_tasks (id, task_name, queue_name, priority, args, status, enqueued_at, run_after, max_attempts, idempotency_key, route) ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, task) in chunk {
            let id = TaskId::new();
            ids[*i] = Some(id);
            let args = serde_json::to_string(&task.args)
                .map_err(|e| TaskError::invalid("args", format!("cannot be serialised: {e}")))?;
            rows.push((id, *task, args));
        }
        qb.push_values(rows, |mut b, (id, task, args)| {
            b.push_bind(id.0)
                .push_bind(task.task_name.as_str())
                .push_bind(task.queue_name.as_str())
                .push_bind(task.priority)
                .push_bind(args)
                .push("'READY'")
                .push_bind(now_us)
                .push_bind(task.run_after.map_or(now_us, micros))
                .push_bind(i64::from(task.max_attempts))
                .push_bind(task.idempotency_key.as_deref())
                .push_bind(task.route.as_deref());
        });
        qb.build().execute(&mut *conn).await?;
    }
    for (i, first) in repeats {
        let key = tasks[i].idempotency_key.as_deref().unwrap_or_default();
        let first_id = ids[first].ok_or_else(|| TaskError::Storage {
            message: "a task got no id".to_owned(),
            source: None,
        })?;
        let stored = (
            first_id,
            tasks[first].task_name.as_str(),
            &tasks[first].args,
        );
        ids[i] = Some(super::same_keyed_task(key, stored, &tasks[i])?);
    }
    ids.into_iter()
        .map(|id| {
            id.ok_or_else(|| TaskError::Storage {
                message: "a task got no id".to_owned(),
                source: None,
            })
        })
        .collect()
}

fn result_from_row(row: &SqliteRow) -> Result<TaskResult, TaskError> {
    let id: Uuid = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let args: String = row.try_get("args")?;
    let worker_ids: String = row.try_get("worker_ids")?;
    let errors: String = row.try_get("errors")?;
    let return_value: Option<String> = row.try_get("return_value")?;
    Ok(TaskResult {
        id: TaskId(id),
        task_name: row.try_get("task_name")?,
        queue_name: row.try_get("queue_name")?,
        priority: row.try_get("priority")?,
        args: serde_json::from_str(&args).map_err(|e| corrupt("args", e))?,
        status: TaskStatus::from_str(&status)?,
        enqueued_at: from_micros(row.try_get("enqueued_at")?)?,
        run_after: from_micros(row.try_get("run_after")?)?,
        started_at: opt_time(row.try_get("started_at")?)?,
        finished_at: opt_time(row.try_get("finished_at")?)?,
        last_attempted_at: opt_time(row.try_get("last_attempted_at")?)?,
        attempts: to_u32(row.try_get("attempt")?, "attempt")?,
        max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
        worker_ids: serde_json::from_str(&worker_ids).map_err(|e| corrupt("worker_ids", e))?,
        errors: serde_json::from_str(&errors).map_err(|e| corrupt("errors", e))?,
        return_value: return_value
            .map(|v| serde_json::from_str(&v))
            .transpose()
            .map_err(|e| corrupt("return_value", e))?,
        idempotency_key: row.try_get("idempotency_key")?,
    })
}

fn error_json(error: &AttemptError) -> Result<String, TaskError> {
    serde_json::to_string(error).map_err(|e| TaskError::storage("cannot serialise an error", e))
}

fn args_json(value: &serde_json::Value) -> Result<String, TaskError> {
    serde_json::to_string(value).map_err(|e| TaskError::storage("cannot serialise arguments", e))
}

fn return_json(value: &serde_json::Value) -> Result<String, TaskError> {
    serde_json::to_string(value)
        .map_err(|e| TaskError::storage("cannot serialise a return value", e))
}

/// Marks the successes among `outcomes` (indexes and JSON return values in `successes`)
/// with one statement per chunk: a join against the outcomes, fenced like the single-row
/// updates, returning the rows it changed.
async fn success_updates(
    conn: &mut SqliteConnection,
    outcomes: &[Outcome],
    successes: &[(usize, String)],
    applied: &mut [bool],
) -> Result<(), TaskError> {
    for chunk in successes.chunks(FINISH_CHUNK) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "UPDATE mailroom_tasks SET status = 'SUCCESSFUL', finished_at = v.column4, \
                 return_value = v.column5, lease_expires_at = NULL FROM (",
        );
        qb.push_values(chunk, |mut b, (i, value)| {
            let o = &outcomes[*i];
            b.push_bind(o.lease.id.0)
                .push_bind(o.lease.worker_id.clone())
                .push_bind(i64::from(o.lease.attempt))
                .push_bind(micros(o.at))
                .push_bind(value.clone());
        });
        qb.push(
            ") AS v WHERE mailroom_tasks.id = v.column1 AND mailroom_tasks.worker_id = v.column2 \
                 AND mailroom_tasks.attempt = v.column3 AND mailroom_tasks.status = 'RUNNING' \
                 RETURNING mailroom_tasks.id, mailroom_tasks.attempt, mailroom_tasks.worker_id",
        );
        let rows = qb.build().fetch_all(&mut *conn).await?;
        let mut done = std::collections::HashSet::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get(0)?;
            let attempt: i64 = row.try_get(1)?;
            let worker: String = row.try_get(2)?;
            done.insert((id, attempt, worker));
        }
        for (i, _) in chunk {
            let l = &outcomes[*i].lease;
            applied[*i] = done.contains(&(l.id.0, i64::from(l.attempt), l.worker_id.clone()));
        }
    }
    Ok(())
}

#[async_trait]
impl TaskBackend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::DURABLE
    }

    fn queues(&self) -> &[String] {
        &self.queues
    }

    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        for task in &tasks {
            validate(task, self.capabilities(), &self.queues)?;
        }
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let ids = insert_tasks(&mut tx, tasks, Utc::now()).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn get_result(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        let row = sqlx::query("SELECT * FROM mailroom_tasks WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| TaskError::NotFound { id: id.to_string() })?;
        result_from_row(&row)
    }

    async fn claim(&self, req: &ClaimRequest) -> Result<Vec<ClaimedTask>, TaskError> {
        if req.limit == 0
            || req.queues.is_empty()
            || req.task_names.as_ref().is_some_and(Vec::is_empty)
        {
            return Ok(Vec::new());
        }
        let now = micros(req.now);
        let lease = chrono::Duration::from_std(req.lease)
            .map_err(|e| TaskError::storage("lease too long", e))?;
        let expires = req.now + lease;
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "UPDATE mailroom_tasks SET status = 'RUNNING', attempt = attempt + 1, worker_id = ",
        );
        qb.push_bind(&req.worker_id)
            .push(", lease_expires_at = ")
            .push_bind(micros(expires))
            .push(", started_at = COALESCE(started_at, ")
            .push_bind(now)
            .push("), last_attempted_at = ")
            .push_bind(now)
            .push(", worker_ids = json_insert(worker_ids, '$[#]', ")
            .push_bind(&req.worker_id)
            .push(") WHERE seq IN (SELECT seq FROM (");
        // One index-ordered, limited scan per queue, merged: `queue_name IN (...)` over
        // several queues would sort every ready row of those queues on each claim.
        let limit = i64::try_from(req.limit).unwrap_or(i64::MAX);
        for (i, q) in req.queues.iter().enumerate() {
            if i > 0 {
                qb.push(" UNION ALL ");
            }
            qb.push(
                "SELECT * FROM (SELECT seq, priority, run_after FROM mailroom_tasks \
                 WHERE status = 'READY' AND queue_name = ",
            )
            .push_bind(q)
            .push(" AND run_after <= ")
            .push_bind(now);
            if !req.isolated {
                qb.push(" AND lease_expiries = 0");
            }
            if let Some(names) = &req.task_names {
                qb.push(" AND task_name IN (");
                let mut list = qb.separated(", ");
                for name in names {
                    list.push_bind(name);
                }
                qb.push(")");
            }
            if let Some(routes) = &req.routes {
                qb.push(" AND (route IS NULL");
                if !routes.is_empty() {
                    qb.push(" OR route IN (");
                    let mut list = qb.separated(", ");
                    for route in routes {
                        list.push_bind(route);
                    }
                    qb.push(")");
                }
                qb.push(")");
            }
            qb.push(" ORDER BY priority DESC, run_after, seq LIMIT ")
                .push_bind(limit)
                .push(")");
        }
        qb.push(") ORDER BY priority DESC, run_after, seq LIMIT ")
            .push_bind(limit)
            .push(") RETURNING seq, id, task_name, queue_name, priority, args, attempt, max_attempts, enqueued_at, run_after, lease_expiries");
        let rows = qb.build().fetch_all(&self.writer).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            let args: String = row.try_get("args")?;
            let id: Uuid = row.try_get("id")?;
            claimed.push((
                seq,
                ClaimedTask {
                    lease: Lease {
                        id: TaskId(id),
                        worker_id: req.worker_id.clone(),
                        attempt: to_u32(row.try_get("attempt")?, "attempt")?,
                    },
                    task_name: row.try_get("task_name")?,
                    queue_name: row.try_get("queue_name")?,
                    priority: row.try_get("priority")?,
                    args: serde_json::from_str(&args).map_err(|e| corrupt("args", e))?,
                    max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
                    enqueued_at: from_micros(row.try_get("enqueued_at")?)?,
                    run_after: from_micros(row.try_get("run_after")?)?,
                    lease_expires_at: expires,
                    lease_expiries: to_u32(row.try_get("lease_expiries")?, "lease_expiries")?,
                },
            ));
        }
        // RETURNING gives no order; restore the claim order.
        Ok(super::in_claim_order(claimed))
    }

    async fn heartbeat(
        &self,
        leases: &[Lease],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, TaskError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let lease = chrono::Duration::from_std(lease)
            .map_err(|e| TaskError::storage("lease too long", e))?;
        let expires = micros(now + lease);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut held = Vec::with_capacity(leases.len());
        for l in leases {
            let done = sqlx::query(
                "UPDATE mailroom_tasks SET lease_expires_at = ? \
                 WHERE id = ? AND worker_id = ? AND attempt = ? AND status = 'RUNNING'",
            )
            .bind(expires)
            .bind(l.id.0)
            .bind(&l.worker_id)
            .bind(i64::from(l.attempt))
            .execute(&mut *tx)
            .await?;
            held.push(done.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(held)
    }

    async fn finish(&self, outcomes: &[Outcome]) -> Result<Vec<bool>, TaskError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let mut applied = vec![false; outcomes.len()];
        let mut successes = Vec::new();
        if outcomes.len() <= FINISH_CHUNK
            && outcomes
                .iter()
                .all(|o| matches!(o.kind, OutcomeKind::Succeeded { .. }))
        {
            // The common case: one statement, atomic by itself — no BEGIN/COMMIT round trips.
            for (i, o) in outcomes.iter().enumerate() {
                if let OutcomeKind::Succeeded { return_value } = &o.kind {
                    successes.push((i, return_json(return_value)?));
                }
            }
            let mut conn = self.writer.acquire().await?;
            success_updates(&mut conn, outcomes, &successes, &mut applied).await?;
            return Ok(applied);
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for (i, o) in outcomes.iter().enumerate() {
            let at = micros(o.at);
            let query = match &o.kind {
                OutcomeKind::Succeeded { return_value } => {
                    successes.push((i, return_json(return_value)?));
                    continue;
                }
                OutcomeKind::Retry {
                    error,
                    run_after,
                    args,
                } => sqlx::query(
                    "UPDATE mailroom_tasks SET status = 'READY', run_after = ?, errors = json_insert(errors, '$[#]', json(?)), \
                     enqueued_args = CASE WHEN ? IS NULL THEN enqueued_args ELSE COALESCE(enqueued_args, args) END, \
                     args = COALESCE(?, args), worker_id = NULL, lease_expires_at = NULL \
                     WHERE id = ? AND worker_id = ? AND attempt = ? AND status = 'RUNNING'",
                )
                .bind(micros(*run_after))
                .bind(error_json(error)?)
                .bind(args.as_ref().map(args_json).transpose()?)
                .bind(args.as_ref().map(args_json).transpose()?),
                OutcomeKind::Failed { error, args } => sqlx::query(
                    "UPDATE mailroom_tasks SET status = 'FAILED', finished_at = ?, errors = json_insert(errors, '$[#]', json(?)), \
                     enqueued_args = CASE WHEN ? IS NULL THEN enqueued_args ELSE COALESCE(enqueued_args, args) END, \
                     args = COALESCE(?, args), lease_expires_at = NULL \
                     WHERE id = ? AND worker_id = ? AND attempt = ? AND status = 'RUNNING'",
                )
                .bind(at)
                .bind(error_json(error)?)
                .bind(args.as_ref().map(args_json).transpose()?)
                .bind(args.as_ref().map(args_json).transpose()?),
            };
            let done = query
                .bind(o.lease.id.0)
                .bind(&o.lease.worker_id)
                .bind(i64::from(o.lease.attempt))
                .execute(&mut *tx)
                .await?;
            applied[i] = done.rows_affected() == 1;
        }
        success_updates(&mut tx, outcomes, &successes, &mut applied).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        max_lease_expiries: u32,
    ) -> Result<RescueReport, TaskError> {
        let now_us = micros(now);
        let at = serde_json::to_value(now)
            .map_err(|e| TaskError::storage("cannot serialise a time", e))?;
        let at = at.as_str().unwrap_or_default().to_owned();
        let limit = max_lease_expiries.max(1);
        // Every right-hand side reads the row as it was before this update.
        let statuses: Vec<String> = sqlx::query_scalar(
            "UPDATE mailroom_tasks SET \
               status = CASE WHEN attempt >= max_attempts OR lease_expiries + 1 >= ?3 THEN 'FAILED' ELSE 'READY' END, \
               finished_at = CASE WHEN attempt >= max_attempts OR lease_expiries + 1 >= ?3 THEN ?1 ELSE NULL END, \
               run_after = CASE WHEN attempt >= max_attempts OR lease_expiries + 1 >= ?3 THEN run_after ELSE ?1 END, \
               errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'kind', 'lease_expired', \
                 'message', CASE WHEN lease_expiries + 1 >= ?3 THEN ?5 ELSE ?4 END, \
                 'worker_id', worker_id, 'at', ?2)), \
               lease_expiries = lease_expiries + 1, \
               worker_id = NULL, lease_expires_at = NULL \
             WHERE status = 'RUNNING' AND lease_expires_at < ?1 RETURNING status",
        )
        .bind(now_us)
        .bind(at)
        .bind(i64::from(limit))
        .bind(super::LEASE_EXPIRED)
        .bind(super::lease_expired_too_often(limit))
        .fetch_all(&self.writer)
        .await?;
        let failed = statuses.iter().filter(|s| *s == "FAILED").count() as u64;
        Ok(RescueReport {
            retried: statuses.len() as u64 - failed,
            failed,
        })
    }

    async fn prune(&self, finished_before: DateTime<Utc>) -> Result<u64, TaskError> {
        let mut total = 0;
        loop {
            // In slices, so the write lock is never held for long.
            let done = sqlx::query(
                "DELETE FROM mailroom_tasks WHERE seq IN (SELECT seq FROM mailroom_tasks \
                 WHERE status IN ('SUCCESSFUL', 'FAILED') AND finished_at < ? LIMIT 5000)",
            )
            .bind(micros(finished_before))
            .execute(&self.writer)
            .await?;
            total += done.rows_affected();
            if done.rows_affected() < 5000 {
                return Ok(total);
            }
        }
    }
}

#[async_trait]
impl TransactionalEnqueue for SqliteBackend {
    async fn enqueue_in_new_transaction(
        &self,
        tasks: Vec<NewTask>,
        commit: bool,
    ) -> Result<Vec<TaskId>, TaskError> {
        // A connection of the caller's own, not the backend's pools.
        let options = SqliteConnectOptions::new()
            .filename(&self.path)
            .busy_timeout(Duration::from_secs(5));
        let mut conn = SqliteConnection::connect_with(&options).await?;
        let mut tx = conn.begin().await?;
        let ids = self.enqueue_in(&mut tx, tasks).await?;
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        conn.close().await?;
        Ok(ids)
    }
}
