//! mailroom composes, signs, queues and delivers email: unicode-first MIME, pluggable
//! transports, a durable background task queue, CSP-safe HTML bodies and DKIM.
//!
//! ```
//! use mailroom::{Email, RenderOptions};
//!
//! let email = Email::builder()
//!     .from("Zoë Müller <zoe@example.com>")
//!     .to("Jürgen <jurgen@bücher.example>")
//!     .subject("Ваш заказ готов")
//!     .text("Your order is ready.")
//!     .build()?;
//! let bytes = email.render(&RenderOptions::deterministic())?;
//! let text = String::from_utf8(bytes).unwrap();
//! assert!(text.contains("To: =?utf-8?"));
//! assert!(text.contains("<jurgen@xn--bcher-kva.example>"));
//! # Ok::<(), mailroom::Error>(())
//! ```
//!
//! # Modules
//!
//! | module | what it is for |
//! |---|---|
//! | [`message`] | [`Email`], its builder, [`Address`], [`Attachment`], the JSON form |
//! | [`render`] | MIME rendering, [`RenderOptions`], deterministic output |
//! | [`csp`] | Content-Security-Policy builder, nonces and hash sources; the tower layer (feature `web`) |
//! | [`html`] | the CSP-safe HTML body pipeline (feature `html`) |
//! | [`dkim`] | DKIM signing (feature `dkim`) |
//! | [`deliverability`] | one-click unsubscribe tokens, the suppression list, bounce and complaint parsing, the sender check (feature `deliverability`) |
//! | [`templates`] | email templates with partials (`FILE#BLOCK`), MJML (feature `templates`) |
//! | [`transport`] | the [`Transport`](transport::Transport) trait, SMTP, HTTP providers, file, console, memory, dummy |
//! | [`tasks`] | the background Tasks framework (knows nothing about email) and its backends |
//! | [`send_mail`] | the `send_mail` task that joins rendering, signing and delivery |
//! | [`web`] | the UI of `mailroom serve`: inbox, message and template previews (feature `web`) |
//! | [`testing`] | outbox assertions and test helpers |
//! | [`error`] | the one [`Error`] type and its classification, [`ErrorKind`] |
//!
//! # Features
//!
//! | feature | enables | default |
//! |---|---|---|
//! | `cli` | the `mailroom` command-line program (turns on `smtp`, `http`, `sqlite`, `postgres`, `html`, `dkim`, `templates`, `web`) | yes |
//! | `smtp` | SMTP delivery on lettre (tokio, rustls) | yes |
//! | `http` | HTTP API transports: SES, Mailgun, Postmark, SendGrid, Resend (reqwest, aws-sigv4) | yes |
//! | `sqlite` | the embedded SQLite task backend | yes |
//! | `html` | the CSP-safe HTML pipeline (html5ever, lol_html, css-inline) | yes |
//! | `dkim` | DKIM signing on mail-auth | yes |
//! | `postgres` | the PostgreSQL task backend | yes |
//! | `templates` | email templates on minijinja, MJML on mrml | yes |
//! | `deliverability` | unsubscribe tokens (hmac), bounce parsing and the sender check (mail-parser), the suppression list | yes |
//! | `web` | `csp::CspLayer` (tower) and the `mailroom serve` UI (axum, mail-parser; turns on `html`, `dkim`, `templates`) | yes |
//! | `html-fetch` | fetching remote images and stylesheets into HTML bodies | no |
//! | `test-util` | the task-backend conformance suite for outside backends | no |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod csp;
#[cfg(feature = "deliverability")]
#[cfg_attr(docsrs, doc(cfg(feature = "deliverability")))]
pub mod deliverability;
#[cfg(feature = "dkim")]
#[cfg_attr(docsrs, doc(cfg(feature = "dkim")))]
pub mod dkim;
pub mod error;
#[cfg(feature = "html")]
#[cfg_attr(docsrs, doc(cfg(feature = "html")))]
pub mod html;
pub mod message;
pub mod render;
pub mod send_mail;
pub mod tasks;
#[cfg(feature = "templates")]
#[cfg_attr(docsrs, doc(cfg(feature = "templates")))]
pub mod templates;
pub mod testing;
pub mod transport;
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub mod web;

pub use error::{DeliveryFailure, Error, ErrorKind, Result};
pub use message::{
    Address, AddressInput, Attachment, AttachmentBody, Email, EmailBuilder, Envelope,
    ListUnsubscribe,
};
pub use render::{RenderOptions, Rendered, Signer};
