//! The pruner: deletes `SUCCESSFUL` and `FAILED` results older than a retention period.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::tasks::{TaskError, WorkerBackend};

/// Deletes results that finished more than `retention` ago; returns how many.
pub async fn prune_once(
    backend: &dyn WorkerBackend,
    retention: Duration,
) -> Result<u64, TaskError> {
    let retention = chrono::Duration::from_std(retention)
        .map_err(|_| TaskError::configuration("retention", "is too long"))?;
    let pruned = backend.prune(Utc::now() - retention).await?;
    if pruned > 0 {
        tracing::info!(pruned, "pruned finished task results");
    }
    Ok(pruned)
}

/// Prunes at once and then every `period` until `stop` turns true.
pub(crate) async fn run(
    backend: Arc<dyn WorkerBackend>,
    retention: Duration,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = prune_once(backend.as_ref(), retention).await {
            tracing::error!(error = %e, "pruner pass failed");
        }
        if !super::tick(period, &mut stop).await {
            return;
        }
    }
}
