//! The immediate backend: runs each task inside `enqueue`, once, and keeps its result.

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::dummy::ready_result;
use super::{Capabilities, DEFAULT_QUEUE, NewTask, TaskBackend};
use crate::tasks::{
    AttemptError, Registry, TaskContext, TaskError, TaskId, TaskResult, TaskStatus,
};

/// Runs every task as it is enqueued (one attempt, no retries, no `run_after`), like
/// Django's `ImmediateBackend`; results are kept in memory for [`TaskBackend::get_result`]
/// until [`ImmediateBackend::prune`] drops them. A client-only backend: it is no
/// [`WorkerBackend`](super::WorkerBackend), so no worker can be built on it.
#[derive(Debug)]
pub struct ImmediateBackend {
    registry: Registry,
    queues: Vec<String>,
    results: Mutex<Vec<TaskResult>>,
}

impl ImmediateBackend {
    /// An immediate backend running tasks from `registry`, accepting the `default` queue.
    pub fn new(registry: Registry) -> Self {
        Self::with_queues(registry, [DEFAULT_QUEUE])
    }

    /// An immediate backend accepting the given queues.
    pub fn with_queues<I: IntoIterator<Item = S>, S: Into<String>>(
        registry: Registry,
        queues: I,
    ) -> Self {
        ImmediateBackend {
            registry,
            queues: queues.into_iter().map(Into::into).collect(),
            results: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<TaskResult>> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the results of tasks that finished before `finished_before`; returns how
    /// many. (No worker runs on this backend, so nothing prunes it unless you call this.)
    pub fn prune(&self, finished_before: DateTime<Utc>) -> u64 {
        let mut results = self.lock();
        let before = results.len();
        results.retain(|r| r.finished_at.is_none_or(|f| f >= finished_before));
        (before - results.len()) as u64
    }

    async fn run_one(&self, task: NewTask) -> Result<TaskId, TaskError> {
        if let Some(key) = &task.idempotency_key {
            let existing = self
                .lock()
                .iter()
                .find(|r| r.idempotency_key.as_deref() == Some(key))
                .map(|r| (r.id, r.task_name.clone(), r.args.clone()));
            if let Some((id, name, args)) = existing {
                return super::same_keyed_task(key, (id, &name, &args), &task);
            }
        }
        let runner = self
            .registry
            .get(&task.task_name)
            .ok_or_else(|| TaskError::UnknownTask {
                name: task.task_name.clone(),
            })?;
        let id = TaskId::new();
        let now = Utc::now();
        let timeout = task.timeout;
        let mut result = ready_result(id, task, now);
        result.status = TaskStatus::Running;
        result.attempts = 1;
        result.started_at = Some(now);
        result.last_attempted_at = Some(now);
        let ctx = TaskContext {
            id,
            task_name: result.task_name.clone(),
            queue_name: result.queue_name.clone(),
            attempt: 1,
            max_attempts: 1,
            worker_id: None,
            cancellation: crate::tasks::Cancellation::new(),
        };
        let span = tracing::info_span!("task", %id, name = %result.task_name, attempt = 1u32);
        let run = tracing::Instrument::instrument(runner.run_json(ctx, result.args.clone()), span);
        // The enqueued task's own limit, else its registered task's, as a worker applies.
        let outcome = match timeout.or_else(|| runner.timeout()) {
            Some(limit) => tokio::time::timeout(limit, run)
                .await
                .unwrap_or_else(|_| Err(crate::tasks::TaskFailure::timed_out(limit))),
            None => run.await,
        };
        let end = Utc::now();
        result.finished_at = Some(end);
        match outcome {
            Ok(value) => {
                result.status = TaskStatus::Successful;
                result.return_value = Some(value);
            }
            Err(failure) => {
                result.status = TaskStatus::Failed;
                result.errors.push(AttemptError {
                    attempt: 1,
                    kind: failure.kind,
                    message: failure.message,
                    worker_id: None,
                    at: end,
                });
            }
        }
        self.lock().push(result);
        Ok(id)
    }
}

#[async_trait]
impl TaskBackend for ImmediateBackend {
    fn name(&self) -> &'static str {
        "immediate"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(false, true, true)
    }

    async fn enqueue_many(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, TaskError> {
        for task in &tasks {
            task.validate(self.capabilities(), &self.queues)?;
            if !self.registry.contains(&task.task_name) {
                return Err(TaskError::UnknownTask {
                    name: task.task_name.clone(),
                });
            }
        }
        let mut ids = Vec::with_capacity(tasks.len());
        for task in tasks {
            ids.push(self.run_one(task).await?);
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tasks::Task;
    use crate::tasks::conformance::{TIME_BOX, TimeBoxed, registry};

    #[tokio::test]
    async fn an_attempt_past_its_timeout_fails_with_a_timeout_error() {
        let backend = ImmediateBackend::new(registry());
        let slow = backend
            .enqueue(TimeBoxed::new_task(&3_600_000).unwrap())
            .await
            .unwrap();
        let r = backend.get_result(slow).await.unwrap();
        assert_eq!(r.status, TaskStatus::Failed, "{r:?}");
        assert_eq!(r.errors[0].kind, "timeout", "{r:?}");
        assert!(
            r.errors[0]
                .message
                .contains(&format!("{} ms", TIME_BOX.as_millis())),
            "{r:?}"
        );
        // A per-task limit replaces the task's own.
        let given_more = backend
            .enqueue(
                TimeBoxed::new_task(&(TIME_BOX.as_millis() as u64 * 2))
                    .unwrap()
                    .timeout(Duration::from_secs(120)),
            )
            .await
            .unwrap();
        assert_eq!(
            backend.get_result(given_more).await.unwrap().status,
            TaskStatus::Successful
        );
    }
}
