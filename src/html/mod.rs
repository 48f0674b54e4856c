//! The CSP-safe HTML body pipeline (feature `html`).
//!
//! [`process`] turns a message's HTML body into one that carries only inline content and
//! renders under a strict Content-Security-Policy, and [`policy`] computes that policy:
//!
//! 0. **nesting limit**: a body whose elements nest deeper than [`MAX_DEPTH`] (512, as in
//!    browsers) is refused before any step walks its tree;
//! 1. **inline CSS** (css-inline): `<style>` rules move into `style` attributes; `@media`
//!    rules stay in a `<style>` block;
//! 2. **sanitize** (ammonia): script, iframe, object, embed, form, base, meta, link, SVG,
//!    `on*` attributes and `javascript:`/`vbscript:` URLs go; CSS `expression()`,
//!    `behavior`, `@import` and `url()` with active schemes go;
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

mod css;
#[cfg(feature = "html-fetch")]
mod fetch;
mod images;
mod nesting;
mod sanitize;
mod scan;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

#[cfg(feature = "html-fetch")]
pub use fetch::FetchLimits;
pub use nesting::MAX_DEPTH;

use crate::csp::{self, HashAlgorithm, Policy};
use crate::error::{Error, Result};
use crate::message::{Attachment, AttachmentBody, Email};
use images::{Fetched, Rewrite};

/// Which steps of the pipeline run. Every step is on by default; local files are embedded
/// only when [`base_dir`](Self::base_dir) is set.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct HtmlOptions {
    /// Remove active content (default on).
    pub sanitize: bool,
    /// Move `<style>` rules into `style` attributes, keeping `@media` rules (default on).
    pub inline_css: bool,
    /// Turn `data:` images, local files and fetched remote images into `cid:` parts (default on).
    pub embed_images: bool,
    /// The directory relative image paths are read from; `None` leaves them alone. Paths
    /// that would leave this directory are never read.
    pub base_dir: Option<PathBuf>,
    /// Generate a plain-text alternative when the message has none (default on).
    pub text_alternative: bool,
    /// Put the computed policy into the document as a `<meta http-equiv>` (default on).
    pub embed_policy: bool,
    /// Fetch remote images and stylesheets and embed them (feature `html-fetch`; default off).
    #[cfg(feature = "html-fetch")]
    pub fetch_remote: Option<FetchLimits>,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            sanitize: true,
            inline_css: true,
            embed_images: true,
            base_dir: None,
            text_alternative: true,
            embed_policy: true,
            #[cfg(feature = "html-fetch")]
            fetch_remote: None,
        }
    }
}

impl HtmlOptions {
    /// Every step on (the default).
    pub fn new() -> Self {
        Self::default()
    }
    /// Turns sanitizing on or off.
    pub fn sanitize(mut self, on: bool) -> Self {
        self.sanitize = on;
        self
    }
    /// Turns CSS inlining on or off.
    pub fn inline_css(mut self, on: bool) -> Self {
        self.inline_css = on;
        self
    }
    /// Turns image embedding on or off.
    pub fn embed_images(mut self, on: bool) -> Self {
        self.embed_images = on;
        self
    }
    /// Reads relative image paths from this directory.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }
    /// Turns the generated text alternative on or off.
    pub fn text_alternative(mut self, on: bool) -> Self {
        self.text_alternative = on;
        self
    }
    /// Turns the `<meta http-equiv>` policy in the document on or off.
    pub fn embed_policy(mut self, on: bool) -> Self {
        self.embed_policy = on;
        self
    }
    /// Fetches remote images and stylesheets within `limits` (see [`process_fetching`]).
    #[cfg(feature = "html-fetch")]
    pub fn fetch_remote(mut self, limits: FetchLimits) -> Self {
        self.fetch_remote = Some(limits);
        self
    }
}

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

/// Runs the pipeline over a message: a new message with the processed HTML, the inline
/// parts it references, and a generated text part when it had none. A message without an
/// HTML body comes back unchanged. Remote resources are not fetched (see
/// [`process_fetching`]).
///
/// Attached messages (`message/rfc822`) go through the same pipeline with the same options,
/// each as a document of its own: an HTML body forwarded inside another message is no less
/// hostile than one sent directly.
pub fn process(email: &Email, options: &HtmlOptions) -> Result<Email> {
    let email = with_nested_processed(email, options)?;
    let Some(html) = email.html() else {
        return Ok(email.into_owned());
    };
    let processed = process_html(html, options)?;
    rebuild(&email, processed, options)
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
    let remote = |u: &String| {
        let l = u.to_ascii_lowercase();
        l.starts_with("https://") || l.starts_with("http://")
    };
    let found = scan::scan(html);
    let images: Vec<String> = found.image_urls.into_iter().filter(remote).collect();
    let sheets: Vec<String> = found.stylesheets.into_iter().filter(remote).collect();
    let fetched_images = fetch::fetch_all(&images, limits, |t| t.starts_with("image/")).await?;
    let fetched_css = fetch::fetch_all(&sheets, limits, |t| t == "text/css").await?;
    let css: String = sheets
        .iter()
        .filter_map(|u| fetched_css.get(u))
        .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let processed = run(
        html,
        options,
        &fetched_images,
        (!css.is_empty()).then_some(css.as_str()),
    )?;
    rebuild(&email, processed, options)
}

fn rebuild(email: &Email, processed: ProcessedHtml, options: &HtmlOptions) -> Result<Email> {
    let mut builder = email.to_builder().html(processed.html);
    for part in processed.inline_parts {
        if !email
            .attachments()
            .iter()
            .any(|a| a.content_id() == part.content_id())
        {
            builder = builder.attachment(part);
        }
    }
    if email.text().is_none() && options.text_alternative {
        builder = builder.text(processed.text);
    }
    builder.build()
}

/// Runs the pipeline over an HTML body.
///
/// A body whose elements nest deeper than [`MAX_DEPTH`] is refused with
/// [`Error::InvalidMessage`] (field `html`) before any step sees it.
pub fn process_html(html: &str, options: &HtmlOptions) -> Result<ProcessedHtml> {
    nesting::check(html)?;
    run(html, options, &HashMap::new(), None)
}

/// The steps, in order, over a body that passed [`nesting::check`].
fn run(
    html: &str,
    options: &HtmlOptions,
    fetched: &HashMap<String, Fetched>,
    extra_css: Option<&str>,
) -> Result<ProcessedHtml> {
    let mut body = html.to_owned();
    if options.inline_css && (extra_css.is_some() || body.to_ascii_lowercase().contains("<style")) {
        let inliner = css_inline::CSSInliner::options()
            .keep_at_rules(true)
            .keep_style_tags(false)
            .keep_link_tags(false)
            .load_remote_stylesheets(false)
            .extra_css(extra_css.map(|c| std::borrow::Cow::Owned(c.to_owned())))
            .build();
        // css-inline gives up on CSS it cannot parse (say, a style attribute holding
        // markup); browsers skip such declarations, so the body keeps its `<style>`
        // sheets un-inlined instead of failing: the sanitiser and the style cleaning
        // below treat them like any other, and the policy hashes what remains.
        match inliner.inline(&body) {
            Ok(inlined) => body = inlined,
            Err(e) => {
                tracing::warn!(error = %e, "the HTML body's CSS cannot be inlined; keeping its style sheets as they are");
            }
        }
    }
    if options.sanitize {
        body = sanitize::sanitize(&body);
    }
    let rewrite = Rewrite {
        embed_images: options.embed_images,
        clean_styles: options.sanitize,
        base_dir: options.base_dir.as_deref(),
        fetched,
    };
    let (mut body, inline_parts) = rewrite.run(&body)?;
    let found = scan::scan(&body);
    for url in &found.image_urls {
        uncovered_image(url, options.base_dir.is_some())?;
    }
    let policy = policy_from_scan(&found);
    if options.embed_policy {
        body = with_meta(&body, &found, &policy.meta_tag(None))?;
    }
    Ok(ProcessedHtml {
        html: body,
        inline_parts,
        text: found.text,
        policy,
    })
}

/// Puts `meta` first in the document's head, making a document around a fragment.
fn with_meta(body: &str, found: &scan::Scan, meta: &str) -> Result<String> {
    use lol_html::html_content::ContentType;
    use lol_html::{RewriteStrSettings, element, rewrite_str};
    let (selector, content) = match (found.has_head, found.has_html) {
        (true, _) => ("head", meta.to_owned()),
        (false, true) => ("html", format!("<head>{meta}</head>")),
        (false, false) => {
            return Ok(format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{meta}</head><body>{}</body></html>\n",
                body.trim()
            ));
        }
    };
    let done = std::cell::Cell::new(false);
    let settings = RewriteStrSettings {
        element_content_handlers: vec![element!(selector, |el| {
            if !done.replace(true) {
                el.prepend(&content, ContentType::Html);
            }
            Ok(())
        })],
        ..RewriteStrSettings::new()
    };
    rewrite_str(body, settings)
        .map_err(|e| Error::invalid("html", format!("cannot be rewritten: {e}")))
}

/// The policy under which this message's HTML body renders with nothing blocked that it
/// needs (see [`policy_for`]); `default-src 'none'` alone when it has no HTML body.
///
/// For the body a message is sent with, call it on the result of [`process`].
pub fn policy(email: &Email) -> Policy {
    policy_for(email.html().unwrap_or_default())
}

/// The policy an HTML body needs and nothing more: `default-src 'none'`; `img-src` with
/// `cid:`, `data:` and the origins of remote images, as used; `style-src` with the hash of
/// each `<style>` element; `style-src-attr 'unsafe-hashes'` with the hash of each `style`
/// attribute (browsers only match attribute hashes under `'unsafe-hashes'`).
///
/// The markup is read with html5ever's tokenizer, so the hashes are over exactly the text a
/// browser hashes (character references decoded in attributes, line ends normalised).
pub fn policy_for(html: &str) -> Policy {
    policy_from_scan(&scan::scan(html))
}

/// The `img-src` source that allows loading `url`, if any can: `cid:`, `data:`, or the
/// origin of an `http(s):` URL.
fn image_source(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("cid:") {
        Some("cid:".to_owned())
    } else if lower.starts_with("data:") {
        Some("data:".to_owned())
    } else if let Ok(parsed) = url::Url::parse(url)
        && matches!(parsed.scheme(), "http" | "https")
        && parsed.host_str().is_some()
    {
        Some(parsed.origin().ascii_serialization())
    } else {
        None
    }
}

/// An error naming the image when the body would keep a URL its policy cannot allow (a
/// relative path left unembedded, `file:`, a protocol-relative `//host/...`): the body and
/// its policy would disagree, and the recipient would see a broken image.
fn uncovered_image(url: &str, has_base_dir: bool) -> Result<()> {
    // an empty source or a reference inside the document loads nothing
    if url.is_empty() || url.starts_with('#') || image_source(url).is_some() {
        return Ok(());
    }
    let hint = if url.starts_with("//") || url.contains(':') {
        "give it as https:, cid: or data:image/ instead"
    } else if has_base_dir {
        "only image files inside the base directory are embedded: move it there, or give an https: URL"
    } else {
        "set a base directory to embed local images from (`HtmlOptions::base_dir`; `mailroom` \
         uses the message file's directory), or give an https: URL"
    };
    Err(Error::invalid(
        "html",
        format!(
            "the image `{url}` is neither embedded nor remote, so no policy can allow it: {hint}"
        ),
    ))
}

fn policy_from_scan(found: &scan::Scan) -> Policy {
    let img: BTreeSet<String> = found
        .image_urls
        .iter()
        .filter_map(|u| image_source(u))
        .collect();
    let hash = |s: &String| csp::hash_source(HashAlgorithm::Sha256, s);
    let elements: BTreeSet<String> = found.style_elements.iter().map(hash).collect();
    let attributes: BTreeSet<String> = found.style_attributes.iter().map(hash).collect();
    let mut attr_sources = Vec::new();
    if !attributes.is_empty() {
        attr_sources.push(csp::UNSAFE_HASHES.to_owned());
        attr_sources.extend(attributes);
    }
    Policy::new()
        .list("default-src", [csp::NONE])
        .set("img-src", img)
        .set("style-src", elements)
        .list("style-src-attr", attr_sources)
}
