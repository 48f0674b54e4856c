//! The one migration runner the SQL backends share: read the applied version, refuse a
//! database newer than this mailroom, apply the pending migrations in order and record each
//! one. Each backend supplies the transaction and lock it runs in (SQLite's write lock,
//! PostgreSQL's advisory lock) and how a migration's SQL is run and recorded.
//!
//! Not sqlx's `Migrator`: it records applied migrations in its own `_sqlx_migrations`
//! table (with checksums), while existing databases record theirs as a count in
//! `mailroom_schema_version`, which must stay readable; its migrations are static SQL,
//! while the PostgreSQL ones name the schema the backend was opened on (`{schema}`), so one
//! database can hold several; and it would need sqlx's `migrate` feature for one loop.

use crate::tasks::TaskError;

/// A database being migrated, inside the transaction its backend opened. (`async fn` in a
/// crate-private trait: each backend's future keeps its concrete, `Send` type.)
pub(super) trait MigrationTarget {
    /// The number of migrations applied so far (0 for a new database), creating the table
    /// that records it if missing.
    async fn applied_version(&mut self) -> Result<usize, TaskError>;

    /// Runs `sql` and records `version` (its 1-based position) as applied.
    async fn apply(&mut self, version: usize, sql: &str) -> Result<(), TaskError>;

    /// The error message for a database at `version`, newer than the `known` migrations.
    fn too_new(&self, version: usize, known: usize) -> String;
}

/// Applies the `migrations` (in order) that `target` has not applied yet; fails with a
/// `schema_version` configuration error if it has applied more than there are.
pub(super) async fn run(
    target: &mut impl MigrationTarget,
    migrations: &[&str],
) -> Result<(), TaskError> {
    let current = target.applied_version().await?;
    if current > migrations.len() {
        return Err(TaskError::configuration(
            "schema_version",
            target.too_new(current, migrations.len()),
        ));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current) {
        target.apply(i + 1, sql).await?;
    }
    Ok(())
}
