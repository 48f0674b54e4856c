//! The steps of the pipeline, in order, over one HTML body: inline CSS, sanitize, embed
//! images (and clean `<style>` texts), then scan the result once for the text alternative
//! and the computed policy, and embed that policy.

use std::collections::HashMap;

use super::images::{Fetched, Rewrite};
use super::{HtmlOptions, inline, policy, sanitize, scan};
use crate::csp::Policy;
use crate::error::Result;
use crate::message::Attachment;

/// An HTML body after the pipeline.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProcessedHtml {
    /// The processed document.
    pub html: String,
    /// Inline parts the document references as `cid:` (Content-IDs derived from the bytes).
    pub inline_parts: Vec<Attachment>,
    /// The plain-text rendering of the document.
    pub text: String,
    /// The policy under which the document renders with nothing blocked.
    pub policy: Policy,
}

/// The steps, in order, over a body that passed the nesting limit
/// ([`super::nesting::check`]); `fetched` and `extra_css` are what was fetched beforehand
/// (empty and `None` when nothing is). With `text` off, [`ProcessedHtml::text`] is left
/// empty (for a message that has a text part already).
pub(crate) fn run(
    html: &str,
    options: &HtmlOptions,
    fetched: &HashMap<String, Fetched>,
    extra_css: Option<&str>,
    text: bool,
) -> Result<ProcessedHtml> {
    let inlined = if options.inline_css {
        inline::inline(html, extra_css)
    } else {
        None
    };
    let mut body = inlined.unwrap_or_else(|| html.to_owned());
    if options.sanitize {
        body = sanitize::sanitize(&body);
    }
    let rewrite = Rewrite {
        embed_images: options.embed_images,
        clean_styles: options.sanitize,
        base_dir: options.base_dir.as_deref(),
        fetched,
    };
    let (mut body, inline_parts) = rewrite.run(body)?;
    let found = scan::scan_with(&body, text);
    policy::check_images_allowed(&found, options.base_dir.is_some())?;
    let policy = policy::from_scan(&found);
    if options.embed_policy {
        body = policy::embed(&body, &found, &policy)?;
    }
    Ok(ProcessedHtml {
        html: body,
        inline_parts,
        text: found.text,
        policy,
    })
}
