//! The steps of the pipeline, in order, over one HTML body: inline CSS, sanitize, embed
//! images (and clean `<style>` texts), then scan the result once for the text alternative
//! and the computed policy, and embed that policy. Without CSS to inline, the body is
//! parsed once: the sanitiser's parse enforces the nesting limit, and the sanitiser reads
//! what it writes for the scan (tokenized again only when the rewriting pass changed it).

use std::collections::HashMap;

use super::images::{Fetched, Rewrite};
use super::{HtmlOptions, inline, nesting, policy, sanitize, scan};
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

/// The steps, in order, over a body, refusing it first when it nests deeper than the limit
/// (`nesting_checked`: [`super::nesting::check`] passed already); `fetched` and `extra_css` are what was fetched beforehand
/// (empty and `None` when nothing is). With `text` off, [`ProcessedHtml::text`] is left
/// empty (for a message that has a text part already).
pub(crate) fn run(
    html: &str,
    options: &HtmlOptions,
    fetched: &HashMap<String, Fetched>,
    extra_css: Option<&str>,
    text: bool,
    nesting_checked: bool,
) -> Result<ProcessedHtml> {
    let inlining = options.inline_css && inline::applies(html, extra_css);
    // the sanitiser's parse enforces the limit itself when it is the first to read the body
    if !nesting_checked && (inlining || !options.sanitize) {
        nesting::check(html)?;
    }
    let inlined = if inlining {
        inline::inline(html, extra_css)
    } else {
        None
    };
    let mut body = inlined.unwrap_or_else(|| html.to_owned());
    // the sanitiser reads its result for the scan as it writes it
    let mut walked = None;
    if options.sanitize {
        let sanitized = sanitize::sanitize_scanning(&body, text)?;
        body = sanitized.html;
        walked = sanitized.scan;
    }
    let rewrite = Rewrite {
        embed_images: options.embed_images,
        clean_styles: options.sanitize,
        base_dir: options.base_dir.as_deref(),
        fetched,
    };
    if rewrite.could_change(&body) {
        walked = None;
    }
    let (mut body, inline_parts) = rewrite.run(body)?;
    let found = walked.unwrap_or_else(|| scan::scan_with(&body, text));
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
