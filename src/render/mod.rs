//! Rendering: [`Email`] → RFC 5322 / MIME bytes, over `mail-builder`.
//!
//! The structure is chosen from the content (text, alternative, related, mixed); headers use RFC 2047
//! encoded words and RFC 2231 parameters, folded at 78 columns, unless
//! [`RenderOptions::smtputf8`] asks for RFC 6532 UTF-8 headers; bodies take 7bit,
//! quoted-printable or base64, whichever is shortest; every line ends in CRLF.
//!
//! [`RenderOptions::deterministic`] fixes Date, Message-ID and every boundary from a seed
//! and the content, for snapshot tests:
//!
//! ```
//! use mailroom::{Email, RenderOptions};
//!
//! let email = Email::builder().from("a@example.com").to("b@example.com").subject("hi").text("hello").build()?;
//! let one = email.render(&RenderOptions::deterministic())?;
//! let two = email.render(&RenderOptions::deterministic())?;
//! assert_eq!(one, two);
//! // with insta: insta::assert_snapshot!(String::from_utf8_lossy(&one));
//! # Ok::<(), mailroom::Error>(())
//! ```

mod deterministic;
mod headers;
mod rendered;
mod structure;
mod words;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use mail_builder::MessageBuilder;

use crate::error::Result;
use crate::message::Email;

pub(crate) use deterministic::Ids;
pub use rendered::Rendered;

/// A hook that signs a rendered message (DKIM): it receives the finished bytes and returns
/// the header lines (CRLF-terminated) to put in front of them.
pub trait Signer: Send + Sync + fmt::Debug {
    /// Signs `message`; `timestamp` is the signing time: now, or the message's Date under
    /// deterministic rendering.
    fn sign(&self, message: &[u8], timestamp: i64) -> Result<Vec<u8>>;
}

/// How to render a message.
///
/// With the `html` feature, an HTML body goes through the CSP-safe pipeline
/// ([`crate::html::process`]) before it is written: active content removed, CSS inlined,
/// images turned into `cid:` parts, a text alternative added. Turn it off with
/// [`RenderOptions::raw_html`], or tune it with [`RenderOptions::html`].
#[derive(Clone)]
#[must_use]
pub struct RenderOptions {
    pub(crate) smtputf8: bool,
    pub(crate) seed: Option<u64>,
    pub(crate) signers: Vec<Arc<dyn Signer>>,
    #[cfg(feature = "html")]
    pub(crate) html: Option<crate::html::HtmlOptions>,
}

// Derivable only without the `html` feature, whose pipeline is on by default.
#[cfg_attr(not(feature = "html"), allow(clippy::derivable_impls))]
impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            smtputf8: false,
            seed: None,
            signers: Vec::new(),
            #[cfg(feature = "html")]
            html: Some(crate::html::HtmlOptions::default()),
        }
    }
}

impl fmt::Debug for RenderOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderOptions")
            .field("smtputf8", &self.smtputf8)
            .field("seed", &self.seed)
            .field("signers", &self.signers.len())
            .field("html_pipeline", &self.html_pipeline())
            .finish()
    }
}

impl RenderOptions {
    /// The defaults: ASCII headers (encoded words, punycode), fresh Date and Message-ID.
    pub fn new() -> Self {
        Self::default()
    }

    /// Deterministic output with seed 0: Date, Message-ID and boundaries derived from the
    /// seed and the content, so the same input always gives the same bytes.
    pub fn deterministic() -> Self {
        Self::default().seed(0)
    }

    /// Deterministic output from this seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Writes RFC 6532 UTF-8 headers and Unicode domains (for SMTPUTF8 transports) instead
    /// of encoded words and punycode.
    pub fn smtputf8(mut self, on: bool) -> Self {
        self.smtputf8 = on;
        self
    }

    /// Adds a signer (e.g. a DKIM key); signers run in order, each over the message as the
    /// previous ones left it.
    pub fn signer(mut self, signer: Arc<dyn Signer>) -> Self {
        self.signers.push(signer);
        self
    }

    /// Runs the HTML pipeline with these options (it runs with the defaults otherwise).
    #[cfg(feature = "html")]
    pub fn html(mut self, options: crate::html::HtmlOptions) -> Self {
        self.html = Some(options);
        self
    }

    /// Writes the HTML body exactly as given: no sanitising, CSS inlining or image embedding.
    #[cfg_attr(not(feature = "html"), allow(unused_mut))]
    pub fn raw_html(mut self) -> Self {
        #[cfg(feature = "html")]
        {
            self.html = None;
        }
        self
    }

    /// `true` when HTML bodies go through the CSP-safe pipeline.
    pub fn html_pipeline(&self) -> bool {
        #[cfg(feature = "html")]
        {
            self.html.is_some()
        }
        #[cfg(not(feature = "html"))]
        {
            false
        }
    }

    /// `true` when rendering is deterministic.
    pub fn is_deterministic(&self) -> bool {
        self.seed.is_some()
    }

    /// `true` when rendering writes UTF-8 headers.
    pub fn is_smtputf8(&self) -> bool {
        self.smtputf8
    }
}

impl Email {
    /// Renders the message with default options: RFC 5322 bytes with CRLF line ends.
    ///
    /// Fails only when the message cannot be written without SMTPUTF8 (a non-ASCII local
    /// part), or a signer fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.render(&RenderOptions::default())
    }

    /// Renders the message with `options`.
    pub fn render(&self, options: &RenderOptions) -> Result<Vec<u8>> {
        self.render_full(options).map(|output| output.bytes)
    }

    /// Renders the message with `options`, keeping what a transport needs besides the
    /// bytes: the identifiers used and the message the HTML pipeline made, when it ran.
    pub(crate) fn render_full(&self, options: &RenderOptions) -> Result<Output<'_>> {
        // The pipeline runs once, then its result is written as it is (no second pass).
        #[cfg(feature = "html")]
        if let Some(html_options) = &options.html
            && crate::html::applies_to(self)
        {
            let processed = crate::html::processed(self, html_options)?;
            let Output { bytes, ids, .. } = processed.write(options)?;
            return Ok(Output {
                bytes,
                ids,
                processed: Some(processed),
            });
        }
        self.write(options)
    }

    /// Writes the message as it is, HTML body included (the pipeline, if any, has run),
    /// then signs it.
    fn write(&self, options: &RenderOptions) -> Result<Output<'static>> {
        let ids = match options.seed {
            Some(seed) => Ids::derived(self, seed, options.smtputf8)?,
            None => Ids::fresh(self, options.smtputf8)?,
        };
        let mut out = Vec::new(); // mail-builder reserves its own (upper-bound) estimate
        self.render_into(options, &ids, &mut out)?;
        for signer in &options.signers {
            let mut signed = signer.sign(&out, ids.signed_at)?;
            signed.extend_from_slice(&out);
            out = signed;
        }
        Ok(Output {
            bytes: out,
            ids,
            processed: None,
        })
    }

    fn render_into(&self, options: &RenderOptions, ids: &Ids, out: &mut Vec<u8>) -> Result<()> {
        let headers = headers::top_level(self, options.smtputf8, ids)?;
        let body = structure::body(self, options, ids)?;
        let mut builder = MessageBuilder::new();
        builder.headers = headers;
        builder.body(body).serialize(out);
        Ok(())
    }
}

/// One rendering's result: the bytes, the identifiers they carry, and the message the HTML
/// pipeline made from the one given (`None` when it did not run).
pub(crate) struct Output<'a> {
    pub(crate) bytes: Vec<u8>,
    pub(crate) ids: Ids,
    pub(crate) processed: Option<std::borrow::Cow<'a, Email>>,
}

/// The Date a message gets when it has none: now, in UTC.
pub(crate) fn now() -> DateTime<FixedOffset> {
    Utc::now().fixed_offset()
}
