//! Integration tests: email templates, partials, escaping, strictness, MJML, the message
//! JSON `template` field and the `--templates` command-line flags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod merge;
mod messages;
mod partials;

use std::path::{Path, PathBuf};

use mailroom::templates::Templates;

/// The example templates the README uses.
pub(crate) fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates")
}

pub(crate) fn examples() -> Templates {
    Templates::from_dir(examples_dir()).unwrap()
}

/// The sample context beside an example template (`order.html` → `order.json`).
pub(crate) fn sample_context(template: &str) -> serde_json::Value {
    let stem = template.split('.').next().unwrap();
    let text = std::fs::read_to_string(examples_dir().join(format!("{stem}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}
