//! Integration tests: transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod aiosmtpd;
mod deferred;
pub(crate) mod fake_server;
mod faults;
mod hostile_urls;
mod local;
mod smtp;
