//! One pass of html5ever's tokenizer over a body: what a browser would see, with character
//! references decoded and line ends normalised exactly as the HTML parser does. It yields
//! the `<style>` texts, the `style` attribute values and the URLs the body loads (for the
//! policy) and a plain-text rendering (for the text alternative).

use std::cell::RefCell;
use std::collections::HashMap;

use html5ever::Attribute;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// What a body contains, as a browser parses it.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The text of each `<style>` element.
    pub(crate) style_elements: Vec<String>,
    /// The value of each `style` attribute.
    pub(crate) style_attributes: Vec<String>,
    /// Every image URL: `<img src>`, `srcset`, `background`, and `url()` in CSS.
    pub(crate) image_urls: Vec<String>,
    /// `<link rel=stylesheet href>` targets.
    pub(crate) stylesheets: Vec<String>,
    /// Whether the markup has a `<head>` / `<html>` start tag.
    pub(crate) has_head: bool,
    pub(crate) has_html: bool,
    /// The visible text, laid out as plain text.
    pub(crate) text: String,
}

#[derive(Default)]
struct State {
    scan: Scan,
    /// The raw-text element we are in (style, script, title, ...), if any.
    raw: Option<String>,
    raw_text: String,
    links: Vec<Option<String>>,
    link_text_start: Vec<usize>,
    pre: usize,
    /// Leave [`Scan::text`] empty (nobody reads it).
    skip_text: bool,
    /// The image URLs of each distinct `style` attribute value read so far (inlined CSS
    /// repeats the same value on many elements).
    style_urls: HashMap<String, Vec<String>>,
}

struct Sink(RefCell<State>);

const BLOCK: [&str; 24] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "main",
    "nav",
    "p",
    "section",
    "table",
];
const LINE: [&str; 6] = ["tr", "ul", "ol", "pre", "caption", "tbody"];

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut st = self.0.borrow_mut();
        match token {
            Token::TagToken(tag) => {
                let name: &str = &tag.name;
                if let Some(raw) = st.raw.clone() {
                    // only the matching end tag leaves raw text
                    if tag.kind == TagKind::EndTag && raw == name {
                        let text = std::mem::take(&mut st.raw_text);
                        if raw == "style" {
                            style_element(&mut st.scan, text);
                        }
                        st.raw = None;
                    }
                    return TokenSinkResult::Continue;
                }
                if tag.kind == TagKind::StartTag {
                    start_tag(&mut st, name, &tag.attrs);
                    if tag.self_closing {
                        return TokenSinkResult::Continue;
                    }
                    let kind = match name {
                        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                            Some(RawKind::Rawtext)
                        }
                        "script" => Some(RawKind::ScriptData),
                        "title" | "textarea" => Some(RawKind::Rcdata),
                        "plaintext" => return TokenSinkResult::Plaintext,
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        st.raw = Some(name.to_owned());
                        return TokenSinkResult::RawData(kind);
                    }
                } else {
                    end_tag(&mut st, name);
                }
            }
            Token::CharacterTokens(text) => {
                if st.raw.is_some() {
                    st.raw_text.push_str(&text);
                } else {
                    text_outside_raw(&mut st, &text);
                }
            }
            Token::EOFToken if st.raw.as_deref() == Some("style") => {
                let text = std::mem::take(&mut st.raw_text);
                style_element(&mut st.scan, text);
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// A start tag outside raw text.
fn start_tag(st: &mut State, name: &str, attrs: &[Attribute]) {
    st.scan.has_head |= name == "head";
    st.scan.has_html |= name == "html";
    collect_loads(st, name, attrs);
    if !st.skip_text {
        text_start_tag(st, name, attrs);
    }
}

/// An end tag outside raw text.
fn end_tag(st: &mut State, name: &str) {
    if !st.skip_text {
        text_end_tag(st, name);
    }
}

/// Characters outside raw text.
fn text_outside_raw(st: &mut State, text: &str) {
    if !st.skip_text {
        push_text(st, text);
    }
}

/// What a start tag loads, for the policy: a linked stylesheet, a `style` attribute (and
/// the images its CSS loads), and image URLs from `src`, `background` and `srcset`.
fn collect_loads(st: &mut State, name: &str, attrs: &[Attribute]) {
    let State {
        scan, style_urls, ..
    } = st;
    if name == "link"
        && attrs.iter().any(|a| {
            &*a.name.local == "rel"
                && a.value
                    .to_ascii_lowercase()
                    .split_whitespace()
                    .any(|r| r == "stylesheet")
        })
        && let Some(href) = attrs.iter().find(|a| &*a.name.local == "href")
    {
        scan.stylesheets.push(href.value.trim().to_owned());
    }
    for attr in attrs {
        let attr_name: &str = &attr.name.local;
        let value: &str = &attr.value;
        match attr_name {
            "style" => {
                // each distinct value's URLs found once, and the value copied only then
                if !style_urls.contains_key(value) {
                    style_urls.insert(value.to_owned(), css_urls(value));
                }
                if let Some(urls) = style_urls.get(value) {
                    scan.image_urls.extend(urls.iter().cloned());
                }
                scan.style_attributes.push(value.to_owned());
            }
            "src" if matches!(name, "img" | "image" | "input") => {
                scan.image_urls.push(value.trim().to_owned())
            }
            "background" => scan.image_urls.push(value.trim().to_owned()),
            "srcset" if name == "img" => scan.image_urls.extend(
                value
                    .split(',')
                    .filter_map(|c| c.split_whitespace().next())
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
}

/// A `<style>` element's text, and the images its CSS loads.
fn style_element(scan: &mut Scan, text: String) {
    scan.image_urls.extend(css_urls(&text));
    scan.style_elements.push(text);
}

fn text_start_tag(st: &mut State, name: &str, attrs: &[Attribute]) {
    let attr = |n: &str| {
        attrs
            .iter()
            .find(|a| &*a.name.local == n)
            .map(|a| a.value.to_string())
    };
    match name {
        "br" => st.scan.text.push('\n'),
        "hr" => paragraph(&mut st.scan.text),
        "li" => {
            newline(&mut st.scan.text);
            st.scan.text.push_str("- ");
        }
        "td" | "th" if !st.scan.text.ends_with('\n') && !st.scan.text.is_empty() => {
            st.scan.text.push_str("  ")
        }
        "img" => {
            if let Some(alt) = attr("alt").filter(|a| !a.trim().is_empty()) {
                push_text(st, &alt);
            }
        }
        "a" => {
            st.links.push(attr("href"));
            st.link_text_start.push(st.scan.text.len());
        }
        "pre" => {
            st.pre += 1;
            newline(&mut st.scan.text);
        }
        n if BLOCK.contains(&n) => paragraph(&mut st.scan.text),
        n if LINE.contains(&n) => newline(&mut st.scan.text),
        _ => {}
    }
}

fn text_end_tag(st: &mut State, name: &str) {
    match name {
        "a" => {
            let href = st.links.pop().flatten();
            let start = st.link_text_start.pop().unwrap_or(0);
            if let Some(href) = href.map(|h| h.trim().to_owned()) {
                let shown = st
                    .scan
                    .text
                    .get(start..)
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let target = href.strip_prefix("mailto:").unwrap_or(&href);
                let linkable = ["http://", "https://", "mailto:"]
                    .iter()
                    .any(|p| href.to_ascii_lowercase().starts_with(p));
                if linkable && shown != target && shown != href {
                    st.scan.text.push_str(&format!(" ({target})"));
                }
            }
        }
        "pre" => {
            st.pre = st.pre.saturating_sub(1);
            newline(&mut st.scan.text);
        }
        n if BLOCK.contains(&n) => paragraph(&mut st.scan.text),
        n if LINE.contains(&n) || n == "li" => newline(&mut st.scan.text),
        _ => {}
    }
}

fn push_text(st: &mut State, text: &str) {
    if st.pre > 0 {
        st.scan.text.push_str(text);
        return;
    }
    for (i, word) in text.split(|c: char| c.is_ascii_whitespace()).enumerate() {
        let out = &mut st.scan.text;
        if i > 0 && !out.is_empty() && !out.ends_with([' ', '\n']) {
            out.push(' ');
        }
        out.push_str(word);
    }
}

fn newline(out: &mut String) {
    trim_end_spaces(out);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn paragraph(out: &mut String) {
    trim_end_spaces(out);
    if out.is_empty() {
        return;
    }
    while !out.ends_with("\n\n") {
        out.push('\n');
    }
}

fn trim_end_spaces(out: &mut String) {
    let trimmed = out.trim_end_matches([' ', '\u{a0}']).len();
    out.truncate(trimmed);
}

/// The URLs CSS text loads, read as a browser reads them (see [`super::css::resource_urls`]).
fn css_urls(css: &str) -> Vec<String> {
    super::css::resource_urls(css)
}

/// A [`Scan`] fed by hand, with what a tokenizer would read from a body (see
/// [`super::sanitize`], which feeds it while it writes the body): start and end tags
/// outside raw text, characters outside raw text, and `<style>` texts.
#[derive(Default)]
pub(crate) struct Collector(State);

impl Collector {
    /// A collector; with `text` off, [`Scan::text`] is left empty.
    pub(crate) fn new(text: bool) -> Self {
        Collector(State {
            skip_text: !text,
            ..State::default()
        })
    }

    /// A start tag (not inside raw text).
    pub(crate) fn start_tag(&mut self, name: &str, attrs: &[Attribute]) {
        start_tag(&mut self.0, name, attrs);
    }

    /// An end tag (not inside raw text).
    pub(crate) fn end_tag(&mut self, name: &str) {
        end_tag(&mut self.0, name);
    }

    /// Characters (not inside raw text).
    pub(crate) fn text(&mut self, text: &str) {
        text_outside_raw(&mut self.0, text);
    }

    /// The text of a `<style>` element.
    pub(crate) fn style_element(&mut self, text: String) {
        style_element(&mut self.0.scan, text);
    }

    /// What was read.
    pub(crate) fn finish(self) -> Scan {
        let mut scan = self.0.scan;
        if !self.0.skip_text {
            scan.text = tidy_text(&scan.text);
        }
        scan
    }
}

/// Tokenizes `html` as a browser would.
pub(crate) fn scan(html: &str) -> Scan {
    scan_with(html, true)
}

/// As [`scan`]; with `text` off, [`Scan::text`] is left empty (less work).
pub(crate) fn scan_with(html: &str, text: bool) -> Scan {
    let state = State {
        skip_text: !text,
        ..State::default()
    };
    let tokenizer = Tokenizer::new(Sink(RefCell::new(state)), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let mut scan = std::mem::take(&mut tokenizer.sink.0.borrow_mut().scan);
    if text {
        scan.text = tidy_text(&scan.text);
    }
    scan
}

fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line.trim_start_matches(' '));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_attributes_and_keeps_style_text_raw() {
        let s = scan(
            "<style>p &amp; a{color:red}\r\n</style><p style=\"color:&#x72;ed\r\n\">x</p><img src=\"cid:a&amp;b\">",
        );
        assert_eq!(s.style_elements, ["p &amp; a{color:red}\n"]);
        assert_eq!(s.style_attributes, ["color:red\n"]);
        assert_eq!(s.image_urls, ["cid:a&b"]);
    }

    #[test]
    fn text_rendering() {
        let s = scan(
            "<h1>Hello  <b>you</b></h1><p>Read <a href=\"https://e.example/x\">this</a>.<br>Bye</p><ul><li>one</li><li>two</li></ul><style>p{}</style>",
        );
        assert_eq!(
            s.text,
            "Hello you\n\nRead this (https://e.example/x).\nBye\n\n- one\n- two\n"
        );
    }
}
