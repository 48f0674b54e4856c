//! Maintenance jobs a worker runs beside its tasks, each in its own file: the
//! [`rescuer`] (expired leases back to READY), the [`pruner`] (old results deleted) and the
//! [`scheduler`] (periodic tasks enqueued on their cron schedule).

pub mod pruner;
pub mod rescuer;
pub mod scheduler;

use tokio::sync::watch;

/// Waits `period` or until `stop` turns true; returns `false` when stopping.
pub(crate) async fn tick(period: std::time::Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(period) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}
