//! Integration tests: one-click unsubscribe (DKIM-verified by dkimpy), tokens, the bounce
//! corpus, the sender check and the suppression list on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bounces;
#[cfg(feature = "cli")]
mod check;
#[cfg(all(feature = "cli", feature = "sqlite", feature = "smtp"))]
mod cli;
#[cfg(all(feature = "web", feature = "sqlite"))]
mod handler;
#[cfg(all(feature = "sqlite", feature = "postgres", feature = "smtp"))]
mod suppression;
mod tokens;
#[cfg(feature = "dkim")]
mod unsubscribe;
