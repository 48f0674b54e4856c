//! The dummy backend: records enqueued tasks and never runs them (for tests).

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Capabilities, DEFAULT_QUEUE, NewTask, TaskBackend};
use crate::tasks::{TaskError, TaskId, TaskResult, TaskStatus};

/// Records every enqueued task as `READY` and never runs it. [`DummyBackend::results`] lists
/// them; [`DummyBackend::clear`] forgets them. A client-only backend: it is no
/// [`WorkerBackend`](super::WorkerBackend), so no worker can be built on it.
#[derive(Debug)]
pub struct DummyBackend {
    queues: Vec<String>,
    results: Mutex<Vec<TaskResult>>,
}

impl Default for DummyBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl DummyBackend {
    /// A dummy backend accepting the `default` queue.
    pub fn new() -> Self {
        Self::with_queues([DEFAULT_QUEUE])
    }

    /// A dummy backend accepting the given queues.
    pub fn with_queues<I: IntoIterator<Item = S>, S: Into<String>>(queues: I) -> Self {
        DummyBackend {
            queues: queues.into_iter().map(Into::into).collect(),
            results: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<TaskResult>> {
        // A poisoned lock only means another thread panicked mid-push; the data is a list.
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every recorded task, in enqueue order.
    pub fn results(&self) -> Vec<TaskResult> {
        self.lock().clone()
    }

    /// Forgets every recorded task.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

pub(crate) fn ready_result(id: TaskId, task: NewTask, now: DateTime<Utc>) -> TaskResult {
    TaskResult {
        id,
        task_name: task.task_name,
        queue_name: task.queue_name,
        priority: task.priority,
        args: task.args,
        status: TaskStatus::Ready,
        enqueued_at: now,
        run_after: task.run_after.unwrap_or(now),
        started_at: None,
        finished_at: None,
        last_attempted_at: None,
        attempts: 0,
        max_attempts: task.max_attempts,
        worker_ids: Vec::new(),
        errors: Vec::new(),
        return_value: None,
        idempotency_key: task.idempotency_key,
        cancel_requested_at: None,
    }
}

#[async_trait]
impl TaskBackend for DummyBackend {
    fn name(&self) -> &'static str {
        "dummy"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, true, true)
    }

    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        for task in &tasks {
            task.validate(self.capabilities(), &self.queues)?;
        }
        let now = Utc::now();
        let mut results = self.lock();
        let mut ids = Vec::with_capacity(tasks.len());
        // All or nothing: the batch joins the store only once every task is checked.
        let mut added: Vec<TaskResult> = Vec::new();
        for task in tasks {
            if let Some(key) = &task.idempotency_key
                && let Some(existing) = results
                    .iter()
                    .chain(added.iter())
                    .find(|r| r.idempotency_key.as_deref() == Some(key))
            {
                let stored = (existing.id, existing.task_name.as_str(), &existing.args);
                ids.push(super::same_keyed_task(key, stored, &task)?);
                continue;
            }
            let id = TaskId::new();
            added.push(ready_result(id, task, now));
            ids.push(id);
        }
        results.extend(added);
        Ok(ids)
    }

    async fn get_result(&self, id: TaskId) -> Result<TaskResult, TaskError> {
        self.lock()
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| TaskError::NotFound { id: id.to_string() })
    }
}
