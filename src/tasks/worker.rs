//! The [`Worker`]: claims tasks under a lease, runs them concurrently, renews the leases,
//! stops attempts that were cancelled or ran out of time, reports each end through a
//! fenced, batched `finish`, and shuts down gracefully. One attempt is run by `attempt.rs`;
//! the cancel check is `canceller.rs`.

mod attempt;
mod canceller;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Hooks;
use super::maintenance;
use super::maintenance::scheduler::{self, Periodic};
use super::{
    AttemptError, Cancellation, ClaimRequest, ClaimedTask, Lease, Outcome, OutcomeKind, Registry,
    TaskContext, TaskError, TaskFailure, TaskId, WorkerBackend,
};
use attempt::Ending;

/// How many claims in a row may fail before a burst worker gives up with the storage error.
const MAX_BURST_CLAIM_ERRORS: u32 = 5;

/// Under a steady backlog a worker is never idle, and a suspect (a task whose lease expired
/// before, see [`ClaimRequest::isolated`]) would wait for the backlog to clear: this often,
/// a busy worker stops claiming until its running tasks have ended and makes an isolated
/// claim.
const DRAIN_EVERY: Duration = Duration::from_secs(60);

/// What a worker did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Tasks claimed.
    pub claimed: u64,
    /// Attempts that succeeded.
    pub succeeded: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Attempts that failed the task for good.
    pub failed: u64,
    /// Attempts stopped because their task was cancelled while they ran (the task is
    /// `CANCELLED`).
    pub cancelled: u64,
    /// Outcomes the backend rejected because the lease had been lost (or that could not be
    /// recorded at all; the rescuer runs those tasks again).
    pub rejected: u64,
    /// Attempts still running at the shutdown deadline, abandoned to the rescuer.
    pub abandoned: u64,
}

/// Configures a [`Worker`]. Start with [`Worker::builder`].
#[derive(Debug)]
pub struct WorkerBuilder {
    backend: Arc<dyn WorkerBackend>,
    registry: Registry,
    worker_id: Option<String>,
    concurrency: usize,
    queues: Option<Vec<String>>,
    lease: Duration,
    heartbeat: Option<Duration>,
    poll_interval: Duration,
    burst: bool,
    shutdown_timeout: Duration,
    retention: Option<Duration>,
    prune_interval: Duration,
    rescue_interval: Option<Duration>,
    max_lease_expiries: u32,
    routes: Option<Vec<String>>,
    hooks: Vec<Arc<dyn Hooks>>,
    periodic: Vec<Periodic>,
}

impl WorkerBuilder {
    /// At most `n` tasks at once (default 10; at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The queues to work (default: every queue the backend knows).
    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queues: I) -> Self {
        self.queues = Some(queues.into_iter().map(Into::into).collect());
        self
    }

    /// How long a claim lasts without a heartbeat (default 30 s). A task whose worker
    /// dies runs again once this has passed.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// How often leases are renewed (default a third of the lease).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every);
        self
    }

    /// How long to wait before looking again when no task is ready (default 200 ms).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Exit once no task is ready and none is running (default `false`: run until shutdown).
    /// Tasks of a paused queue do not keep a burst worker running; tasks waiting for a
    /// rate limit's tokens do.
    pub fn burst(mut self, burst: bool) -> Self {
        self.burst = burst;
        self
    }

    /// On shutdown, how long running tasks may take to finish before they are abandoned
    /// to the rescuer (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Delete finished results older than this (default 7 days); `None` keeps them.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// How often the rescuer looks for expired leases (default half the lease, at most 30 s).
    pub fn rescue_interval(mut self, every: Duration) -> Self {
        self.rescue_interval = Some(every);
        self
    }

    /// How many times a task's lease may expire — its attempt ended without an outcome,
    /// because the worker process died (a crash, an abort, a kill) or hung — before this
    /// worker's rescuer fails the task, whatever attempts remain (default
    /// [`MAX_LEASE_EXPIRIES`](super::MAX_LEASE_EXPIRIES), at least 1). Each expiry is a
    /// `lease_expired` entry in the task's errors; the last one says the task was failed.
    ///
    /// A task whose lease expired before is run alone (no other task of this worker runs
    /// beside it), so a task that crashes its worker process takes other tasks down with it
    /// once at most, and those count one expiry, not the limit.
    pub fn max_lease_expiries(mut self, n: u32) -> Self {
        self.max_lease_expiries = n.max(1);
        self
    }

    /// Serve only these routes: claim tasks without a route or with one of these
    /// ([`NewTask::route`](super::NewTask::route)), e.g. the transports this worker has.
    /// Default: every route. Either way a worker claims only tasks its registry holds.
    pub fn routes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, routes: I) -> Self {
        self.routes = Some(routes.into_iter().map(Into::into).collect());
        self
    }

    /// This worker's id, recorded with each attempt (default `worker-PID-RANDOM`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Adds callbacks on started and finished attempts.
    pub fn hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks.push(hooks);
        self
    }

    /// Enqueues a task on a schedule ([`Periodic`]): each slot once, however many workers
    /// carry the same schedule (its idempotency key is `NAME@SLOT-TIME`), so every worker
    /// may be given it and no slot is lost while one of them runs.
    pub fn periodic(mut self, schedule: Periodic) -> Self {
        self.periodic.push(schedule);
        self
    }

    /// Builds the worker.
    pub fn build(self) -> Worker {
        let worker_id = self.worker_id.unwrap_or_else(|| {
            let rand = uuid::Uuid::new_v4().simple().to_string();
            format!("worker-{}-{}", std::process::id(), &rand[..8])
        });
        let queues = self
            .queues
            .unwrap_or_else(|| self.backend.queues().to_vec());
        let heartbeat = self
            .heartbeat
            .unwrap_or(self.lease / 3)
            .max(Duration::from_millis(10));
        let rescue = self
            .rescue_interval
            .unwrap_or_else(|| (self.lease / 2).min(Duration::from_secs(30)))
            .max(Duration::from_millis(10));
        let task_names = self.registry.names().map(str::to_owned).collect();
        Worker {
            backend: self.backend,
            registry: self.registry,
            worker_id,
            concurrency: self.concurrency,
            queues,
            lease: self.lease,
            heartbeat,
            poll_interval: self.poll_interval,
            burst: self.burst,
            shutdown_timeout: self.shutdown_timeout,
            retention: self.retention,
            prune_interval: self.prune_interval,
            rescue_interval: rescue,
            max_lease_expiries: self.max_lease_expiries,
            task_names,
            routes: self.routes,
            hooks: self.hooks,
            periodic: self.periodic,
        }
    }
}

/// Runs tasks from a [`WorkerBackend`]: see the [module docs](super).
#[derive(Debug)]
pub struct Worker {
    backend: Arc<dyn WorkerBackend>,
    registry: Registry,
    worker_id: String,
    concurrency: usize,
    queues: Vec<String>,
    lease: Duration,
    heartbeat: Duration,
    poll_interval: Duration,
    burst: bool,
    shutdown_timeout: Duration,
    retention: Option<Duration>,
    prune_interval: Duration,
    rescue_interval: Duration,
    max_lease_expiries: u32,
    task_names: Vec<String>,
    routes: Option<Vec<String>>,
    hooks: Vec<Arc<dyn Hooks>>,
    periodic: Vec<Periodic>,
}

/// A lease the worker holds until its outcome is recorded, and the signal that stops its
/// attempt.
#[derive(Debug)]
struct Held {
    lease: Lease,
    cancellation: Cancellation,
}

type Leases = Arc<Mutex<HashMap<TaskId, Held>>>;

fn lock(leases: &Leases) -> std::sync::MutexGuard<'_, HashMap<TaskId, Held>> {
    leases.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a running attempt hands back: its task and how it ended.
type Running = JoinSet<(ClaimedTask, Ending)>;

impl Worker {
    /// A builder for a worker on `backend` running the tasks in `registry`. Only a backend
    /// with a worker role can be given ([`connect_worker`](super::connect_worker) opens one from
    /// a URL); the immediate and dummy backends have none.
    pub fn builder(backend: Arc<dyn WorkerBackend>, registry: Registry) -> WorkerBuilder {
        WorkerBuilder {
            backend,
            registry,
            worker_id: None,
            concurrency: 10,
            queues: None,
            lease: Duration::from_secs(30),
            heartbeat: None,
            poll_interval: Duration::from_millis(200),
            burst: false,
            shutdown_timeout: Duration::from_secs(30),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            prune_interval: Duration::from_secs(300),
            rescue_interval: None,
            max_lease_expiries: super::MAX_LEASE_EXPIRIES,
            routes: None,
            hooks: Vec::new(),
            periodic: Vec::new(),
        }
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.worker_id
    }

    /// Runs until `shutdown` completes (e.g. [`shutdown_signal`]) or, in burst mode, until no
    /// task is ready and none is running. On shutdown it stops claiming and lets running
    /// tasks finish within the shutdown timeout; any still running then are abandoned — their
    /// leases expire and the rescuer gives them back.
    ///
    /// # Errors
    ///
    /// [`TaskError::Storage`], naming the cause, when the storage failed the worker: in
    /// burst mode, when claiming failed several times in a row (an unreadable, read-only,
    /// full or corrupt database); in any mode, when it had to give up recording outcomes
    /// (their tasks run again once their leases expire). It stops in the first case and
    /// returns the error once stopped in the second.
    pub async fn run<F>(self, shutdown: F) -> Result<WorkerReport, TaskError>
    where
        F: Future<Output = ()> + Send,
    {
        let span = tracing::info_span!("worker", id = %self.worker_id);
        self.run_inner(shutdown).instrument(span).await
    }

    async fn run_inner<F>(self, shutdown: F) -> Result<WorkerReport, TaskError>
    where
        F: Future<Output = ()> + Send,
    {
        tracing::info!(queues = ?self.queues, concurrency = self.concurrency, burst = self.burst, "worker started");
        let (stop_tx, stop_rx) = watch::channel(false);
        let leases: Leases = Arc::new(Mutex::new(HashMap::new()));
        let mut background = JoinSet::new();
        background.spawn(heartbeat_loop(
            self.backend.clone(),
            leases.clone(),
            self.lease,
            self.heartbeat,
            stop_rx.clone(),
        ));
        background.spawn(canceller::run(
            self.backend.clone(),
            self.worker_id.clone(),
            leases.clone(),
            canceller::CANCEL_CHECK,
            stop_rx.clone(),
        ));
        if !self.periodic.is_empty() {
            background.spawn(scheduler::run(
                self.backend.clone(),
                self.periodic.clone(),
                stop_rx.clone(),
            ));
        }
        background.spawn(maintenance::rescuer::run(
            self.backend.clone(),
            self.rescue_interval,
            self.max_lease_expiries,
            stop_rx.clone(),
        ));
        if let Some(retention) = self.retention {
            background.spawn(maintenance::pruner::run(
                self.backend.clone(),
                retention,
                self.prune_interval,
                stop_rx.clone(),
            ));
        }
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let completer = tokio::spawn(completer_loop(
            self.backend.clone(),
            done_rx,
            leases.clone(),
            self.hooks.clone(),
        ));

        let mut report = WorkerReport::default();
        let mut running: Running = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        let mut force_claim = true;
        let mut claim_errors = 0u32;
        let mut storage_failure: Option<TaskError> = None;
        // A suspect (a task whose lease expired before) runs alone: `isolating` while it
        // runs, `draining` while the worker lets its running tasks end to make room for an
        // isolated claim.
        let mut isolating = false;
        let mut draining = false;
        let mut last_isolated = tokio::time::Instant::now();
        // The last ordinary claim got fewer tasks than it asked for: the queue may hold
        // only suspects, so an idle worker looks with an isolated claim.
        let mut short_claim = true;
        loop {
            while let Some(joined) = running.try_join_next() {
                self.send_outcome(joined, &done_tx);
            }
            // Nothing running and every outcome recorded: a suspect may run now.
            let idle = running.is_empty() && lock(&leases).is_empty();
            if idle {
                isolating = false;
            }
            if !idle && !isolating && last_isolated.elapsed() >= DRAIN_EVERY {
                draining = true;
            }
            let free = self.concurrency - running.len();
            // Claim when there is room for a good batch (or on a poll tick) — claiming one
            // slot at a time under load would cost one write per task. An idle worker that
            // is draining, or whose queue ran short, makes an isolated claim of one task,
            // which may be a suspect.
            let isolated = idle && (draining || short_claim);
            let worth_it = isolated
                || (!isolating
                    && !draining
                    && free > 0
                    && (force_claim || running.is_empty() || free * 4 >= self.concurrency));
            let mut claimed_any = false;
            let mut claim_failed = false;
            if worth_it {
                let req = self.claim_request(if isolated { 1 } else { free }, isolated);
                if isolated {
                    draining = false;
                    last_isolated = tokio::time::Instant::now();
                }
                match self.backend.claim(&req).await {
                    Ok(tasks) => {
                        claim_errors = 0;
                        claimed_any = !tasks.is_empty();
                        if !isolated {
                            short_claim = tasks.len() < free;
                        }
                        report.claimed += tasks.len() as u64;
                        for task in tasks {
                            if task.lease_expiries > 0 {
                                tracing::warn!(id = %task.lease.id, lease_expiries = task.lease_expiries, "running a task whose earlier attempts ended without an outcome, alone");
                                isolating = true;
                            }
                            self.spawn(task, &leases, &mut running);
                        }
                    }
                    Err(e) => {
                        claim_failed = true;
                        claim_errors += 1;
                        tracing::error!(error = %e, "claiming tasks failed");
                        if self.burst && claim_errors >= MAX_BURST_CLAIM_ERRORS {
                            storage_failure = Some(TaskError::storage(
                                format!(
                                    "claiming tasks failed {claim_errors} times in a row, the last time with: {}",
                                    cause_text(&e)
                                ),
                                e,
                            ));
                            stopping = true;
                        }
                    }
                }
            }
            force_claim = false;
            if stopping {
                break;
            }
            // Only an isolated claim sees every ready task, suspects included; a failed claim
            // saw nothing.
            // ... unless what it would take waits for a rate limit's tokens: those come.
            if self.burst && !claimed_any && !claim_failed && isolated {
                let req = self.claim_request(1, true);
                match self.backend.held_back_by_rate_limits(&req).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "checking for rate-limited tasks failed");
                        break;
                    }
                }
            }
            // An idle worker's ordinary claim found nothing: look for suspects at once.
            if idle && !isolated && !claimed_any && !claim_failed {
                continue;
            }
            if claimed_any && !isolating && running.len() < self.concurrency {
                continue;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!(running = running.len(), "shutdown requested; finishing running tasks");
                    break;
                }
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    self.send_outcome(joined, &done_tx);
                }
                () = self.backend.wait_for_tasks(&self.queues, self.poll_interval), if running.is_empty() || !(isolating || draining) => {
                    force_claim = true;
                }
            }
        }

        // Graceful end: no more claims; let running attempts finish within the deadline.
        let deadline = tokio::time::sleep(self.shutdown_timeout);
        let mut deadline = std::pin::pin!(deadline);
        while !running.is_empty() {
            tokio::select! {
                Some(joined) = running.join_next() => self.send_outcome(joined, &done_tx),
                () = &mut deadline => {
                    report.abandoned = running.len() as u64;
                    tracing::warn!(abandoned = report.abandoned, "shutdown deadline passed; abandoning running tasks to the rescuer");
                    running.shutdown().await;
                    break;
                }
            }
        }
        drop(done_tx);
        let (finished, gave_up) = completer.await.unwrap_or_default();
        let _ = stop_tx.send(true);
        while background.join_next().await.is_some() {}
        report.succeeded = finished.succeeded;
        report.retried = finished.retried;
        report.failed = finished.failed;
        report.cancelled = finished.cancelled;
        report.rejected = finished.rejected;
        tracing::info!(?report, "worker stopped");
        if let Some(e) = storage_failure.or(gave_up) {
            return Err(e);
        }
        Ok(report)
    }

    /// A claim of up to `limit` tasks by this worker, now.
    fn claim_request(&self, limit: usize, isolated: bool) -> ClaimRequest {
        ClaimRequest {
            worker_id: self.worker_id.clone(),
            queues: self.queues.clone(),
            limit,
            lease: self.lease,
            now: Utc::now(),
            isolated,
            task_names: Some(self.task_names.clone()),
            routes: self.routes.clone(),
        }
    }

    fn spawn(&self, task: ClaimedTask, leases: &Leases, running: &mut Running) {
        let cancellation = Cancellation::new();
        lock(leases).insert(
            task.lease.id,
            Held {
                lease: task.lease.clone(),
                cancellation: cancellation.clone(),
            },
        );
        for h in &self.hooks {
            h.started(&task);
        }
        let runner = self.registry.get(&task.task_name);
        let ctx = TaskContext {
            id: task.lease.id,
            task_name: task.task_name.clone(),
            queue_name: task.queue_name.clone(),
            attempt: task.lease.attempt,
            max_attempts: task.max_attempts,
            worker_id: Some(task.lease.worker_id.clone()),
            cancellation,
        };
        let span = tracing::info_span!(
            "task",
            id = %task.lease.id,
            name = %task.task_name,
            queue = %task.queue_name,
            attempt = task.lease.attempt
        );
        let args = task.args.clone();
        running.spawn(
            async move {
                let ending = match runner {
                    None => Ending::Returned(Err(TaskFailure::retry(
                        "unknown_task",
                        format!(
                            "no task `{}` is registered with this worker",
                            task.task_name
                        ),
                    ))),
                    Some(runner) => {
                        // The enqueued task's own limit, else its registered task's.
                        let timeout = task.timeout.or_else(|| runner.timeout());
                        attempt::run(runner, ctx, args, timeout).await
                    }
                };
                (task, ending)
            }
            .instrument(span),
        );
    }

    fn send_outcome(
        &self,
        joined: Result<(ClaimedTask, Ending), tokio::task::JoinError>,
        done: &mpsc::UnboundedSender<(ClaimedTask, Outcome)>,
    ) {
        let Ok((task, ending)) = joined else {
            // Only an aborted task lands here; its lease expires and the rescuer retries it.
            return;
        };
        let now = Utc::now();
        let result = match ending {
            Ending::Returned(result) => result,
            Ending::TimedOut(limit) => {
                tracing::warn!(id = %task.lease.id, attempt = task.lease.attempt, timeout = ?limit, "task attempt timed out; stopped it");
                Err(TaskFailure::timed_out(limit))
            }
            Ending::Cancelled => {
                tracing::info!(id = %task.lease.id, attempt = task.lease.attempt, "task attempt stopped: the task was cancelled");
                let error = AttemptError {
                    attempt: task.lease.attempt,
                    kind: "cancelled".to_owned(),
                    message:
                        "the task was cancelled while this attempt ran; the attempt was stopped"
                            .to_owned(),
                    worker_id: Some(task.lease.worker_id.clone()),
                    at: now,
                };
                let outcome = Outcome {
                    lease: task.lease.clone(),
                    at: now,
                    kind: OutcomeKind::Cancelled { error },
                };
                let _ = done.send((task, outcome));
                return;
            }
        };
        let kind = match result {
            Ok(return_value) => OutcomeKind::Succeeded { return_value },
            Err(failure) => {
                let error = AttemptError {
                    attempt: task.lease.attempt,
                    kind: failure.kind.clone(),
                    message: failure.message.clone(),
                    worker_id: Some(task.lease.worker_id.clone()),
                    at: now,
                };
                if failure.is_retry() && task.lease.attempt < task.max_attempts {
                    let delay = failure.retry_after.unwrap_or_else(|| {
                        self.registry
                            .get(&task.task_name)
                            .map(|t| t.retry_policy())
                            .unwrap_or_default()
                            .delay(task.lease.attempt)
                    });
                    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    let run_after = now
                        .checked_add_signed(delay)
                        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
                    tracing::warn!(id = %task.lease.id, attempt = task.lease.attempt, error = %failure, %run_after, "task attempt failed; will retry");
                    OutcomeKind::Retry {
                        error,
                        run_after,
                        args: failure.next_args,
                    }
                } else {
                    tracing::error!(id = %task.lease.id, attempt = task.lease.attempt, error = %failure, "task failed");
                    OutcomeKind::Failed {
                        error,
                        args: failure.next_args,
                    }
                }
            }
        };
        let outcome = Outcome {
            lease: task.lease.clone(),
            at: now,
            kind,
        };
        // The completer lives until this worker drops its sender.
        let _ = done.send((task, outcome));
    }
}

/// Writes outcomes in batches: whatever has arrived since the last write, in one
/// transaction. A batch that fails is retried; leases stay held (and heartbeated) until
/// their outcome is written. Returns what it recorded and, if it had to give up on a batch,
/// the storage error saying why.
async fn completer_loop(
    backend: Arc<dyn WorkerBackend>,
    mut rx: mpsc::UnboundedReceiver<(ClaimedTask, Outcome)>,
    leases: Leases,
    hooks: Vec<Arc<dyn Hooks>>,
) -> (WorkerReport, Option<TaskError>) {
    let mut report = WorkerReport::default();
    let mut gave_up = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1000).await > 0 {
        let outcomes: Vec<Outcome> = batch.iter().map(|(_, o)| o.clone()).collect();
        let mut delay = Duration::from_millis(50);
        let mut tries = 0;
        let applied = loop {
            match backend.finish(&outcomes).await {
                Ok(applied) => break Some(applied),
                Err(e) if tries < 10 => {
                    tries += 1;
                    tracing::error!(error = %e, batch = outcomes.len(), "recording task outcomes failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    // Give up on this batch: its leases expire and the rescuer runs the
                    // tasks again (at least once, never silently lost).
                    tracing::error!(error = %e, batch = outcomes.len(), "recording task outcomes failed; leaving them to the rescuer");
                    gave_up = Some(TaskError::storage(
                        format!(
                            "recording the outcomes of {} task attempts failed {} times, the last time with: {}; their tasks will run again once their leases expire",
                            outcomes.len(),
                            tries + 1,
                            cause_text(&e)
                        ),
                        e,
                    ));
                    break None;
                }
            }
        };
        let Some(applied) = applied else {
            let mut held = lock(&leases);
            for (task, _) in batch.drain(..) {
                held.remove(&task.lease.id);
            }
            report.rejected += outcomes.len() as u64;
            continue;
        };
        {
            let mut held = lock(&leases);
            for (task, _) in &batch {
                held.remove(&task.lease.id);
            }
        }
        for ((task, outcome), ok) in batch.drain(..).zip(applied) {
            if !ok {
                report.rejected += 1;
                tracing::warn!(id = %task.lease.id, attempt = task.lease.attempt, "outcome rejected: the lease was lost (the task was rescued)");
            } else {
                match outcome.kind {
                    OutcomeKind::Succeeded { .. } => report.succeeded += 1,
                    OutcomeKind::Retry { .. } => report.retried += 1,
                    OutcomeKind::Failed { .. } => report.failed += 1,
                    OutcomeKind::Cancelled { .. } => report.cancelled += 1,
                }
            }
            for h in &hooks {
                h.finished(&task, &outcome.kind, ok);
            }
        }
    }
    (report, gave_up)
}

/// What a storage error says, without the `task storage error:` prefix that the error
/// wrapping it adds again.
fn cause_text(e: &TaskError) -> String {
    match e {
        TaskError::Storage { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

async fn heartbeat_loop(
    backend: Arc<dyn WorkerBackend>,
    leases: Leases,
    lease: Duration,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    while maintenance::tick(every, &mut stop).await {
        let held: Vec<Lease> = lock(&leases).values().map(|h| h.lease.clone()).collect();
        if held.is_empty() {
            continue;
        }
        match backend.heartbeat(&held, lease, Utc::now()).await {
            Ok(ok) => {
                for (l, ok) in held.iter().zip(ok) {
                    if !ok {
                        tracing::warn!(id = %l.id, attempt = l.attempt, "lease lost; this attempt's outcome will be rejected");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "renewing leases failed"),
        }
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT): pass it to [`Worker::run`].
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
