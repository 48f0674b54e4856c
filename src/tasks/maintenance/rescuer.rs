//! The rescuer: returns tasks whose worker died (its lease expired) to `READY`, or to
//! `FAILED` when they have no attempts left or their lease has expired too often (see
//! [`MAX_LEASE_EXPIRIES`](crate::tasks::MAX_LEASE_EXPIRIES)).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::tasks::{RescueReport, TaskError, WorkerBackend};

/// One rescue pass at the current time; a task whose lease has now expired
/// `max_lease_expiries` times is failed.
pub async fn rescue_once(
    backend: &dyn WorkerBackend,
    max_lease_expiries: u32,
) -> Result<RescueReport, TaskError> {
    let report = backend
        .rescue_expired(Utc::now(), max_lease_expiries)
        .await?;
    if report.retried > 0 || report.failed > 0 {
        tracing::warn!(
            retried = report.retried,
            failed = report.failed,
            "rescued tasks whose lease expired"
        );
    }
    Ok(report)
}

/// Runs a rescue pass at once and then every `period` until `stop` turns true.
pub(crate) async fn run(
    backend: Arc<dyn WorkerBackend>,
    period: Duration,
    max_lease_expiries: u32,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = rescue_once(backend.as_ref(), max_lease_expiries).await {
            tracing::error!(error = %e, "rescuer pass failed");
        }
        if !super::tick(period, &mut stop).await {
            return;
        }
    }
}
