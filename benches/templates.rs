//! Templates: the order-confirmation example rendered to a message's subject, text and
//! HTML by mailroom, by minijinja used directly on the same files (the same evaluation and
//! block renders, without mailroom's escaping rules, checks or MJML step), and by Tera
//! (three templates of its own syntax for the same output). Then a mail merge: rows per
//! second from a CSV into SQLite, rendering included.
//!
//! `cargo bench --all-features --bench templates`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailroom::send_mail;
use mailroom::tasks::{Registry, SqliteBackend, SqliteOptions};
use mailroom::templates::{Templates, read_rows};

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates")
}

fn context() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(examples().join("order.json")).unwrap()).unwrap()
}

/// The same layout and order template in Tera's syntax (no inline `if`, no partial
/// include): three templates, one per part.
fn tera() -> tera::Tera {
    let mut t = tera::Tera::default();
    let layout = std::fs::read_to_string(examples().join("layout.html")).unwrap();
    let layout = layout.replace(
        "{#- The shared layout: every email's HTML and text end the same way. -#}\n",
        "",
    );
    t.add_raw_templates(vec![
        ("layout.html", layout.as_str()),
        (
            "subject",
            "Order {{ order.number }} confirmed: {{ order.items | length }} item{% if order.items | length != 1 %}s{% endif %}, {{ order.total }}",
        ),
        (
            "html",
            "{% extends \"layout.html\" %}{% block title %}Thank you, {{ customer.name }}!{% endblock %}\
             {% block body %}<p>We have your order <strong>{{ order.number }}</strong> and will ship it soon.</p><table>\
             {% for item in order.items %}<tr><td>{{ item.quantity }} × {{ item.name }}</td><td>{{ item.price }}</td></tr>{% endfor %}\
             <tr><td><strong>Total</strong></td><td><strong>{{ order.total }}</strong></td></tr></table>\
             <p><a class=\"button\" href=\"{{ order.url }}\">Track your order</a></p>{% endblock %}",
        ),
        (
            "text",
            "Thank you, {{ customer.name }}!\n\nWe have your order {{ order.number }} and will ship it soon.\n\
             {% for item in order.items %}\n  {{ item.quantity }} x {{ item.name }}  {{ item.price }}{% endfor %}\n  Total: {{ order.total }}\n\n\
             Track your order: {{ order.url }}\n\n--\n{{ shop.name }}, {{ shop.address }}\n{{ shop.url }}",
        ),
    ])
    .unwrap();
    t.autoescape_on(vec!["html", "layout.html"]);
    t
}

fn bench_render(c: &mut Criterion) {
    let ctx = context();
    let templates = Templates::from_dir(examples()).unwrap();
    let mut direct = minijinja::Environment::new();
    direct.set_loader(minijinja::path_loader(examples()));
    // minijinja has no `FILE#BLOCK` include: give it the block's text under that name, as
    // an application using minijinja directly would.
    let layout = std::fs::read_to_string(examples().join("layout.html")).unwrap();
    let start = layout.find("{% block text_footer %}").unwrap() + "{% block text_footer %}".len();
    let end = start + layout[start..].find("{%- endblock %}").unwrap();
    direct
        .add_template_owned("layout.html#text_footer", layout[start..end].to_owned())
        .unwrap();
    let tera = tera();
    let tera_ctx = tera::Context::from_serialize(&ctx).unwrap();

    let mut group = c.benchmark_group("templates_order_confirmation");
    group.bench_function("mailroom_email", |b| {
        b.iter(|| templates.email("order.html", &ctx).unwrap());
    });
    group.bench_function("minijinja_direct", |b| {
        b.iter(|| {
            let template = direct.get_template("order.html").unwrap();
            let value = minijinja::Value::from(minijinja::value::Serde(&ctx));
            let mut captured = template.render_captured_to(value, std::io::sink()).unwrap();
            captured.with_state_mut(|state| {
                (
                    state.render_block("subject").unwrap(),
                    state.render_block("text").unwrap(),
                    state.render_block("html").unwrap(),
                )
            })
        });
    });
    group.bench_function("tera", |b| {
        b.iter(|| {
            (
                tera.render("subject", &tera_ctx).unwrap(),
                tera.render("text", &tera_ctx).unwrap(),
                tera.render("html", &tera_ctx).unwrap(),
            )
        });
    });
    group.finish();
}

const ROWS: u64 = 100_000;

fn bench_merge(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let templates_dir = dir.path().join("templates");
    std::fs::create_dir(&templates_dir).unwrap();
    std::fs::write(
        templates_dir.join("welcome.html"),
        "{% block subject %}Welcome, {{ name }}{% endblock %}\
         {% block text %}Hi {{ name }}, your code is {{ code }}.{% endblock %}\
         {% block html %}<p>Hi <b>{{ name }}</b>, your code is <code>{{ code }}</code>.</p>{% endblock %}",
    )
    .unwrap();
    let templates = Templates::from_dir(&templates_dir).unwrap();
    let message = r#"{"from": "Shop <hello@shop.example>", "template": "welcome.html"}"#;
    let mut csv = String::from("email,name,code\n");
    for i in 0..ROWS {
        csv.push_str(&format!("user{i}@example.org,User {i},C{i}\n"));
    }
    let rows_path = dir.path().join("rows.csv");
    std::fs::write(&rows_path, csv).unwrap();

    let mut group = c.benchmark_group("templates_merge_sqlite");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("csv_rows_rendered_and_enqueued", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let url = dir
                        .path()
                        .join(format!("merge-{i}-{}.db", uuid::Uuid::new_v4()));
                    let backend = SqliteBackend::connect_with(SqliteOptions::new(url))
                        .await
                        .unwrap();
                    let _ = Registry::new();
                    let start = Instant::now();
                    let rows = read_rows(&rows_path).unwrap();
                    let emails: Vec<_> = templates
                        .merge(message, &rows, "bench")
                        .unwrap()
                        .into_iter()
                        .map(|(_, e)| e.unwrap())
                        .collect();
                    let ids = send_mail::enqueue_many(&backend, &emails, "default")
                        .await
                        .unwrap();
                    total += start.elapsed();
                    assert_eq!(ids.len() as u64, ROWS);
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench_render, bench_merge);
criterion_main!(benches);
