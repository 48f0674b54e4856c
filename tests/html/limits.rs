//! Bounded work on hostile structure: a body that nests elements deeper than
//! [`html::MAX_DEPTH`] is refused with a typed error before any step that walks the tree
//! (css-inline's recursive serialiser, html5ever's scope checks) sees it; bodies up to the
//! limit render as before. The checks run on a thread with tokio's default worker stack
//! (2 MiB), which is what proves the poison message no longer overflows a worker's stack.

use mailroom::html::{self, HtmlOptions, MAX_DEPTH};
use mailroom::{Email, Error, RenderOptions};

/// tokio's default worker thread stack.
const WORKER_STACK: usize = 2 * 1024 * 1024;

fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// `<html>` and `<body>` are two of the levels.
fn spans(levels: usize) -> String {
    format!(
        "<style>a{{}} span{{color:#c00}}</style>{}deepest",
        "<span>".repeat(levels - 2)
    )
}

fn assert_too_deep(err: &Error, found: &str) {
    assert!(matches!(err, Error::InvalidMessage { .. }), "{err:?}");
    assert_eq!(err.field(), Some("html"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("limit of {MAX_DEPTH}")) && text.contains(found),
        "{text}"
    );
}

fn email(html: String) -> Email {
    Email::builder()
        .from("shop@example.com")
        .to("ann@example.org")
        .subject("deep")
        .html(html)
        .build()
        .unwrap()
}

#[test]
fn the_poison_message_is_refused_on_a_worker_sized_stack() {
    // the input from issue 9: it used to overflow the stack (abort, exit 134) in css-inline
    let poison = format!("<style>a{{}}</style>{}", "<span>".repeat(3000));
    let (direct, rendered) = on_worker_stack(move || {
        let direct = html::process_html(&poison, &HtmlOptions::default()).unwrap_err();
        let rendered = email(poison)
            .render(&RenderOptions::deterministic())
            .unwrap_err();
        (direct, rendered)
    });
    assert_too_deep(&direct, "at least 513");
    assert_too_deep(&rendered, "at least 513");
}

#[test]
fn two_hundred_thousand_nested_divs_are_refused_before_the_tree_is_built() {
    // quadratic in html5ever's tree builder (135 s); the check stops feeding the parser at
    // the first element past the limit, so "at least 513": it read no further than that
    for body in [
        "<div>".repeat(200_000),
        format!("{}{}", "<div>".repeat(200_000), "</div>".repeat(200_000)),
    ] {
        let err = on_worker_stack(move || {
            html::process_html(&body, &HtmlOptions::default()).unwrap_err()
        });
        assert_too_deep(&err, "at least 513");
    }
}

#[test]
fn unclosed_elements_inside_closed_ones_still_nest() {
    // a <p> closes the <p> before it, but not the spans left open inside it
    let open_in_p = format!("<p>{}x</p><p>y</p>", "<span>".repeat(MAX_DEPTH));
    let err = html::process_html(&open_in_p, &HtmlOptions::default()).unwrap_err();
    assert_too_deep(&err, "513");
    // paragraphs, list items and cells the parser closes itself do not add up
    for flat in [
        "<p>x".repeat(5 * MAX_DEPTH),
        format!("<ul>{}</ul>", "<li>x".repeat(5 * MAX_DEPTH)),
        format!("<table>{}</table>", "<tr><td>x".repeat(5 * MAX_DEPTH)),
    ] {
        html::process_html(&flat, &HtmlOptions::default()).unwrap();
    }
}

#[test]
fn a_body_at_the_limit_renders_and_one_level_more_is_refused() {
    let (at_limit, past) = on_worker_stack(|| {
        let at_limit = email(spans(MAX_DEPTH))
            .render(&RenderOptions::deterministic())
            .map(|bytes| {
                html::process_html(&spans(MAX_DEPTH), &HtmlOptions::default()).map(|o| (bytes, o))
            });
        let past = html::process_html(&spans(MAX_DEPTH + 1), &HtmlOptions::default());
        (at_limit, past)
    });
    let (bytes, out) = at_limit.unwrap().unwrap();
    assert_eq!(
        out.html.matches(r#"<span style="color: #c00;">"#).count(),
        MAX_DEPTH - 2,
        "every span kept, with its style inlined"
    );
    assert!(out.html.contains("deepest") && out.text.contains("deepest"));
    let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    assert!(parsed.body_html(0).unwrap().contains("deepest</span>"));
    assert_too_deep(&past.unwrap_err(), &(MAX_DEPTH + 1).to_string());
}

#[test]
fn a_deep_but_ordinary_body_renders_as_before() {
    // 100 closed levels of tables and divs, as some newsletter builders write them
    let mut body = String::from("<style>td{padding:1px} .x{color:#123}</style>");
    for i in 0..50 {
        body.push_str(&format!("<table><tr><td><div class=\"x\">{i}"));
    }
    for _ in 0..50 {
        body.push_str("</div></td></tr></table>");
    }
    let out = on_worker_stack(move || html::process_html(&body, &HtmlOptions::default()).unwrap());
    assert_eq!(
        out.html.matches(r#"<td style="padding: 1px;">"#).count(),
        50
    );
    assert_eq!(
        out.html
            .matches(r#"<div class="x" style="color: #123;">"#)
            .count(),
        50
    );
    assert_eq!(out.html.matches("</table>").count(), 50);
    assert_eq!(out.text.split_whitespace().count(), 50, "{}", out.text);
}
