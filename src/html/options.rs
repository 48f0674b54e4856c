//! Which steps of the pipeline run: [`HtmlOptions`].

use std::path::PathBuf;

#[cfg(feature = "html-fetch")]
use super::FetchLimits;

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
    /// Fetches remote images and stylesheets within `limits` (see [`process_fetching`](super::process_fetching)).
    #[cfg(feature = "html-fetch")]
    pub fn fetch_remote(mut self, limits: FetchLimits) -> Self {
        self.fetch_remote = Some(limits);
        self
    }
}
