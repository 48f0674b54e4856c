//! The suppression list: addresses mail is never delivered to, stored in the task database.
//!
//! The details are documented on the public items.

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::address::normalize_field;
use super::bounce::{Bounce, BounceKind};
use super::token::Claims;
use crate::error::{Error, Result};

/// Which mail a suppression stops.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every message.
    Global,
    /// Messages of one list: those whose `List-Id` names it (and opt-outs recorded for it).
    List(String),
}

impl Scope {
    /// `None` is global; a list id is that list's scope.
    pub fn from_option(list: Option<&str>) -> Scope {
        match list {
            None | Some("") => Scope::Global,
            Some(list) => Scope::List(list.to_owned()),
        }
    }

    /// How it is stored: `''` for global, else the list id.
    fn key(&self) -> &str {
        match self {
            Scope::Global => "",
            Scope::List(list) => list,
        }
    }

    fn from_key(key: String) -> Scope {
        if key.is_empty() {
            Scope::Global
        } else {
            Scope::List(key)
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::List(list) => f.write_str(list),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Scope::Global => s.serialize_none(),
            Scope::List(list) => s.serialize_str(list),
        }
    }
}

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Reason {
    /// The recipient unsubscribed.
    Unsubscribe,
    /// A permanent delivery failure (5.x.x).
    HardBounce,
    /// Too many transient failures in the [`SoftBouncePolicy`] window.
    SoftBounces,
    /// A feedback-loop complaint.
    Complaint,
    /// Added by hand.
    Manual,
}

impl Reason {
    /// `unsubscribe`, `hard-bounce`, `soft-bounces`, `complaint` or `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unsubscribe => "unsubscribe",
            Reason::HardBounce => "hard-bounce",
            Reason::SoftBounces => "soft-bounces",
            Reason::Complaint => "complaint",
            Reason::Manual => "manual",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reason> {
        Ok(match s {
            "unsubscribe" => Reason::Unsubscribe,
            "hard-bounce" => Reason::HardBounce,
            "soft-bounces" => Reason::SoftBounces,
            "complaint" => Reason::Complaint,
            "manual" => Reason::Manual,
            other => {
                return Err(Error::invalid(
                    "reason",
                    format!(
                        "`{other}` is not a reason; use unsubscribe, hard-bounce, soft-bounces, complaint or manual"
                    ),
                ));
            }
        })
    }
}

/// One suppressed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// The address, normalised.
    pub address: String,
    /// Which mail it stops (`null` in JSON for global).
    pub scope: Scope,
    /// Why.
    pub reason: Reason,
    /// Where it came from (a file, a token, an operator's note).
    pub source: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// How many soft bounces, within how long, suppress an address (default 3 in 7 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftBouncePolicy {
    /// Soft bounces that suppress (at least 1).
    pub threshold: u32,
    /// The window they are counted in.
    pub window: Duration,
}

impl Default for SoftBouncePolicy {
    fn default() -> Self {
        SoftBouncePolicy {
            threshold: 3,
            window: Duration::days(7),
        }
    }
}

/// What recording a bounce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The address is now suppressed (or already was) for this reason.
    Suppressed(Reason),
    /// A soft bounce counted, below the threshold.
    Counted,
    /// Nothing to record (an ignored report, or no address).
    Nothing,
}

/// The suppression list, in the task database. Cheap to clone (the pool is shared).
///
/// [`SuppressionStore::connect`] takes the queue URL (`sqlite:PATH` or `postgres://…`) and
/// opens the same database the tasks live in, with its own tables (`mailroom_suppressions`,
/// `mailroom_soft_bounces`) and its own migrations and version table
/// (`mailroom_deliverability_schema`), so that it never touches the task schema's
/// versions. Each suppression has an address (normalised by
/// [`normalize_address`](super::normalize_address)), a [`Scope`] (every list, or one list
/// id), a [`Reason`], a time and a source (free text: a file, a token, an operator).
///
/// ```no_run
/// # async fn demo() -> mailroom::Result<()> {
/// use mailroom::deliverability::{Reason, Scope, SuppressionStore};
///
/// let store = SuppressionStore::connect("sqlite:mail.db").await?;
/// store.add("Ann@Example.org", &Scope::Global, Reason::Manual, "support ticket 12").await?;
/// let suppressed = store.suppressed(&["Ann@example.org".into(), "bob@example.org".into()], None).await?;
/// assert_eq!(suppressed, ["Ann@example.org"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SuppressionStore {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Store),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Store),
}

/// Runs the same call on whichever backend the store has.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            Backend::Postgres($store) => $call,
        }
    };
}

impl SuppressionStore {
    /// Opens the suppression list in the task database at `url` (`sqlite:PATH` or
    /// `postgres://…[?schema=NAME]`), creating the task tables and its own when missing.
    /// Any other URL is a configuration error naming `queue`.
    pub async fn connect(url: &str) -> Result<SuppressionStore> {
        let backend = if url.starts_with("sqlite:") {
            sqlite_backend(url).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres_backend(url).await?
        } else {
            return Err(unsupported(url));
        };
        Ok(SuppressionStore { backend })
    }

    /// Suppresses `address` in `scope`; `false` when it already was (the first entry is
    /// kept: its reason and time say when it started).
    pub async fn add(
        &self,
        address: &str,
        scope: &Scope,
        reason: Reason,
        source: &str,
    ) -> Result<bool> {
        let address = normalize_field("address", address)?;
        let now = Utc::now();
        dispatch!(self, s => s.add(&address, scope.key(), reason.as_str(), source, now).await)
    }

    /// Lifts the suppression of `address` in `scope`; `false` when there was none.
    pub async fn remove(&self, address: &str, scope: &Scope) -> Result<bool> {
        let address = normalize_field("address", address)?;
        dispatch!(self, s => s.remove(&address, scope.key()).await)
    }

    /// Every suppression, oldest first.
    pub async fn list(&self) -> Result<Vec<Suppression>> {
        let rows = dispatch!(self, s => s.list().await)?;
        rows.into_iter()
            .map(|(address, scope, reason, source, created_at)| {
                Ok(Suppression {
                    address,
                    scope: Scope::from_key(scope),
                    reason: reason.parse()?,
                    source,
                    created_at,
                })
            })
            .collect()
    }

    /// Those of `addresses` that are suppressed globally or, when `list` is given, for
    /// that list; returned as given, in their order. An address that cannot be
    /// normalised is returned as not suppressed (the renderer refuses it anyway).
    pub async fn suppressed(
        &self,
        addresses: &[String],
        list: Option<&str>,
    ) -> Result<Vec<String>> {
        let normalised: Vec<(usize, String)> = addresses
            .iter()
            .enumerate()
            .filter_map(|(i, a)| normalize_field("address", a).ok().map(|n| (i, n)))
            .collect();
        if normalised.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = normalised.iter().map(|(_, n)| n.clone()).collect();
        let scope = list.unwrap_or("");
        let found = dispatch!(self, s => s.find(&keys, scope).await)?;
        Ok(normalised
            .into_iter()
            .filter(|(_, n)| found.contains(n))
            .map(|(i, _)| addresses[i].clone())
            .collect())
    }

    /// Counts a soft bounce for `address`; once `policy.threshold` fall within
    /// `policy.window`, suppresses it globally ([`Reason::SoftBounces`]) and returns `true`.
    pub async fn record_soft_bounce(
        &self,
        address: &str,
        status: &str,
        source: &str,
        policy: SoftBouncePolicy,
    ) -> Result<bool> {
        let address = normalize_field("address", address)?;
        let now = Utc::now();
        let since = now - policy.window;
        let count = dispatch!(self, s => s.soft_bounce(&address, status, now, since).await)?;
        if count >= u64::from(policy.threshold.max(1)) {
            self.add(&address, &Scope::Global, Reason::SoftBounces, source)
                .await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Records what a parsed report says: hard bounces and complaints suppress the address
    /// globally, soft bounces count towards `policy`, the rest is left alone.
    pub async fn record_bounce(
        &self,
        bounce: &Bounce,
        source: &str,
        policy: SoftBouncePolicy,
    ) -> Result<Recorded> {
        let Some(address) = &bounce.recipient else {
            return Ok(Recorded::Nothing);
        };
        let source = format!("{source} ({} {})", bounce.kind, bounce.status);
        let reason = match bounce.kind {
            BounceKind::Hard => Reason::HardBounce,
            BounceKind::Complaint => Reason::Complaint,
            BounceKind::Soft => {
                return Ok(
                    if self
                        .record_soft_bounce(address, &bounce.status, &source, policy)
                        .await?
                    {
                        Recorded::Suppressed(Reason::SoftBounces)
                    } else {
                        Recorded::Counted
                    },
                );
            }
            BounceKind::Ignored => return Ok(Recorded::Nothing),
        };
        self.add(address, &Scope::Global, reason, &source).await?;
        Ok(Recorded::Suppressed(reason))
    }

    /// Records the opt-out a valid unsubscribe token claims: its recipient, suppressed for
    /// its list. Idempotent: `false` when it was already recorded. This is all a web
    /// handler does after [`TokenKey::verify`](super::TokenKey::verify).
    pub async fn record_opt_out(&self, claims: &Claims, source: &str) -> Result<bool> {
        self.add(
            &claims.recipient,
            &Scope::List(claims.list.clone()),
            Reason::Unsubscribe,
            source,
        )
        .await
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite_backend(url: &str) -> Result<Backend> {
    Ok(Backend::Sqlite(sqlite::Store::connect(url).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn sqlite_backend(url: &str) -> Result<Backend> {
    Err(unsupported(url))
}

#[cfg(feature = "postgres")]
async fn postgres_backend(url: &str) -> Result<Backend> {
    Ok(Backend::Postgres(postgres::Store::connect(url).await?))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_backend(url: &str) -> Result<Backend> {
    Err(unsupported(url))
}

/// The list id a message's `List-Id` header names (RFC 2919: `Name <id>`, or a bare id),
/// whose suppressions apply to it beside the global ones.
pub(crate) fn list_id(email: &crate::message::Email) -> Option<String> {
    let (_, value) = email
        .headers()
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("List-Id"))?;
    let id = match value.rsplit_once('<') {
        Some((_, rest)) => rest.split('>').next().unwrap_or(rest),
        None => value.as_str(),
    };
    Some(id.trim().to_owned()).filter(|id| !id.is_empty())
}

fn unsupported(url: &str) -> Error {
    let scheme = url.split(':').next().unwrap_or("");
    Error::configuration(
        "queue",
        format!(
            "the suppression list lives in the task database: give a sqlite:PATH or postgres:// queue URL, not `{scheme}:`"
        ),
    )
}

/// A database error as a queue error naming what failed.
fn storage(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::queue(format!("suppression list: {what}"), e)
}
