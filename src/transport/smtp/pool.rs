//! mailroom's connection pool: a hard cap on open connections, idle expiry, and a
//! broken connection never handed out again.
//!
//! The pool has `max_connections` slots and as many semaphore permits. A sender takes a
//! permit, then a slot: the slot holds an idle connection (the most recently used one is
//! preferred) or nothing, in which case the sender connects. After the transaction the
//! connection goes back into the slot unless it broke. So no more than `max_connections`
//! connections are ever open, and nobody waits while an idle connection sits unused.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::Settings;
use super::connection::{Connection, OpenToken, Outgoing, Start};
use super::transient;
use crate::error::{Error, Result};
use crate::transport::Delivery;

pub(crate) struct Pool {
    settings: Settings,
    permits: Semaphore,
    slots: Mutex<Vec<Option<Connection>>>,
    open: Arc<AtomicUsize>,
    reaper_started: AtomicBool,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("settings", &self.settings)
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A slot taken from the pool; whatever it holds goes back when it is dropped (nothing,
/// if the sender was cancelled mid-transaction: that connection's state is unknown).
struct Slot<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.pool.lock_slots().push(self.conn.take());
    }
}

impl Pool {
    pub(crate) fn new(settings: Settings) -> Self {
        let n = settings.max_connections;
        Pool {
            permits: Semaphore::new(n),
            slots: Mutex::new((0..n).map(|_| None).collect()),
            open: Arc::new(AtomicUsize::new(0)),
            reaper_started: AtomicBool::new(false),
            settings,
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn lock_slots(&self) -> MutexGuard<'_, Vec<Option<Connection>>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot, preferring the most recently used live connection; connections idle
    /// longer than the idle timeout are closed instead of handed out.
    fn take_slot(&self) -> Slot<'_> {
        let mut expired = Vec::new();
        let conn = {
            let mut slots = self.lock_slots();
            let idle = self.settings.idle_timeout;
            for slot in slots.iter_mut() {
                if slot.as_ref().is_some_and(|c| c.last_used.elapsed() >= idle) {
                    expired.extend(slot.take());
                }
            }
            let best = slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|c| (i, c.last_used)))
                .max_by_key(|(_, used)| *used)
                .map(|(i, _)| i);
            match best {
                Some(i) => slots.swap_remove(i),
                None => slots.pop().flatten(),
            }
        };
        close_all(expired);
        Slot { pool: self, conn }
    }

    /// Delivers one message on a pooled connection.
    pub(crate) async fn deliver(self: &Arc<Self>, msg: Outgoing<'_>) -> Result<Delivery> {
        let cursor = AtomicUsize::new(0);
        match self.worker(&[msg], &cursor).await.pop() {
            Some((_, result)) => result,
            None => Err(transient("the SMTP pool is closed")),
        }
    }

    /// Sends messages from `items`, taking the next unclaimed index from `cursor` until
    /// none is left, over one pooled connection (several workers share a batch). On a
    /// pipelining server each body carries the next message's MAIL/RCPT/DATA group.
    pub(crate) async fn worker(
        self: &Arc<Self>,
        items: &[Outgoing<'_>],
        cursor: &AtomicUsize,
    ) -> Vec<(usize, Result<Delivery>)> {
        let claim = || {
            let i = cursor.fetch_add(1, Ordering::Relaxed);
            (i < items.len()).then_some(i)
        };
        let mut out = Vec::new();
        let Some(first) = claim() else { return out };
        self.start_reaper();
        let Ok(_permit) = self.permits.acquire().await else {
            out.push((first, Err(transient("the SMTP pool is closed"))));
            return out;
        };
        let mut slot = self.take_slot();
        // A connection from the pool may have been closed by the server while idle.
        let mut start = if slot.conn.is_some() {
            Start::Idle
        } else {
            Start::Fresh
        };
        let mut current = Some(first);
        let mut claimed_next: Option<usize> = None;
        let mut retried = false;
        let mut connector = Connector::default();
        while let Some(idx) = current {
            let mut conn = match slot.conn.take() {
                Some(conn) => conn,
                None => match connector.open(self).await {
                    Ok(conn) => {
                        start = Start::Fresh;
                        conn
                    }
                    Err(error) => {
                        out.push((idx, Err(error)));
                        current = claimed_next.take().or_else(claim);
                        continue;
                    }
                },
            };
            if claimed_next.is_none() && conn.pipelining() {
                claimed_next = claim();
            }
            let next = claimed_next.map(|i| items[i]);
            let this_start = start;
            match conn.transact(items[idx], this_start, next).await {
                Ok((delivery, next_start)) => {
                    slot.conn = Some(conn);
                    start = next_start;
                    out.push((idx, Ok(delivery)));
                }
                Err(failure) => {
                    // A broken connection is dropped; the next message opens a fresh one.
                    start = if failure.broken {
                        Start::Fresh
                    } else {
                        failure.next
                    };
                    if !failure.broken {
                        slot.conn = Some(conn);
                    }
                    if failure.stale && this_start == Start::Idle && !retried {
                        tracing::debug!(error = %failure.error, "pooled connection was closed by the server; reconnecting");
                        retried = true;
                        continue;
                    }
                    out.push((idx, Err(failure.error)));
                }
            }
            retried = false;
            current = claimed_next.take().or_else(claim);
        }
        out
    }

    /// Closes every idle connection with `QUIT`.
    pub(crate) async fn close_idle(&self) {
        let idle: Vec<Connection> = self
            .lock_slots()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for conn in idle {
            conn.quit().await;
        }
    }

    /// Starts (once, on the first send, inside the runtime) a task that closes
    /// connections idle past the idle timeout; it ends when the pool is dropped.
    fn start_reaper(self: &Arc<Self>) {
        if self.reaper_started.swap(true, Ordering::Relaxed) {
            return;
        }
        let weak: Weak<Pool> = Arc::downgrade(self);
        let period = (self.settings.idle_timeout / 2).max(Duration::from_millis(100));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(pool) = weak.upgrade() else { break };
                let expired: Vec<Connection> = {
                    let mut slots = pool.lock_slots();
                    let now = Instant::now();
                    slots
                        .iter_mut()
                        .filter(|s| {
                            s.as_ref().is_some_and(|c| {
                                now.duration_since(c.last_used) >= pool.settings.idle_timeout
                            })
                        })
                        .filter_map(Option::take)
                        .collect()
                };
                drop(pool);
                for conn in expired {
                    conn.quit().await;
                }
            }
        });
    }
}

/// Opens one worker's connections. After two failed connects in a row the server is
/// taken to be unreachable: the rest of the worker's messages fail at once with the same
/// error instead of each waiting out its own connect timeout.
#[derive(Default)]
struct Connector {
    failed: usize,
    last_error: Option<Error>,
}

impl Connector {
    /// A new connection to the pool's server, or the last connect error once the server
    /// is taken to be unreachable.
    async fn open(&mut self, pool: &Pool) -> Result<Connection> {
        if self.failed >= 2 {
            return Err(self
                .last_error
                .as_ref()
                .map_or_else(|| transient("not connected"), same_error));
        }
        match Connection::open(&pool.settings, OpenToken::new(&pool.open)).await {
            Ok(conn) => {
                self.failed = 0;
                Ok(conn)
            }
            Err(error) => {
                self.failed += 1;
                self.last_error = Some(same_error(&error));
                Err(error)
            }
        }
    }
}

/// An error of the same kind and text, for messages that share a failed connect.
fn same_error(error: &Error) -> Error {
    match error {
        Error::Transient(f) => Error::Transient(f.clone()),
        Error::Permanent(f) => Error::Permanent(f.clone()),
        Error::Configuration { field, reason } => {
            Error::configuration(field.clone(), reason.clone())
        }
        other => transient(other.to_string()),
    }
}

fn close_all(conns: Vec<Connection>) {
    if conns.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for conn in conns {
            conn.quit().await;
        }
    });
}
