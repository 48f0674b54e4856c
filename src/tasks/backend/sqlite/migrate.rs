//! The schema migrations, applied at open by the shared runner under the write lock, with
//! the applied version recorded in `mailroom_schema_version`.

use sqlx::sqlite::SqliteConnection;

use super::SqliteBackend;
use crate::tasks::TaskError;
use crate::tasks::backend::migrate::{self, MigrationTarget};

/// The schema migrations, in order; `schema_version` records how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../../migrations/sqlite/0001_tasks.sql"),
    include_str!("../../../../migrations/sqlite/0002_lease_expiries.sql"),
    include_str!("../../../../migrations/sqlite/0003_operations.sql"),
    include_str!("../../../../migrations/sqlite/0004_lean_indexes.sql"),
    include_str!("../../../../migrations/sqlite/0005_running_by_queue.sql"),
    include_str!("../../../../migrations/sqlite/0006_prune_through_status.sql"),
];

/// The database file, inside the migrating `BEGIN IMMEDIATE` transaction.
struct Target<'a> {
    conn: &'a mut SqliteConnection,
}

impl MigrationTarget for Target<'_> {
    async fn applied_version(&mut self) -> Result<usize, TaskError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS mailroom_schema_version (version INTEGER NOT NULL)",
        )
        .execute(&mut *self.conn)
        .await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM mailroom_schema_version")
                .fetch_one(&mut *self.conn)
                .await?;
        Ok(usize::try_from(current.unwrap_or(0)).unwrap_or(0))
    }

    async fn apply(&mut self, version: usize, sql: &str) -> Result<(), TaskError> {
        sqlx::raw_sql(sql).execute(&mut *self.conn).await?;
        sqlx::query("INSERT INTO mailroom_schema_version (version) VALUES (?)")
            .bind(i64::try_from(version).unwrap_or(i64::MAX))
            .execute(&mut *self.conn)
            .await?;
        tracing::info!(version, "applied sqlite task schema migration");
        Ok(())
    }

    fn too_new(&self, version: usize, known: usize) -> String {
        format!(
            "the database has schema version {version}, newer than this mailroom knows ({known}); upgrade mailroom"
        )
    }
}

impl SqliteBackend {
    /// The schema version this mailroom knows (the number of migrations).
    pub fn latest_schema_version() -> i64 {
        i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
    }

    /// Applies the migrations not yet applied, under the write lock so that several
    /// processes opening one file at once migrate it once.
    pub(super) async fn migrate(&self) -> Result<(), TaskError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        migrate::run(&mut Target { conn: &mut tx }, MIGRATIONS).await?;
        tx.commit().await?;
        Ok(())
    }
}
