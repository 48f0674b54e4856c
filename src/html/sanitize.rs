//! Removing active content: an allow-list of tags and attributes (no script, iframe,
//! object, embed, form, base, meta, link or SVG; no `on*` attribute), URLs limited to inert
//! schemes, `data:` only for images, and CSS cleaned in `style` attributes here (and in
//! `<style>` elements by the rewriting pass, see [`super::images`]).
//!
//! The policy is ammonia's (the `Builder` the pipeline used until it read the body once
//! for everything, kept in the tests as the reference this is checked against): ammonia's
//! defaults with the changes listed in the tables below. It is applied here, on the tree
//! [`super::tree`] builds, because ammonia cannot take a tree parsed beforehand: with it the
//! body was parsed twice, once for the nesting limit and once to sanitise it. What ammonia
//! 4 does, and this does in the same order:
//!
//! - the body is parsed as a fragment in a `<div>` context; comments, doctypes and
//!   processing instructions go; `<template>` contents go (they are not children);
//! - an element in [`CLEAN_CONTENT_TAGS`] goes with its content; so does an element in an
//!   unexpected namespace (an SVG element other than `<svg>`, a MathML one other than
//!   `<math>`, an HTML element with an SVG or MathML name: [`super::foreign_names`]) — the
//!   parent it is judged under is the nearest kept ancestor, always an HTML element;
//! - an element not in [`TAGS`] is unwrapped (its content kept in its place);
//! - a kept element keeps the attributes in [`GENERIC_ATTRIBUTES`] and
//!   [`TAG_ATTRIBUTES`]; URL attributes (ammonia's `is_url_attr`) only when the URL is
//!   relative or its scheme is in [`URL_SCHEMES`]; an `<a>` gets `rel="noopener
//!   noreferrer"`; then [`filter_attribute`] judges each attribute (ammonia's
//!   `attribute_filter`, removing with `swap_remove`, so the order of what is left is
//!   ammonia's);
//! - the kept tree is written by html5ever's serialiser, as ammonia writes it.
//!
//! The walk is iterative (an explicit stack), so depth costs no native stack.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;

use html5ever::interface::QualName;
use html5ever::serialize::{HtmlSerializer, SerializeOpts, Serializer};
use html5ever::{Attribute, LocalName, local_name, ns};

use super::css::clean_declarations;
use super::foreign_names::{MATHML_TAGS, SVG_TAGS};
use super::images::contains_ignore_ascii_case;
use super::name_set::NameSet;
use super::scan::{Collector, Scan};
use super::tree::{self, Data, Tree};
use crate::error::{Error, Result};

/// The elements kept: ammonia's default set and `style`, `font`, `section`, `main`.
#[rustfmt::skip]
const TAGS: [&str; 79] = [
    // ammonia's defaults
    "a", "abbr", "acronym", "area", "article", "aside", "b", "bdi", "bdo", "blockquote", "br",
    "caption", "center", "cite", "code", "col", "colgroup", "data", "dd", "del", "details",
    "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hgroup", "hr", "i", "img", "ins", "kbd", "li", "map", "mark", "nav",
    "ol", "p", "pre", "q", "rp", "rt", "rtc", "ruby", "s", "samp", "small", "span", "strike",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "time", "tr",
    "tt", "u", "ul", "var", "wbr",
    // added
    "style", "font", "section", "main",
];

/// [`TAGS`], for lookups.
static KEPT_TAGS: LazyLock<NameSet> = LazyLock::new(|| NameSet::of(&[&TAGS]));

/// The SVG and MathML names (see [`is_html_tag`]), for lookups.
static FOREIGN_TAGS: LazyLock<NameSet> = LazyLock::new(|| NameSet::of(&[&SVG_TAGS, &MATHML_TAGS]));

/// [`GENERIC_ATTRIBUTES`], for lookups.
static GENERIC_ATTRIBUTE_NAMES: LazyLock<NameSet> =
    LazyLock::new(|| NameSet::of(&[&GENERIC_ATTRIBUTES]));

/// [`VOID`], for lookups.
static VOID_TAGS: LazyLock<NameSet> = LazyLock::new(|| NameSet::of(&[&VOID]));

/// The elements removed with their content: ammonia's `script` (its `style` is kept, as
/// a `<style>` sheet cleaned later) and `title`.
const CLEAN_CONTENT_TAGS: [&str; 2] = ["script", "title"];

/// The attributes kept on every kept element: ammonia's `lang` and `title`, and the
/// presentational ones email bodies use.
#[rustfmt::skip]
const GENERIC_ATTRIBUTES: [&str; 13] = [
    "lang", "title", // ammonia's defaults
    "style", "class", "align", "valign", "width", "height", "bgcolor", "dir", "border",
    "cellpadding", "cellspacing",
];

/// The attributes kept on one element: ammonia's defaults, with `font`, `style` added and
/// `td`, `table` extended.
#[rustfmt::skip]
const TAG_ATTRIBUTES: [(&str, &[&str]); 20] = [
    ("a", &["href", "hreflang"]),
    ("bdo", &["dir"]),
    ("blockquote", &["cite"]),
    ("col", &["align", "char", "charoff", "span"]),
    ("colgroup", &["align", "char", "charoff", "span"]),
    ("del", &["cite", "datetime"]),
    ("hr", &["align", "size", "width"]),
    ("img", &["align", "alt", "height", "src", "width"]),
    ("ins", &["cite", "datetime"]),
    ("ol", &["start"]),
    ("q", &["cite"]),
    ("table", &["align", "char", "charoff", "summary", "background"]),
    ("tbody", &["align", "char", "charoff"]),
    ("td", &["align", "char", "charoff", "colspan", "headers", "rowspan", "background", "nowrap"]),
    ("tfoot", &["align", "char", "charoff"]),
    ("th", &["align", "char", "charoff", "colspan", "headers", "rowspan", "scope"]),
    ("thead", &["align", "char", "charoff"]),
    ("tr", &["align", "char", "charoff"]),
    // added
    ("font", &["color", "face", "size"]),
    ("style", &["media", "type"]),
];

/// The schemes an absolute URL in a URL attribute may have (replacing ammonia's list).
const URL_SCHEMES: [&str; 6] = ["http", "https", "mailto", "tel", "cid", "data"];

/// What every kept `<a>` gets (ammonia's `link_rel` default).
const LINK_REL: &str = "noopener noreferrer";

thread_local! {
    /// `style` values cleaned during the current [`sanitize`] call, each distinct value
    /// once (inlined CSS repeats the same declarations on many elements); emptied when the
    /// call ends.
    static CLEANED_STYLES: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// [`clean_declarations`], remembered for the current [`sanitize`] call.
fn clean_style(value: &str) -> String {
    CLEANED_STYLES.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return clean_declarations(value);
        };
        if let Some(cleaned) = memo.get(value) {
            return cleaned.clone();
        }
        let cleaned = clean_declarations(value);
        memo.insert(value.to_owned(), cleaned.clone());
        cleaned
    })
}

fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match attribute {
        "style" => {
            let cleaned = clean_style(value);
            (!cleaned.trim().is_empty()).then(|| {
                if cleaned == value {
                    Cow::Borrowed(value)
                } else {
                    Cow::Owned(cleaned)
                }
            })
        }
        // ammonia checks the schemes of the attributes it knows as URLs; this covers the
        // rest (`background`...) and allows `data:` only for images where an image is loaded
        "href" | "src" | "background" | "cite" | "srcset" | "poster" | "longdesc" | "action"
        | "formaction" => {
            let squeezed: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .flat_map(char::to_lowercase)
                .collect();
            let scheme = squeezed
                .split_once(':')
                .map(|(s, _)| s)
                .filter(|s| !s.contains(['/', '?', '#']));
            let allowed = match scheme {
                None => true,
                Some("http" | "https" | "mailto" | "tel" | "cid") => true,
                Some("data") => {
                    matches!(element, "img" | "td" | "table") && squeezed.starts_with("data:image/")
                }
                Some(_) => false,
            };
            allowed.then_some(Cow::Borrowed(value))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// The body with active content removed, and what the pipeline's scan would read from it.
#[derive(Debug)]
pub(crate) struct Sanitized {
    /// The body, as an HTML fragment.
    pub(crate) html: String,
    /// What [`scan::scan_with`](super::scan::scan_with) reads from `html`, collected while
    /// writing it; `None` when the walk met a tree whose serialisation a tokenizer could
    /// read differently (a `<style>` holding anything but text without `</style`, a void
    /// element with content), for the caller to tokenize `html` instead.
    pub(crate) scan: Option<Scan>,
}

/// The body with active content removed, as an HTML fragment; a body nesting deeper than
/// [`super::MAX_DEPTH`] is refused (see [`tree::parse`]).
#[cfg(test)]
pub(crate) fn sanitize(html: &str) -> Result<String> {
    sanitize_scanning(html, false).map(|s| s.html)
}

/// As `sanitize`, also reading the result as [`scan::scan_with`](super::scan::scan_with)
/// would (`text` as there) while it is written: one parse of the body for the nesting
/// limit, the sanitiser and the scan.
pub(crate) fn sanitize_scanning(html: &str, text: bool) -> Result<Sanitized> {
    let tree = tree::parse(html)?;
    let clean = write_clean(&tree, Collector::new(text));
    CLEANED_STYLES.with(|memo| {
        if let Ok(mut memo) = memo.try_borrow_mut() {
            // dropped, not cleared: one large body does not keep its table alive
            drop(std::mem::take(&mut *memo));
        }
    });
    clean
}

/// What the walk does next.
enum Step {
    /// Judge a node.
    Visit(usize),
    /// Write the end tag of a kept element.
    Close(usize),
}

/// The elements html5ever's serialiser writes no end tag or content for.
const VOID: [&str; 18] = [
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Walks the tree once in document order, writing what the policy keeps and feeding
/// `scan` what a tokenizer reads from what is written.
fn write_clean(tree: &Tree, mut scan: Collector) -> Result<Sanitized> {
    let mut out = HtmlSerializer::new(Vec::with_capacity(1024), SerializeOpts::default());
    let mut stack: Vec<Step> = Vec::new();
    if let Some(root) = tree.root() {
        push_children(tree, root, &mut stack);
    }
    // the text of the kept `<style>` being written, if one is open
    let mut style: Option<String> = None;
    let mut scan_ok = true;
    let io = |e: std::io::Error| Error::invalid("html", format!("cannot be written: {e}"));
    while let Some(step) = stack.pop() {
        let at = match step {
            Step::Visit(at) => at,
            Step::Close(at) => {
                if let Some(Data::Element { name, .. }) = tree.nodes.get(at).map(|n| &n.data) {
                    out.end_elem(name.clone()).map_err(io)?;
                    if let Some(text) = style.take() {
                        // a tokenizer would end the style text early
                        scan_ok &= !contains_ignore_ascii_case(&text, "</style");
                        scan.style_element(text);
                    } else {
                        scan.end_tag(&name.local);
                    }
                }
                continue;
            }
        };
        let Some(node) = tree.nodes.get(at) else {
            continue;
        };
        match &node.data {
            Data::Text(text) => {
                out.write_text(text).map_err(io)?;
                match &mut style {
                    Some(buf) => buf.push_str(text),
                    None => scan.text(text),
                }
            }
            Data::Element { name, attrs, .. } => {
                let local: &str = &name.local;
                if CLEAN_CONTENT_TAGS.contains(&local) || !expected_namespace(name) {
                    continue;
                }
                if style.is_some() {
                    // written inside raw text: a tokenizer would not read it as an element
                    scan_ok = false;
                }
                if KEPT_TAGS.contains(&name.local) {
                    let attrs = kept_attributes(local, attrs);
                    out.start_elem(name.clone(), attrs.iter().map(|a| (&a.name, &*a.value)))
                        .map_err(io)?;
                    scan.start_tag(local, &attrs);
                    if VOID_TAGS.contains(&name.local) {
                        // nothing inside is written (the parser never puts anything there),
                        // nor an end tag (the serialiser only pops the element)
                        scan_ok &= node.first_child.is_none();
                        out.end_elem(name.clone()).map_err(io)?;
                        continue;
                    }
                    if local == "style" && style.is_none() {
                        style = Some(String::new());
                    }
                    stack.push(Step::Close(at));
                }
                push_children(tree, at, &mut stack);
            }
            Data::Document | Data::Other => {}
        }
    }
    let html = String::from_utf8(out.writer)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok(Sanitized {
        scan: scan_ok.then(|| scan.finish()),
        html,
    })
}

/// Pushes `node`'s children so that the first is visited first.
fn push_children(tree: &Tree, node: usize, stack: &mut Vec<Step>) {
    let from = stack.len();
    let mut child = tree.nodes.get(node).and_then(|n| n.first_child);
    while let Some(c) = child {
        stack.push(Step::Visit(c));
        child = tree.nodes.get(c).and_then(|n| n.next);
    }
    if let Some(pushed) = stack.get_mut(from..) {
        pushed.reverse();
    }
}

/// ammonia's `check_expected_namespace` for a child of an HTML element (the only parents
/// it can have here: the fragment's root, and kept elements, which are all HTML).
fn expected_namespace(name: &QualName) -> bool {
    let local: &str = &name.local;
    if name.ns == ns!(svg) {
        local == "svg"
    } else if name.ns == ns!(mathml) {
        local == "math"
    } else if name.ns == ns!(html) {
        is_html_tag(&name.local)
    } else {
        false
    }
}

/// ammonia's `is_html_tag`: not an SVG or MathML name, unless one HTML shares.
fn is_html_tag(local: &LocalName) -> bool {
    !FOREIGN_TAGS.contains(local)
        || matches!(
            &**local,
            "title" | "style" | "font" | "a" | "script" | "span"
        )
}

/// ammonia's `is_url_attr`.
fn is_url_attr(element: &str, attr: &str) -> bool {
    let animation = matches!(
        element,
        "animate" | "animateMotion" | "animateTransform" | "set" | "animateColor"
    );
    (!animation && (attr == "href" || attr == "xlink:href"))
        || attr == "src"
        || (element == "form" && attr == "action")
        || (element == "object" && attr == "data")
        || ((element == "button" || element == "input") && attr == "formaction")
        || (element == "a" && attr == "ping")
        || (element == "video" && attr == "poster")
}

/// Whether the policy allows `attr` on `element` before the filter: an allowed name, and
/// for a URL an allowed scheme or none.
fn allowed_attribute(element: &str, name: &LocalName, value: &str) -> bool {
    let attr: &str = name;
    let named = GENERIC_ATTRIBUTE_NAMES.contains(name)
        || TAG_ATTRIBUTES
            .iter()
            .any(|(tag, attrs)| *tag == element && attrs.contains(&attr));
    if !named {
        return false;
    }
    if !is_url_attr(element, attr) {
        return true;
    }
    match url::Url::parse(value) {
        Ok(url) => URL_SCHEMES.contains(&url.scheme()),
        Err(e) => e == url::ParseError::RelativeUrlWithoutBase,
    }
}

/// A kept element's attributes, as ammonia leaves them (see the module documentation).
fn kept_attributes(element: &str, attrs: &[Attribute]) -> Vec<Attribute> {
    let mut kept: Vec<Attribute> = attrs
        .iter()
        .filter(|a| allowed_attribute(element, &a.name.local, &a.value))
        .cloned()
        .collect();
    if element == "a" {
        kept.push(Attribute {
            name: QualName::new(None, ns!(), local_name!("rel")),
            value: LINK_REL.into(),
        });
    }
    let mut dropped = Vec::new();
    for (i, attr) in kept.iter_mut().enumerate() {
        let replaced = match filter_attribute(element, &attr.name.local, &attr.value) {
            None => {
                dropped.push(i);
                continue;
            }
            Some(Cow::Borrowed(_)) => None,
            Some(Cow::Owned(new)) => Some(new),
        };
        if let Some(new) = replaced
            && *new != *attr.value
        {
            attr.value = new.into();
        }
    }
    for i in dropped.into_iter().rev() {
        kept.swap_remove(i);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    /// The ammonia `Builder` the pipeline used before: the reference.
    static AMMONIA: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
        let mut b = ammonia::Builder::default();
        b.add_tags(["style", "font", "section", "main"])
            .rm_clean_content_tags(["style"])
            .add_clean_content_tags(["title"])
            .add_generic_attributes([
                "style",
                "class",
                "align",
                "valign",
                "width",
                "height",
                "bgcolor",
                "dir",
                "border",
                "cellpadding",
                "cellspacing",
            ])
            .add_tag_attributes("font", ["color", "face", "size"])
            .add_tag_attributes("style", ["media", "type"])
            .add_tag_attributes("td", ["background", "colspan", "rowspan", "nowrap"])
            .add_tag_attributes("table", ["background", "summary"])
            .url_schemes(
                ["http", "https", "mailto", "tel", "cid", "data"]
                    .into_iter()
                    .collect(),
            )
            .strip_comments(true)
            .attribute_filter(filter_attribute);
        b
    });

    /// Sanitised as ammonia sanitises it, and read by the walk as the tokenizer reads the
    /// result (when the walk reads it).
    fn assert_as_ammonia(html: &str) {
        let ours = sanitize_scanning(html, true).unwrap();
        let theirs = AMMONIA.clean(html).to_string();
        assert_eq!(ours.html, theirs, "input: {html:?}");
        if let Some(walked) = ours.scan {
            let tokenized = super::super::scan::scan_with(&ours.html, true);
            assert_eq!(
                format!("{walked:?}"),
                format!("{tokenized:?}"),
                "input: {html:?}"
            );
        }
    }

    #[test]
    fn the_walk_reads_ordinary_bodies_itself() {
        let plain = sanitize_scanning(
            "<p>Hallo <b>J\u{fc}rgen</b>,</p><img src=\"cid:logo\">",
            true,
        )
        .unwrap()
        .scan
        .unwrap();
        assert_eq!(plain.text, "Hallo J\u{fc}rgen,\n");
        assert_eq!(plain.image_urls, ["cid:logo"]);
        let styled = sanitize_scanning(
            "<style>p{color:red}</style><p style=\"color:red\">x</p>",
            false,
        )
        .unwrap()
        .scan
        .unwrap();
        assert_eq!(styled.style_elements, ["p{color:red}"]);
        assert_eq!(styled.style_attributes, ["color:red"]);
        assert!(styled.text.is_empty());
    }

    /// Hostile markup: mXSS-style nesting, raw-text elements, foreign content, URL
    /// obfuscation, comments, `<style>` in odd places.
    const HOSTILE: &[&str] = &[
        "<p>Hi <b>there</b><script>alert(1)</script></p>",
        "<svg><style>&lt;/style&gt;&lt;img src=x onerror=alert(1)&gt;</style></svg>",
        "<svg></p><style><a id=\"</style><img src=1 onerror=alert(1)>\">",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<math><mi><style><img src=x onerror=alert(1)></style></mi></math>",
        "<math><annotation-xml encoding=\"text/html\"><style><img src=x onerror=alert(1)>",
        "<svg><foreignObject><p>x</p><style>a{}</style></foreignObject></svg>",
        "<svg><a href=\"javascript:alert(1)\"><circle r=1 /></a></svg><circle>html circle</circle>",
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
        "<noscript><style></noscript><img src=x onerror=alert(1)></style>",
        "<template><script>alert(1)</script><p>in template</p></template>after",
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        "<a href=\"java&#x09;script:alert(1)\">a</a><a href=\" JaVaScRiPt:alert(1)\">b</a>",
        "<a href=\"&#106;avascript:alert(1)\">c</a><a href=\"jav&#x0A;ascript:x\">d</a>",
        "<a href=\"vbscript:msgbox(1)\">e</a><a href=\"data:text/html,<script>x</script>\">f</a>",
        "<img src=\"data:image/png;base64,iVBORw0KGgo=\"><img src=\"data:text/html;base64,PHNjcmlwdD4=\">",
        "<td background=\"javascript:alert(1)\">x</td><table background=\"data:image/gif;base64,R0lGOD\"><tr><td>y",
        "<img src=x onerror=alert(1) alt=\"a\" title=t width=1 height=2 class=c id=i>",
        "<p style=\"color:red; background:url(javascript:alert(1)); width: expression(alert(1))\">x</p>",
        "<p style=\"behavior:url(x.htc)\">only bad</p><p style=\"\">empty</p>",
        "<!-- comment --><p>a<!-- <script>alert(1)</script> -->b</p><!--",
        "<p>a<style>p{color:red}</style>b</p><table><style>td{}</style><tr><td>c</td></tr></table>",
        "<title>t</title><head><style>h{}</style></head><body onload=x><p>body</p></body>",
        "<html><head><meta http-equiv=refresh content=0><base href=//evil></head></html>",
        "<iframe src=\"https://evil\"></iframe><object data=x></object><embed src=y>",
        "<xmp><p>raw</p></xmp><textarea><b>t</b></textarea><plaintext><b>rest",
        "<select><option>o<selectedcontent>s</selectedcontent></select>",
        "<a href=\"https://example.com/?a=1&b=2\" onclick=x target=_blank rel=opener>link</a>",
        "<font color=red face=\"Arial\" size=2 onmouseover=x>f</font><center>c</center>",
        "<b><p>x</b>y</p><i><div><div><span>z</i>w",
        "<table><tr><td>1<table><tr><td>2</table>3</table><p>foster<table>x<tr>y</table>",
        "<p>&amp;&lt;&gt;&quot;&nbsp;\u{a0}&#0;\0&bogus;</p>",
        "<p title=\"&quot;&amp;\u{a0}<>\">attr</p>",
        "<custom-element onclick=x>custom</custom-element><mi>html mi</mi><g>g</g><set>s</set>",
        "<image src=\"https://e.example/i.png\"><isindex><keygen><menuitem>m",
        "<frameset><frame src=x></frameset><body><p>after frameset",
        "<pre>\n\nleading</pre><listing>\nl</listing><textarea>\nx</textarea>",
        "<a href=\"mailto:a@b\">m</a><a href=\"tel:+1\">t</a><a href=\"cid:x\">c</a><a href=\"/rel\">r</a><a href=\"//proto\">p</a><a href=\"http://[bad\">bad</a>",
        "<img srcset=\"javascript:x 1x\" src=\"https://e.example/a.png\"><video poster=javascript:x></video>",
        "<blockquote cite=\"javascript:x\">q</blockquote><q cite=\"https://e.example\">q2</q>",
        "<div style=\"color:&#x72;ed\" STYLE=\"x\" align=center valign=top bgcolor=#fff dir=rtl>d</div>",
        "<svg><animate attributeName=href values=\"javascript:alert(1)\"/><set attributeName=href to=javascript:x>",
        "<math><maction actiontype=statusline xlink:href=javascript:alert(1)>m</maction></math>",
        "<p>unclosed <b>bold <i>italic",
        "</p></div></body></html>stray end tags",
        "<![CDATA[<script>x</script>]]><?php echo 1 ?><!DOCTYPE html>",
        "<style>@import url(x.css); p { color: red }</style><style media=print type=text/css>q{}</style>",
        "<scr<script>ipt>alert(1)</script>",
        "<<p>>double<</p>>",
        "<a href=\"https://e.example\"><a href=\"https://f.example\">nested a</a></a>",
        "<ruby>r<rt>t</rt><rp>(</rp></ruby><details><summary>s</summary>d</details>",
        "<svg><svg><desc><p>desc p</p></desc></svg></svg>",
        "<math><math><mi>x</mi></math></math><math href=\"javascript:x\">y</math>",
        "",
        "plain text only",
    ];

    #[test]
    fn the_same_as_ammonia_on_hostile_markup() {
        for html in HOSTILE {
            assert_as_ammonia(html);
        }
    }

    fn fixture_files() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/html");
        let mut bodies = Vec::new();
        for dir in ["hostile", "legit"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "html") {
                    bodies.push(std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        bodies
    }

    #[test]
    fn the_same_as_ammonia_on_the_fixtures() {
        let bodies = fixture_files();
        assert!(bodies.len() >= 10, "{} fixtures", bodies.len());
        for body in &bodies {
            assert_as_ammonia(body);
            for line in body.lines() {
                assert_as_ammonia(line);
            }
        }
    }

    #[test]
    fn the_same_as_ammonia_on_every_tag_and_attribute() {
        let tags = [
            "a",
            "img",
            "td",
            "table",
            "font",
            "style",
            "p",
            "div",
            "span",
            "b",
            "section",
            "main",
            "title",
            "script",
            "iframe",
            "object",
            "form",
            "input",
            "button",
            "video",
            "svg",
            "math",
            "mi",
            "circle",
            "image",
            "set",
            "animate",
            "html",
            "body",
            "head",
            "template",
            "noscript",
            "textarea",
            "xmp",
            "select",
            "option",
            "blockquote",
            "q",
            "ol",
            "hr",
            "col",
            "th",
            "tr",
            "tbody",
            "bdo",
            "del",
            "ins",
            "x-custom",
            "link",
            "meta",
            "base",
            "area",
            "map",
            "wbr",
            "br",
            "pre",
        ];
        let attrs = [
            "href=\"https://e.example/\"",
            "href=\"javascript:alert(1)\"",
            "href=\"/relative\"",
            "src=\"data:image/png;base64,AAAA\"",
            "src=\"data:text/html,x\"",
            "src=\"cid:a@b\"",
            "background=\"data:image/gif;base64,R0\"",
            "background=\"vbscript:x\"",
            "style=\"color:red\"",
            "style=\"x:expression(1)\"",
            "class=\"c\" id=\"i\"",
            "onclick=\"x\"",
            "title=\"t\" lang=\"en\"",
            "action=\"javascript:x\" formaction=\"javascript:x\"",
            "ping=\"https://e.example\" poster=\"javascript:x\" data=\"x\"",
            "color=red face=f size=3 media=print type=text/css",
            "colspan=2 rowspan=3 nowrap headers=h scope=row summary=s",
            "cite=\"javascript:x\" datetime=2020 start=3 span=2 char=. charoff=1",
            "xlink:href=\"javascript:x\" encoding=\"text/html\"",
        ];
        for tag in tags {
            for attr in attrs {
                assert_as_ammonia(&format!("<{tag} {attr}>x</{tag}>y"));
                assert_as_ammonia(&format!("<svg><{tag} {attr}>x</{tag}></svg>"));
                assert_as_ammonia(&format!("<math><mi><{tag} {attr}>x</mi></math>"));
            }
        }
    }

    /// Pieces to splice: every line of the fixtures and tokens that confuse parsers.
    fn pieces() -> Vec<String> {
        let mut pieces: Vec<String> = fixture_files()
            .iter()
            .flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>())
            .chain(HOSTILE.iter().map(|s| (*s).to_owned()))
            .collect();
        for extra in [
            "<",
            ">",
            "\"",
            "'",
            "=",
            "&",
            "&amp;",
            "\u{a0}",
            "<svg>",
            "</svg>",
            "<math>",
            "</math>",
            "<mi>",
            "<mtext>",
            "<annotation-xml encoding=\"text/html\">",
            "<foreignObject>",
            "<desc>",
            "<style>",
            "</style>",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "<noscript>",
            "</noscript>",
            "<textarea>",
            "<title>",
            "</title>",
            "<p>",
            "</p>",
            "<table>",
            "<tr>",
            "<td>",
            "</table>",
            "<select>",
            "<template>",
            "</template>",
            "<xmp>",
            "<iframe>",
            "<b>",
            "</b>",
            "<a href=\"",
            "<p style=\"",
            "<img src=",
            "javascript:alert(1)",
            "x",
            " ",
            "\n",
        ] {
            pieces.push(extra.to_owned());
        }
        pieces
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// Any splice of fixture lines, hostile cases and parser-confusing tokens is
        /// sanitised exactly as ammonia sanitises it.
        #[test]
        fn the_same_as_ammonia_on_any_splice(picks in proptest::collection::vec(0usize..100_000, 1..16)) {
            let pieces = pieces();
            let html: String = picks.iter().map(|i| pieces[i % pieces.len()].as_str()).collect();
            let ours = sanitize_scanning(&html, true);
            proptest::prop_assert!(ours.is_ok(), "input: {:?}", html);
            let ours = ours.unwrap();
            let theirs = AMMONIA.clean(&html).to_string();
            proptest::prop_assert_eq!(&ours.html, &theirs, "input: {:?}", html);
            if let Some(walked) = ours.scan {
                let tokenized = super::super::scan::scan_with(&ours.html, true);
                proptest::prop_assert_eq!(format!("{walked:?}"), format!("{tokenized:?}"), "input: {:?}", html);
            }
        }
    }

    #[test]
    fn refuses_what_the_nesting_check_refuses_with_the_same_error() {
        use super::super::{MAX_DEPTH, nesting};
        for levels in [MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH + 40] {
            for html in [
                format!("{}x", "<div>".repeat(levels)),
                format!("<p>{}x</p><p>y</p>", "<span>".repeat(levels)),
                format!("{}x", "<b><div>".repeat(levels / 2 + 1)),
            ] {
                let ours = sanitize(&html).map(|_| ()).map_err(|e| e.to_string());
                let check = nesting::check(&html).map_err(|e| e.to_string());
                assert_eq!(ours, check, "{levels} levels");
            }
        }
    }
}
