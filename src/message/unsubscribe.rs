//! [`ListUnsubscribe`]: the RFC 2369 `List-Unsubscribe` header and the RFC 8058 one-click
//! `List-Unsubscribe-Post` header, from one value.
//!
//! The builder ([`EmailBuilder::list_unsubscribe`](super::EmailBuilder::list_unsubscribe))
//! and the JSON field `list_unsubscribe` turn it into ordinary extra headers when the
//! message is built, so every transport (SMTP, and the HTTP providers that take headers as
//! JSON) and the DKIM signer see them as they see any header.

use super::Address;
use crate::error::{Error, Result};

/// The value of `List-Unsubscribe-Post` for one-click unsubscribe (RFC 8058 §3.1).
pub const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

/// The longest unsubscribe URL taken: `List-Unsubscribe: <URL>` must fit a header line
/// of 998 octets (RFC 5322 §2.1.1), with room for a `mailto:` beside it.
const MAX_URL: usize = 800;

/// How recipients leave the list: an https URL, a mail address, or both; `one_click`
/// adds `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which Gmail and
/// Yahoo require of bulk senders, and which needs an `https` URL.
///
/// ```
/// use mailroom::{Email, ListUnsubscribe};
///
/// let email = Email::builder()
///     .from("news@example.com")
///     .to("ann@example.org")
///     .list_unsubscribe(ListUnsubscribe::one_click("https://example.com/u/TOKEN").mailto("unsub@example.com"))
///     .text("hello")
///     .build()?;
/// let text = String::from_utf8(email.to_bytes()?).unwrap();
/// assert!(text.contains("List-Unsubscribe: <https://example.com/u/TOKEN>, <mailto:unsub@example.com>\r\n"));
/// assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
/// # Ok::<(), mailroom::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct ListUnsubscribe {
    /// The unsubscribe URL (`https`; `http` is accepted but flagged by the sender check).
    pub url: Option<String>,
    /// The address an unsubscribe mail goes to.
    pub mailto: Option<String>,
    /// Whether a `POST` to `url` unsubscribes at once (RFC 8058 one-click).
    pub one_click: bool,
}

impl ListUnsubscribe {
    /// One-click unsubscribe through `url` (which must be `https`).
    pub fn one_click(url: impl Into<String>) -> Self {
        ListUnsubscribe {
            url: Some(url.into()),
            mailto: None,
            one_click: true,
        }
    }

    /// Unsubscribe by visiting `url` (no one-click `POST`).
    pub fn url(url: impl Into<String>) -> Self {
        ListUnsubscribe {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Also (or only) unsubscribe by mail to `address`.
    pub fn mailto(mut self, address: impl Into<String>) -> Self {
        self.mailto = Some(address.into());
        self
    }

    /// The headers this value writes, checked: `List-Unsubscribe`, then
    /// `List-Unsubscribe-Post` for one-click. Errors name `list_unsubscribe.url`,
    /// `list_unsubscribe.mailto` or `list_unsubscribe.one_click`.
    pub(crate) fn headers(&self) -> Result<Vec<(String, String)>> {
        let mut entries = Vec::with_capacity(2);
        if let Some(text) = &self.url {
            entries.push(format!("<{}>", check_url(text, self.one_click)?));
        } else if self.one_click {
            return Err(one_click_needs_https());
        }
        if let Some(address) = &self.mailto {
            let field = "list_unsubscribe.mailto";
            let address = address.strip_prefix("mailto:").unwrap_or(address);
            let parsed = Address::from_parts(field, None, address)?;
            let email = parsed
                .ascii_email_for(field)
                .unwrap_or_else(|_| parsed.email().to_owned());
            entries.push(format!("<mailto:{email}>"));
        }
        if entries.is_empty() {
            return Err(Error::invalid(
                "list_unsubscribe",
                "needs a `url` or a `mailto` (or both)",
            ));
        }
        let mut headers = vec![("List-Unsubscribe".to_owned(), entries.join(", "))];
        if self.one_click {
            headers.push(("List-Unsubscribe-Post".to_owned(), ONE_CLICK.to_owned()));
        }
        Ok(headers)
    }
}

fn one_click_needs_https() -> Error {
    Error::invalid(
        "list_unsubscribe.one_click",
        "needs an `https` url to POST to (RFC 8058); give `url` or drop `one_click`",
    )
}

/// The URL as written: parsed (so it cannot close its angle brackets or break the line),
/// `http` or `https`, `https` for one-click.
fn check_url(text: &str, one_click: bool) -> Result<String> {
    let field = "list_unsubscribe.url";
    super::check::reject_line_breaks(field, text)?;
    let url = url::Url::parse(text.trim())
        .map_err(|e| Error::invalid(field, format!("`{text}` is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if !one_click => {}
        "http" => return Err(one_click_needs_https()),
        "mailto" => {
            return Err(Error::invalid(
                field,
                "is a mailto: URL; give the address as `mailto`",
            ));
        }
        other => {
            return Err(Error::invalid(
                field,
                format!("has the scheme `{other}`; use an https URL"),
            ));
        }
    }
    let written = url.as_str();
    // The URL crate percent-encodes `<`, `>` and spaces, so only the length is left to check.
    if written.len() > MAX_URL {
        return Err(Error::invalid(
            field,
            format!(
                "is {} octets; an unsubscribe URL must fit its header line (at most {MAX_URL})",
                written.len()
            ),
        ));
    }
    Ok(written.to_owned())
}
