//! The rescuer: returns tasks whose worker died (its lease expired) to `READY`, or to
//! `FAILED` when they have no attempts left.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::tasks::{RescueReport, TaskBackend, TaskError};

/// One rescue pass at the current time.
pub async fn rescue_once(backend: &dyn TaskBackend) -> Result<RescueReport, TaskError> {
    let report = backend.rescue_expired(Utc::now()).await?;
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
    backend: Arc<dyn TaskBackend>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = rescue_once(backend.as_ref()).await {
            tracing::error!(error = %e, "rescuer pass failed");
        }
        if !super::tick(period, &mut stop).await {
            return;
        }
    }
}
