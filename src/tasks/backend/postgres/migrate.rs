//! The schema migrations and their runner: the tables live in a schema of the user's choice,
//! created and migrated at open under an advisory lock, with the applied version recorded.

use sqlx::Executor;
use sqlx::postgres::PgConnection;

use super::PostgresBackend;
use crate::tasks::TaskError;

/// The schema migrations, in order; `{schema}` stands for the quoted schema name.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../../migrations/postgres/0001_tasks.sql"),
    include_str!("../../../../migrations/postgres/0002_lease_expiries.sql"),
];

impl PostgresBackend {
    /// The schema version this mailroom knows (the number of migrations).
    pub fn latest_schema_version() -> i32 {
        i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
    }

    /// Applies the migrations not yet applied, under an advisory lock so that many
    /// processes opening one schema at once migrate it once.
    pub(super) async fn migrate(&self) -> Result<(), TaskError> {
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
}
