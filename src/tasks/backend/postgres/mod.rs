//! The PostgreSQL backend: many worker processes on many hosts against one database.
//!
//! - Claims are one statement: a CTE picks ready rows in claim order `FOR UPDATE SKIP
//!   LOCKED` with a `LIMIT` (so concurrent workers skip each other's rows instead of
//!   waiting, and the planner cannot lock more than the limit), then an `UPDATE` marks them
//!   `RUNNING` under the worker's lease. A partial index on ready rows in the same order
//!   serves it.
//! - Every write about a running task is fenced by the whole lease (task, worker, attempt,
//!   status `RUNNING`); heartbeats and completions go in batches through `UNNEST`.
//! - Enqueue is one `INSERT … SELECT FROM UNNEST(…)` per 10,000 tasks; idempotency keys are
//!   a unique index with `ON CONFLICT DO NOTHING`, never a read-then-write race. The same
//!   statement calls `pg_notify` with the queues it wrote to, so a committed enqueue wakes the
//!   idle workers of those queues (`LISTEN`) and a rolled-back one wakes none; the worker's
//!   poll interval covers lost notifications.
//! - The tables live in a schema of the user's choice (default `mailroom`), created and
//!   migrated at open under an advisory lock, with the applied version recorded.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, Row};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    Capabilities, ClaimRequest, ClaimedTask, DEFAULT_QUEUE, Lease, NewTask, Outcome, OutcomeKind,
    RescueReport, TaskBackend, TransactionalEnqueue, validate,
};
use crate::tasks::{AttemptError, TaskError, TaskId, TaskResult, TaskStatus};

/// The schema migrations, in order; `{schema}` stands for the quoted schema name.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../../migrations/postgres/0001_tasks.sql"),
    include_str!("../../../../migrations/postgres/0002_lease_expiries.sql"),
];

/// Rows per `INSERT … UNNEST` statement.
const INSERT_CHUNK: usize = 10_000;

/// The default schema.
pub(crate) const DEFAULT_SCHEMA: &str = "mailroom";

/// How to open a [`PostgresBackend`].
#[derive(Clone)]
pub struct PostgresOptions {
    /// The connection URL without mailroom's own parameters (may hold a password; never
    /// printed).
    url: String,
    /// The schema holding mailroom's tables (created if missing).
    pub schema: String,
    /// The queue names tasks may be enqueued on.
    pub queues: Vec<String>,
    /// Connections in the pool (a worker uses one of them for `LISTEN`).
    pub max_connections: u32,
    /// Whether a worker's bookkeeping (claims, heartbeats, completions, rescues) waits for
    /// its commit to reach disk. Default `false`: those commits are asynchronous (about
    /// 5× the throughput where an fsync costs milliseconds). Enqueues are always durable.
    /// If the *database server* crashes, the last moments of bookkeeping may be lost: those
    /// tasks run again (at least once, as after a worker crash), possibly under the same
    /// attempt number. Worker crashes are unaffected.
    pub synchronous_worker_commits: bool,
    /// How long opening the backend waits for the database to accept a connection before it
    /// fails with the cause (default 10 s; URL parameter `connect_timeout=SECONDS`).
    pub connect_timeout: Duration,
}

/// The default of [`PostgresOptions::connect_timeout`].
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("queues", &self.queues)
            .field("max_connections", &self.max_connections)
            .field(
                "synchronous_worker_commits",
                &self.synchronous_worker_commits,
            )
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The URL with any password (in the user info or a `password=` parameter) replaced by
/// `***`.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" { "***".into() } else { v };
                        (k.into_owned(), v.into_owned())
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

/// The passwords `url` holds (user info, raw and decoded, and `password=` parameters).
fn secrets(url: &str) -> Vec<String> {
    let Ok(u) = url::Url::parse(url) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(p) = u.password() {
        out.push(p.to_owned());
        if let Some(decoded) = percent_decode(p) {
            out.push(decoded);
        }
    }
    out.extend(
        u.query_pairs()
            .filter(|(k, _)| k == "password")
            .map(|(_, v)| v.into_owned()),
    );
    out.retain(|p| !p.is_empty());
    out
}

/// Percent-decodes `s` (a URL's user info), through the `url` crate's form decoder with
/// `+` kept as itself.
fn percent_decode(s: &str) -> Option<String> {
    let field = format!("p={}", s.replace('+', "%2B"));
    url::form_urlencoded::parse(field.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A storage error for a failure about the database at `url`: the cause's text joins the
/// message, and any password of `url` is masked in both; the cause is kept as the source
/// only when its debug form holds no password.
fn connection_error(message: String, url: &str, cause: sqlx::Error) -> TaskError {
    let secrets = secrets(url);
    let mask = |text: String| {
        secrets
            .iter()
            .fold(text, |t, secret| t.replace(secret.as_str(), "***"))
    };
    let message = mask(format!("{message}: {cause}"));
    let debug = format!("{cause:?}");
    if secrets.iter().any(|p| debug.contains(p.as_str())) {
        TaskError::Storage {
            message,
            source: None,
        }
    } else {
        TaskError::storage(message, cause)
    }
}

fn check_schema(schema: &str) -> Result<(), TaskError> {
    let mut chars = schema.chars();
    let ok_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !ok_start
        || schema.len() > 63
        || !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(TaskError::configuration(
            "schema",
            format!(
                "`{schema}` is not a usable schema name; use 1 to 63 of a-z, 0-9 and _, not starting with a digit"
            ),
        ));
    }
    Ok(())
}

impl PostgresOptions {
    /// Defaults for a connection URL (`postgres://user@host:port/db`): schema `mailroom`,
    /// queue `default`, 10 connections.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            queues: vec![DEFAULT_QUEUE.to_owned()],
            max_connections: 10,
            synchronous_worker_commits: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Sets how long opening waits for the database to accept a connection (see
    /// [`PostgresOptions::connect_timeout`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets whether worker bookkeeping commits wait for disk (see
    /// [`PostgresOptions::synchronous_worker_commits`]).
    pub fn synchronous_worker_commits(mut self, on: bool) -> Self {
        self.synchronous_worker_commits = on;
        self
    }

    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the known queues.
    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queues: I) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the pool size.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Parses `postgres://user[:password]@host[:port]/db[?schema=NAME][&queues=a,b]
    /// [&synchronous_worker_commits=true][&connect_timeout=SECONDS]` (also
    /// `postgresql://`); other parameters (e.g. `sslmode`) go to the driver.
    pub fn from_url(url: &str) -> Result<Self, TaskError> {
        let mut parsed = url::Url::parse(url).map_err(|e| {
            TaskError::configuration(
                "queue",
                format!("`{}` is not a postgres:// URL: {e}", redact(url)),
            )
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(TaskError::configuration(
                "queue",
                format!("`{}` is not a postgres:// URL", redact(url)),
            ));
        }
        let mut options = PostgresOptions::new("");
        let mut rest = Vec::new();
        for (k, v) in parsed.query_pairs() {
            match &*k {
                "schema" => options.schema = v.into_owned(),
                "queues" => {
                    let queues: Vec<String> = v
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
                "synchronous_worker_commits" => {
                    options.synchronous_worker_commits = match &*v {
                        "true" | "on" | "1" => true,
                        "false" | "off" | "0" => false,
                        other => {
                            return Err(TaskError::configuration(
                                "synchronous_worker_commits",
                                format!("is `{other}`; use true or false"),
                            ));
                        }
                    }
                }
                "connect_timeout" => {
                    let secs: u64 = v.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        TaskError::configuration(
                            "connect_timeout",
                            format!("is `{v}`; use a whole number of seconds, at least 1"),
                        )
                    })?;
                    options.connect_timeout = Duration::from_secs(secs);
                }
                _ => rest.push((k.into_owned(), v.into_owned())),
            }
        }
        if rest.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(rest);
        }
        options.url = parsed.to_string();
        check_schema(&options.schema)?;
        Ok(options)
    }
}

/// The SQL, built once for the chosen schema.
#[derive(Debug)]
struct Sql {
    insert: String,
    keyed_ids: String,
    get: String,
    claim: String,
    heartbeat: String,
    finish: String,
    rescue: String,
    prune: String,
    channel: String,
}

impl Sql {
    fn new(schema: &str, synchronous_worker_commits: bool) -> Self {
        let t = format!("\"{schema}\".mailroom_tasks");
        // Worker statements set `synchronous_commit` for their own (implicit) transaction.
        let commit = if synchronous_worker_commits {
            "on"
        } else {
            "off"
        };
        let cfg =
            format!("cfg AS (SELECT set_config('synchronous_commit', '{commit}', true) AS v)");
        let channel = format!("{schema}.mailroom_tasks");
        Sql {
            insert: format!(
                "WITH ins AS (\
                   INSERT INTO {t} (id, task_name, queue_name, priority, args, status, enqueued_at, run_after, max_attempts, idempotency_key, route) \
                   SELECT u.id, u.task_name, u.queue_name, u.priority, u.args::json, 'READY', $9, u.run_after, u.max_attempts, u.idempotency_key, u.route \
                   FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int4[], $5::text[], $6::timestamptz[], $7::int4[], $8::text[], $11::text[]) \
                     WITH ORDINALITY AS u(id, task_name, queue_name, priority, args, run_after, max_attempts, idempotency_key, route, ord) \
                   ORDER BY u.ord \
                   ON CONFLICT (idempotency_key) DO NOTHING RETURNING queue_name) \
                 SELECT n.inserted, CASE WHEN n.inserted > 0 THEN pg_notify($10, n.queues) END::text AS notified \
                 FROM (SELECT count(*) AS inserted, string_agg(DISTINCT queue_name, ',') AS queues FROM ins) n"
            ),
            keyed_ids: format!(
                "SELECT idempotency_key, id, task_name, COALESCE(enqueued_args, args) FROM {t} WHERE idempotency_key = ANY($1::text[])"
            ),
            get: format!(
                "SELECT id, task_name, queue_name, priority, args, status, enqueued_at, run_after, started_at, \
                 finished_at, last_attempted_at, attempt, max_attempts, worker_ids, errors, return_value, idempotency_key \
                 FROM {t} WHERE id = $1"
            ),
            claim: format!(
                "WITH {cfg}, ready AS (\
                   SELECT seq FROM {t} \
                   WHERE status = 'READY' AND run_after <= $1 AND queue_name = ANY($2::text[]) \
                     AND ($6::bool OR lease_expiries = 0) \
                     AND ($7::text[] IS NULL OR task_name = ANY($7::text[])) \
                     AND ($8::text[] IS NULL OR route IS NULL OR route = ANY($8::text[])) \
                   ORDER BY priority DESC, run_after, seq \
                   LIMIT $3 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE {t} t SET status = 'RUNNING', attempt = t.attempt + 1, worker_id = $4, \
                   lease_expires_at = $5, started_at = COALESCE(t.started_at, $1), last_attempted_at = $1, \
                   worker_ids = array_append(t.worker_ids, $4) \
                 FROM ready, cfg WHERE t.seq = ready.seq \
                 RETURNING t.seq, t.id, t.task_name, t.queue_name, t.priority, t.args, t.attempt, t.max_attempts, \
                   t.enqueued_at, t.run_after, t.lease_expiries"
            ),
            // Rows are locked in `seq` order (here, in `finish` and nowhere else without
            // SKIP LOCKED), so a worker's heartbeat and completion batches cannot deadlock.
            heartbeat: format!(
                "WITH {cfg}, locked AS (\
                   SELECT t.seq, l.worker_id, l.attempt FROM {t} t \
                   JOIN UNNEST($1::uuid[], $2::text[], $3::int4[]) AS l(id, worker_id, attempt) \
                     ON t.id = l.id AND t.worker_id = l.worker_id AND t.attempt = l.attempt \
                   WHERE t.status = 'RUNNING' ORDER BY t.seq FOR UPDATE OF t) \
                 UPDATE {t} t SET lease_expires_at = $4 FROM locked, cfg \
                 WHERE t.seq = locked.seq AND t.status = 'RUNNING' \
                 RETURNING t.id, locked.worker_id, locked.attempt"
            ),
            finish: format!(
                "WITH {cfg}, locked AS (\
                   SELECT t.seq, o.worker_id, o.attempt, o.kind, o.at, o.value, o.error, o.run_after, o.args FROM {t} t \
                   JOIN UNNEST($1::uuid[], $2::text[], $3::int4[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::timestamptz[], $9::text[]) \
                     AS o(id, worker_id, attempt, kind, at, value, error, run_after, args) \
                     ON t.id = o.id AND t.worker_id = o.worker_id AND t.attempt = o.attempt \
                   WHERE t.status = 'RUNNING' ORDER BY t.seq FOR UPDATE OF t) \
                 UPDATE {t} t SET \
                   status = CASE o.kind WHEN 'ok' THEN 'SUCCESSFUL' WHEN 'retry' THEN 'READY' ELSE 'FAILED' END, \
                   finished_at = CASE WHEN o.kind = 'retry' THEN t.finished_at ELSE o.at END, \
                   return_value = CASE WHEN o.kind = 'ok' THEN o.value::json ELSE t.return_value END, \
                   run_after = CASE WHEN o.kind = 'retry' THEN o.run_after ELSE t.run_after END, \
                   enqueued_args = CASE WHEN o.args IS NULL THEN t.enqueued_args ELSE COALESCE(t.enqueued_args, t.args) END, \
                   args = CASE WHEN o.args IS NULL THEN t.args ELSE o.args::json END, \
                   errors = CASE WHEN o.kind = 'ok' THEN t.errors ELSE t.errors || jsonb_build_array(o.error::jsonb) END, \
                   worker_id = CASE WHEN o.kind = 'retry' THEN NULL ELSE t.worker_id END, \
                   lease_expires_at = NULL \
                 FROM locked o, cfg WHERE t.seq = o.seq AND t.status = 'RUNNING' \
                 RETURNING t.id, o.worker_id, o.attempt"
            ),
            // SKIP LOCKED: rescuers of many workers never wait on (or deadlock with) each
            // other or with completions; a row locked now is looked at on the next pass.
            rescue: format!(
                "WITH {cfg}, expired AS (\
                   SELECT seq FROM {t} WHERE status = 'RUNNING' AND lease_expires_at < $1 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE {t} t SET \
                   status = CASE WHEN t.attempt >= t.max_attempts OR t.lease_expiries + 1 >= $3 THEN 'FAILED' ELSE 'READY' END, \
                   finished_at = CASE WHEN t.attempt >= t.max_attempts OR t.lease_expiries + 1 >= $3 THEN $1 ELSE NULL END, \
                   run_after = CASE WHEN t.attempt >= t.max_attempts OR t.lease_expiries + 1 >= $3 THEN t.run_after ELSE $1 END, \
                   errors = t.errors || jsonb_build_array(jsonb_build_object('attempt', t.attempt, 'kind', 'lease_expired', \
                     'message', CASE WHEN t.lease_expiries + 1 >= $3 THEN $5::text ELSE $4::text END, \
                     'worker_id', t.worker_id, 'at', $2::text)), \
                   lease_expiries = t.lease_expiries + 1, \
                   worker_id = NULL, lease_expires_at = NULL \
                 FROM expired, cfg WHERE t.seq = expired.seq RETURNING t.status"
            ),
            prune: format!(
                "DELETE FROM {t} WHERE seq IN (SELECT seq FROM {t} \
                 WHERE status IN ('SUCCESSFUL', 'FAILED') AND finished_at < $1 LIMIT 5000 \
                 FOR UPDATE SKIP LOCKED)"
            ),
            channel,
        }
    }
}

/// Session settings for the backend's connections. A queue table changes faster than its
/// statistics: after a bulk enqueue into a table last analysed when nearly empty, the
/// planner expects a handful of ready rows and claims with a bitmap scan that reads and
/// sorts *every* ready task (measured: 3.6 ms for a claim of 32 out of 10,400 ready tasks,
/// growing with the queue) instead of walking the claim-order index and stopping after
/// `LIMIT` rows (0.09 ms). No mailroom query needs a bitmap scan.
pub const PLANNER_SETTINGS: [(&str, &str); 1] = [("enable_bitmapscan", "off")];

/// Wakes this process's idle workers when a `NOTIFY` arrives; dropped with the backend.
struct Listener {
    wakeups: Arc<Wakeups>,
    task: tokio::task::JoinHandle<()>,
}

/// One [`Notify`] per queue: a notification names the queues its enqueue wrote to (queue
/// names cannot hold commas), and only workers waiting on one of them wake.
#[derive(Default)]
struct Wakeups {
    by_queue: std::sync::Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakeups {
    fn of(&self, queue: &str) -> Arc<Notify> {
        let mut map = self
            .by_queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(queue.to_owned()).or_default().clone()
    }

    /// Wakes the waiters of the queues in `payload`, or of every queue when it names none
    /// (a notification from elsewhere, or a reconnect that may have missed some). Each woken
    /// queue also keeps a permit for a worker that is between an empty claim and its wait,
    /// which would otherwise sleep a whole poll interval.
    fn wake(&self, payload: &str) {
        let targets: Vec<Arc<Notify>> = if payload.is_empty() {
            self.by_queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
                .cloned()
                .collect()
        } else {
            payload.split(',').map(|q| self.of(q)).collect()
        };
        for notify in targets {
            notify.notify_waiters();
            notify.notify_one();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Inner {
    pool: PgPool,
    schema: String,
    queues: Vec<String>,
    sql: Sql,
    listener: OnceLock<Listener>,
}

/// The PostgreSQL task backend. Cheap to clone (all clones share one pool).
#[derive(Clone)]
pub struct PostgresBackend {
    inner: Arc<Inner>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("schema", &self.inner.schema)
            .field("queues", &self.inner.queues)
            .field("pool_size", &self.inner.pool.size())
            .finish()
    }
}

fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> TaskError {
    TaskError::storage(format!("corrupt `{what}` in storage"), e)
}

fn to_u32(v: i32, what: &str) -> Result<u32, TaskError> {
    u32::try_from(v).map_err(|e| corrupt(what, e))
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl PostgresBackend {
    /// Connects to `postgres://…[?schema=NAME][&queues=a,b]` and migrates the schema.
    pub async fn connect(url: &str) -> Result<Self, TaskError> {
        Self::open(PostgresOptions::from_url(url)?).await
    }

    /// Connects, creates the schema if missing and applies pending migrations.
    pub async fn open(options: PostgresOptions) -> Result<Self, TaskError> {
        check_schema(&options.schema)?;
        if options.queues.is_empty() {
            return Err(TaskError::configuration(
                "queues",
                "at least one queue is needed",
            ));
        }
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| {
                connection_error(
                    format!("`{}` is not a usable PostgreSQL URL", redact(&options.url)),
                    &options.url,
                    e,
                )
            })?
            .options(PLANNER_SETTINGS);
        // One connection first, within the connect timeout: a pool would retry a refused
        // connection until its acquire timeout and then report only that it timed out.
        let unreachable = |cause: sqlx::Error| {
            connection_error(
                format!("cannot connect to PostgreSQL at {}", redact(&options.url)),
                &options.url,
                cause,
            )
        };
        let timeout = options.connect_timeout;
        let probe = tokio::time::timeout(timeout, PgConnection::connect_with(&connect))
            .await
            .map_err(|_| {
                TaskError::Storage {
                    message: format!(
                        "cannot connect to PostgreSQL at {}: no connection within the connect timeout of {} s; check the host and port, or raise `connect_timeout`",
                        redact(&options.url),
                        timeout.as_secs_f64()
                    ),
                    source: None,
                }
            })?
            .map_err(unreachable)?;
        probe.close().await.map_err(unreachable)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(60).max(timeout))
            .connect_with(connect)
            .await
            .map_err(unreachable)?;
        Self::with_pool(
            pool,
            &options.schema,
            options.queues,
            options.synchronous_worker_commits,
        )
        .await
    }

    /// Uses an existing pool (e.g. the application's own), creating and migrating `schema`;
    /// worker bookkeeping commits asynchronously (see
    /// [`PostgresOptions::synchronous_worker_commits`]).
    ///
    /// Give the pool's connections the planner settings in [`PLANNER_SETTINGS`]
    /// (`PgConnectOptions::options`), as [`PostgresBackend::open`] does: without them a
    /// claim may sort every ready task while the table's statistics are stale.
    pub async fn from_pool(
        pool: PgPool,
        schema: &str,
        queues: Vec<String>,
    ) -> Result<Self, TaskError> {
        Self::with_pool(pool, schema, queues, false).await
    }

    async fn with_pool(
        pool: PgPool,
        schema: &str,
        queues: Vec<String>,
        synchronous_worker_commits: bool,
    ) -> Result<Self, TaskError> {
        check_schema(schema)?;
        if queues.is_empty() {
            return Err(TaskError::configuration(
                "queues",
                "at least one queue is needed",
            ));
        }
        let backend = PostgresBackend {
            inner: Arc::new(Inner {
                sql: Sql::new(schema, synchronous_worker_commits),
                pool,
                schema: schema.to_owned(),
                queues,
                listener: OnceLock::new(),
            }),
        };
        backend.migrate().await?;
        Ok(backend)
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The connection pool (for the caller's own transactions, see
    /// [`PostgresBackend::enqueue_in`]).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema version this mailroom knows (the number of migrations).
    pub fn latest_schema_version() -> i32 {
        i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
    }

    /// Applies the migrations not yet applied, under an advisory lock so that many
    /// processes opening one schema at once migrate it once.
    async fn migrate(&self) -> Result<(), TaskError> {
        let schema = self.inner.schema.clone();
        let lock_key = format!("mailroom-migrate:{schema}");
        let create = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; \
             CREATE TABLE IF NOT EXISTS \"{schema}\".mailroom_schema_version \
             (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        );
        let read_version = format!("SELECT MAX(version) FROM \"{schema}\".mailroom_schema_version");
        let record_version =
            format!("INSERT INTO \"{schema}\".mailroom_schema_version (version) VALUES ($1)");
        let quoted = format!("\"{schema}\"");
        let mut tx = self.inner.pool.begin().await?;
        let conn: &mut PgConnection = &mut tx;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&lock_key)
            .execute(&mut *conn)
            .await?;
        conn.execute(create.as_str()).await?;
        let current: Option<i32> = sqlx::query_scalar(&read_version)
            .fetch_one(&mut *conn)
            .await?;
        let current = usize::try_from(current.unwrap_or(0)).unwrap_or(0);
        if current > MIGRATIONS.len() {
            return Err(TaskError::configuration(
                "schema_version",
                format!(
                    "schema `{schema}` has version {current}, newer than this mailroom knows ({}); upgrade mailroom",
                    MIGRATIONS.len()
                ),
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let sql = sql.replace("{schema}", &quoted);
            conn.execute(sql.as_str()).await?;
            sqlx::query(&record_version)
                .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
                .execute(&mut *conn)
                .await?;
            tracing::info!(version = i + 1, schema = %schema, "applied postgres task schema migration");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Validates `tasks` and inserts them through the caller's own connection or
    /// transaction (`&mut *tx`): they exist — and idle workers are woken — only if the
    /// caller commits. The connection must reach the database this backend was opened on.
    pub async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<TaskId>, TaskError> {
        for task in &tasks {
            validate(task, self.capabilities(), &self.inner.queues)?;
        }
        self.insert(conn, tasks).await
    }

    async fn insert(
        &self,
        conn: &mut PgConnection,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<TaskId>, TaskError> {
        let now = Utc::now();
        let mut ids = Vec::with_capacity(tasks.len());
        let mut keys: Vec<String> = Vec::new();
        for chunk in tasks.chunks(INSERT_CHUNK) {
            let n = chunk.len();
            let mut id = Vec::with_capacity(n);
            let mut name = Vec::with_capacity(n);
            let mut queue = Vec::with_capacity(n);
            let mut priority = Vec::with_capacity(n);
            let mut args = Vec::with_capacity(n);
            let mut run_after = Vec::with_capacity(n);
            let mut max_attempts = Vec::with_capacity(n);
            let mut key = Vec::with_capacity(n);
            let mut route = Vec::with_capacity(n);
            for task in chunk {
                let tid = TaskId::new();
                ids.push(tid);
                id.push(tid.0);
                name.push(task.task_name.as_str());
                queue.push(task.queue_name.as_str());
                priority.push(task.priority);
                args.push(serde_json::to_string(&task.args).map_err(|e| {
                    TaskError::invalid("args", format!("cannot be serialised: {e}"))
                })?);
                run_after.push(task.run_after.unwrap_or(now));
                max_attempts.push(to_i32(task.max_attempts));
                key.push(task.idempotency_key.as_deref());
                route.push(task.route.as_deref());
                if let Some(k) = &task.idempotency_key {
                    keys.push(k.clone());
                }
            }
            sqlx::query(&self.inner.sql.insert)
                .bind(id)
                .bind(name)
                .bind(queue)
                .bind(priority)
                .bind(args)
                .bind(run_after)
                .bind(max_attempts)
                .bind(key)
                .bind(now)
                .bind(&self.inner.sql.channel)
                .bind(route)
                .execute(&mut *conn)
                .await?;
        }
        if !keys.is_empty() {
            // Keyed tasks get the stored task's id, whether this call or an earlier one
            // stored it (a unique index decided which) — if they are the same task.
            let rows: Vec<(String, Uuid, String, serde_json::Value)> =
                sqlx::query_as(&self.inner.sql.keyed_ids)
                    .bind(&keys)
                    .fetch_all(&mut *conn)
                    .await?;
            let stored: HashMap<String, (Uuid, String, serde_json::Value)> = rows
                .into_iter()
                .map(|(k, id, name, args)| (k, (id, name, args)))
                .collect();
            for (task, id) in tasks.iter().zip(ids.iter_mut()) {
                if let Some(k) = &task.idempotency_key {
                    let (stored_id, name, args) =
                        stored.get(k).ok_or_else(|| TaskError::Storage {
                            message: format!("the task with idempotency key `{k}` vanished"),
                            source: None,
                        })?;
                    *id = super::same_keyed_task(k, (TaskId(*stored_id), name, args), task)?;
                }
            }
        }
        Ok(ids)
    }

    fn listener(&self) -> &Listener {
        self.inner.listener.get_or_init(|| {
            let wakeups = Arc::new(Wakeups::default());
            let task = tokio::spawn(listen(
                self.inner.pool.clone(),
                self.inner.sql.channel.clone(),
                wakeups.clone(),
            ));
            Listener { wakeups, task }
        })
    }
}

/// Holds a `LISTEN` connection and wakes waiting workers on every notification;
/// reconnects after errors (notifications lost meanwhile are covered by polling).
async fn listen(pool: PgPool, channel: String, wakeups: Arc<Wakeups>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a LISTEN connection; polling only");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "LISTEN failed; polling only");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(notification) => wakeups.wake(notification.payload()),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                    // A reconnect may have missed notifications: let workers poll now.
                    wakeups.wake("");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}

fn result_from_row(row: &PgRow) -> Result<TaskResult, TaskError> {
    let status: String = row.try_get("status")?;
    let errors: serde_json::Value = row.try_get("errors")?;
    Ok(TaskResult {
        id: TaskId(row.try_get("id")?),
        task_name: row.try_get("task_name")?,
        queue_name: row.try_get("queue_name")?,
        priority: row.try_get("priority")?,
        args: row.try_get("args")?,
        status: TaskStatus::from_str(&status)?,
        enqueued_at: row.try_get("enqueued_at")?,
        run_after: row.try_get("run_after")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        last_attempted_at: row.try_get("last_attempted_at")?,
        attempts: to_u32(row.try_get("attempt")?, "attempt")?,
        max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
        worker_ids: row.try_get("worker_ids")?,
        errors: serde_json::from_value(errors).map_err(|e| corrupt("errors", e))?,
        return_value: row.try_get("return_value")?,
        idempotency_key: row.try_get("idempotency_key")?,
    })
}

fn error_json(error: &AttemptError) -> Result<String, TaskError> {
    serde_json::to_string(error).map_err(|e| TaskError::storage("cannot serialise an error", e))
}

/// Marks each `(id, worker, attempt)` in `wanted` as applied if the statement returned it,
/// the first occurrence only (a repeated lease in one batch is applied once).
fn applied(wanted: &[(Uuid, &str, i32)], returned: Vec<(Uuid, String, i32)>) -> Vec<bool> {
    let mut got: HashSet<(Uuid, String, i32)> = returned.into_iter().collect();
    wanted
        .iter()
        .map(|(id, w, a)| got.remove(&(*id, (*w).to_owned(), *a)))
        .collect()
}

#[async_trait]
impl TaskBackend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::DURABLE
    }

    fn queues(&self) -> &[String] {
        &self.inner.queues
    }

    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        for task in &tasks {
            validate(task, self.capabilities(), &self.inner.queues)?;
        }
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.inner.pool.acquire().await?;
        let keyed = tasks.iter().any(|t| t.idempotency_key.is_some());
        if tasks.len() <= INSERT_CHUNK && !keyed {
            // One statement: atomic on its own. (Keyed tasks are checked against the stored
            // ones after the insert, so a conflict must be able to roll it back.)
            self.insert(&mut conn, tasks).await
        } else {
            let mut tx = conn.begin().await?;
            let ids = self.insert(&mut tx, tasks).await?;
            tx.commit().await?;
            Ok(ids)
        }
    }

    async fn get_result(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        let row = sqlx::query(&self.inner.sql.get)
            .bind(id.0)
            .fetch_optional(&self.inner.pool)
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
        // A claiming process will wait for work: LISTEN from now on.
        self.listener();
        let lease = chrono::Duration::from_std(req.lease)
            .map_err(|e| TaskError::storage("lease too long", e))?;
        let expires = req.now + lease;
        let rows = sqlx::query(&self.inner.sql.claim)
            .bind(req.now)
            .bind(&req.queues)
            .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
            .bind(&req.worker_id)
            .bind(expires)
            .bind(req.isolated)
            .bind(&req.task_names)
            .bind(&req.routes)
            .fetch_all(&self.inner.pool)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            claimed.push((
                seq,
                ClaimedTask {
                    lease: Lease {
                        id: TaskId(row.try_get("id")?),
                        worker_id: req.worker_id.clone(),
                        attempt: to_u32(row.try_get("attempt")?, "attempt")?,
                    },
                    task_name: row.try_get("task_name")?,
                    queue_name: row.try_get("queue_name")?,
                    priority: row.try_get("priority")?,
                    args: row.try_get("args")?,
                    max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
                    enqueued_at: row.try_get("enqueued_at")?,
                    run_after: row.try_get("run_after")?,
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
        let wanted: Vec<(Uuid, &str, i32)> = leases
            .iter()
            .map(|l| (l.id.0, l.worker_id.as_str(), to_i32(l.attempt)))
            .collect();
        let returned: Vec<(Uuid, String, i32)> = sqlx::query_as(&self.inner.sql.heartbeat)
            .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.1).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.2).collect::<Vec<_>>())
            .bind(now + lease)
            .fetch_all(&self.inner.pool)
            .await?;
        let mut got: HashSet<(Uuid, String, i32)> = returned.into_iter().collect();
        // Every copy of a held lease is held (unlike completions, which apply once).
        let held = wanted
            .iter()
            .map(|(id, w, a)| got.contains(&(*id, (*w).to_owned(), *a)))
            .collect();
        got.clear();
        Ok(held)
    }

    async fn finish(&self, outcomes: &[Outcome]) -> Result<Vec<bool>, TaskError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let n = outcomes.len();
        let mut wanted = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        let mut value: Vec<Option<String>> = Vec::with_capacity(n);
        let mut error: Vec<Option<String>> = Vec::with_capacity(n);
        let mut run_after: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut next_args: Vec<Option<String>> = Vec::with_capacity(n);
        let args_json = |args: &Option<serde_json::Value>| {
            args.as_ref()
                .map(|a| {
                    serde_json::to_string(a)
                        .map_err(|e| TaskError::storage("cannot serialise arguments", e))
                })
                .transpose()
        };
        for o in outcomes {
            wanted.push((
                o.lease.id.0,
                o.lease.worker_id.as_str(),
                to_i32(o.lease.attempt),
            ));
            at.push(o.at);
            match &o.kind {
                OutcomeKind::Succeeded { return_value } => {
                    kind.push("ok");
                    value.push(Some(serde_json::to_string(return_value).map_err(|e| {
                        TaskError::storage("cannot serialise a return value", e)
                    })?));
                    error.push(None);
                    run_after.push(None);
                    next_args.push(None);
                }
                OutcomeKind::Retry {
                    error: e,
                    run_after: r,
                    args,
                } => {
                    kind.push("retry");
                    value.push(None);
                    error.push(Some(error_json(e)?));
                    run_after.push(Some(*r));
                    next_args.push(args_json(args)?);
                }
                OutcomeKind::Failed { error: e, args } => {
                    kind.push("failed");
                    value.push(None);
                    error.push(Some(error_json(e)?));
                    run_after.push(None);
                    next_args.push(args_json(args)?);
                }
            }
        }
        let returned: Vec<(Uuid, String, i32)> = sqlx::query_as(&self.inner.sql.finish)
            .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.1).collect::<Vec<_>>())
            .bind(wanted.iter().map(|w| w.2).collect::<Vec<_>>())
            .bind(kind)
            .bind(at)
            .bind(value)
            .bind(error)
            .bind(run_after)
            .bind(next_args)
            .fetch_all(&self.inner.pool)
            .await?;
        Ok(applied(&wanted, returned))
    }

    async fn rescue_expired(
        &self,
        now: DateTime<Utc>,
        max_lease_expiries: u32,
    ) -> Result<RescueReport, TaskError> {
        let at = serde_json::to_value(now)
            .map_err(|e| TaskError::storage("cannot serialise a time", e))?;
        let at = at.as_str().unwrap_or_default().to_owned();
        let limit = max_lease_expiries.max(1);
        let statuses: Vec<String> = sqlx::query_scalar(&self.inner.sql.rescue)
            .bind(now)
            .bind(at)
            .bind(to_i32(limit))
            .bind(super::LEASE_EXPIRED)
            .bind(super::lease_expired_too_often(limit))
            .fetch_all(&self.inner.pool)
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
            let done = sqlx::query(&self.inner.sql.prune)
                .bind(finished_before)
                .execute(&self.inner.pool)
                .await?;
            total += done.rows_affected();
            if done.rows_affected() < 5000 {
                return Ok(total);
            }
        }
    }

    async fn wait_for_tasks(&self, queues: &[String], timeout: Duration) {
        let wakeups = &self.listener().wakeups;
        let notifies: Vec<Arc<Notify>> = queues.iter().map(|q| wakeups.of(q)).collect();
        if notifies.is_empty() {
            tokio::time::sleep(timeout).await;
            return;
        }
        let notified =
            futures_util::future::select_all(notifies.iter().map(|n| Box::pin(n.notified())));
        tokio::select! {
            _ = notified => {}
            () = tokio::time::sleep(timeout) => {}
        }
    }
}

#[async_trait]
impl TransactionalEnqueue for PostgresBackend {
    async fn enqueue_in_new_transaction(
        &self,
        tasks: Vec<NewTask>,
        commit: bool,
    ) -> Result<Vec<TaskId>, TaskError> {
        let mut tx = self.inner.pool.begin().await?;
        let ids = self.enqueue_in(&mut tx, tasks).await?;
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn url_parameters_are_mailrooms_or_the_drivers() {
        let o = PostgresOptions::from_url(
            "postgres://u:secret@db:5433/app?schema=jobs&queues=a,b&sslmode=disable",
        )
        .unwrap();
        assert_eq!(o.schema, "jobs");
        assert_eq!(o.queues, ["a", "b"]);
        assert_eq!(o.url, "postgres://u:secret@db:5433/app?sslmode=disable");
        let shown = format!("{o:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        let o = PostgresOptions::from_url("postgresql://u@db/app").unwrap();
        assert_eq!(o.schema, DEFAULT_SCHEMA);
        assert_eq!(o.url, "postgresql://u@db/app");
        assert!(!o.synchronous_worker_commits);
        let o = PostgresOptions::from_url("postgres://u@db/app?synchronous_worker_commits=true")
            .unwrap();
        assert!(o.synchronous_worker_commits);
        assert_eq!(o.url, "postgres://u@db/app");
        let e = PostgresOptions::from_url("postgres://u@db/app?synchronous_worker_commits=maybe")
            .unwrap_err();
        assert_eq!(e.field(), Some("synchronous_worker_commits"));
    }

    #[test]
    fn connect_timeout_is_a_url_parameter_in_seconds() {
        let o = PostgresOptions::from_url("postgres://u@db/app").unwrap();
        assert_eq!(o.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let o = PostgresOptions::from_url("postgres://u@db/app?connect_timeout=5&sslmode=disable")
            .unwrap();
        assert_eq!(o.connect_timeout, Duration::from_secs(5));
        assert_eq!(o.url, "postgres://u@db/app?sslmode=disable");
        for bad in ["0", "-1", "soon", "1.5", ""] {
            let e =
                PostgresOptions::from_url(&format!("postgres://u@db/app?connect_timeout={bad}"))
                    .unwrap_err();
            assert_eq!(e.field(), Some("connect_timeout"), "{bad}: {e}");
        }
        let o = PostgresOptions::new("postgres://u@db/app").connect_timeout(Duration::from_secs(2));
        assert_eq!(o.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn passwords_are_masked_in_user_info_and_parameters() {
        let url = "postgres://u:s3%63r3t@h/d?password=p4ss&sslmode=disable";
        let shown = redact(url);
        assert!(!shown.contains("s3") && !shown.contains("p4ss"), "{shown}");
        assert!(shown.contains("sslmode=disable"), "{shown}");
        let mut found = secrets(url);
        found.sort();
        assert_eq!(found, ["p4ss", "s3%63r3t", "s3cr3t"]);
        assert_eq!(percent_decode("a+b%2B%20").as_deref(), Some("a+b+ "));
    }

    #[test]
    fn bad_schema_names_are_refused() {
        for bad in ["", "1abc", "Upper", "a-b", "a\"b", &"x".repeat(64)] {
            let e =
                PostgresOptions::from_url(&format!("postgres://u@h/d?schema={bad}")).unwrap_err();
            assert_eq!(e.field(), Some("schema"), "{bad}: {e}");
        }
        assert!(PostgresOptions::from_url("sqlite:x.db").is_err());
        assert!(PostgresOptions::from_url("postgres://u@h/d?queues=").is_err());
    }
}

/// The claim's plan on the real PostgreSQL (`MAILROOM_TEST_POSTGRES_URL`, which `.ci/run`
/// sets; without it, and outside CI, the test says so and returns).
#[cfg(test)]
mod plan_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
    use super::*;

    /// Node types in an `EXPLAIN (FORMAT JSON)` plan, depth first.
    fn node_types(plan: &serde_json::Value, out: &mut Vec<String>) {
        if let Some(t) = plan.get("Node Type").and_then(|t| t.as_str()) {
            out.push(t.to_owned());
        }
        for child in plan
            .get("Plans")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            node_types(child, out);
        }
    }

    async fn claim_plan(pool: &PgPool, sql: &Sql) -> Vec<String> {
        let now = Utc::now();
        let plan: serde_json::Value =
            sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", sql.claim))
                .bind(now)
                .bind(vec!["default".to_owned()])
                .bind(32_i64)
                .bind("w")
                .bind(now)
                .bind(false)
                .bind(Some(vec!["noop".to_owned()]))
                .bind(Some(vec!["smtp".to_owned()]))
                .fetch_one(pool)
                .await
                .unwrap();
        let mut nodes = Vec::new();
        node_types(&plan[0]["Plan"], &mut nodes);
        nodes
    }

    #[tokio::test]
    async fn claims_walk_the_index_even_when_statistics_are_stale() {
        let url = match std::env::var("MAILROOM_TEST_POSTGRES_URL") {
            Ok(url) => url,
            Err(_) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
                panic!("MAILROOM_TEST_POSTGRES_URL must be set in CI")
            }
            Err(_) => {
                eprintln!("SKIPPED: MAILROOM_TEST_POSTGRES_URL is not set");
                return;
            }
        };
        let schema = format!(
            "mailroom_plan_{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let backend = PostgresBackend::open(PostgresOptions::new(&url).schema(&schema))
            .await
            .unwrap();
        // A bulk enqueue into a table never analysed since it was empty.
        let tasks = (0..5_000)
            .map(|n| NewTask::new("noop", serde_json::json!(n)))
            .collect();
        backend.enqueue_many(tasks).await.unwrap();

        let sql = &backend.inner.sql;
        let nodes = claim_plan(&backend.inner.pool, sql).await;
        assert!(
            nodes.iter().any(|n| n == "Index Scan"),
            "the claim should walk the ready index: {nodes:?}"
        );
        assert!(
            !nodes.iter().any(|n| n == "Sort" || n.starts_with("Bitmap")),
            "the claim must not read and sort every ready task: {nodes:?}"
        );

        // Control: a plain pool, without the settings, plans the sort on this table, so
        // the assertions above are about the settings, not about luck.
        let plain = PgPool::connect(&url).await.unwrap();
        let nodes = claim_plan(&plain, sql).await;
        assert!(nodes.iter().any(|n| n == "Sort"), "{nodes:?}");
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&plain)
            .await
            .unwrap();
    }
}
