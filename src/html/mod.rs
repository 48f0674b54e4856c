//! The CSP-safe HTML body pipeline (feature `html`).
//!
//! [`process`] turns a message's HTML body into one that carries only inline content and
//! renders under a strict Content-Security-Policy, and [`policy()`] computes that policy:
//!
//! 0. **nesting limit**: a body whose elements nest deeper than [`MAX_DEPTH`] (512, as in
//!    browsers) is refused before any step walks its tree (while the sanitiser parses it,
//!    or before CSS inlining when that runs first);
//! 1. **inline CSS** (css-inline): `<style>` rules move into `style` attributes; `@media`
//!    rules stay in a `<style>` block;
//! 2. **sanitize** (ammonia's policy, applied on the parse that checks the nesting limit):
//!    script, iframe, object, embed, form, base, meta, link, SVG, `on*` attributes and
//!    `javascript:`/`vbscript:` URLs go; CSS `expression()`, `behavior`, `@import` and
//!    `url()` with active schemes go;
//! 3. **embed images** (lol_html): `data:` images, local files under
//!    [`HtmlOptions::base_dir`] and fetched remote images (feature `html-fetch`) become
//!    inline parts referenced as `cid:` (the renderer makes `multipart/related`);
//! 4. **text alternative**: a plain-text part generated from the HTML when none is given;
//! 5. **policy**: the computed policy is also put into the document as
//!    `<meta http-equiv="Content-Security-Policy">`, so it travels (DKIM-signed) with the body.
//!
//! ```
//! use mailroom::{Email, html::{self, HtmlOptions}};
//!
//! let email = Email::builder()
//!     .from("shop@example.com")
//!     .to("ann@example.org")
//!     .html(r#"<style>p { color: #c00 }</style><p onclick="steal()">Hi <img src="data:image/png;base64,iVBORw0KGgo="></p><script>steal()</script>"#)
//!     .build()?;
//! let email = html::process(&email, &HtmlOptions::default())?;
//! let body = email.html().unwrap_or_default();
//! assert!(!body.contains("script") && !body.contains("onclick"));
//! assert!(body.contains(r#"<p style="color: #c00;">"#) && body.contains(r#"src="cid:"#));
//! assert_eq!(email.text(), Some("Hi\n"));
//! assert_eq!(
//!     html::policy(&email).to_string(),
//!     "default-src 'none'; img-src cid:; style-src-attr 'unsafe-hashes' 'sha256-d295cp7OE2rANnutUxlpbGAHVjo7gHvvpwIac5WEIOI='"
//! );
//! # Ok::<(), mailroom::Error>(())
//! ```

// Where each piece lives: the entry points here; the steps in order in `pipeline`, each
// step in its own file (`nesting` the depth limit, `inline` CSS inlining, `sanitize` with
// `css` the active-content removal, `images` the embedding pass, `scan` the one reading of
// the result), `policy` the computed policy, `fetch` the remote resources, `options` the
// switches.
mod css;
#[cfg(feature = "html-fetch")]
mod fetch;
mod foreign_names;
mod images;
mod inline;
mod name_set;
mod nesting;
mod options;
mod pipeline;
mod policy;
mod sanitize;
mod scan;
mod tree;

use std::borrow::Cow;
use std::collections::HashMap;

#[cfg(feature = "html-fetch")]
pub use fetch::FetchLimits;
pub use nesting::MAX_DEPTH;
pub use options::HtmlOptions;
pub use pipeline::ProcessedHtml;
pub use policy::{policy, policy_for};

use crate::error::Result;
use crate::message::{Attachment, AttachmentBody, Email};

/// Runs the pipeline over a message: a new message with the processed HTML, the inline
/// parts it references, and a generated text part when it had none. A message without an
/// HTML body comes back unchanged. Remote resources are not fetched (see
/// [`process_fetching`]).
///
/// Attached messages (`message/rfc822`) go through the same pipeline with the same options,
/// each as a document of its own: an HTML body forwarded inside another message is no less
/// hostile than one sent directly.
pub fn process(email: &Email, options: &HtmlOptions) -> Result<Email> {
    Ok(processed(email, options)?.into_owned())
}

/// As [`process`], borrowing the message when there is nothing to do; what
/// [`Email::render`] writes. The result shares the attachments' bytes with `email`.
pub(crate) fn processed<'a>(email: &'a Email, options: &HtmlOptions) -> Result<Cow<'a, Email>> {
    let email = with_nested_processed(email, options)?;
    let Some(html) = email.html() else {
        return Ok(email);
    };
    let processed = pipeline::run(
        html,
        options,
        &HashMap::new(),
        None,
        wants_text(&email, options),
        false,
    )?;
    rebuild(email, processed, options).map(Cow::Owned)
}

/// Whether the message takes a generated text alternative (see [`rebuild`]).
fn wants_text(email: &Email, options: &HtmlOptions) -> bool {
    email.text().is_none() && options.text_alternative
}

/// `true` when [`process`] has something to do: an HTML body, or an attached message.
pub(crate) fn applies_to(email: &Email) -> bool {
    email.html().is_some() || email.attachments().iter().any(is_message)
}

fn is_message(attachment: &Attachment) -> bool {
    matches!(attachment.body(), AttachmentBody::Message(_))
}

/// The message with each attached message processed (remote resources of attached
/// messages are never fetched).
fn with_nested_processed<'a>(email: &'a Email, options: &HtmlOptions) -> Result<Cow<'a, Email>> {
    if !email.attachments().iter().any(is_message) {
        return Ok(Cow::Borrowed(email));
    }
    let mut email = email.clone();
    for attachment in &mut email.attachments {
        if let AttachmentBody::Message(inner) = &mut attachment.body {
            **inner = process(inner, options)?;
        }
    }
    Ok(Cow::Owned(email))
}

/// As [`process`], first fetching remote images and stylesheets when
/// [`HtmlOptions::fetch_remote`] is set (feature `html-fetch`).
#[cfg(feature = "html-fetch")]
pub async fn process_fetching(email: &Email, options: &HtmlOptions) -> Result<Email> {
    let Some(limits) = &options.fetch_remote else {
        return process(email, options);
    };
    let email = with_nested_processed(email, options)?;
    let Some(html) = email.html() else {
        return Ok(email.into_owned());
    };
    nesting::check(html)?;
    let remote = fetch::fetch_remote(html, limits).await?;
    let processed = pipeline::run(
        html,
        options,
        &remote.images,
        remote.css.as_deref(),
        wants_text(&email, options),
        true,
    )?;
    rebuild(email, processed, options)
}

/// `email` with the processed HTML, the inline parts it does not attach already, and the
/// generated text when it has none and [`HtmlOptions::text_alternative`] is on. The
/// message is not rebuilt: only the new values are checked, and the attachments' bytes are
/// shared with `email`, not copied.
fn rebuild(
    email: Cow<'_, Email>,
    processed: ProcessedHtml,
    options: &HtmlOptions,
) -> Result<Email> {
    let mut email = email.into_owned();
    let parts: Vec<Attachment> = processed
        .inline_parts
        .into_iter()
        .filter(|part| {
            !email
                .attachments()
                .iter()
                .any(|a| a.content_id() == part.content_id())
        })
        .collect();
    let text = wants_text(&email, options).then_some(processed.text);
    email.set_processed_html(processed.html, parts, text)?;
    Ok(email)
}

/// Runs the pipeline over an HTML body.
///
/// A body whose elements nest deeper than [`MAX_DEPTH`] is refused with
/// [`Error::InvalidMessage`](crate::Error::InvalidMessage) (field `html`) before any step sees it.
pub fn process_html(html: &str, options: &HtmlOptions) -> Result<ProcessedHtml> {
    pipeline::run(html, options, &HashMap::new(), None, true, false)
}
