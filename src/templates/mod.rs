//! Email templates with partials, on minijinja (Jinja2 syntax).
//!
//! One file holds a message: its `{% block subject %}`, `{% block text %}` and
//! `{% block html %}`; layouts are shared with `{% extends %}`, fragments with
//! `{% include %}`. Every `{% block NAME %}` is a *partial*: it renders in place in its
//! file, and alone when addressed as `FILE#NAME`: in [`Templates::render`], on the command
//! line, and inside another template (`{% include "layout.html#footer" %}` renders just
//! that block of the other file, with the includer's context).
//!
//! ```
//! use mailroom::templates::Templates;
//! use serde_json::json;
//!
//! let templates = Templates::new()
//!     .with_template("layout.html", "{% block html %}<main>{% block body %}{% endblock %}</main>\
//!         {% block footer %}<p>Thanks, {{ shop }}</p>{% endblock %}{% endblock %}")?
//!     .with_template("order.html", "{% extends \"layout.html\" %}\
//!         {% block subject %}Order {{ order.id }}\n  is ready{% endblock %}\
//!         {% block text %}Hi {{ name }}, order {{ order.id }} is ready.{% endblock %}\
//!         {% block body %}<p>Hi {{ name }}</p>{% endblock %}")?;
//! let context = json!({"name": "Zoë <3", "order": {"id": 42}, "shop": "Bücher"});
//! let email = templates
//!     .email("order.html", &context)?
//!     .from("shop@example.com")
//!     .to("zoe@example.org")
//!     .build()?;
//! assert_eq!(email.subject(), Some("Order 42 is ready"));
//! assert_eq!(email.text(), Some("Hi Zoë <3, order 42 is ready."));
//! assert_eq!(email.html(), Some("<main><p>Hi Zoë &lt;3</p></main><p>Thanks, Bücher</p>"));
//! assert_eq!(templates.render("order.html#footer", &context)?, "<p>Thanks, Bücher</p>");
//! # Ok::<(), mailroom::Error>(())
//! ```
//!
//! - **Escaping**: the `html` block escapes values (`<`, `&`, quotes); `text` and `subject`
//!   do not (they are not HTML). A partial rendered alone is escaped as HTML unless it is
//!   `subject` or `text`.
//! - **The subject** renders to one line: the template's own line breaks and indentation
//!   collapse to single spaces, while a *value* holding a line break (or any character a
//!   header refuses) is an error naming `subject`, never a second header.
//! - **Strict**: an undefined value is an error naming the file, the line and the value
//!   (`order.html line 3: undefined value order.total`); [`Templates::lenient`] renders it
//!   empty instead.
//! - **MJML**: an `html` block whose output is an `<mjml>` document (or a template whose
//!   name ends in `.mjml`) is compiled to HTML with mrml. The HTML then goes through the
//!   CSP-safe pipeline like any HTML body, so a template cannot smuggle a script in.

mod merge;
mod partial;

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::message::{Email, EmailBuilder};

pub use merge::{MergeRow, default_campaign, read_rows};

/// The environment variable naming the templates directory (`--templates`).
pub const TEMPLATES_ENV: &str = "MAILROOM_TEMPLATES";

/// Where template sources come from.
#[derive(Debug, Default)]
struct Sources {
    dir: Option<PathBuf>,
    strings: RwLock<HashMap<String, String>>,
}

impl Sources {
    /// The source of `name` (a path relative to the directory, `/`-separated), or `None`.
    fn file(&self, name: &str) -> std::result::Result<Option<String>, minijinja::Error> {
        let strings = self
            .strings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(source) = strings.get(name) {
            return Ok(Some(source.clone()));
        }
        drop(strings);
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let Some(relative) = safe_relative(name) else {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("`{name}` is not a path inside the templates directory"),
            ));
        };
        match std::fs::read_to_string(dir.join(relative)) {
            Ok(source) => Ok(Some(source)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("cannot read `{name}`: {e}"),
            )),
        }
    }

    /// The source minijinja compiles for `name`: a file, or for `FILE#BLOCK` that block's
    /// body (with the file's imports), so `{% include "FILE#BLOCK" %}` renders it alone.
    fn load(&self, name: &str) -> std::result::Result<Option<String>, minijinja::Error> {
        match name.split_once('#') {
            None => self.file(name),
            Some((file, block)) => partial::block_source(&|n| self.file(n), file, block),
        }
    }
}

/// `name` as a relative path with no `..`, `.`, empty or absolute parts.
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('\\') || name.starts_with('/') {
        return None;
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains(':') {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

/// Which part of a message is being rendered: it decides how values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Evaluating the file to reach its blocks: nothing is kept.
    Discard,
    /// The subject: values are written as given and may not hold a line break.
    Subject,
    /// Plain text: values are written as given.
    Text,
    /// HTML: values are escaped.
    Html,
}

thread_local! {
    /// The part this thread renders now. Rendering is synchronous, so a thread renders one
    /// part at a time; the formatter reads it.
    static PART: Cell<Part> = const { Cell::new(Part::Html) };
    /// Set by the formatter when a subject value held a line break (the error names it).
    static SUBJECT_BREAK: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Sets [`PART`] for the guard's life.
struct Rendering(Part);

impl Rendering {
    fn part(part: Part) -> Rendering {
        Rendering(PART.with(|p| p.replace(part)))
    }
}

impl Drop for Rendering {
    fn drop(&mut self) {
        PART.with(|p| p.set(self.0));
    }
}

/// A set of email templates: a directory, strings given by the application, or both.
///
/// Cheap to clone (shared); compiled templates are cached. See the [module docs](self).
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    sources: Arc<Sources>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("dir", &self.sources.dir)
            .field("undefined", &self.env.undefined_behavior())
            .finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::build(Sources::default(), UndefinedBehavior::Strict)
    }
}

impl Templates {
    /// An empty set; add templates with [`with_template`](Self::with_template) (e.g.
    /// `include_str!`ed into the binary).
    pub fn new() -> Templates {
        Self::default()
    }

    /// The templates under `dir`, addressed by their path relative to it
    /// (`emails/order.html`). Files are read when first used; a missing directory is an
    /// [`Error::Io`] naming it.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Result<Templates> {
        let dir = dir.into();
        if let Err(e) = std::fs::read_dir(&dir) {
            return Err(Error::io(dir.display().to_string(), e));
        }
        Ok(Self::build(
            Sources {
                dir: Some(dir),
                strings: RwLock::default(),
            },
            UndefinedBehavior::Strict,
        ))
    }

    /// Adds (or replaces) the template `name`; a syntax error is an error naming the
    /// template and the line.
    pub fn with_template(
        self,
        name: impl Into<String>,
        source: impl Into<String>,
    ) -> Result<Templates> {
        let name = name.into();
        let source = source.into();
        // Compile once to report syntax errors now, not at the first send.
        let check = Environment::new();
        check
            .template_from_named_str(&name, &source)
            .map_err(|e| template_error(&e, "template"))?;
        self.sources
            .strings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name, source);
        Ok(self.rebuilt(self.env.undefined_behavior()))
    }

    /// Renders an undefined value as empty instead of failing (Jinja's default; mailroom's
    /// is strict).
    #[must_use]
    pub fn lenient(self) -> Templates {
        self.rebuilt(UndefinedBehavior::Lenient)
    }

    /// The templates directory, when the set reads one.
    pub fn dir(&self) -> Option<&Path> {
        self.sources.dir.as_deref()
    }

    fn rebuilt(&self, undefined: UndefinedBehavior) -> Templates {
        // A fresh environment drops compiled templates that a new string may replace.
        Self::build_shared(Arc::clone(&self.sources), undefined)
    }

    fn build(sources: Sources, undefined: UndefinedBehavior) -> Templates {
        Self::build_shared(Arc::new(sources), undefined)
    }

    fn build_shared(sources: Arc<Sources>, undefined: UndefinedBehavior) -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(undefined);
        // Every file escapes as HTML; the formatter writes `subject` and `text` raw.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_formatter(format_value);
        let loader = Arc::clone(&sources);
        env.set_loader(move |name| loader.load(name));
        Templates {
            env: Arc::new(env),
            sources,
        }
    }

    /// Renders `name` — a file, or one block of it as `FILE#BLOCK` — with `context` (any
    /// `Serialize` value, e.g. `serde_json::json!({...})`). A block of the file's
    /// inheritance renders as the file resolves it (a child's override, `super()`).
    /// `FILE#subject` and `FILE#text` are written as text, everything else as HTML.
    pub fn render<C: Serialize + ?Sized>(&self, name: &str, context: &C) -> Result<String> {
        let context = Value::from(Serde(context));
        match name.split_once('#') {
            None => {
                let template = self.template(name)?;
                let _part = Rendering::part(Part::Html);
                template
                    .render(context)
                    .map_err(|e| template_error(&e, "template"))
            }
            Some((file, block)) => {
                let part = match block {
                    "subject" => Part::Subject,
                    "text" => Part::Text,
                    _ => Part::Html,
                };
                let mut blocks = self.blocks(file, context)?;
                let out = blocks.render(block, part)?;
                Ok(match part {
                    Part::Subject => one_line(&out),
                    _ => out,
                })
            }
        }
    }

    /// Renders the email template `name` with `context`: a builder with the subject, text
    /// and HTML of its `subject` (required), `text` and `html` blocks; add the sender,
    /// recipients and attachments as usual. Without a `text` block, the HTML pipeline's
    /// text alternative is used when the message is rendered.
    pub fn email<C: Serialize + ?Sized>(&self, name: &str, context: &C) -> Result<EmailBuilder> {
        let parts = self.parts(name, context)?;
        let mut builder = Email::builder().subject(parts.subject);
        if let Some(text) = parts.text {
            builder = builder.text(text);
        }
        if let Some(html) = parts.html {
            builder = builder.html(html);
        }
        Ok(builder)
    }

    /// Reads a message JSON ([`Email::from_json`]) that may name a `template` and give its
    /// `context` (a JSON object): the template's blocks fill `subject`, `text` and `html`,
    /// which the JSON must then leave out (an error naming the field otherwise). The
    /// message that comes out is complete: enqueue it and no worker needs the templates.
    pub fn email_from_json(&self, json: &str) -> Result<Email> {
        crate::message::json::from_json_filled(json, &|name, context| self.filled(name, context))
    }

    /// What the template `name` gives a message JSON.
    fn filled(
        &self,
        name: &str,
        context: &serde_json::Value,
    ) -> Result<crate::message::json::Filled> {
        let parts = self.parts(name, context)?;
        Ok(crate::message::json::Filled {
            subject: Some(parts.subject),
            text: parts.text,
            html: parts.html,
        })
    }

    /// The subject, text and HTML of the email template `name`.
    pub(crate) fn parts<C: Serialize + ?Sized>(&self, name: &str, context: &C) -> Result<Parts> {
        if name.contains('#') {
            return Err(Error::invalid(
                "template",
                format!(
                    "`{name}` names a block; an email template is a whole file (its subject, text and html blocks)"
                ),
            ));
        }
        let mut blocks = self.blocks(name, Value::from(Serde(context)))?;
        let subject = match blocks.render_optional("subject", Part::Subject)? {
            Some(subject) => one_line(&subject),
            None => {
                return Err(Error::invalid(
                    "template",
                    format!("{name} has no `subject` block; an email template needs one"),
                ));
            }
        };
        // A block's own first line break and trailing blank lines are layout, not text.
        let text = blocks
            .render_optional("text", Part::Text)?
            .map(|t| t.trim_start_matches(['\r', '\n']).trim_end().to_owned());
        let mut html = blocks.render_optional("html", Part::Html)?;
        if text.is_none() && html.is_none() {
            return Err(Error::invalid(
                "template",
                format!("{name} has neither a `text` nor an `html` block"),
            ));
        }
        if let Some(body) = &html
            && (name.ends_with(".mjml") || body.trim_start().starts_with("<mjml"))
        {
            html = Some(mjml(name, body)?);
        }
        Ok(Parts {
            subject,
            text,
            html,
        })
    }

    fn template(&self, name: &str) -> Result<minijinja::Template<'_, '_>> {
        self.env
            .get_template(name)
            .map_err(|e| template_error(&e, "template"))
    }

    /// `file` evaluated with `context`, ready to render its blocks.
    fn blocks(&self, file: &str, context: Value) -> Result<Blocks<'_>> {
        let template = self.template(file)?;
        let _part = Rendering::part(Part::Discard);
        let captured = template
            .render_captured_to(context, std::io::sink())
            .map_err(|e| template_error(&e, "template"))?;
        Ok(Blocks {
            file: file.to_owned(),
            captured,
        })
    }
}

/// What an email template gives a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    pub(crate) subject: String,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
}

/// A file evaluated once, its blocks rendered from the same state.
struct Blocks<'env> {
    file: String,
    captured: minijinja::Captured<'env>,
}

impl Blocks<'_> {
    fn render(&mut self, block: &str, part: Part) -> Result<String> {
        match self.render_optional(block, part)? {
            Some(out) => Ok(out),
            None => Err(Error::invalid(
                "template",
                format!("{} has no block `{block}`", self.file),
            )),
        }
    }

    /// The block rendered, or `None` when the file has no such block.
    fn render_optional(&mut self, block: &str, part: Part) -> Result<Option<String>> {
        let _part = Rendering::part(part);
        SUBJECT_BREAK.with(|b| b.set(None));
        let result = self
            .captured
            .with_state_mut(|state| state.render_block(block));
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e) if e.kind() == ErrorKind::UnknownBlock => Ok(None),
            Err(e) => match SUBJECT_BREAK.with(Cell::take) {
                Some(what) => Err(Error::injection(
                    "subject",
                    format!(
                        "{}: a value in the subject block contains {what}, which could start a new header; remove it",
                        place(&e).trim_end_matches(": ")
                    ),
                )),
                None => Err(template_error(&e, block_field(block))),
            },
        }
    }
}

/// The message field a block fills, for errors.
fn block_field(block: &str) -> &'static str {
    match block {
        "subject" => "subject",
        "text" => "text",
        "html" => "html",
        _ => "template",
    }
}

/// Writes one `{{ value }}`: escaped in HTML, as given in text, and in the subject only
/// when it holds no line break.
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> std::result::Result<(), minijinja::Error> {
    match PART.with(Cell::get) {
        Part::Discard => Ok(()),
        Part::Html => minijinja::escape_formatter(out, state, value),
        part @ (Part::Text | Part::Subject) => {
            if value.is_undefined() {
                return Ok(());
            }
            let text = value.to_string();
            if part == Part::Subject
                && let Some(what) = text.chars().find_map(crate::message::check::line_break)
            {
                SUBJECT_BREAK.with(|b| b.set(Some(what)));
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("a subject value contains {what}"),
                ));
            }
            out.write_str(&text)
                .map_err(|e| minijinja::Error::new(ErrorKind::WriteFailure, e.to_string()))
        }
    }
}

/// The subject on one line: each run of white space that holds a line break (the
/// template's own layout) becomes one space, and the ends are trimmed.
fn one_line(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut run = String::new();
    for c in subject.chars() {
        if c.is_whitespace() {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            if run.contains(['\n', '\r']) {
                out.push(' ');
            } else {
                out.push_str(&run);
            }
            run.clear();
        }
        out.push(c);
    }
    out.trim().to_owned()
}

/// `FILE line N: ` for an error, or `FILE: `.
fn place(e: &minijinja::Error) -> String {
    match (e.name(), e.line()) {
        (Some(name), Some(line)) => format!("{name} line {line}: "),
        (Some(name), None) => format!("{name}: "),
        _ => String::new(),
    }
}

/// A minijinja error as mailroom's: the file, the line and what went wrong, on `field`.
fn template_error(e: &minijinja::Error, field: &str) -> Error {
    let detail = e.detail().map(|d| format!(" ({d})")).unwrap_or_default();
    let what = match e.kind() {
        ErrorKind::UndefinedError => {
            let expression = e
                .range()
                .and_then(|range| e.template_source()?.get(range))
                .map(str::trim)
                .filter(|x| !x.is_empty());
            match expression {
                Some(x) => format!("undefined value {x}"),
                None => "undefined value".to_owned(),
            }
        }
        ErrorKind::TemplateNotFound => format!("template not found{detail}"),
        ErrorKind::SyntaxError => format!("syntax error{detail}"),
        kind => format!("{kind}{detail}"),
    };
    Error::invalid(field, format!("{}{what}", place(e)))
}

/// Compiles the MJML document `body` (the `html` block of `name`) to HTML.
fn mjml(name: &str, body: &str) -> Result<String> {
    let parsed = mrml::parse(body)
        .map_err(|e| Error::invalid("html", format!("{name}: the MJML does not parse: {e}")))?;
    parsed
        .element
        .render(&mrml::prelude::render::RenderOptions::default())
        .map_err(|e| Error::invalid("html", format!("{name}: the MJML does not render: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_subject_keeps_its_spaces_but_not_its_layout() {
        assert_eq!(
            one_line("  Order 42\n    is  ready \r\n"),
            "Order 42 is  ready"
        );
    }

    #[test]
    fn names_outside_the_directory_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a\\b",
            "c:x",
            "",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
        assert_eq!(
            safe_relative("emails/order.html").unwrap(),
            Path::new("emails/order.html")
        );
    }
}
