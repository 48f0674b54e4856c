//! The schema migrations and their runner: applied at open under the write lock, with the
//! applied version recorded in `mailroom_schema_version`.

use super::SqliteBackend;
use crate::tasks::TaskError;

/// The schema migrations, in order; `schema_version` records how many were applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../../migrations/sqlite/0001_tasks.sql"),
    include_str!("../../../../migrations/sqlite/0002_lease_expiries.sql"),
];

impl SqliteBackend {
    /// Applies the migrations not yet applied, under the write lock so that several
    /// processes opening one file at once migrate it once.
    pub(super) async fn migrate(&self) -> Result<(), TaskError> {
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
}
