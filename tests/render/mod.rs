//! Integration tests: the message model and MIME rendering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Runs the `mailroom` program, which the `cli` feature builds.
#[cfg(feature = "cli")]
mod cli;
pub(crate) mod fixtures;
mod json_input;
mod line_ends;
mod lookalikes;
mod props;
mod rules;
