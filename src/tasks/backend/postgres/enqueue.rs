//! Enqueueing: one `INSERT … SELECT FROM UNNEST(…)` per 10,000 tasks; idempotency keys are
//! a unique index with `ON CONFLICT DO NOTHING`, never a read-then-write race. The same
//! statement calls `pg_notify` with the queues it wrote to, so a committed enqueue wakes the
//! idle workers of those queues and a rolled-back one wakes none.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::PostgresBackend;
use super::rows::to_i32;
use crate::tasks::backend::{NewTask, TaskBackend, same_keyed_task};
use crate::tasks::{TaskError, TaskId};

/// Rows per `INSERT … UNNEST` statement.
pub(super) const INSERT_CHUNK: usize = 10_000;

impl PostgresBackend {
    /// Validates `tasks` and inserts them through the caller's own connection or
    /// transaction (`&mut *tx`): they exist — and idle workers are woken — only if the
    /// caller commits. The connection must reach the database this backend was opened on.
    pub async fn enqueue_in(
        &self,
        conn: &mut PgConnection,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<TaskId>, TaskError> {
        let mut tasks = tasks;
        for task in &mut tasks {
            task.prepare(self.capabilities(), &self.inner.queues)?;
        }
        self.insert(conn, tasks).await
    }

    pub(super) async fn insert(
        &self,
        conn: &mut PgConnection,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<TaskId>, TaskError> {
        let now = Utc::now();
        let mut ids = Vec::with_capacity(tasks.len());
        let keys: Vec<String> = tasks
            .iter()
            .filter_map(|t| t.idempotency_key.clone())
            .collect();
        if !keys.is_empty() {
            // Keys whose unique scope has lapsed (see `UniqueScope`) are free again.
            sqlx::query(&self.inner.sql.release_keys)
                .bind(&keys)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
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
            let mut timeout_ms = Vec::with_capacity(n);
            let mut labels = Vec::with_capacity(n);
            let mut unique_scope = Vec::with_capacity(n);
            let mut unique_until = Vec::with_capacity(n);
            for task in chunk {
                let tid = TaskId::new();
                ids.push(tid);
                id.push(tid.0);
                name.push(task.task_name.as_str());
                queue.push(task.queue_name.as_str());
                priority.push(task.priority);
                args.push(task.args_json()?);
                run_after.push(task.run_after.unwrap_or(now));
                max_attempts.push(to_i32(task.max_attempts));
                key.push(task.idempotency_key.as_deref());
                route.push(task.route.as_deref());
                timeout_ms.push(task.timeout_ms());
                labels.push(task.labels_json());
                unique_scope.push(task.unique_scope());
                unique_until.push(task.unique.until(now));
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
                .bind(timeout_ms)
                .bind(labels)
                .bind(unique_scope)
                .bind(unique_until)
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
                    *id = same_keyed_task(k, (TaskId(*stored_id), name, args), task)?;
                }
            }
        }
        Ok(ids)
    }
}

/// The conformance suite's transactional enqueue (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
mod transactional {
    use async_trait::async_trait;

    use super::PostgresBackend;
    use crate::tasks::backend::{NewTask, TransactionalEnqueue};
    use crate::tasks::{TaskError, TaskId};

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
}
