//! Integration tests: transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod aiosmtpd;
mod deferred;
pub(crate) mod fake_server;
mod faults;
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
mod smtp;
