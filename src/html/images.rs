//! The rewriting pass (lol_html): `<img>` sources from `data:` URIs, local files and fetched
//! remote images become `cid:` references to inline parts, and `<style>` texts are cleaned.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, element, rewrite_str, text};
use sha2::{Digest, Sha256};

use super::css::clean_stylesheet;
use crate::error::{Error, Result};
use crate::message::Attachment;

/// A remote resource fetched before the pass.
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub(crate) content_type: String,
    pub(crate) bytes: Vec<u8>,
}

pub(crate) struct Rewrite<'a> {
    pub(crate) embed_images: bool,
    pub(crate) clean_styles: bool,
    pub(crate) base_dir: Option<&'a Path>,
    pub(crate) fetched: &'a HashMap<String, Fetched>,
}

impl Rewrite<'_> {
    /// Rewrites `html`; returns it with the inline parts its `cid:` references need.
    ///
    /// A body in which no handler could change anything is returned as it is, unparsed
    /// (lol_html writes untouched markup back byte for byte): see [`Rewrite::could_change`].
    pub(crate) fn run(&self, html: String) -> Result<(String, Vec<Attachment>)> {
        if !self.could_change(&html) {
            return Ok((html, Vec::new()));
        }
        let parts: RefCell<Vec<Attachment>> = RefCell::new(Vec::new());
        let failure: RefCell<Option<Error>> = RefCell::new(None);
        let style_text = RefCell::new(String::new());
        let mut handlers = Vec::new();
        if self.embed_images {
            handlers.push(element!("img[src]", |el| {
                let Some(src) = el.get_attribute("src") else {
                    return Ok(());
                };
                match self.embed(&decode_basic_entities(&src)) {
                    Ok(Some(part)) => {
                        let cid = part.content_id().unwrap_or_default().to_owned();
                        let mut list = parts.borrow_mut();
                        if !list.iter().any(|p| p.content_id() == Some(&cid)) {
                            list.push(part);
                        }
                        el.set_attribute("src", &format!("cid:{cid}"))?;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        failure.borrow_mut().get_or_insert(e);
                    }
                }
                Ok(())
            }));
        }
        if self.clean_styles {
            handlers.push(text!("style", |chunk| {
                let mut buf = style_text.borrow_mut();
                buf.push_str(chunk.as_str());
                if chunk.last_in_text_node() {
                    chunk.replace(&clean_stylesheet(&buf), ContentType::Html);
                    buf.clear();
                } else {
                    chunk.remove();
                }
                Ok(())
            }));
        }
        let settings = RewriteStrSettings {
            element_content_handlers: handlers,
            ..RewriteStrSettings::new()
        };
        let out = rewrite_str(&html, settings)
            .map_err(|e| Error::invalid("html", format!("cannot be rewritten: {e}")))?;
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        Ok((out, parts.into_inner()))
    }

    /// Whether a handler of the pass could change `html`, judged from its text alone (a
    /// `false` is certain, a `true` is a maybe):
    /// - images: [`Rewrite::embed`] only ever embeds a `data:` URI (and the source it reads
    ///   is the attribute's raw text with `&amp;`-style entities decoded, which cannot make
    ///   the letters `data:` appear), a fetched remote image, or a local file under the
    ///   base directory;
    /// - styles: the text handler only fires inside a `<style>` element, and lol_html only
    ///   opens one at a literal `<style` start tag.
    pub(crate) fn could_change(&self, html: &str) -> bool {
        let images = self.embed_images
            && (!self.fetched.is_empty()
                || self.base_dir.is_some()
                || contains_ignore_ascii_case(html, "data:"));
        let styles = self.clean_styles && contains_ignore_ascii_case(html, "<style");
        images || styles
    }

    /// The inline part for an image source, or `None` to leave the source as it is.
    fn embed(&self, src: &str) -> Result<Option<Attachment>> {
        let src = src.trim();
        let lower = src.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("data:") {
            return Ok(data_uri(src, rest));
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(self
                .fetched
                .get(src)
                .map(|f| part(&f.content_type, remote_name(src), f.bytes.clone())));
        }
        if lower.starts_with("//") || src.is_empty() || has_scheme(src) {
            return Ok(None);
        }
        let Some(base) = self.base_dir else {
            return Ok(None);
        };
        let Some(path) = local_path(base, src) else {
            return Ok(None);
        };
        let Some(content_type) = mime_guess::from_path(&path)
            .first()
            .map(|m| m.essence_str().to_owned())
        else {
            return Ok(None);
        };
        if !content_type.starts_with("image/") {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("image")
            .to_owned();
        Ok(Some(part(&content_type, name, bytes)))
    }
}

/// Whether `needle` (ASCII) occurs in `haystack`, ignoring ASCII case. The haystack is
/// lowered a stack-sized chunk at a time (chunks overlapping by the needle's length less
/// one, so no occurrence is split) and searched with one `memmem` finder: linear, with no
/// per-occurrence cost for a needle's first byte (`<` of `<style` is on every tag).
pub(crate) fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    const CHUNK: usize = 4096;
    let (bytes, needle) = (haystack.as_bytes(), needle.to_ascii_lowercase());
    if needle.is_empty() {
        return true;
    }
    if needle.len() > CHUNK {
        return bytes
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()));
    }
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    let mut lowered = [0u8; CHUNK];
    let mut start = 0;
    while let Some(chunk) = bytes.get(start..bytes.len().min(start + CHUNK)) {
        let Some(out) = lowered.get_mut(..chunk.len()) else {
            return false;
        };
        out.copy_from_slice(chunk);
        out.make_ascii_lowercase();
        if finder.find(out).is_some() {
            return true;
        }
        if start + chunk.len() >= bytes.len() {
            return false;
        }
        // the next chunk starts where an occurrence cut by this one's end would start
        start += chunk.len() + 1 - needle.len();
    }
    false
}

fn has_scheme(src: &str) -> bool {
    src.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// A relative reference resolved under `base`; `None` when it would leave `base`.
fn local_path(base: &Path, src: &str) -> Option<PathBuf> {
    let src = src.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(src);
    let relative = Path::new(&decoded);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let base = base.canonicalize().ok()?;
    let path = base.join(relative);
    match path.canonicalize() {
        Ok(real) if real.starts_with(&base) => Some(real),
        Ok(_) => None,
        // a missing file: report it when it is read
        Err(_) => Some(path),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `data:image/png;base64,....` → an inline part (only base64 image data is embedded).
fn data_uri(src: &str, lower_rest: &str) -> Option<Attachment> {
    let (meta, _) = lower_rest.split_once(',')?;
    let payload = &src[5 + meta.len() + 1..];
    let mut fields = meta.split(';');
    let content_type = fields.next().unwrap_or_default().trim().to_owned();
    if !content_type.starts_with("image/") || !fields.any(|f| f.trim() == "base64") {
        return None;
    }
    let cleaned: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = STANDARD
        .decode(cleaned.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(&cleaned))
        .ok()?;
    let ext = mime_guess::get_mime_extensions_str(&content_type)
        .and_then(|e| e.first())
        .copied()
        .unwrap_or("bin");
    Some(part(&content_type, format!("image.{ext}"), bytes))
}

fn remote_name(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty() && n.contains('.'))
        .map_or_else(|| "image".to_owned(), percent_decode)
}

/// An inline part whose Content-ID is derived from its bytes, so the same image is sent once
/// and deterministic rendering stays deterministic.
fn part(content_type: &str, filename: String, bytes: Vec<u8>) -> Attachment {
    let digest = Sha256::digest(&bytes);
    let cid: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Attachment::inline(format!("{cid}@mailroom"), filename, bytes).with_content_type(content_type)
}

/// `&amp;`, `&quot;`, `&#39;`, `&lt;`, `&gt;`: lol_html hands attribute values over raw.
fn decode_basic_entities(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::contains_ignore_ascii_case as has;

    #[test]
    fn finds_a_needle_in_any_case() {
        assert!(has("<p><STYLE>", "<style"));
        assert!(has("x <StYlE", "<style"));
        assert!(has("src=\"DATA:image/png", "data:"));
        assert!(has("src=\"dAtA:", "data:"));
        assert!(!has("<sty le", "<style"));
        assert!(!has("data", "data:"));
        assert!(!has("d", "data:"));
        assert!(!has("ünïcödé <stylé", "<style"));
        assert!(has("ünïcödé <style", "<style"));
        assert!(has("", ""));
    }

    #[test]
    fn finds_a_needle_across_the_chunks_it_is_lowered_in() {
        for len in [4095, 4096, 4097, 8191, 8192, 8193, 12_000] {
            for at in (0..len).filter(|i| i % 4096 > 4085 || i % 4096 < 6 || *i + 7 > len) {
                let mut text = "x".repeat(len);
                if at + 6 <= len {
                    text.replace_range(at..at + 6, "<StYlE");
                    assert!(has(&text, "<style"), "len {len}, at {at}");
                    assert!(!has(&text, "<styles"), "len {len}, at {at}");
                }
                if at + 5 <= len {
                    let mut cut = "x".repeat(len);
                    cut.replace_range(at..at + 5, "<STYL");
                    assert!(!has(&cut, "<style"), "len {len}, at {at}");
                }
            }
        }
    }
}
