//! Rendering one standard message — text + HTML alternative, a 20 KB inline PNG, a 200 KB
//! PDF attachment, unicode names and subject — with mailroom, with mail-builder used
//! directly, and with lettre's builder, in one run.
//!
//! cargo bench --bench render

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as MbAddress;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::{BodyPart, MimePart};
use mailroom::{Email, RenderOptions};

struct Inputs {
    png: Vec<u8>,
    pdf: Vec<u8>,
    text: String,
    html: String,
}

const SUBJECT: &str = "Ваш заказ №12345 готов — Grüße aus Köln 🎉";

fn inputs() -> Inputs {
    // Pseudo-random bytes so base64 cannot be shortcut.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut bytes = |n: usize| {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect::<Vec<u8>>()
    };
    Inputs {
        png: bytes(20 * 1024),
        pdf: bytes(200 * 1024),
        text: "Hallo Jürgen,\nIhre Bestellung ist fertig. Vielen Dank für Ihren Einkauf!\n"
            .repeat(20),
        html:
            "<p>Hallo <b>Jürgen</b>,</p><p>Ihre Bestellung ist fertig.</p><img src=\"cid:logo\">\n"
                .repeat(20),
    }
}

fn mailroom_email(i: &Inputs) -> Email {
    Email::builder()
        .from("Zoë Müller <zoe@example.com>")
        .to("Jürgen Groß <jurgen@bücher.example>")
        .subject(SUBJECT)
        .text(i.text.clone())
        .html(i.html.clone())
        .inline("logo", "logo.png", i.png.clone())
        .attach("rechnung-über.pdf", i.pdf.clone())
        .build()
        .unwrap()
}

fn mail_builder_direct(i: &Inputs) -> Vec<u8> {
    let body = MimePart::new(
        "multipart/mixed",
        BodyPart::Multipart(vec![
            MimePart::new(
                "multipart/alternative",
                BodyPart::Multipart(vec![
                    MimePart::new(
                        ContentType::new("text/plain").attribute("charset", "utf-8"),
                        BodyPart::Text(i.text.as_str().into()),
                    ),
                    MimePart::new(
                        "multipart/related",
                        BodyPart::Multipart(vec![
                            MimePart::new(
                                ContentType::new("text/html").attribute("charset", "utf-8"),
                                BodyPart::Text(i.html.as_str().into()),
                            ),
                            MimePart::new("image/png", BodyPart::Binary(i.png.as_slice().into()))
                                .header(
                                    "Content-Disposition",
                                    ContentType::new("inline").attribute("filename", "logo.png"),
                                )
                                .cid("logo"),
                        ]),
                    ),
                ]),
            ),
            MimePart::new("application/pdf", BodyPart::Binary(i.pdf.as_slice().into()))
                .attachment("rechnung-über.pdf"),
        ]),
    );
    MessageBuilder::new()
        .from(MbAddress::new_address(
            Some("Zoë Müller"),
            "zoe@example.com",
        ))
        .to(MbAddress::new_address(
            Some("Jürgen Groß"),
            "jurgen@xn--bcher-kva.example",
        ))
        .subject(SUBJECT)
        .body(body)
        .write_to_vec()
        .unwrap()
}

fn lettre_builder(i: &Inputs) -> Vec<u8> {
    use lettre::message::header::ContentType as LCt;
    use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
    let from: Mailbox = "Zoë Müller <zoe@example.com>".parse().unwrap();
    let to: Mailbox = "Jürgen Groß <jurgen@xn--bcher-kva.example>"
        .parse()
        .unwrap();
    lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(SUBJECT)
        .multipart(
            MultiPart::mixed()
                .multipart(
                    MultiPart::alternative()
                        .singlepart(SinglePart::plain(i.text.clone()))
                        .multipart(
                            MultiPart::related()
                                .singlepart(SinglePart::html(i.html.clone()))
                                .singlepart(
                                    Attachment::new_inline("logo".into())
                                        .body(i.png.clone(), LCt::parse("image/png").unwrap()),
                                ),
                        ),
                )
                .singlepart(
                    Attachment::new("rechnung-über.pdf".into())
                        .body(i.pdf.clone(), LCt::parse("application/pdf").unwrap()),
                ),
        )
        .unwrap()
        .formatted()
}

fn render(c: &mut Criterion) {
    let i = inputs();
    let email = mailroom_email(&i);
    let mut group = c.benchmark_group("render_standard_message");
    // The writer alone: mail-builder and lettre do no HTML processing either.
    group.bench_function("mailroom", |b| {
        b.iter(|| {
            black_box(&email)
                .render(&RenderOptions::new().raw_html())
                .unwrap()
        })
    });
    group.bench_function("mailroom_build_and_render", |b| {
        b.iter(|| {
            mailroom_email(black_box(&i))
                .render(&RenderOptions::new().raw_html())
                .unwrap()
        })
    });
    // The default: the CSP-safe HTML pipeline runs before writing (feature `html`).
    group.bench_function("mailroom_with_html_pipeline", |b| {
        b.iter(|| black_box(&email).render(&RenderOptions::new()).unwrap())
    });
    // The pipeline on the same message with a `<style>` sheet in the HTML: css-inline and
    // the lol_html pass (style cleaning) run too, which the standard message does not need.
    let styled = {
        let html = format!(
            "<style>p {{ color: #333; margin: 0 0 1em }} b {{ color: #c00 }}</style>{}",
            i.html
        );
        email.to_builder().html(html).build().unwrap()
    };
    group.bench_function("mailroom_with_html_pipeline_styled", |b| {
        b.iter(|| black_box(&styled).render(&RenderOptions::new()).unwrap())
    });
    group.bench_function("mail_builder", |b| {
        b.iter(|| mail_builder_direct(black_box(&i)))
    });
    group.bench_function("lettre", |b| b.iter(|| lettre_builder(black_box(&i))));
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
