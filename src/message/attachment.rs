//! Attachments and inline parts.

use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::message::Email;
use crate::message::check::{check_id, reject_line_breaks};

/// A file attached to a message, an inline part the HTML body references as
/// `cid:<content_id>`, or a whole message attached as `message/rfc822`.
///
/// ```
/// use mailroom::Attachment;
///
/// let pdf = Attachment::new("rechnung-über.pdf", b"%PDF-1.4".to_vec());
/// assert_eq!(pdf.content_type(), "application/pdf");
/// let logo = Attachment::inline("logo", "logo.png", vec![0x89, b'P', b'N', b'G']);
/// assert_eq!(logo.content_id(), Some("logo"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub(crate) filename: Option<String>,
    pub(crate) content_type: String,
    pub(crate) body: AttachmentBody,
    pub(crate) inline: bool,
    pub(crate) content_id: Option<String>,
}

/// What an attachment carries.
///
/// The bytes are shared ([`bytes::Bytes`]): cloning an attachment, or the [`Email`] that
/// holds it, never copies them.
#[derive(Debug, Clone, PartialEq)]
pub enum AttachmentBody {
    /// Raw bytes.
    Bytes(Bytes),
    /// Another message, attached as `message/rfc822`.
    Message(Box<Email>),
}

/// Guesses a content type from a file name; `application/octet-stream` when unknown.
pub(crate) fn guess_content_type(filename: Option<&str>) -> String {
    filename
        .and_then(|name| mime_guess::from_path(name).first())
        .map(|m| m.essence_str().to_owned())
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

impl Attachment {
    /// An attachment from bytes; the content type is guessed from the file name.
    ///
    /// A `Vec<u8>` is taken over without copying, and the bytes are then shared by every
    /// clone of the attachment.
    pub fn new(filename: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        let filename = filename.into();
        Attachment {
            content_type: guess_content_type(Some(&filename)),
            filename: Some(filename),
            body: AttachmentBody::Bytes(Bytes::from(content.into())),
            inline: false,
            content_id: None,
        }
    }

    /// An inline part (e.g. an image) that the HTML body references as `cid:<content_id>`.
    /// Give the id without angle brackets.
    pub fn inline(
        content_id: impl Into<String>,
        filename: impl Into<String>,
        content: impl Into<Vec<u8>>,
    ) -> Self {
        let mut part = Attachment::new(filename, content);
        part.inline = true;
        part.content_id = Some(content_id.into());
        part
    }

    /// Reads a file into an attachment named after it, its type guessed from the name.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let content = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let filename = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::invalid(
                "attachments.filename",
                format!("`{}` has no usable file name", path.display()),
            )
        })?;
        Ok(Attachment::new(filename, content))
    }

    /// Another message attached whole, as `message/rfc822`.
    pub fn message(email: Email) -> Self {
        Attachment {
            filename: None,
            content_type: "message/rfc822".to_owned(),
            body: AttachmentBody::Message(Box::new(email)),
            inline: false,
            content_id: None,
        }
    }

    /// Sets the content type explicitly (e.g. `text/csv; charset=utf-8`).
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Sets or clears the file name.
    pub fn with_filename(mut self, filename: Option<String>) -> Self {
        self.filename = filename;
        self
    }

    /// The file name, as given.
    pub fn filename(&self) -> Option<&str> {
        self.filename.as_deref()
    }

    /// The content type.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The bytes, or `None` for an attached message.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.body {
            AttachmentBody::Bytes(b) => Some(b),
            AttachmentBody::Message(_) => None,
        }
    }

    /// The attachment's body.
    pub fn body(&self) -> &AttachmentBody {
        &self.body
    }

    /// `true` for an inline part.
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// The Content-ID (without angle brackets) of an inline part.
    pub fn content_id(&self) -> Option<&str> {
        self.content_id.as_deref()
    }

    /// Checks every value that goes into a header; `field` is e.g. `attachments[2]`.
    pub(crate) fn validate(&self, field: &str) -> Result<()> {
        if let Some(name) = &self.filename {
            reject_line_breaks(&format!("{field}.filename"), name)?;
            if name.trim().is_empty() {
                return Err(Error::invalid(format!("{field}.filename"), "is empty"));
            }
        }
        let ct_field = format!("{field}.content_type");
        reject_line_breaks(&ct_field, &self.content_type)?;
        if self.content_type.contains("=?") {
            // Written as given, so readers would decode it (a `name="=?...?="` parameter
            // reads back as another file name); mailroom writes the file name itself.
            return Err(Error::invalid(
                &ct_field,
                format!(
                    "`{}` has `=?`, which readers may decode as an encoded word; give the file name in `filename`",
                    self.content_type
                ),
            ));
        }
        let parsed: mime::Mime = self.content_type.parse().map_err(|_| {
            Error::invalid(
                &ct_field,
                format!(
                    "`{}` is not a valid MIME type such as `image/png`",
                    self.content_type
                ),
            )
        })?;
        if parsed.type_() == mime::MULTIPART {
            return Err(Error::invalid(
                &ct_field,
                "may not be multipart/*; mailroom builds the multipart structure",
            ));
        }
        if let Some(id) = &self.content_id {
            check_id(&format!("{field}.content_id"), id)?;
        }
        if self.inline && self.content_id.is_none() {
            return Err(Error::invalid(
                format!("{field}.content_id"),
                "is required for an inline part (the HTML references it as cid:ID)",
            ));
        }
        match &self.body {
            AttachmentBody::Message(_) if parsed.essence_str() != "message/rfc822" => Err(
                Error::invalid(&ct_field, "must be message/rfc822 for an attached message"),
            ),
            AttachmentBody::Bytes(_)
                if parsed.type_() == "message" && parsed.subtype() == "rfc822" =>
            {
                Err(Error::invalid(
                    &ct_field,
                    "message/rfc822 needs an attached message (`message` in JSON, Attachment::message in Rust)",
                ))
            }
            _ => Ok(()),
        }
    }
}
