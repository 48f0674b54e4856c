//! Integration tests: transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod aiosmtpd;
#[cfg(feature = "smtp")]
mod deferred;
pub(crate) mod fake_server;
#[cfg(feature = "smtp")]
mod faults;
#[cfg(feature = "smtp")]
mod hostile_urls;
#[cfg(all(feature = "http", feature = "sqlite"))]
mod http;
mod local;
#[cfg(all(
    feature = "dkim",
    feature = "html",
    feature = "sqlite",
    feature = "smtp"
))]
mod rendered;
#[cfg(feature = "smtp")]
mod smtp;
