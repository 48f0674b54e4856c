//! The inbox: an index of the messages of a `file:` outbox directory or a
//! [`MemoryTransport`](crate::transport::MemoryTransport)'s [`Outbox`], newest first, kept
//! current by a poller that announces each new message to the live-update stream.
//!
//! Pages read the index, never the directory, so the inbox answers in the same time with
//! ten messages or ten thousand; only a message's own page reads its bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use mail_parser::{Address, MessageParser};
use serde::Serialize;
use tokio::sync::broadcast;

use super::Event;
use crate::error::{Error, Result};
use crate::transport::Outbox;

/// Where the messages come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// `.eml` files, as [`FileTransport`](crate::transport::FileTransport) writes them.
    Dir(PathBuf),
    /// A memory transport's outbox.
    Memory(Outbox),
}

/// One message as the inbox lists it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) id: String,
    pub(crate) subject: String,
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    /// The `Date` header, RFC 3339.
    pub(crate) date: Option<String>,
    #[serde(skip)]
    order: (SystemTime, String),
    /// Lower-case recipients and subject, for the search.
    #[serde(skip)]
    to_lower: String,
    #[serde(skip)]
    subject_lower: String,
    #[serde(skip)]
    body: Body,
}

/// Where a message's bytes are.
#[derive(Debug, Clone)]
enum Body {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

impl Summary {
    /// `true` when the message matches both filters (case-insensitive substrings; an empty
    /// filter matches everything).
    pub(crate) fn matches(&self, to: &str, subject: &str) -> bool {
        self.to_lower.contains(to) && self.subject_lower.contains(subject)
    }
}

#[derive(Debug, Default)]
struct Index {
    /// Newest first.
    entries: Vec<Arc<Summary>>,
    by_id: HashMap<String, Arc<Summary>>,
    /// Memory outbox: how many of its messages are indexed.
    memory_seen: usize,
    /// Directory: its modification time at the last full scan, and when that was.
    dir_seen: Option<(SystemTime, std::time::Instant)>,
}

/// A directory whose modification time has not moved is scanned again only this often:
/// adding, removing or renaming a file moves it, so this only guards against a file
/// system whose time stamps are coarser than the changes.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(5);

/// The index and its source.
#[derive(Debug)]
pub(crate) struct Inbox {
    source: Source,
    index: RwLock<Index>,
    events: broadcast::Sender<Event>,
}

impl Inbox {
    /// Reads the source once (a missing directory is created empty, as the file transport
    /// would) and returns the inbox; [`spawn_poller`](Self::spawn_poller) keeps it current.
    pub(crate) async fn open(
        source: Source,
        events: broadcast::Sender<Event>,
    ) -> Result<Arc<Inbox>> {
        if let Source::Dir(dir) = &source {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::io(dir.display().to_string(), e))?;
        }
        let inbox = Arc::new(Inbox {
            source,
            index: RwLock::new(Index::default()),
            events,
        });
        inbox.refresh(false).await?;
        Ok(inbox)
    }

    /// Polls the source every `every` until the inbox is dropped.
    pub(crate) fn spawn_poller(self: &Arc<Self>, every: Duration) {
        let weak: Weak<Inbox> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inbox) = weak.upgrade() else { break };
                if let Err(e) = inbox.refresh(true).await {
                    tracing::warn!(error = %e, "cannot read the outbox");
                }
            }
        });
    }

    /// The messages matching the filters (lower-case), newest first.
    pub(crate) fn list(&self, to: &str, subject: &str) -> Vec<Arc<Summary>> {
        let index = self.read();
        index
            .entries
            .iter()
            .filter(|s| s.matches(to, subject))
            .cloned()
            .collect()
    }

    /// The number of messages.
    pub(crate) fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// One message's summary.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Summary>> {
        self.read().by_id.get(id).cloned()
    }

    /// One message's bytes; `None` when there is no such message (or its file is gone).
    pub(crate) async fn bytes(&self, id: &str) -> Result<Option<Arc<[u8]>>> {
        let Some(summary) = self.get(id) else {
            return Ok(None);
        };
        match &summary.body {
            Body::Memory(bytes) => Ok(Some(Arc::clone(bytes))),
            Body::File(path) => match tokio::fs::read(path).await {
                Ok(bytes) => Ok(Some(bytes.into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(path.display().to_string(), e)),
            },
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Brings the index up to date; with `announce`, each new message goes to the events.
    async fn refresh(&self, announce: bool) -> Result<()> {
        let added = match &self.source {
            Source::Dir(dir) => {
                let modified = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
                let known: Vec<String> = {
                    let index = self.read();
                    if let (Some(now), Some((then, at))) = (modified, index.dir_seen)
                        && now == then
                        && at.elapsed() < FULL_SCAN_EVERY
                    {
                        return Ok(());
                    }
                    index.by_id.keys().cloned().collect()
                };
                let started = std::time::Instant::now();
                let dir = dir.clone();
                let scan = tokio::task::spawn_blocking(move || scan_dir(&dir, known))
                    .await
                    .map_err(|e| Error::io("outbox scan", std::io::Error::other(e)))??;
                let mut index = self.write();
                index.dir_seen = modified.map(|m| (m, started));
                let changed = !scan.added.is_empty() || !scan.removed.is_empty();
                for id in &scan.removed {
                    index.by_id.remove(id);
                }
                if !scan.removed.is_empty() {
                    index.entries.retain(|s| !scan.removed.contains(&s.id));
                }
                let added: Vec<Arc<Summary>> = scan.added.into_iter().map(Arc::new).collect();
                insert(&mut index, &added, changed);
                added
            }
            Source::Memory(outbox) => {
                let count = outbox.count();
                let seen = self.read().memory_seen;
                if count == seen {
                    return Ok(());
                }
                let mut index = self.write();
                if count < seen {
                    // the outbox was cleared
                    *index = Index::default();
                }
                let start = index.memory_seen;
                let added: Vec<Arc<Summary>> = outbox
                    .messages()
                    .iter()
                    .enumerate()
                    .skip(start)
                    .map(|(i, m)| {
                        let bytes: Arc<[u8]> = m.bytes().into();
                        // Sequence numbers (1-based) order the outbox: newest is highest.
                        let seq = i + 1;
                        Arc::new(summarize(
                            seq.to_string(),
                            &bytes,
                            (
                                SystemTime::UNIX_EPOCH + Duration::from_nanos(seq as u64),
                                String::new(),
                            ),
                            Body::Memory(Arc::clone(&bytes)),
                        ))
                    })
                    .collect();
                index.memory_seen = count;
                insert(&mut index, &added, true);
                added
            }
        };
        if announce {
            for summary in added {
                // No subscriber is fine: nobody has the inbox open.
                let _ = self.events.send(Event::Message(summary));
            }
        }
        Ok(())
    }
}

fn insert(index: &mut Index, added: &[Arc<Summary>], changed: bool) {
    for summary in added {
        index.by_id.insert(summary.id.clone(), Arc::clone(summary));
        index.entries.push(Arc::clone(summary));
    }
    if changed {
        index.entries.sort_by(|a, b| b.order.cmp(&a.order));
    }
}

struct Scan {
    added: Vec<Summary>,
    removed: Vec<String>,
}

/// Lists `dir`'s `.eml` files (hidden ones, such as the file transport's temporary files,
/// skipped) and reads the headers of those not `known` yet.
fn scan_dir(dir: &Path, known: Vec<String>) -> Result<Scan> {
    let io = |e| Error::io(dir.display().to_string(), e);
    let mut present = std::collections::HashSet::new();
    let mut added = Vec::new();
    let mut known: std::collections::HashSet<String> = known.into_iter().collect();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(id) = name.strip_suffix(".eml") else {
            continue;
        };
        if id.is_empty() || name.starts_with('.') {
            continue;
        }
        present.insert(id.to_owned());
        if known.contains(id) {
            continue;
        }
        let path = entry.path();
        let (modified, bytes) = match (entry.metadata(), std::fs::read(&path)) {
            (Ok(meta), Ok(bytes)) => (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), bytes),
            // Removed between the listing and the read: the next scan will not see it.
            _ => continue,
        };
        known.insert(id.to_owned());
        added.push(summarize(
            id.to_owned(),
            &bytes,
            (modified, id.to_owned()),
            Body::File(path),
        ));
    }
    let removed = known
        .into_iter()
        .filter(|id| !present.contains(id))
        .collect();
    Ok(Scan { added, removed })
}

/// The summary of a message from its headers.
fn summarize(id: String, bytes: &[u8], order: (SystemTime, String), body: Body) -> Summary {
    let parsed = MessageParser::new().parse_headers(bytes);
    let (subject, from, to, date) = match &parsed {
        Some(m) => {
            let mut to = addresses(m.to());
            to.extend(addresses(m.cc()));
            (
                m.subject().unwrap_or_default().to_owned(),
                addresses(m.from()).join(", "),
                to,
                m.date().map(|d| d.to_rfc3339()),
            )
        }
        None => (String::new(), String::new(), Vec::new(), None),
    };
    Summary {
        to_lower: to.join(", ").to_lowercase(),
        subject_lower: subject.to_lowercase(),
        id,
        subject,
        from,
        to,
        date,
        order,
        body,
    }
}

/// Each address as `Name <addr>` (or the bare address).
pub(crate) fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .map(|addr| match (addr.name(), addr.address()) {
                    (Some(name), Some(email)) => format!("{name} <{email}>"),
                    (None, Some(email)) => email.to_owned(),
                    (Some(name), None) => name.to_owned(),
                    (None, None) => String::new(),
                })
                .collect()
        })
        .unwrap_or_default()
}
