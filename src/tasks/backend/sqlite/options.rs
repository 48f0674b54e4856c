//! How to open the database: [`SqliteOptions`] and the `sqlite:PATH[?queues=a,b]` URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tasks::TaskError;
use crate::tasks::backend::DEFAULT_QUEUE;

/// How to open a [`SqliteBackend`](super::SqliteBackend).
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file (created if missing).
    pub path: PathBuf,
    /// The queue names tasks may be enqueued on.
    pub queues: Vec<String>,
    /// How long a writer waits for another process's write lock.
    pub busy_timeout: Duration,
    /// Connections in the read pool.
    pub read_connections: u32,
}

impl SqliteOptions {
    /// Defaults for `path`: queue `default`, 5 s busy timeout, 4 readers.
    pub fn new(path: impl AsRef<Path>) -> Self {
        SqliteOptions {
            path: path.as_ref().to_path_buf(),
            queues: vec![DEFAULT_QUEUE.to_owned()],
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
        }
    }

    /// Sets the known queues.
    pub fn queues<I: IntoIterator<Item = S>, S: Into<String>>(mut self, queues: I) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Parses `sqlite:PATH[?queues=a,b]` (also `sqlite://PATH`).
    pub fn from_url(url: &str) -> Result<Self, TaskError> {
        let rest = url.strip_prefix("sqlite:").ok_or_else(|| {
            TaskError::configuration("queue", format!("`{url}` is not a sqlite:PATH URL"))
        })?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() || path == ":memory:" {
            return Err(TaskError::configuration(
                "queue",
                "sqlite:PATH needs a file path (an in-memory database cannot be shared or use WAL)",
            ));
        }
        let mut options = SqliteOptions::new(path);
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("queues", list)) => options.queues = crate::tasks::backend::queue_list(list)?,
                _ => {
                    return Err(TaskError::configuration(
                        "queue",
                        format!(
                            "unknown sqlite URL parameter `{pair}`; only `queues=a,b` is known"
                        ),
                    ));
                }
            }
        }
        Ok(options)
    }
}
