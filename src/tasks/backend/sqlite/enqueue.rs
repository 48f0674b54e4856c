//! Enqueueing: multi-row `INSERT`s inside the caller's `BEGIN IMMEDIATE`, idempotency keys
//! resolved against the stored tasks and within the batch (a key whose unique scope has
//! lapsed is taken from its old task in the same transaction), and enqueueing through the
//! caller's own transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::SqliteBackend;
use super::rows::{corrupt, micros};
use crate::tasks::backend::{NewTask, TaskBackend, same_keyed_task};
use crate::tasks::{TaskError, TaskId};

/// Rows per multi-row `INSERT` (14 parameters each, well under SQLite's 32766 limit).
const INSERT_CHUNK: usize = 1000;

impl SqliteBackend {
    /// Validates `tasks` and inserts them through the caller's own connection or
    /// transaction (`&mut *tx`): they exist only if the caller commits. The connection must
    /// be to the same database file (opened by [`SqliteBackend::open`] first, which
    /// migrates it).
    pub async fn enqueue_in(
        &self,
        conn: &mut SqliteConnection,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<TaskId>, TaskError> {
        let mut tasks = tasks;
        for task in &mut tasks {
            task.prepare(self.capabilities(), &self.queues)?;
        }
        insert_tasks(conn, tasks, Utc::now()).await
    }
}

pub(super) async fn insert_tasks(
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
    // Stored tasks whose key's unique scope has lapsed: the key is taken from them.
    let mut lapsed: Vec<Uuid> = Vec::new();
    for chunk in keys.chunks(INSERT_CHUNK) {
        let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
            "SELECT idempotency_key, id, task_name, COALESCE(enqueued_args, args), \
             (unique_scope = 'unfinished' AND status IN ('SUCCESSFUL', 'FAILED', 'CANCELLED')) \
               OR (unique_scope = 'until' AND unique_until <= ",
        );
        qb.push_bind(now_us)
            .push(") FROM mailroom_tasks WHERE idempotency_key IN (");
        let mut list = qb.separated(", ");
        for key in chunk {
            list.push_bind(*key);
        }
        qb.push(")");
        let stored: Vec<(String, Uuid, String, String, Option<bool>)> =
            qb.build_query_as().fetch_all(&mut *conn).await?;
        for (key, id, name, args, released) in stored {
            if released == Some(true) {
                lapsed.push(id);
                continue;
            }
            let args: serde_json::Value =
                serde_json::from_str(&args).map_err(|e| corrupt("args", e))?;
            if let Some(&i) = first_use.get(key.as_str()) {
                ids[i] = Some(same_keyed_task(
                    &key,
                    (TaskId(id), &name, &args),
                    &tasks[i],
                )?);
            }
        }
    }
    for chunk in lapsed.chunks(INSERT_CHUNK) {
        let mut qb: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new("UPDATE mailroom_tasks SET idempotency_key = NULL WHERE id IN (");
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build().execute(&mut *conn).await?;
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
            "INSERT INTO mailroom_tasks (id, task_name, queue_name, priority, args, status, enqueued_at, run_after, max_attempts, idempotency_key, route, timeout_ms, labels, unique_scope, unique_until) ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, task) in chunk {
            let id = TaskId::new();
            ids[*i] = Some(id);
            let args = task.args_json()?;
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
                .push_bind(task.route.as_deref())
                .push_bind(task.timeout_ms())
                .push_bind(task.labels_json())
                .push_bind(task.unique_scope())
                .push_bind(task.unique.until(now).map(micros));
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
            tasks[first].args(),
        );
        ids[i] = Some(same_keyed_task(key, stored, &tasks[i])?);
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

/// The conformance suite's transactional enqueue (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
mod transactional {
    use std::time::Duration;

    use async_trait::async_trait;
    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    use super::SqliteBackend;
    use crate::tasks::backend::{NewTask, TransactionalEnqueue};
    use crate::tasks::{TaskError, TaskId};

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
}
