//! The cancel check: about once a second, while the worker holds leases, it asks the
//! backend which of its running tasks someone cancelled, and sets their attempts'
//! cancellation signals (the attempt then stops; see `attempt.rs`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Leases, lock};
use crate::tasks::{WorkerBackend, maintenance};

/// How often a worker that holds leases looks for cancel requests.
pub(super) const CANCEL_CHECK: Duration = Duration::from_secs(1);

pub(super) async fn run(
    backend: Arc<dyn WorkerBackend>,
    worker_id: String,
    leases: Leases,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    while maintenance::tick(every, &mut stop).await {
        if lock(&leases).is_empty() {
            continue;
        }
        match backend.cancel_requests(&worker_id).await {
            Ok(requested) => {
                let held = lock(&leases);
                for lease in requested {
                    if let Some(h) = held.get(&lease.id)
                        && h.lease == lease
                        && !h.cancellation.is_cancelled()
                    {
                        tracing::info!(id = %lease.id, attempt = lease.attempt, "task cancelled while running; stopping the attempt");
                        h.cancellation.cancel();
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "looking for cancel requests failed"),
        }
    }
}
