//! The schema migrations, applied at open by the shared runner: the tables live in a schema
//! of the user's choice, created and migrated under an advisory lock, with the applied
//! version recorded in `mailroom_schema_version`.

use sqlx::Executor;
use sqlx::postgres::PgConnection;

use super::PostgresBackend;
use crate::tasks::TaskError;
use crate::tasks::backend::migrate::{self, MigrationTarget};

/// The schema migrations, in order; `{schema}` stands for the quoted schema name.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../../migrations/postgres/0001_tasks.sql"),
    include_str!("../../../../migrations/postgres/0002_lease_expiries.sql"),
    include_str!("../../../../migrations/postgres/0003_operations.sql"),
    include_str!("../../../../migrations/postgres/0004_lean_indexes.sql"),
];

/// One schema, inside the migrating transaction that holds its advisory lock.
struct Target<'a> {
    conn: &'a mut PgConnection,
    schema: &'a str,
}

impl MigrationTarget for Target<'_> {
    async fn applied_version(&mut self) -> Result<usize, TaskError> {
        let schema = self.schema;
        let create = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; \
             CREATE TABLE IF NOT EXISTS \"{schema}\".mailroom_schema_version \
             (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        );
        let read_version = format!("SELECT MAX(version) FROM \"{schema}\".mailroom_schema_version");
        self.conn.execute(create.as_str()).await?;
        let current: Option<i32> = sqlx::query_scalar(&read_version)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(usize::try_from(current.unwrap_or(0)).unwrap_or(0))
    }

    async fn apply(&mut self, version: usize, sql: &str) -> Result<(), TaskError> {
        let schema = self.schema;
        let sql = sql.replace("{schema}", &format!("\"{schema}\""));
        let record_version =
            format!("INSERT INTO \"{schema}\".mailroom_schema_version (version) VALUES ($1)");
        self.conn.execute(sql.as_str()).await?;
        sqlx::query(&record_version)
            .bind(i32::try_from(version).unwrap_or(i32::MAX))
            .execute(&mut *self.conn)
            .await?;
        tracing::info!(version, schema = %schema, "applied postgres task schema migration");
        Ok(())
    }

    fn too_new(&self, version: usize, known: usize) -> String {
        format!(
            "schema `{}` has version {version}, newer than this mailroom knows ({known}); upgrade mailroom",
            self.schema
        )
    }
}

impl PostgresBackend {
    /// The schema version this mailroom knows (the number of migrations).
    pub fn latest_schema_version() -> i32 {
        i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
    }

    /// Applies the migrations not yet applied, under an advisory lock so that many
    /// processes opening one schema at once migrate it once.
    pub(super) async fn migrate(&self) -> Result<(), TaskError> {
        let schema = self.inner.schema.as_str();
        let lock_key = format!("mailroom-migrate:{schema}");
        let mut tx = self.inner.pool.begin().await?;
        let conn: &mut PgConnection = &mut tx;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&lock_key)
            .execute(&mut *conn)
            .await?;
        migrate::run(&mut Target { conn, schema }, MIGRATIONS).await?;
        tx.commit().await?;
        Ok(())
    }
}
