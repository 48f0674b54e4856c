//! Hostile HTML (fixtures/html/hostile/*.html) comes out of the pipeline inert: no active
//! element, no event handler, no script URL, no active CSS — checked on the output markup,
//! without relying on any policy. (browser.rs checks the same bodies in Chromium.)

use std::cell::RefCell;

use lol_html::{RewriteStrSettings, element, rewrite_str, text};
use mailroom::html::{self, HtmlOptions};

use super::pipeline::{fixtures, read};

const ACTIVE_ELEMENTS: [&str; 24] = [
    "script", "iframe", "object", "embed", "applet", "form", "input", "button", "base", "link",
    "svg", "math", "frame", "frameset", "portal", "template", "noscript", "textarea", "select",
    "video", "audio", "source", "marquee", "animate",
];
const URL_ATTRIBUTES: [&str; 12] = [
    "href",
    "src",
    "background",
    "action",
    "formaction",
    "xlink:href",
    "srcset",
    "poster",
    "data",
    "code",
    "cite",
    "srcdoc",
];

pub(super) fn hostile_cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = std::fs::read_dir(fixtures().join("hostile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name.clone(), read(&format!("hostile/{name}")))
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "the hostile corpus is missing");
    cases
}

/// CSS comments removed and escapes decoded (CSS Syntax §4.3.7), lowercased.
pub(super) fn decode_css(css: &str) -> String {
    let mut out = String::new();
    let mut chars = css.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '\\' => {
                let hex: String = std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_hexdigit()))
                    .take(6)
                    .collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => {
                        out.push(c);
                        chars.next_if(|c| c.is_whitespace());
                    }
                    None => out.extend(chars.next()),
                }
            }
            c => out.push(c),
        }
    }
    out.to_lowercase()
}

/// The text as a CSS parser reads it, lowercased, without white space, quotes or the
/// entities an attribute value may carry them in.
fn squeeze(value: &str) -> String {
    let out: String = decode_css(value)
        .chars()
        .filter(|c| !(c.is_whitespace() || c.is_control() || *c == '"' || *c == '\''))
        .collect();
    out.replace("&#x09;", "")
        .replace("&amp;", "&")
        .replace("&quot;", "")
}

fn active_css(css: &str) -> Option<&'static str> {
    let s = squeeze(css);
    [
        "expression(",
        "javascript:",
        "vbscript:",
        "behavior:",
        "-moz-binding",
        "@import",
        "url(http",
    ]
    .into_iter()
    .find(|bad| s.contains(bad))
}

/// Every way `html` could still run code or load something, as found by lol_html.
pub(super) fn active_content(html: &str) -> Vec<String> {
    let found = RefCell::new(Vec::new());
    let style = RefCell::new(String::new());
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![
                element!("*", |el| {
                    let tag = el.tag_name();
                    let csp_meta = tag == "meta"
                        && (el.get_attribute("charset").is_some()
                            || el.get_attribute("http-equiv").is_some_and(|v| {
                                v.eq_ignore_ascii_case("content-security-policy")
                            }));
                    if ACTIVE_ELEMENTS.contains(&tag.as_str()) || (tag == "meta" && !csp_meta) {
                        found.borrow_mut().push(format!("<{tag}>"));
                    }
                    for attr in el.attributes() {
                        let (name, value) = (attr.name(), attr.value());
                        if name.starts_with("on") {
                            found.borrow_mut().push(format!("{name}= on <{tag}>"));
                        }
                        if URL_ATTRIBUTES.contains(&name.as_str()) {
                            let v = squeeze(&value);
                            let bad = ["javascript:", "vbscript:", "livescript:"]
                                .iter()
                                .any(|s| v.contains(s))
                                || (v.starts_with("data:")
                                    && !(tag == "img" && v.starts_with("data:image/")));
                            if bad {
                                found
                                    .borrow_mut()
                                    .push(format!("{name}={value} on <{tag}>"));
                            }
                        }
                        if name == "style"
                            && let Some(bad) = active_css(&value)
                        {
                            found
                                .borrow_mut()
                                .push(format!("style with {bad} on <{tag}>"));
                        }
                    }
                    Ok(())
                }),
                text!("style", |t| {
                    style.borrow_mut().push_str(t.as_str());
                    if t.last_in_text_node() {
                        if let Some(bad) = active_css(&style.borrow()) {
                            found.borrow_mut().push(format!("<style> with {bad}"));
                        }
                        style.borrow_mut().clear();
                    }
                    Ok(())
                }),
            ],
            ..RewriteStrSettings::new()
        },
    )
    .unwrap();
    found.into_inner()
}

#[test]
fn the_checker_sees_active_content() {
    // the corpus really is hostile: every raw case trips the checker
    for (name, html) in hostile_cases() {
        assert!(
            !active_content(&html).is_empty(),
            "{name} has nothing hostile for the checker to find"
        );
    }
}

#[test]
fn hostile_html_comes_out_inert() {
    for (name, html) in hostile_cases() {
        let out = html::process_html(&html, &HtmlOptions::default()).unwrap();
        assert_eq!(
            active_content(&out.html),
            Vec::<String>::new(),
            "{name}:\n{}",
            out.html
        );
        // and the policy allows nothing a script could use
        let policy = out.policy.to_string();
        assert!(
            !policy.contains("script")
                && !policy.contains("unsafe-inline")
                && policy.starts_with("default-src 'none'"),
            "{policy}"
        );
    }
}

#[test]
fn css_that_cannot_be_inlined_is_kept_as_a_sheet_and_still_inert() {
    // Found by the splice property test in CI: css-inline gives up ("End of input") on a
    // style attribute holding markup. The body must still render, inert, with a policy
    // that hashes every style sheet left in it.
    let input = "<p style=\"<div style=\"width: expression(alert(1)); color: red\">expression</div>\
                 <style>  p { background: url(\"javascript:fetch('http://beacon.invalid/css-url')\"); color: #333 }";
    let out = html::process_html(input, &HtmlOptions::default()).unwrap();
    assert_eq!(
        active_content(&out.html),
        Vec::<String>::new(),
        "{}",
        out.html
    );
    let style_src: Vec<&str> = out
        .policy
        .directives()
        .find(|(name, _)| *name == "style-src")
        .map(|(_, sources)| sources)
        .unwrap_or_default();
    assert!(
        out.html.contains("<style"),
        "the sheet is kept: {}",
        out.html
    );
    let mut rest = out.html.as_str();
    while let Some(start) = rest.find("<style") {
        let open_end = start + rest[start..].find('>').unwrap() + 1;
        let close = open_end + rest[open_end..].find("</style>").unwrap();
        let sheet = &rest[open_end..close];
        let hash = mailroom::csp::hash_source(mailroom::csp::HashAlgorithm::Sha256, sheet);
        assert!(
            style_src.contains(&hash.as_str()),
            "{hash} not in {style_src:?} for {sheet:?}"
        );
        rest = &rest[close..];
    }
}

#[test]
fn hostile_html_is_inert_with_css_inlining_off_too() {
    for (name, html) in hostile_cases() {
        let out = html::process_html(&html, &HtmlOptions::default().inline_css(false)).unwrap();
        assert_eq!(
            active_content(&out.html),
            Vec::<String>::new(),
            "{name}:\n{}",
            out.html
        );
    }
}

/// Pieces to splice: every line of the hostile corpus and the tokens that confuse parsers.
fn fragments() -> Vec<String> {
    let mut pieces: Vec<String> = hostile_cases()
        .iter()
        .flat_map(|(_, html)| html.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    for extra in [
        "<",
        ">",
        "\"",
        "'",
        "<svg>",
        "<math>",
        "<style>",
        "</style>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<noscript>",
        "<textarea>",
        "<title>",
        "</p>",
        "<table>",
        "<select>",
        "<template>",
        "<xmp>",
        "<p style=\"",
        "<a href=\"",
    ] {
        pieces.push(extra.to_owned());
    }
    pieces
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Any splice of hostile fragments comes out inert.
    #[test]
    fn any_splice_of_hostile_fragments_comes_out_inert(picks in proptest::collection::vec(0usize..10_000, 1..10)) {
        let pieces = fragments();
        let html: String = picks.iter().map(|i| pieces[i % pieces.len()].as_str()).collect::<Vec<_>>().join("");
        let out = html::process_html(&html, &HtmlOptions::default());
        proptest::prop_assert!(out.is_ok(), "input: {:?}\nerror: {:?}", html, out.err());
        let out = out.unwrap();
        proptest::prop_assert_eq!(active_content(&out.html), Vec::<String>::new(), "input: {}\noutput: {}", html, out.html);
    }
}

/// CSS escapes are undone before anything is judged (issue 9, item 11), in style sheets
/// and in style attributes, with CSS inlining on and off: what a browser would read as
/// `@import`, `@font-face` or an active `url()` goes, and a remote image that stays is in
/// the policy however its `url()` or `image-set()` is spelled.
#[test]
fn escaped_css_is_decoded_before_it_is_judged() {
    let removed = [
        "<style>@\\69mport url(https://evil.example/x.css); p{color:red}</style><p>x</p>",
        "<style>@\\69 mport 'https://evil.example/x.css';</style><p>x</p>",
        "<style>@\\000069mport url(x.css);</style><p>x</p>",
        "<style>@font-face{font-family:f;src:url(https://evil.example/f.woff)}</style><p>x</p>",
        "<style>@font-f\\61 ce{font-family:f;src:url(https://evil.example/f.woff)}</style><p>x</p>",
        "<style>@media screen{p{background:\\75 rl(javascript:alert(1))}}</style><p>x</p>",
        "<p style=\"background: \\75 rl(javascript:alert(1))\">x</p>",
        "<p style=\"background: u\\72l(&quot;jav\\61script:alert(1)&quot;)\">x</p>",
        "<p style=\"background-image: image-set('javascript:alert(1)' 1x)\">x</p>",
        "<style>@media screen{p{background-image:-webkit-image-set(\"vbscript:x\" 1x)}}</style><p>x</p>",
    ];
    for options in [
        HtmlOptions::default(),
        HtmlOptions::default().inline_css(false),
    ] {
        for input in removed {
            let out = html::process_html(input, &options).unwrap();
            let squeezed = squeeze(&out.html);
            for gone in [
                "@import",
                "@font-face",
                "javascript:",
                "vbscript:",
                "evil.example",
            ] {
                assert!(!squeezed.contains(gone), "{input}\n{}", out.html);
            }
            assert!(out.html.contains(">x</p>"), "{}", out.html);
        }
        let kept = [
            (
                "<p style=\"background: \\75 rl(https://a.example/x.png)\">x</p>",
                "https://a.example",
            ),
            (
                "<style>@media screen{p{background:\\75 rl('https://b.example/x.png')}}</style><p>x</p>",
                "https://b.example",
            ),
            (
                "<p style=\"background-image: image-set(&quot;https://c.example/x.png&quot; 1x)\">x</p>",
                "https://c.example",
            ),
            (
                "<style>@media screen{p{background-image:image-set('https://d.example/x.png' 1x)}}</style><p>x</p>",
                "https://d.example",
            ),
            (
                "<style>p{background-image:u\\rl(https://e.example/x.png)}</style><p>x</p>",
                "https://e.example",
            ),
        ];
        for (input, origin) in kept {
            let out = html::process_html(input, &options).unwrap();
            assert!(out.html.contains(&origin[8..]), "{input}\n{}", out.html);
            let policy = out.policy.to_string();
            assert!(
                policy.contains(&format!("img-src {origin}")),
                "{input}: {policy}"
            );
        }
    }
}
