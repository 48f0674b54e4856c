//! The message model: [`Email`], its builder, [`Address`] and [`Attachment`].
//!
//! An `Email` is always valid: [`EmailBuilder::build`] and the JSON reader check every
//! address, header and attachment, so rendering never meets a value that could break out
//! of its header.

mod address;
mod attachment;
pub(crate) mod check;
mod envelope;
pub(crate) mod json;
mod strict_json;
mod unsubscribe;

use chrono::{DateTime, FixedOffset};

pub use address::Address;
#[cfg(any(feature = "dkim", feature = "deliverability"))]
pub(crate) use address::ascii_domain;
pub(crate) use address::phrase_string;
pub use attachment::{Attachment, AttachmentBody};
pub use envelope::Envelope;
pub use unsubscribe::{ListUnsubscribe, ONE_CLICK};

use crate::error::{Error, Result};
use check::{check_header_name, check_id, reject_line_breaks, reserved_header_hint};

/// A new Message-ID at `domain`, without its angle brackets: `UUID@domain`, the UUID of
/// version 7 (time-ordered, 74 random bits), so ids sort by creation time and the
/// idempotency index they key stays append-mostly. The one generator: the renderer (for a
/// message without an id) and `send_mail` (which fixes the id before queueing) both use it.
pub(crate) fn new_message_id(domain: &str) -> String {
    format!("{}@{domain}", uuid::Uuid::now_v7().simple())
}

/// One email message.
///
/// Build one with [`Email::builder`], or read the JSON form with [`Email::from_json`];
/// render it with [`Email::to_bytes`] or [`Email::render`](crate::Email::render).
///
/// ```
/// use mailroom::Email;
///
/// let email = Email::builder()
///     .from("Zoë Müller <zoe@example.com>")
///     .to("Jürgen <jurgen@bücher.example>")
///     .subject("Ваш заказ готов")
///     .text("Your order is ready.")
///     .html("<p>Your order is <b>ready</b>.</p>")
///     .build()?;
/// assert_eq!(email.recipients().len(), 1);
/// assert!(email.body_contains("ready"));
/// let bytes = email.to_bytes()?;
/// assert!(bytes.starts_with(b"From: "));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub(crate) from: Address,
    pub(crate) sender: Option<Address>,
    pub(crate) to: Vec<Address>,
    pub(crate) cc: Vec<Address>,
    pub(crate) bcc: Vec<Address>,
    pub(crate) reply_to: Vec<Address>,
    pub(crate) subject: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) attachments: Vec<Attachment>,
    pub(crate) date: Option<DateTime<FixedOffset>>,
    pub(crate) message_id: Option<String>,
}

impl Email {
    /// Starts a builder.
    pub fn builder() -> EmailBuilder {
        EmailBuilder::default()
    }

    /// Reads the JSON form, validating it as the builder does.
    ///
    /// The form is one object: `from` (required), `sender`, and the lists `to`, `cc`,
    /// `bcc`, `reply_to`, where each address is a string (`"Zoë <zoe@example.com>"`) or an
    /// object `{"email": …, "name": …}`; `subject`, `text`, `html`; `headers`, a list of
    /// `[name, value]` pairs; `attachments`, each with `filename`, `content_type`, its
    /// content as `content_base64` (or an attached message as `message`, in this same
    /// form), `inline` and `content_id`; `date` (RFC 3339) and `message_id`;
    /// `list_unsubscribe`, an object with `url`, `mailto` and `one_click` (see
    /// [`ListUnsubscribe`]; written back as the headers it makes). A field not
    /// listed here is refused; every error names the field at fault (`to[1]`,
    /// `attachments[0].content_base64`). [`to_json`](Email::to_json) writes this form, and
    /// reading it back gives an equal `Email`. The repository's `fixtures/messages/` holds
    /// examples.
    pub fn from_json(json: &str) -> Result<Email> {
        json::from_json(json)
    }

    /// Writes the JSON form; reading it back gives an equal `Email`.
    pub fn to_json(&self) -> String {
        json::to_json(self)
    }

    /// The author (`From`).
    pub fn from(&self) -> &Address {
        &self.from
    }
    /// The `Sender`, when it differs from the author.
    pub fn sender(&self) -> Option<&Address> {
        self.sender.as_ref()
    }
    /// `To` recipients.
    pub fn to(&self) -> &[Address] {
        &self.to
    }
    /// `Cc` recipients.
    pub fn cc(&self) -> &[Address] {
        &self.cc
    }
    /// `Bcc` recipients: delivered to, never written into the message.
    pub fn bcc(&self) -> &[Address] {
        &self.bcc
    }
    /// `Reply-To` addresses.
    pub fn reply_to(&self) -> &[Address] {
        &self.reply_to
    }
    /// The subject.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// The plain-text body.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
    /// The HTML body.
    pub fn html(&self) -> Option<&str> {
        self.html.as_deref()
    }
    /// Extra headers, in order (a name may repeat).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    /// Attachments and inline parts, in order.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }
    /// The date, when set (rendering adds the current time otherwise).
    pub fn date(&self) -> Option<DateTime<FixedOffset>> {
        self.date
    }
    /// The Message-ID with its angle brackets, when set (rendering adds one otherwise).
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// Everyone the message goes to: To, then Cc, then Bcc (as Django's `recipients()`).
    pub fn recipients(&self) -> Vec<&Address> {
        self.to.iter().chain(&self.cc).chain(&self.bcc).collect()
    }

    /// The envelope sender: `Sender` when set, else `From`.
    pub fn envelope_from(&self) -> &Address {
        self.sender.as_ref().unwrap_or(&self.from)
    }

    /// `true` when `needle` is in every body the message has (text and HTML), as Django's
    /// `body_contains()`; `false` when it has no body.
    pub fn body_contains(&self, needle: &str) -> bool {
        let bodies: Vec<&str> = self
            .text
            .iter()
            .chain(&self.html)
            .map(String::as_str)
            .collect();
        !bodies.is_empty() && bodies.iter().all(|b| b.contains(needle))
    }

    /// `true` when writing this message needs SMTPUTF8 (a non-ASCII local part somewhere).
    pub fn needs_smtputf8(&self) -> bool {
        self.all_addresses().any(Address::needs_smtputf8)
    }

    pub(crate) fn all_addresses(&self) -> impl Iterator<Item = &Address> {
        std::iter::once(&self.from)
            .chain(&self.sender)
            .chain(&self.to)
            .chain(&self.cc)
            .chain(&self.bcc)
            .chain(&self.reply_to)
    }

    /// Puts a processed HTML body in place (the HTML pipeline's result), adds the inline
    /// `parts` it references and, when given, the generated `text`, checking each new
    /// value as [`EmailBuilder::build`] does; the rest of the message was checked when it
    /// was built and is kept as it is (attachment bytes shared, not copied).
    #[cfg(feature = "html")]
    pub(crate) fn set_processed_html(
        &mut self,
        html: String,
        parts: Vec<Attachment>,
        text: Option<String>,
    ) -> Result<()> {
        if let Some(text) = &text {
            reject_nul("text", text)?;
        }
        reject_nul("html", &html)?;
        for (i, part) in parts.iter().enumerate() {
            let at = self.attachments.len() + i;
            part.validate(&format!("attachments[{at}]"))?;
            if let Some(id) = &part.content_id
                && (self.attachments.iter().chain(&parts[..i]))
                    .any(|a| a.content_id.as_ref() == Some(id))
            {
                return Err(Error::invalid(
                    format!("attachments[{at}].content_id"),
                    format!("`{id}` is used by another part; Content-IDs must be unique"),
                ));
            }
        }
        self.html = Some(html);
        self.attachments.extend(parts);
        if text.is_some() {
            self.text = text;
        }
        Ok(())
    }

    /// A builder holding this message's values, to derive a changed copy.
    pub fn to_builder(&self) -> EmailBuilder {
        EmailBuilder {
            from: Some(AddressInput(Ok(self.from.clone()))),
            sender: self.sender.clone().map(|a| AddressInput(Ok(a))),
            to: self
                .to
                .iter()
                .cloned()
                .map(|a| AddressInput(Ok(a)))
                .collect(),
            cc: self
                .cc
                .iter()
                .cloned()
                .map(|a| AddressInput(Ok(a)))
                .collect(),
            bcc: self
                .bcc
                .iter()
                .cloned()
                .map(|a| AddressInput(Ok(a)))
                .collect(),
            reply_to: self
                .reply_to
                .iter()
                .cloned()
                .map(|a| AddressInput(Ok(a)))
                .collect(),
            subject: self.subject.clone(),
            text: self.text.clone(),
            html: self.html.clone(),
            headers: self.headers.clone(),
            attachments: self.attachments.iter().cloned().map(Ok).collect(),
            date: self.date,
            message_id: self.message_id.clone(),
            list_unsubscribe: None,
        }
    }
}

/// Anything that names an address: a string (`"Name <a@b>"`), an [`Address`], or a
/// `(name, email)` pair. Parsing happens in [`EmailBuilder::build`], which reports the field.
#[derive(Debug, Clone)]
pub struct AddressInput(std::result::Result<Address, (Option<String>, String)>);

impl From<&str> for AddressInput {
    fn from(s: &str) -> Self {
        AddressInput(Err((None, s.to_owned())))
    }
}
impl From<String> for AddressInput {
    fn from(s: String) -> Self {
        AddressInput(Err((None, s)))
    }
}
impl From<&String> for AddressInput {
    fn from(s: &String) -> Self {
        AddressInput(Err((None, s.clone())))
    }
}
impl From<Address> for AddressInput {
    fn from(a: Address) -> Self {
        AddressInput(Ok(a))
    }
}
impl From<&Address> for AddressInput {
    fn from(a: &Address) -> Self {
        AddressInput(Ok(a.clone()))
    }
}
impl<N: Into<String>, E: Into<String>> From<(N, E)> for AddressInput {
    fn from((name, email): (N, E)) -> Self {
        AddressInput(Err((Some(name.into()), email.into())))
    }
}

impl AddressInput {
    fn resolve(self, field: &str) -> Result<Address> {
        match self.0 {
            Ok(a) => Ok(a),
            Err((None, text)) => Address::parse_field(field, &text),
            Err((Some(name), email)) => Address::from_parts(field, Some(&name), &email),
        }
    }
}

/// Builds an [`Email`]; [`build`](EmailBuilder::build) validates everything and names the
/// first field at fault.
#[derive(Debug, Default)]
#[must_use]
pub struct EmailBuilder {
    from: Option<AddressInput>,
    sender: Option<AddressInput>,
    to: Vec<AddressInput>,
    cc: Vec<AddressInput>,
    bcc: Vec<AddressInput>,
    reply_to: Vec<AddressInput>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    headers: Vec<(String, String)>,
    attachments: Vec<Result<Attachment>>,
    date: Option<DateTime<FixedOffset>>,
    message_id: Option<String>,
    list_unsubscribe: Option<ListUnsubscribe>,
}

impl EmailBuilder {
    /// Sets the author (`From`).
    pub fn from(mut self, address: impl Into<AddressInput>) -> Self {
        self.from = Some(address.into());
        self
    }
    /// Sets the `Sender` (and the envelope sender).
    pub fn sender(mut self, address: impl Into<AddressInput>) -> Self {
        self.sender = Some(address.into());
        self
    }
    /// Adds a `To` recipient.
    pub fn to(mut self, address: impl Into<AddressInput>) -> Self {
        self.to.push(address.into());
        self
    }
    /// Adds a `Cc` recipient.
    pub fn cc(mut self, address: impl Into<AddressInput>) -> Self {
        self.cc.push(address.into());
        self
    }
    /// Adds a `Bcc` recipient (delivered to, never written into the headers).
    pub fn bcc(mut self, address: impl Into<AddressInput>) -> Self {
        self.bcc.push(address.into());
        self
    }
    /// Adds a `Reply-To` address.
    pub fn reply_to(mut self, address: impl Into<AddressInput>) -> Self {
        self.reply_to.push(address.into());
        self
    }
    /// Sets the subject (any Unicode; no line breaks).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    /// Sets the plain-text body.
    pub fn text(mut self, body: impl Into<String>) -> Self {
        self.text = Some(body.into());
        self
    }
    /// Sets the HTML body.
    pub fn html(mut self, body: impl Into<String>) -> Self {
        self.html = Some(body.into());
        self
    }
    /// Appends an extra header; a name may repeat, order is kept.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Adds an attachment or inline part.
    pub fn attachment(mut self, attachment: Attachment) -> Self {
        self.attachments.push(Ok(attachment));
        self
    }
    /// Attaches bytes under a file name; the type is guessed from the name.
    pub fn attach(self, filename: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.attachment(Attachment::new(filename, content))
    }
    /// Attaches a file read from disk (an unreadable file is reported by `build`).
    pub fn attach_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.attachments.push(Attachment::from_path(path));
        self
    }
    /// Adds an inline part the HTML references as `cid:<content_id>`.
    pub fn inline(
        self,
        content_id: impl Into<String>,
        filename: impl Into<String>,
        content: impl Into<Vec<u8>>,
    ) -> Self {
        self.attachment(Attachment::inline(content_id, filename, content))
    }
    /// Attaches another message as `message/rfc822`.
    pub fn attach_message(self, email: Email) -> Self {
        self.attachment(Attachment::message(email))
    }
    /// Sets the date (rendering adds the current time otherwise).
    pub fn date(mut self, date: DateTime<FixedOffset>) -> Self {
        self.date = Some(date);
        self
    }
    /// Sets the Message-ID, angle brackets included: `<id@example.com>`.
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets how recipients unsubscribe: writes `List-Unsubscribe` (RFC 2369) and, for
    /// one-click, `List-Unsubscribe-Post` (RFC 8058), which DKIM signs. `build` refuses it
    /// beside a `List-Unsubscribe` or `List-Unsubscribe-Post` given with
    /// [`header`](Self::header), and one-click without an `https` URL.
    pub fn list_unsubscribe(mut self, unsubscribe: ListUnsubscribe) -> Self {
        self.list_unsubscribe = Some(unsubscribe);
        self
    }

    /// Validates and builds the message.
    pub fn build(mut self) -> Result<Email> {
        let from = self
            .from
            .ok_or_else(|| Error::invalid("from", "is required"))?
            .resolve("from")?;
        let sender = self.sender.map(|s| s.resolve("sender")).transpose()?;
        let list = |items: Vec<AddressInput>, name: &str| -> Result<Vec<Address>> {
            items
                .into_iter()
                .enumerate()
                .map(|(i, a)| a.resolve(&format!("{name}[{i}]")))
                .collect()
        };
        let to = list(self.to, "to")?;
        let cc = list(self.cc, "cc")?;
        let bcc = list(self.bcc, "bcc")?;
        let reply_to = list(self.reply_to, "reply_to")?;
        if let Some(subject) = &self.subject {
            reject_line_breaks("subject", subject)?;
        }
        if let Some(text) = &self.text {
            reject_nul("text", text)?;
        }
        if let Some(html) = &self.html {
            reject_nul("html", html)?;
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            let name_field = format!("headers[{i}].name");
            check_header_name(&name_field, name)?;
            if let Some(hint) = reserved_header_hint(name) {
                return Err(Error::invalid(
                    name_field,
                    format!("`{name}` cannot be set as an extra header; {hint}"),
                ));
            }
            reject_line_breaks(&format!("headers[{i}].value"), value)?;
        }
        if let Some(unsubscribe) = &self.list_unsubscribe {
            if let Some(i) = self.headers.iter().position(|(name, _)| {
                name.eq_ignore_ascii_case("List-Unsubscribe")
                    || name.eq_ignore_ascii_case("List-Unsubscribe-Post")
            }) {
                return Err(Error::invalid(
                    format!("headers[{i}].name"),
                    "is written from `list_unsubscribe`; give one or the other",
                ));
            }
            // Written as extra headers: the renderer, DKIM and the HTTP providers that
            // take headers as JSON all see them like any other.
            self.headers.extend(unsubscribe.headers()?);
        }
        let attachments = self
            .attachments
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let a = a?;
                a.validate(&format!("attachments[{i}]"))?;
                Ok(a)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut ids = std::collections::HashSet::new();
        for (i, a) in attachments.iter().enumerate() {
            if let Some(id) = &a.content_id
                && !ids.insert(id.as_str())
            {
                return Err(Error::invalid(
                    format!("attachments[{i}].content_id"),
                    format!("`{id}` is used by another part; Content-IDs must be unique"),
                ));
            }
        }
        if let Some(id) = &self.message_id {
            let inner = id
                .strip_prefix('<')
                .and_then(|s| s.strip_suffix('>'))
                .ok_or_else(|| {
                    Error::invalid(
                        "message_id",
                        format!(
                            "`{id}` must be enclosed in angle brackets, like `<id@example.com>`"
                        ),
                    )
                })?;
            check_id("message_id", inner)?;
            if !inner.contains('@') {
                return Err(Error::invalid(
                    "message_id",
                    format!("`{id}` needs an `@`, like `<id@example.com>`"),
                ));
            }
        }
        Ok(Email {
            from,
            sender,
            to,
            cc,
            bcc,
            reply_to,
            subject: self.subject,
            text: self.text,
            html: self.html,
            headers: self.headers,
            attachments,
            date: self.date,
            message_id: self.message_id,
        })
    }
}

fn reject_nul(field: &str, body: &str) -> Result<()> {
    if body.contains('\0') {
        return Err(Error::invalid(
            field,
            "contains a NUL character, which no mail body may carry",
        ));
    }
    Ok(())
}
