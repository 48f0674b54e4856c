//! The computed policy: the Content-Security-Policy an HTML body needs and nothing more,
//! read from one scan of the body, the check that every image it keeps is one the policy
//! can allow, and putting the policy into the document as a `<meta http-equiv>`.

use std::collections::BTreeSet;

use super::scan::{self, Scan};
use crate::csp::{self, HashAlgorithm, Policy};
use crate::error::{Error, Result};
use crate::message::Email;

/// The policy under which this message's HTML body renders with nothing blocked that it
/// needs (see [`policy_for`]); `default-src 'none'` alone when it has no HTML body.
///
/// For the body a message is sent with, call it on the result of [`process`](super::process).
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
    from_scan(&scan::scan(html))
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

/// An error naming the first image the body keeps that its policy cannot allow (see
/// [`uncovered_image`]).
pub(crate) fn check_images_allowed(found: &Scan, has_base_dir: bool) -> Result<()> {
    for url in &found.image_urls {
        uncovered_image(url, has_base_dir)?;
    }
    Ok(())
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

/// The policy computed from one scan of a body.
pub(crate) fn from_scan(found: &Scan) -> Policy {
    let img: BTreeSet<String> = found
        .image_urls
        .iter()
        .filter_map(|u| image_source(u))
        .collect();
    // each distinct text hashed once (inlined CSS repeats the same attribute many times)
    let hashes = |texts: &[String]| -> BTreeSet<String> {
        let distinct: BTreeSet<&str> = texts.iter().map(String::as_str).collect();
        distinct
            .into_iter()
            .map(|s| csp::hash_source(HashAlgorithm::Sha256, s))
            .collect()
    };
    let elements = hashes(&found.style_elements);
    let attributes = hashes(&found.style_attributes);
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

/// `body` with `policy` as a `<meta http-equiv>` first in the document's head, making a
/// document around a fragment.
pub(crate) fn embed(body: &str, found: &Scan, policy: &Policy) -> Result<String> {
    let meta = policy.meta_tag(None);
    use lol_html::html_content::ContentType;
    use lol_html::{RewriteStrSettings, element, rewrite_str};
    let (selector, content) = match (found.has_head, found.has_html) {
        (true, _) => ("head", meta.clone()),
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
