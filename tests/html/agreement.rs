//! The body and its policy agree (issue 9, item 12): every URL the processed body loads is
//! allowed by its computed policy, or processing fails with an error naming the image. The
//! URLs are read back from the output independently of the pipeline's own scanner.

use std::cell::RefCell;

use lol_html::{RewriteStrSettings, element, rewrite_str, text};
use mailroom::html::{self, HtmlOptions};
use mailroom::{Email, Error, RenderOptions};

use super::hostile::{decode_css, hostile_cases};
use super::pipeline::{fixtures, legit_options, read};

/// The URLs CSS text loads: `url(...)` targets and the strings of `image-set(...)`.
fn css_targets(css: &str) -> Vec<String> {
    let css = decode_css(css);
    let mut found = Vec::new();
    for (at, _) in css.match_indices("url(") {
        let rest = &css[at + 4..];
        let target = rest.split(')').next().unwrap_or_default();
        found.push(target.trim().trim_matches(['"', '\'']).trim().to_owned());
    }
    for (at, _) in css.match_indices("image-set(") {
        let inside = css[at + 10..].split(')').next().unwrap_or_default();
        for (i, piece) in inside.split(['"', '\'']).enumerate() {
            if i % 2 == 1 {
                found.push(piece.trim().to_owned());
            }
        }
    }
    found
}

/// Every URL `html` loads as an image, read with lol_html.
fn loaded_urls(html: &str) -> Vec<String> {
    let found = RefCell::new(Vec::new());
    let sheet = RefCell::new(String::new());
    rewrite_str(
        html,
        RewriteStrSettings {
            element_content_handlers: vec![
                element!("*", |el| {
                    let mut found = found.borrow_mut();
                    for attr in el.attributes() {
                        let value = attr.value().replace("&amp;", "&").replace("&quot;", "\"");
                        match attr.name().as_str() {
                            "src" | "background" => found.push(value.trim().to_owned()),
                            "srcset" => found.extend(
                                value
                                    .split(',')
                                    .filter_map(|c| c.split_whitespace().next())
                                    .map(str::to_owned),
                            ),
                            "style" => found.extend(css_targets(&value)),
                            _ => {}
                        }
                    }
                    Ok(())
                }),
                text!("style", |t| {
                    sheet.borrow_mut().push_str(t.as_str());
                    if t.last_in_text_node() {
                        found.borrow_mut().extend(css_targets(&sheet.borrow()));
                        sheet.borrow_mut().clear();
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

/// Whether the policy's img-src allows loading `url`.
fn allowed(img_src: &[&str], url: &str) -> bool {
    if url.is_empty() || url.starts_with('#') {
        return true;
    }
    let lower = url.to_ascii_lowercase();
    let source = if lower.starts_with("cid:") {
        "cid:".to_owned()
    } else if lower.starts_with("data:") {
        "data:".to_owned()
    } else {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u.origin().ascii_serialization(),
            _ => return false,
        }
    };
    img_src.contains(&source.as_str())
}

fn assert_agrees(name: &str, out: &html::ProcessedHtml) {
    let img_src: Vec<&str> = out
        .policy
        .directives()
        .find(|(d, _)| *d == "img-src")
        .map(|(_, s)| s)
        .unwrap_or_default();
    for url in loaded_urls(&out.html) {
        assert!(
            allowed(&img_src, &url),
            "{name}: the body loads `{url}` but the policy says img-src {img_src:?}\n{}",
            out.html
        );
    }
}

#[test]
fn an_image_no_policy_can_allow_is_an_error_naming_it() {
    let shapes = [
        (r#"<p>x</p><img src="logo.png">"#, "logo.png"),
        (r#"<img src="x">"#, "x"),
        (
            r#"<table><tr><td background="bg.png">x</td></tr></table>"#,
            "bg.png",
        ),
        (r#"<p style="background: url(bg.png)">x</p>"#, "bg.png"),
        (
            "<style>@media screen{p{background:\\75 rl(tile.png)}}</style><p>x</p>",
            "tile.png",
        ),
        (r#"<img src="//cdn.example/x.png">"#, "//cdn.example/x.png"),
    ];
    for (body, url) in shapes {
        for options in [
            HtmlOptions::default(),
            HtmlOptions::default().sanitize(false),
        ] {
            let err = html::process_html(body, &options).unwrap_err();
            assert!(matches!(err, Error::InvalidMessage { .. }), "{err:?}");
            assert_eq!(err.field(), Some("html"));
            assert!(
                err.to_string().contains(&format!("`{url}`")),
                "{body}: {err}"
            );
        }
    }
    // these the sanitizer removes; they are refused when it is off
    for (body, url) in [
        (r#"<img src="cid:a" srcset="big.png 2x">"#, "big.png"),
        (
            r#"<img src="ftp://files.example/x.png">"#,
            "ftp://files.example/x.png",
        ),
    ] {
        let err = html::process_html(body, &HtmlOptions::default().sanitize(false)).unwrap_err();
        assert!(
            err.to_string().contains(&format!("`{url}`")),
            "{body}: {err}"
        );
        let out = html::process_html(body, &HtmlOptions::default()).unwrap();
        assert!(!out.html.contains(url), "{}", out.html);
    }
    // the same for the message as rendered, and with a base directory that lacks the file's
    // type or with embedding off
    let email = Email::builder()
        .from("shop@example.com")
        .to("ann@example.org")
        .html(r#"<img src="logo.png">"#)
        .build()
        .unwrap();
    let err = email.render(&RenderOptions::deterministic()).unwrap_err();
    assert!(err.to_string().contains("`logo.png`"), "{err}");
    let off = legit_options().embed_images(false);
    let err = html::process_html(r#"<img src="logo.png">"#, &off).unwrap_err();
    assert!(err.to_string().contains("`logo.png`"), "{err}");
    let err = html::process_html(r#"<img src="newsletter.html">"#, &legit_options()).unwrap_err();
    assert!(err.to_string().contains("`newsletter.html`"), "{err}");
}

#[test]
fn a_base_tag_cannot_redirect_a_relative_image() {
    // a relative image is refused, so no <base href> (removed anyway) could point it anywhere
    let body = format!("{}<img src=\"pixel.gif\">", read("hostile/base.html"));
    let err = html::process_html(&body, &HtmlOptions::default()).unwrap_err();
    assert!(err.to_string().contains("`pixel.gif`"), "{err}");
}

#[test]
fn every_url_the_body_keeps_is_allowed_by_its_policy() {
    let mut bodies: Vec<(String, String, HtmlOptions)> = Vec::new();
    for name in ["newsletter", "inline-styles", "css-escapes"] {
        let source = read(&format!("legit/{name}.html"));
        bodies.push((name.to_owned(), source.clone(), legit_options()));
        bodies.push((
            format!("{name} (no embedding)"),
            source.replace("src=\"logo.png\"", "src=\"https://cdn.example/logo.png\""),
            legit_options().embed_images(false),
        ));
    }
    for (name, source) in hostile_cases() {
        bodies.push((name.clone(), source.clone(), HtmlOptions::default()));
        bodies.push((
            format!("{name} (no inlining)"),
            source,
            HtmlOptions::default().inline_css(false),
        ));
    }
    for (i, body) in [
        r#"<img src="https://a.example/x.png" srcset="https://b.example/y.png 2x, cid:z 3x">"#,
        r#"<table background="https://c.example:8443/t.png"><tr><td background="cid:bg">x</td></tr></table>"#,
        r#"<p style="background: \75 rl(https://d.example/x.png), image-set('https://e.example/y.png' 1x)">x</p>"#,
        "<style>@media screen{p{background:u\\rl(\"https://f.example/x.png\")}}</style><p>x</p>",
        "<style>.a{background-image:-webkit-image-set(\"https://g.example/a.png\" 1x)}</style><p class=a>x</p>",
        r#"<img src=""><p style="filter: url(#f)">x</p>"#,
    ]
    .into_iter()
    .enumerate()
    {
        for options in [
            HtmlOptions::default(),
            HtmlOptions::default().inline_css(false),
            HtmlOptions::default().sanitize(false),
        ] {
            bodies.push((format!("body {i}"), body.to_owned(), options));
        }
    }
    assert!(fixtures().join("legit/logo.png").exists());
    for (name, source, options) in bodies {
        let out = html::process_html(&source, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_agrees(&name, &out);
        // and the policy mailroom computes again from the output is the same
        assert_eq!(html::policy_for(&out.html), out.policy, "{name}");
    }
}
