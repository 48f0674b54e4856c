//! Partials in place and alone, through extends and include; escaping per block; the
//! subject on one line; strict undefined values; errors naming file and line.

use mailroom::templates::Templates;
use mailroom::{Error, ErrorKind};
use serde_json::json;

fn set() -> Templates {
    Templates::new()
        .with_template(
            "layout.html",
            "{% block html %}<main>{% block body %}body{% endblock %}</main>\n\
             {% block footer %}<footer>{{ shop }}</footer>{% endblock %}{% endblock %}",
        )
        .unwrap()
        .with_template(
            "child.html",
            "{% extends \"layout.html\" %}\n\
             {% block subject %}Hello {{ name }}{% endblock %}\n\
             {% block body %}<p>{{ name }}</p>{{ super() }}{% endblock %}\n\
             {% block text %}Hi {{ name }} & co{% endblock %}",
        )
        .unwrap()
        .with_template(
            "uses_footer.html",
            "{% block subject %}s{% endblock %}{% block html %}<div>{% include \"layout.html#footer\" %}</div>{% endblock %}",
        )
        .unwrap()
}

#[test]
fn a_block_renders_in_place_and_alone() {
    let t = set();
    let ctx = json!({"name": "Zoë", "shop": "B&C"});
    assert_eq!(
        t.render("layout.html", &ctx).unwrap(),
        "<main>body</main>\n<footer>B&amp;C</footer>"
    );
    assert_eq!(
        t.render("layout.html#footer", &ctx).unwrap(),
        "<footer>B&amp;C</footer>"
    );
}

#[test]
fn a_childs_block_renders_as_its_inheritance_resolves_it() {
    let t = set();
    let ctx = json!({"name": "<Zoë>", "shop": "B"});
    // The child's override of `body`, with the layout's body through super().
    assert_eq!(
        t.render("child.html#body", &ctx).unwrap(),
        "<p>&lt;Zoë&gt;</p>body"
    );
    // A block the child inherits: the layout's.
    assert_eq!(
        t.render("child.html#footer", &ctx).unwrap(),
        "<footer>B</footer>"
    );
    assert_eq!(
        t.render("child.html#html", &ctx).unwrap(),
        "<main><p>&lt;Zoë&gt;</p>body</main>\n<footer>B</footer>"
    );
}

#[test]
fn include_of_file_hash_block_renders_that_block_with_the_includers_context() {
    let t = set();
    let email = t
        .email("uses_footer.html", &json!({"shop": "Bücher <&>"}))
        .unwrap()
        .from("a@example.com")
        .to("b@example.org")
        .build()
        .unwrap();
    assert_eq!(
        email.html(),
        Some("<div><footer>Bücher &lt;&amp;&gt;</footer></div>")
    );
}

#[test]
fn html_escapes_and_text_and_subject_do_not() {
    let t = set();
    let ctx = json!({"name": "Ann \"A\" <a@b> & 'co'", "shop": "s"});
    let email = t
        .email("child.html", &ctx)
        .unwrap()
        .from("a@example.com")
        .to("b@example.org")
        .build()
        .unwrap();
    assert_eq!(email.subject(), Some("Hello Ann \"A\" <a@b> & 'co'"));
    assert_eq!(email.text(), Some("Hi Ann \"A\" <a@b> & 'co' & co"));
    let html = email.html().unwrap();
    assert!(
        html.contains("<p>Ann &quot;A&quot; &lt;a@b&gt; &amp; &#x27;co&#x27;</p>"),
        "{html}"
    );
}

#[test]
fn the_subject_is_one_line_and_a_value_with_a_line_break_is_refused() {
    let t = Templates::new()
        .with_template(
            "s.html",
            "{% block subject %}\n    Order {{ n }}\n    shipped\n{% endblock %}{% block text %}t{% endblock %}",
        )
        .unwrap();
    let email = t.email("s.html", &json!({"n": 7})).unwrap();
    let email = email
        .from("a@example.com")
        .to("b@example.org")
        .build()
        .unwrap();
    assert_eq!(email.subject(), Some("Order 7 shipped"));
    for evil in [
        "7\r\nBcc: x@evil.example",
        "7\nX: y",
        "7\u{2028}X: y",
        "7\u{85}",
    ] {
        let err = t.email("s.html", &json!({ "n": evil })).unwrap_err();
        assert!(
            matches!(err, Error::HeaderInjection { .. }),
            "{evil:?}: {err}"
        );
        assert_eq!(err.field(), Some("subject"));
        assert!(err.to_string().contains("s.html line 2"), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    // The text block may hold line breaks from values.
    let t = t
        .with_template(
            "t.html",
            "{% block subject %}s{% endblock %}{% block text %}{{ v }}{% endblock %}",
        )
        .unwrap();
    let email = t.email("t.html", &json!({"v": "a\nb"})).unwrap();
    assert_eq!(
        email
            .from("a@example.com")
            .to("b@example.org")
            .build()
            .unwrap()
            .text(),
        Some("a\nb")
    );
}

#[test]
fn an_undefined_value_names_the_file_the_line_and_the_value() {
    let t = Templates::new()
        .with_template(
            "order.html",
            "{% block subject %}Order{% endblock %}\n{% block text %}\nTotal: {{ order.total }}{% endblock %}",
        )
        .unwrap();
    let err = t.email("order.html", &json!({"order": {}})).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("order.html line 3: undefined value order.total"),
        "{err}"
    );
    // Lenient rendering leaves it empty.
    let email = t
        .lenient()
        .email("order.html", &json!({"order": {}}))
        .unwrap();
    let email = email
        .from("a@example.com")
        .to("b@example.org")
        .build()
        .unwrap();
    assert_eq!(email.text(), Some("Total:"));
}

#[test]
fn missing_blocks_files_and_syntax_errors_are_typed_and_name_file_and_line() {
    let t = set();
    let err = t
        .render("layout.html#nope", &json!({"shop": "s"}))
        .unwrap_err();
    assert_eq!(err.field(), Some("template"));
    assert!(
        err.to_string().contains("layout.html has no block `nope`"),
        "{err}"
    );

    let err = t.render("missing.html", &json!({})).unwrap_err();
    assert!(err.to_string().contains("missing.html"), "{err}");
    assert!(err.to_string().contains("not found"), "{err}");

    let t = t
        .with_template("inc.html", "{% block subject %}s{% endblock %}{% block html %}{% include \"gone.html#x\" %}{% endblock %}")
        .unwrap();
    let err = t.email("inc.html", &json!({})).unwrap_err();
    assert!(err.to_string().contains("gone.html"), "{err}");

    let err = Templates::new()
        .with_template(
            "bad.html",
            "line one\n{% block subject %}{{ x %}{% endblock %}",
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("bad.html line 2: syntax error"),
        "{err}"
    );

    let err = set()
        .email("layout.html", &json!({"shop": "s"}))
        .unwrap_err();
    assert!(err.to_string().contains("no `subject` block"), "{err}");
}

#[test]
fn a_templates_directory_never_reads_outside_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("t")).unwrap();
    std::fs::write(dir.path().join("secret.html"), "secret").unwrap();
    let t = Templates::from_dir(dir.path().join("t")).unwrap();
    for name in ["../secret.html", "/etc/passwd", "a/../../secret.html"] {
        let err = t.render(name, &json!({})).unwrap_err();
        assert!(!err.to_string().contains("secret\""), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}: {err}");
    }
    let err = Templates::from_dir(dir.path().join("nope")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
}
