//! Integration tests of the `web` feature: the CSP layer and its report route, and
//! `mailroom serve` (over HTTP, from the command line, and in headless Chromium).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod layer;
#[cfg(all(feature = "sqlite", feature = "test-util"))]
mod queue;
mod reports;
mod serve;
mod support;
