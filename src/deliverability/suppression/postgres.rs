//! The suppression list in the PostgreSQL task database, in the task backend's schema.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;

use super::storage;
use crate::error::Result;
use crate::tasks::{PostgresBackend, PostgresOptions};

/// The migrations, in order; `{schema}` stands for the quoted schema name.
const MIGRATIONS: &[&str] = &[include_str!(
    "../../../migrations/deliverability/postgres/0001_suppressions.sql"
)];

/// A row of the list: address, scope, reason, source, time.
pub(super) type Row = (String, String, String, String, DateTime<Utc>);

#[derive(Debug, Clone)]
pub(super) struct Store {
    pool: PgPool,
    /// `"schema".mailroom_suppressions`, quoted (the schema name was checked by the task
    /// backend: lowercase letters, digits and `_`).
    suppressions: String,
    soft_bounces: String,
}

impl Store {
    /// Connects through the task backend (its URL parameters, schema check, connect
    /// timeout, password masking and task migrations), shares its pool, and applies this
    /// list's migrations.
    pub(super) async fn connect(url: &str) -> Result<Store> {
        // A small pool: lookups are one short query per message.
        let options = PostgresOptions::from_url(url)?.max_connections(4);
        let backend = PostgresBackend::connect_with(options).await?;
        let schema = backend.schema().to_owned();
        let store = Store {
            pool: backend.pool().clone(),
            suppressions: format!("\"{schema}\".mailroom_suppressions"),
            soft_bounces: format!("\"{schema}\".mailroom_soft_bounces"),
        };
        store.migrate(&schema).await?;
        Ok(store)
    }

    async fn migrate(&self, schema: &str) -> Result<()> {
        let fail = |e| storage("migration failed", e);
        let mut tx = self.pool.begin().await.map_err(fail)?;
        // One migrator at a time per schema, across processes.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("mailroom-deliverability-migrate:{schema}"))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::raw_sql(&format!(
            "CREATE TABLE IF NOT EXISTS \"{schema}\".mailroom_deliverability_schema (version INTEGER NOT NULL)"
        ))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let version: Option<i32> = sqlx::query_scalar(&format!(
            "SELECT MAX(version) FROM \"{schema}\".mailroom_deliverability_schema"
        ))
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        let applied = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            sqlx::raw_sql(&sql.replace("{schema}", &format!("\"{schema}\"")))
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            sqlx::query(&format!(
                "INSERT INTO \"{schema}\".mailroom_deliverability_schema (version) VALUES ($1)"
            ))
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            tracing::info!(version = i + 1, "applied postgres deliverability migration");
        }
        tx.commit().await.map_err(fail)?;
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
        let done = sqlx::query(&format!(
            "INSERT INTO {} (address, scope, reason, source, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address, scope) DO NOTHING",
            self.suppressions
        ))
        .bind(address)
        .bind(scope)
        .bind(reason)
        .bind(source)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| storage("cannot add", e))?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn remove(&self, address: &str, scope: &str) -> Result<bool> {
        let done = sqlx::query(&format!(
            "DELETE FROM {} WHERE address = $1 AND scope = $2",
            self.suppressions
        ))
        .bind(address)
        .bind(scope)
        .execute(&self.pool)
        .await
        .map_err(|e| storage("cannot remove", e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn list(&self) -> Result<Vec<Row>> {
        sqlx::query_as(&format!(
            "SELECT address, scope, reason, source, created_at FROM {} \
             ORDER BY created_at, address, scope",
            self.suppressions
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| storage("cannot list", e))
    }

    /// Which of `addresses` are suppressed globally or in `scope`.
    pub(super) async fn find(&self, addresses: &[String], scope: &str) -> Result<HashSet<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT address FROM {} WHERE (scope = '' OR scope = $1) AND address = ANY($2)",
            self.suppressions
        ))
        .bind(scope)
        .bind(addresses)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| storage("cannot look up", e))?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
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
        sqlx::query(&format!(
            "INSERT INTO {} (address, status, at) VALUES ($1, $2, $3)",
            self.soft_bounces
        ))
        .bind(address)
        .bind(status)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        sqlx::query(&format!(
            "DELETE FROM {} WHERE address = $1 AND at < $2",
            self.soft_bounces
        ))
        .bind(address)
        .bind(since)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {} WHERE address = $1",
            self.soft_bounces
        ))
        .bind(address)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
