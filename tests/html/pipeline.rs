//! The HTML body pipeline: CSS inlining, cid: images, text alternative, options, and the
//! computed policy (exactly the styles present, nothing else).

use std::path::{Path, PathBuf};

use mailroom::csp::{HashAlgorithm, hash_source};
use mailroom::html::{self, HtmlOptions};
use mailroom::{Email, RenderOptions};

pub(super) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/html")
}

pub(super) fn read(path: &str) -> String {
    std::fs::read_to_string(fixtures().join(path)).unwrap()
}

pub(super) fn legit_options() -> HtmlOptions {
    HtmlOptions::default().base_dir(fixtures().join("legit"))
}

fn newsletter() -> Email {
    Email::builder()
        .from("shop@example.com")
        .to("ann@example.org")
        .subject("Autumn news")
        .html(read("legit/newsletter.html"))
        .build()
        .unwrap()
}

#[test]
fn style_rules_move_into_attributes_and_media_rules_stay() {
    let out = html::process_html(&read("legit/newsletter.html"), &legit_options()).unwrap();
    assert!(
        out.html
            .contains(r#"<div class="banner" style="background-color: #1a6;"#),
        "{}",
        out.html
    );
    assert!(
        out.html
            .contains(r#"<td class="price" style="color: #c30;"#),
        "{}",
        out.html
    );
    assert!(!out.html.contains(".banner {"), "{}", out.html);
    let style = out
        .html
        .split("<style>")
        .nth(1)
        .unwrap()
        .split("</style>")
        .next()
        .unwrap();
    assert!(
        style.contains("@media (min-width: 100px)") && style.contains(".wide"),
        "{style}"
    );
}

#[test]
fn data_and_local_images_become_inline_parts_in_multipart_related() {
    let email = html::process(&newsletter(), &legit_options()).unwrap();
    let body = email.html().unwrap();
    let parts: Vec<_> = email
        .attachments()
        .iter()
        .filter(|a| a.is_inline())
        .collect();
    assert_eq!(parts.len(), 2);
    let logo = std::fs::read(fixtures().join("legit/logo.png")).unwrap();
    assert!(
        parts
            .iter()
            .any(|p| p.bytes() == Some(&logo[..]) && p.filename() == Some("logo.png"))
    );
    for p in &parts {
        assert_eq!(p.content_type(), "image/png");
        assert!(
            body.contains(&format!("src=\"cid:{}\"", p.content_id().unwrap())),
            "{body}"
        );
    }
    assert!(
        !body.contains("data:image") && !body.contains("src=\"logo.png\""),
        "{body}"
    );

    let bytes = email.render(&RenderOptions::deterministic()).unwrap();
    let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("multipart/alternative") && text.contains("multipart/related"),
        "{text}"
    );
    for p in &parts {
        assert!(
            text.contains(&format!("Content-ID: <{}>", p.content_id().unwrap())),
            "{text}"
        );
    }
    assert_eq!(parsed.attachment_count(), 2);
    assert!(parsed.body_text(0).unwrap().contains("Autumn news"));
}

#[test]
fn the_same_image_twice_is_one_part() {
    let img = format!(
        r#"<img src="data:image/png;base64,{}">"#,
        base64_of(&fixtures().join("legit/logo.png"))
    );
    let out = html::process_html(
        &format!("{img}<p>and again</p>{img}<img src=\"logo.png\">"),
        &legit_options(),
    )
    .unwrap();
    assert_eq!(out.inline_parts.len(), 1, "{}", out.html);
}

fn base64_of(path: &Path) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

#[test]
fn files_outside_the_base_directory_are_never_read() {
    // none is read: each is refused by name, as no policy could allow what is left (the
    // error is about the reference, not about reading a file)
    for src in [
        "../../Cargo.toml",
        "/etc/passwd",
        "%2e%2e/hostile/base.html",
        "legit/../logo.png",
    ] {
        let err =
            html::process_html(&format!(r#"<img src="{src}">"#), &legit_options()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("the image `{src}` is neither embedded")),
            "{err}"
        );
    }
    // a scheme the sanitizer does not allow goes with the attribute
    let out = html::process_html(r#"<img src="file:///etc/hostname">"#, &legit_options()).unwrap();
    assert!(out.inline_parts.is_empty() && !out.html.contains("hostname"));
    // and without a base directory nothing local is read at all
    let err = html::process_html(r#"<img src="logo.png">"#, &HtmlOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("`logo.png`") && err.to_string().contains("base directory"),
        "{err}"
    );
    // a missing file under the base directory is an error naming it
    let err = html::process_html(r#"<img src="missing.png">"#, &legit_options()).unwrap_err();
    assert!(err.to_string().contains("missing.png"), "{err}");
}

#[test]
fn a_text_alternative_is_generated_only_when_missing() {
    let email = html::process(&newsletter(), &legit_options()).unwrap();
    assert_eq!(
        email.text().unwrap(),
        "Autumn news — Ünïcödé ✓\n\nLogo Leaf\n\nBoots  € 89\n\nfor wide screens\n\nRead the news (https://example.com/news) or write to us (shop@example.com).\n"
    );
    let given = newsletter()
        .to_builder()
        .text("my own text")
        .build()
        .unwrap();
    assert_eq!(
        html::process(&given, &legit_options()).unwrap().text(),
        Some("my own text")
    );
    let off = html::process(&newsletter(), &legit_options().text_alternative(false)).unwrap();
    assert_eq!(off.text(), None);
}

#[test]
fn each_step_can_be_turned_off() {
    let src = r#"<style>p{color:red}</style><p>x</p><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><script>x()</script>"#;
    let none = HtmlOptions::default()
        .sanitize(false)
        .inline_css(false)
        .embed_images(false)
        .embed_policy(false);
    let out = html::process_html(src, &none).unwrap();
    assert_eq!(out.html, src);
    let out = html::process_html(src, &HtmlOptions::default().inline_css(false)).unwrap();
    assert!(
        out.html.contains("<style>p{color:red}</style>") && !out.html.contains("<script"),
        "{}",
        out.html
    );
    let out = html::process_html(src, &HtmlOptions::default().embed_images(false)).unwrap();
    assert!(out.html.contains("data:image/gif") && out.inline_parts.is_empty());
    assert!(out.policy.to_string().contains("img-src data:"));
    let out = html::process_html(src, &HtmlOptions::default().sanitize(false)).unwrap();
    assert!(out.html.contains("<script>x()</script>"));
    let out = html::process_html(src, &HtmlOptions::default()).unwrap();
    assert!(
        out.html.contains(r#"<p style="color: red;">"#) && out.html.starts_with("<!DOCTYPE html>")
    );
    assert!(out.html.contains(&out.policy.meta_tag(None)));
}

/// The policy hashes exactly the style attributes present — decoded as a browser decodes
/// them (`&quot;`, `&#10;`) — once each, under 'unsafe-hashes'; no img-src without images.
#[test]
fn the_policy_hashes_exactly_the_styles_present() {
    let out =
        html::process_html(&read("legit/inline-styles.html"), &HtmlOptions::default()).unwrap();
    let styles = [
        "background-color:#06c;color:#fff;padding:20px;font-size:26px",
        "font-family: \"DejaVu Serif\", serif; color: #a20; font-size: 24px;\nborder-left: 8px solid #333",
        "color:#a20;font-size:24px",
    ];
    let mut hashes: Vec<String> = styles
        .iter()
        .map(|s| hash_source(HashAlgorithm::Sha256, s))
        .collect();
    hashes.sort();
    assert_eq!(
        out.policy.to_string(),
        format!(
            "default-src 'none'; style-src-attr 'unsafe-hashes' {}",
            hashes.join(" ")
        )
    );
    assert_eq!(
        html::policy_for(&out.html),
        out.policy,
        "the embedded meta changes nothing"
    );
}

#[test]
fn the_policy_of_a_body_with_style_elements_and_every_image_kind() {
    let html = r#"<style>p{color:red}</style><p>x</p><img src="cid:logo"><img src="DATA:image/gif;base64,R0lGOD=">
        <div style="background:url('https://cdn.example.com/bg.png')"></div><img src="https://img.example.org:8443/a.png?x=1"><img src="rel.png">"#;
    assert_eq!(
        html::policy_for(html).to_string(),
        format!(
            "default-src 'none'; img-src cid: data: https://cdn.example.com https://img.example.org:8443; style-src {}; style-src-attr 'unsafe-hashes' {}",
            hash_source(HashAlgorithm::Sha256, "p{color:red}"),
            hash_source(
                HashAlgorithm::Sha256,
                "background:url('https://cdn.example.com/bg.png')"
            )
        )
    );
    let text_only = Email::builder()
        .from("a@example.com")
        .text("hi")
        .build()
        .unwrap();
    assert_eq!(html::policy(&text_only).to_string(), "default-src 'none'");
}

#[test]
fn processing_is_deterministic() {
    let one = html::process(&newsletter(), &legit_options()).unwrap();
    let two = html::process(&newsletter(), &legit_options()).unwrap();
    assert_eq!(one, two);
    assert_eq!(
        one.render(&RenderOptions::deterministic()).unwrap(),
        two.render(&RenderOptions::deterministic()).unwrap()
    );
}

#[test]
fn the_policy_goes_first_into_an_existing_head() {
    let options = HtmlOptions::default().sanitize(false).inline_css(false);
    let out = html::process_html(
        "<html><head><title>t</title></head><body><p style=\"color:red\">x</p></body></html>",
        &options,
    )
    .unwrap();
    assert_eq!(
        out.html,
        format!(
            "<html><head>{}<title>t</title></head><body><p style=\"color:red\">x</p></body></html>",
            out.policy.meta_tag(None)
        )
    );
    let out = html::process_html("<html><body><p>x</p></body></html>", &options).unwrap();
    assert_eq!(
        out.html,
        format!(
            "<html><head>{}</head><body><p>x</p></body></html>",
            out.policy.meta_tag(None)
        )
    );
}

#[test]
fn processing_a_processed_message_changes_nothing() {
    let once = html::process(&newsletter(), &legit_options()).unwrap();
    let twice = html::process(&once, &legit_options()).unwrap();
    assert_eq!(once.html(), twice.html());
    assert_eq!(once.attachments(), twice.attachments());
    assert_eq!(html::policy(&once), html::policy(&twice));
}

#[test]
fn processing_shares_the_attachments_bytes_instead_of_copying_them() {
    let pdf = vec![7_u8; 64 * 1024];
    let email = Email::builder()
        .from("shop@example.com")
        .to("ann@example.org")
        .html(r#"<p>Hi <img src="cid:logo"></p>"#)
        .inline("logo", "logo.png", vec![0x89, b'P', b'N', b'G'])
        .attach("invoice.pdf", pdf)
        .build()
        .unwrap();
    let ptrs = |e: &Email| -> Vec<*const u8> {
        e.attachments()
            .iter()
            .map(|a| a.bytes().unwrap().as_ptr())
            .collect()
    };
    assert_eq!(ptrs(&email.clone()), ptrs(&email));
    let processed = html::process(&email, &HtmlOptions::default()).unwrap();
    assert_eq!(ptrs(&processed), ptrs(&email));
}

#[test]
fn a_body_the_rewriting_pass_cannot_change_comes_out_as_when_the_pass_runs() {
    // With a base directory the rewriting pass always runs; without one (and with no
    // `data:` image and no `<style>`) it is skipped: the results must not differ.
    let bodies = [
        "<p>Hallo <b>Jürgen</b>,</p><p>Ihre Bestellung ist fertig.</p><img src=\"cid:logo\">\n"
            .repeat(20),
        r#"<p class="x" style="color: red">a &amp; b &lt;c&gt; &nbsp;<a href="https://e.example/?a=1&amp;b=&quot;2&quot;">link</a></p>"#
            .to_owned(),
        r#"<table background="https://e.example/bg.png"><tr><td><img src="https://e.example/a.png?x=1&amp;y=2" alt="A &quot;b&quot;"></td></tr></table>"#
            .to_owned(),
        "<div>\r\nline\rends&#13;here <img src=\"cid:a&amp;b\"></div>".to_owned(),
    ];
    for body in bodies {
        let skipped = html::process_html(&body, &HtmlOptions::default()).unwrap();
        let ran = html::process_html(&body, &legit_options()).unwrap();
        assert_eq!(skipped.html, ran.html, "{body}");
        assert_eq!(skipped.text, ran.text, "{body}");
        assert_eq!(skipped.policy.to_string(), ran.policy.to_string(), "{body}");
        assert!(skipped.inline_parts.is_empty() && ran.inline_parts.is_empty());
    }
}
