//! Integration tests: the CSP builder, the HTML body pipeline, DKIM signing and the
//! browser check of processed bodies under their computed policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "html")]
mod agreement;
#[cfg(feature = "html")]
mod browser;
mod csp;
#[cfg(feature = "dkim")]
pub(crate) mod dkim;
#[cfg(feature = "html-fetch")]
mod fetch;
#[cfg(feature = "html")]
mod hostile;
#[cfg(feature = "html")]
mod limits;
#[cfg(feature = "html")]
mod nested;
#[cfg(feature = "html")]
mod pipeline;
