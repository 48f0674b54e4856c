//! LISTEN/NOTIFY: one `LISTEN` connection per process wakes the idle workers of the queues
//! a committed enqueue wrote to (the enqueue statement itself calls `pg_notify`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;

use super::PostgresBackend;

/// Wakes this process's idle workers when a `NOTIFY` arrives; dropped with the backend.
pub(super) struct Listener {
    wakeups: Arc<Wakeups>,
    task: tokio::task::JoinHandle<()>,
}

/// One [`Notify`] per queue: a notification names the queues its enqueue wrote to (queue
/// names cannot hold commas), and only workers waiting on one of them wake.
#[derive(Default)]
struct Wakeups {
    by_queue: std::sync::Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakeups {
    fn of(&self, queue: &str) -> Arc<Notify> {
        let mut map = self
            .by_queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(queue.to_owned()).or_default().clone()
    }

    /// Wakes the waiters of the queues in `payload`, or of every queue when it names none
    /// (a notification from elsewhere, or a reconnect that may have missed some). Each woken
    /// queue also keeps a permit for a worker that is between an empty claim and its wait,
    /// which would otherwise sleep a whole poll interval.
    fn wake(&self, payload: &str) {
        let targets: Vec<Arc<Notify>> = if payload.is_empty() {
            self.by_queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
                .cloned()
                .collect()
        } else {
            payload.split(',').map(|q| self.of(q)).collect()
        };
        for notify in targets {
            notify.notify_waiters();
            notify.notify_one();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PostgresBackend {
    /// This process's listener, started on first use (a process that never claims never
    /// holds a `LISTEN` connection).
    pub(super) fn listener(&self) -> &Listener {
        self.inner.listener.get_or_init(|| {
            let wakeups = Arc::new(Wakeups::default());
            let task = tokio::spawn(listen(
                self.inner.pool.clone(),
                self.inner.sql.channel.clone(),
                wakeups.clone(),
            ));
            Listener { wakeups, task }
        })
    }

    /// Waits until a notification names one of `queues`, or `timeout` passes.
    pub(super) async fn wait_for_notification(&self, queues: &[String], timeout: Duration) {
        let wakeups = &self.listener().wakeups;
        let notifies: Vec<Arc<Notify>> = queues.iter().map(|q| wakeups.of(q)).collect();
        if notifies.is_empty() {
            tokio::time::sleep(timeout).await;
            return;
        }
        let notified =
            futures_util::future::select_all(notifies.iter().map(|n| Box::pin(n.notified())));
        tokio::select! {
            _ = notified => {}
            () = tokio::time::sleep(timeout) => {}
        }
    }
}

/// Holds a `LISTEN` connection and wakes waiting workers on every notification;
/// reconnects after errors (notifications lost meanwhile are covered by polling).
async fn listen(pool: PgPool, channel: String, wakeups: Arc<Wakeups>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a LISTEN connection; polling only");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "LISTEN failed; polling only");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(notification) => wakeups.wake(notification.payload()),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                    // A reconnect may have missed notifications: let workers poll now.
                    wakeups.wake("");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
    }
}
