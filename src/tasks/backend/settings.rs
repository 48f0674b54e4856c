//! What the SQL backends share about per-queue settings: the checks on a queue name, and a
//! short-lived cache of the settings that tells the claim path which queues are paused or
//! rate limited without a read per claim.
//!
//! The cache only routes: a claim's own statement re-checks the stored settings, so a queue
//! paused or limited a moment ago is never claimed from as if it were not — at worst, for
//! [`SETTINGS_TTL`], it is not claimed from at all.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::operations::QueueSettings;
use crate::tasks::TaskError;

/// How long the claim path trusts its cached copy of the queue settings.
pub(crate) const SETTINGS_TTL: Duration = Duration::from_millis(500);

/// Checks that `queue` is one of the backend's queues.
pub(crate) fn check_queue(queue: &str, queues: &[String]) -> Result<(), TaskError> {
    if queues.iter().any(|q| q == queue) {
        Ok(())
    } else {
        Err(TaskError::invalid(
            "queue_name",
            format!(
                "`{queue}` is not a queue of this backend (known: {})",
                queues.join(", ")
            ),
        ))
    }
}

/// Reads a stored `rate_key_by` JSON array.
pub(crate) fn key_by_from_json(text: &str) -> Result<Vec<String>, TaskError> {
    serde_json::from_str(text)
        .map_err(|e| TaskError::storage("corrupt `rate_key_by` in storage", e))
}

/// Settings and when they were read.
type Cached = Option<(Instant, Arc<Vec<QueueSettings>>)>;

/// The cached settings, shared by the clones of one backend.
#[derive(Debug, Clone, Default)]
pub(crate) struct SettingsCache {
    inner: Arc<Mutex<Cached>>,
}

impl SettingsCache {
    /// The cached settings if fresh.
    pub(crate) fn fresh(&self) -> Option<Arc<Vec<QueueSettings>>> {
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SETTINGS_TTL)
            .map(|(_, s)| s.clone())
    }

    /// Stores settings just read.
    pub(crate) fn store(&self, settings: Vec<QueueSettings>) -> Arc<Vec<QueueSettings>> {
        let settings = Arc::new(settings);
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), settings.clone()));
        settings
    }

    /// Forgets the cached settings (this process just changed them).
    pub(crate) fn invalidate(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
