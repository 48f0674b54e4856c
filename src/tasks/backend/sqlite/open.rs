//! Opening the file: one writer connection and a read pool, WAL switched on with retries
//! (the switch does not wait on the busy timeout), and the pragmas that crash safety and
//! concurrency depend on read back and checked.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::{SqliteBackend, SqliteOptions};
use crate::tasks::TaskError;

impl SqliteBackend {
    /// Opens (creating if needed) and migrates the database at `sqlite:PATH[?queues=a,b]`.
    pub async fn connect(url: &str) -> Result<Self, TaskError> {
        Self::connect_with(SqliteOptions::from_url(url)?).await
    }

    /// The former name of [`connect_with`](Self::connect_with): `connect` takes a URL,
    /// `connect_with` options, `from_url` parses without connecting.
    #[deprecated(note = "renamed `connect_with`")]
    pub async fn open(options: SqliteOptions) -> Result<Self, TaskError> {
        Self::connect_with(options).await
    }

    /// Opens (creating if needed) and migrates the database, then checks its pragmas.
    pub async fn connect_with(options: SqliteOptions) -> Result<Self, TaskError> {
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
            settings: Default::default(),
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
