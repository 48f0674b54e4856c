//! The suppression list in the SQLite task database.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite};

use super::storage;
use crate::error::Result;
use crate::tasks::{SqliteBackend, SqliteOptions};

/// The migrations, in order; `mailroom_deliverability_schema` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!(
    "../../../migrations/deliverability/sqlite/0001_suppressions.sql"
)];

/// A row of the list: address, scope, reason, source, time.
pub(super) type Row = (String, String, String, String, DateTime<Utc>);

#[derive(Debug, Clone)]
pub(super) struct Store {
    pool: SqlitePool,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl Store {
    /// Opens the task database first (it creates the file, switches it to WAL and
    /// migrates the task tables, as every other user of the file expects), then a pool of
    /// its own, and applies this list's migrations under the write lock.
    pub(super) async fn connect(url: &str) -> Result<Store> {
        let options = SqliteOptions::from_url(url)?;
        drop(SqliteBackend::connect_with(options.clone()).await?);
        let connect = SqliteConnectOptions::new()
            .filename(&options.path)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(connect)
            .await
            .map_err(|e| storage("cannot open the sqlite database", e))?;
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| storage("cannot connect", e))?;
        let fail = |e| storage("migration failed", e);
        // BEGIN IMMEDIATE: several processes opening the file at once migrate it once.
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(fail)?;
        let result = async {
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS mailroom_deliverability_schema (version INTEGER NOT NULL)",
            )
            .execute(&mut *conn)
            .await?;
            let version: Option<i64> =
                sqlx::query_scalar("SELECT MAX(version) FROM mailroom_deliverability_schema")
                    .fetch_one(&mut *conn)
                    .await?;
            let applied = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
                sqlx::raw_sql(sql).execute(&mut *conn).await?;
                sqlx::query("INSERT INTO mailroom_deliverability_schema (version) VALUES (?)")
                    .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
                    .execute(&mut *conn)
                    .await?;
                tracing::info!(version = i + 1, "applied sqlite deliverability migration");
            }
            Ok::<(), sqlx::Error>(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::raw_sql(end).execute(&mut *conn).await;
        result.map_err(fail)?;
        ended.map_err(fail)?;
        Ok(())
    }

    pub(super) async fn add(
        &self,
        address: &str,
        scope: &str,
        reason: &str,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO mailroom_suppressions (address, scope, reason, source, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (address, scope) DO NOTHING",
        )
        .bind(address)
        .bind(scope)
        .bind(reason)
        .bind(source)
        .bind(micros(at))
        .execute(&self.pool)
        .await
        .map_err(|e| storage("cannot add", e))?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn remove(&self, address: &str, scope: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM mailroom_suppressions WHERE address = ? AND scope = ?")
            .bind(address)
            .bind(scope)
            .execute(&self.pool)
            .await
            .map_err(|e| storage("cannot remove", e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn list(&self) -> Result<Vec<Row>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT address, scope, reason, source, created_at FROM mailroom_suppressions \
             ORDER BY created_at, address, scope",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| storage("cannot list", e))?;
        Ok(rows
            .into_iter()
            .map(|(a, s, r, src, at)| (a, s, r, src, from_micros(at)))
            .collect())
    }

    /// Which of `addresses` are suppressed globally or in `scope`.
    pub(super) async fn find(&self, addresses: &[String], scope: &str) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        // Within SQLite's parameter limit (32766) with room to spare.
        for chunk in addresses.chunks(500) {
            let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                "SELECT address FROM mailroom_suppressions WHERE (scope = '' OR scope = ",
            );
            qb.push_bind(scope).push(") AND address IN (");
            let mut list = qb.separated(", ");
            for address in chunk {
                list.push_bind(address);
            }
            qb.push(")");
            let rows: Vec<(String,)> = qb
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| storage("cannot look up", e))?;
            found.extend(rows.into_iter().map(|(a,)| a));
        }
        Ok(found)
    }

    /// Stores a soft bounce, forgets those before `since`, and counts the rest.
    pub(super) async fn soft_bounce(
        &self,
        address: &str,
        status: &str,
        at: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        let fail = |e| storage("cannot count a soft bounce", e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        sqlx::query("INSERT INTO mailroom_soft_bounces (address, status, at) VALUES (?, ?, ?)")
            .bind(address)
            .bind(status)
            .bind(micros(at))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query("DELETE FROM mailroom_soft_bounces WHERE address = ? AND at < ?")
            .bind(address)
            .bind(micros(since))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM mailroom_soft_bounces WHERE address = ?")
                .bind(address)
                .fetch_one(&mut *tx)
                .await
                .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
