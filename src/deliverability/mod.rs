//! Mail that arrives: one-click unsubscribe tokens, the suppression list, bounce and
//! complaint parsing, and the bulk-sender check (feature `deliverability`).
//!
//! | file | what |
//! |---|---|
//! | `token.rs` | [`TokenKey`]: HMAC-SHA256 unsubscribe tokens binding recipient, list and expiry |
//! | `unsubscribe.rs` | [`Unsubscribe`]: one-click links for a message, and [`Unsubscribe::opt_out`], what a web handler calls |
//! | `address.rs` | [`normalize_address`]: the one form addresses are stored and compared in |
//! | `suppression/` | [`SuppressionStore`]: the list in the task database (SQLite, PostgreSQL), its own tables and migrations |
//! | `bounce/` | [`parse_report`]: DSNs (RFC 3464 and common non-standard forms), ARF complaints (RFC 5965), auto-replies; [`split_mbox`] |
//! | `check.rs` | [`check_message`]: a message graded against the published bulk-sender requirements |
//!
//! The dependencies point one way: this module uses `message`, `render`, `dkim` and
//! `tasks`; only `send_mail` and the command-line program use it.

mod address;
mod bounce;
mod check;
#[cfg(all(feature = "web", any(feature = "sqlite", feature = "postgres")))]
mod handler;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod suppression;
mod token;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod unsubscribe;

pub use address::normalize_address;
pub use bounce::{Bounce, BounceKind, parse_report, split_mbox};
pub use check::{
    CheckOptions, Finding, HTML_CLIP_BYTES, Report, Severity, check_bytes, check_message,
};
#[cfg(all(feature = "web", any(feature = "sqlite", feature = "postgres")))]
pub use handler::unsubscribe_router;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use suppression::list_id;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use suppression::{Reason, Recorded, Scope, SoftBouncePolicy, Suppression, SuppressionStore};
pub use token::{Claims, MIN_SECRET, TokenError, TokenKey};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use unsubscribe::{OptOut, OptOutError, Unsubscribe};
