//! Integration tests: the message model and MIME rendering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
pub(crate) mod fixtures;
mod json_input;
mod line_ends;
mod lookalikes;
mod props;
mod rules;
