//! Content-Security-Policy: a policy builder, nonces and hash sources, after Django 6.0's
//! `django.utils.csp`.
//!
//! A [`Policy`] maps directives to sources. Sources given as a list keep their order,
//! sources given as a set come out sorted and without duplicates, a directive may be bare
//! (`upgrade-insecure-requests`), and a directive left without sources drops out. The
//! [`NONCE`] placeholder stands for the request's nonce and becomes `'nonce-…'` when the
//! policy is written with one (and disappears when it is written without).
//!
//! With the `web` feature, [`CspLayer`] puts policies on the responses of any tower service
//! (axum, hyper), with a fresh nonce per response ([`CspNonce`]), per-route override and
//! exemption, and [`report_route`] receives violation reports.
//!
//! ```
//! use mailroom::csp::{self, HashAlgorithm, Nonce, Policy};
//!
//! let nonce = Nonce::from_string("bm9uY2Utb2YtMTZieXRlcw")?;
//! let policy = Policy::new()
//!     .list("default-src", [csp::NONE])
//!     .set("img-src", ["data:", "cid:"])
//!     .list("style-src", [csp::NONCE.to_owned(), csp::hash_source(HashAlgorithm::Sha256, "p{color:red}")])
//!     .bare("upgrade-insecure-requests")
//!     .list("script-src", Vec::<String>::new());
//! assert_eq!(
//!     policy.header_value(Some(&nonce)),
//!     "default-src 'none'; img-src cid: data:; \
//!      style-src 'nonce-bm9uY2Utb2YtMTZieXRlcw' 'sha256-p0bF+un5yUb9MBO6xRb8kPHlY2BdpHVtLiFkDrZPF64='; \
//!      upgrade-insecure-requests"
//! );
//! assert_eq!(csp::HEADER, "Content-Security-Policy");
//! # Ok::<(), mailroom::Error>(())
//! ```

#[cfg(feature = "web")]
mod layer;
#[cfg(feature = "web")]
mod report;

#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub use layer::{Csp, CspFuture, CspLayer, CspNonce, MissingCspNonce};
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub use report::{
    REPORT_BODY_LIMIT, ReportError, ViolationReport, log_report, parse_reports, read_reports,
    report_route, report_route_with_limit,
};

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::error::{Error, Result};

/// The header that enforces a policy.
pub const HEADER: &str = "Content-Security-Policy";
/// The header that only reports violations of a policy.
pub const HEADER_REPORT_ONLY: &str = "Content-Security-Policy-Report-Only";

/// `'self'`: the document's own origin.
pub const SELF: &str = "'self'";
/// `'none'`: nothing at all.
pub const NONE: &str = "'none'";
/// `'unsafe-inline'`: any inline script or style.
pub const UNSAFE_INLINE: &str = "'unsafe-inline'";
/// `'unsafe-hashes'`: lets hash sources match event handlers and `style` attributes.
pub const UNSAFE_HASHES: &str = "'unsafe-hashes'";
/// `'strict-dynamic'`: trust scripts loaded by already-trusted scripts.
pub const STRICT_DYNAMIC: &str = "'strict-dynamic'";
/// `'report-sample'`: include the start of the offending code in violation reports.
pub const REPORT_SAMPLE: &str = "'report-sample'";
/// `'unsafe-eval'`: `eval()` and friends.
pub const UNSAFE_EVAL: &str = "'unsafe-eval'";
/// `'wasm-unsafe-eval'`: WebAssembly compilation.
pub const WASM_UNSAFE_EVAL: &str = "'wasm-unsafe-eval'";
/// Placeholder for the nonce: replaced by `'nonce-…'` when the policy is written with a
/// nonce, dropped when it is written without one (as Django's `CSP.NONCE`).
pub const NONCE: &str = "<CSP_NONCE_SENTINEL>";

/// Directives a `<meta http-equiv>` policy cannot carry; browsers ignore them there.
const NOT_IN_META: [&str; 4] = ["report-uri", "report-to", "frame-ancestors", "sandbox"];

/// The sources of one directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    /// Written in the order given.
    List(Vec<String>),
    /// Written sorted, without duplicates.
    Set(BTreeSet<String>),
    /// A directive without sources, such as `upgrade-insecure-requests`.
    Bare,
}

impl Sources {
    fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Sources::List(list) => Box::new(list.iter().map(String::as_str)),
            Sources::Set(set) => Box::new(set.iter().map(String::as_str)),
            Sources::Bare => Box::new(std::iter::empty()),
        }
    }
}

/// A Content-Security-Policy: directives in the order they were first set.
///
/// Setting a directive again replaces its sources in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Policy {
    directives: Vec<(String, Sources)>,
}

impl Policy {
    /// An empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `directive` to these sources, written in this order.
    pub fn list<S: Into<String>>(
        self,
        directive: &str,
        sources: impl IntoIterator<Item = S>,
    ) -> Self {
        self.with(
            directive,
            Sources::List(sources.into_iter().map(Into::into).collect()),
        )
    }

    /// Sets `directive` to this set of sources, written sorted without duplicates.
    pub fn set<S: Into<String>>(
        self,
        directive: &str,
        sources: impl IntoIterator<Item = S>,
    ) -> Self {
        self.with(
            directive,
            Sources::Set(sources.into_iter().map(Into::into).collect()),
        )
    }

    /// Sets a directive that takes no sources, such as `upgrade-insecure-requests`.
    pub fn bare(self, directive: &str) -> Self {
        self.with(directive, Sources::Bare)
    }

    /// Sets `directive` to `sources`.
    pub fn with(mut self, directive: &str, sources: Sources) -> Self {
        let name = directive.trim().to_ascii_lowercase();
        match self.directives.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => *existing = sources,
            None => self.directives.push((name, sources)),
        }
        self
    }

    /// Adds one source to `directive` (a list is created when the directive is new or bare).
    pub fn add_source(mut self, directive: &str, source: impl Into<String>) -> Self {
        let name = directive.trim().to_ascii_lowercase();
        let source = source.into();
        match self.directives.iter_mut().find(|(n, _)| *n == name) {
            Some((_, Sources::List(list))) => list.push(source),
            Some((_, Sources::Set(set))) => {
                set.insert(source);
            }
            Some((_, bare)) => *bare = Sources::List(vec![source]),
            None => self.directives.push((name, Sources::List(vec![source]))),
        }
        self
    }

    /// The sources of `directive`, if it is set.
    pub fn get(&self, directive: &str) -> Option<&Sources> {
        let name = directive.trim().to_ascii_lowercase();
        self.directives
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// The directives in order, each with its written sources (the nonce placeholder left
    /// out). Directives that would be empty are skipped.
    pub fn directives(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.directives.iter().filter_map(|(name, sources)| {
            let list: Vec<&str> = sources
                .iter()
                .filter(|s| *s != NONCE && !s.is_empty())
                .collect();
            (matches!(sources, Sources::Bare) || !list.is_empty()).then_some((name.as_str(), list))
        })
    }

    /// The header value; [`NONCE`] becomes `'nonce-…'` when `nonce` is given and drops out
    /// otherwise. Empty directives drop out.
    pub fn header_value(&self, nonce: Option<&Nonce>) -> String {
        self.write(nonce, false)
    }

    /// The `(name, value)` header pair, enforcing or report-only.
    pub fn header(&self, nonce: Option<&Nonce>, report_only: bool) -> (&'static str, String) {
        (
            if report_only {
                HEADER_REPORT_ONLY
            } else {
                HEADER
            },
            self.header_value(nonce),
        )
    }

    /// The `<meta http-equiv="Content-Security-Policy" content="…">` form, attribute-escaped.
    /// `report-uri`, `report-to`, `frame-ancestors` and `sandbox` are left out: browsers
    /// ignore them in a meta element.
    pub fn meta_tag(&self, nonce: Option<&Nonce>) -> String {
        format!(
            r#"<meta http-equiv="{HEADER}" content="{}">"#,
            escape_attribute(&self.write(nonce, true))
        )
    }

    fn write(&self, nonce: Option<&Nonce>, meta: bool) -> String {
        let nonce_source = nonce.map(Nonce::source);
        let mut out = String::new();
        for (name, sources) in &self.directives {
            if meta && NOT_IN_META.contains(&name.as_str()) {
                continue;
            }
            let written: Vec<&str> = sources
                .iter()
                .filter_map(|s| match (s, &nonce_source) {
                    (NONCE, Some(n)) => Some(n.as_str()),
                    (NONCE, None) => None,
                    ("", _) => None,
                    (s, _) => Some(s),
                })
                .collect();
            if written.is_empty() && !matches!(sources, Sources::Bare) {
                continue;
            }
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            for s in written {
                out.push(' ');
                out.push_str(s);
            }
        }
        out
    }
}

impl fmt::Display for Policy {
    /// The header value without a nonce.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header_value(None))
    }
}

/// A per-response nonce: at least 128 random bits, URL-safe base64 without padding.
#[derive(Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonce(..)")
    }
}

impl Nonce {
    /// A fresh nonce from 128 bits of the operating system's randomness.
    pub fn generate() -> Nonce {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Nonce(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps an existing nonce; it must be URL-safe base64 of at least 16 bytes.
    pub fn from_string(value: impl Into<String>) -> Result<Nonce> {
        let value = value.into();
        match URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')) {
            Ok(bytes) if bytes.len() >= 16 => Ok(Nonce(value)),
            Ok(_) => Err(Error::configuration(
                "nonce",
                "needs at least 128 bits (16 bytes before base64)",
            )),
            Err(_) => Err(Error::configuration(
                "nonce",
                "must be URL-safe base64 (A-Z a-z 0-9 - _)",
            )),
        }
    }

    /// The nonce itself, for the `nonce="…"` attribute.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The source expression: `'nonce-…'`.
    pub fn source(&self) -> String {
        format!("'nonce-{}'", self.0)
    }
}

/// The digest of a hash source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// `'sha256-…'`
    #[default]
    Sha256,
    /// `'sha384-…'`
    Sha384,
    /// `'sha512-…'`
    Sha512,
}

/// The hash source (`'sha256-…'`) for an inline `<style>`/`<script>` text or a `style`
/// attribute value, as a browser computes it: over the UTF-8 of the text after HTML parsing.
///
/// Give the parsed text: character references decoded (they are in attribute values, not
/// inside `<style>`/`<script>`). Line ends are normalised here (CRLF and CR become LF), as the
/// HTML parser does. The `html` module's policy computation reads markup with a real HTML
/// tokenizer and hashes what it yields.
///
/// ```
/// use mailroom::csp::{hash_source, HashAlgorithm};
/// assert_eq!(
///     hash_source(HashAlgorithm::Sha256, "alert('Hello, world.');"),
///     "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
/// );
/// ```
pub fn hash_source(algorithm: HashAlgorithm, text: &str) -> String {
    let text = normalize_newlines(text);
    let (name, digest) = match algorithm {
        HashAlgorithm::Sha256 => ("sha256", Sha256::digest(text.as_bytes()).to_vec()),
        HashAlgorithm::Sha384 => ("sha384", Sha384::digest(text.as_bytes()).to_vec()),
        HashAlgorithm::Sha512 => ("sha512", Sha512::digest(text.as_bytes()).to_vec()),
    };
    format!("'{name}-{}'", STANDARD.encode(digest))
}

/// CRLF and lone CR become LF, as the HTML parser's input preprocessing does.
pub(crate) fn normalize_newlines(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nonce_has_128_bits_and_is_url_safe() {
        let a = Nonce::generate();
        let b = Nonce::generate();
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(a.as_str()).unwrap().len(), 16);
        assert!(
            a.as_str()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(Nonce::from_string("c2hvcnQ").is_err());
        assert!(Nonce::from_string("not base64 at all!!!!!!!").is_err());
    }
}
