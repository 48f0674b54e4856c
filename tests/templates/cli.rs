//! `--templates`, `--template NAME#BLOCK --context` on the command line.

use crate::send_mail::{run, stderr};

fn dir() -> String {
    super::examples_dir().display().to_string()
}

#[test]
fn render_prints_one_partial_with_a_context_file() {
    let context = super::examples_dir().join("order.json");
    let context = context.to_str().unwrap();
    let out = run(&[
        "render",
        "--templates",
        &dir(),
        "--template",
        "order.html#subject",
        "--context",
        context,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Order A-1042 confirmed: 2 items, € 48.50\n"
    );
    let out = run(&[
        "render",
        "--templates",
        &dir(),
        "--template",
        "layout.html#footer",
        "--context",
        context,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let footer = String::from_utf8(out.stdout).unwrap();
    assert!(
        footer.starts_with("<p class=\"muted\">Bücher &amp; Co"),
        "{footer}"
    );
    // A context that leaves a value of the file undefined: exit 65 naming the file, the
    // line and the value (the file is evaluated whole, so the first one it meets).
    let out = run(&[
        "render",
        "--templates",
        &dir(),
        "--template",
        "order.html#subject",
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("order.html line 6: undefined value customer.name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn render_and_send_read_a_message_json_that_names_a_template() {
    let message = super::examples_dir().join("order_message.json");
    let message = message.to_str().unwrap();
    let out = run(&["render", "--deterministic", "--templates", &dir(), message]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let parsed = mail_parser::MessageParser::default()
        .parse(&out.stdout)
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Order A-1042 confirmed: 2 items, € 48.50")
    );

    let sent = tempfile::tempdir().unwrap();
    let via = format!("file:{}", sent.path().display());
    let out = run(&["send", "--via", &via, "--templates", &dir(), message]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(sent.path()).unwrap().count(), 1);

    // Without templates the message cannot be read: exit 65 naming `template`.
    let out = run(&[
        "render",
        "--templates",
        sent.path().to_str().unwrap(),
        message,
    ]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("template"), "{}", stderr(&out));
}
