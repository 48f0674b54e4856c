//! The sender check: a message graded against the bulk-sender requirements Gmail and Yahoo
//! published in 2024 (aligned DKIM, RFC 8058 one-click unsubscribe, well-formed messages)
//! and the common limits (Gmail clips HTML over 102 KB; RFC 5322 caps lines at 998 octets).
//!
//! The details are documented on the public items.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::message::Email;
use crate::render::RenderOptions;

/// Gmail clips a message whose HTML is larger than this.
pub const HTML_CLIP_BYTES: usize = 102 * 1024;
/// The longest line RFC 5322 §2.1.1 allows, without its CRLF.
const MAX_LINE: usize = 998;

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth fixing; receivers may still take the mail.
    Warning,
    /// Fails a published requirement: expect rejection or the spam folder.
    Error,
}

/// One thing the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// A stable code for scripts (`dkim-missing`; see the module docs' table).
    pub code: &'static str,
    /// What is wrong, and the fix.
    pub message: String,
}

/// Everything the check found in one message, each [`Finding`] with one of these codes:
///
/// | code | severity | when |
/// |---|---|---|
/// | `dkim-missing` | error | no `DKIM-Signature` |
/// | `dkim-unaligned` | error | no signature whose `d=` is the From domain or a parent of it |
/// | `unsubscribe-missing` | error | bulk mail without `List-Unsubscribe` |
/// | `one-click-missing` | error | bulk mail without `List-Unsubscribe-Post: List-Unsubscribe=One-Click` and an https URL |
/// | `unsubscribe-unsigned` | error | bulk mail whose DKIM signatures do not cover both unsubscribe headers |
/// | `unsubscribe-not-https` | error | a `List-Unsubscribe` URL that is not `https:` (nor `mailto:`) |
/// | `message-id-missing` | error | no `Message-ID` |
/// | `date-missing` | error | no `Date` |
/// | `header-line-too-long` | error | a header line over 998 octets |
/// | `text-missing` | warning | HTML without a plain-text alternative |
/// | `image-alt-missing` | warning | an `<img>` without `alt` |
/// | `http-link` | warning | an `http:` link or image in the HTML |
/// | `html-too-large` | warning | HTML over 102 KB, where Gmail clips the message |
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whether the message was taken as bulk mail (unsubscribe rules apply).
    pub bulk: bool,
    /// The findings, in rule order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// `true` when a finding is an [`Severity::Error`].
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    fn push(&mut self, severity: Severity, code: &'static str, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            code,
            message: message.into(),
        });
    }
}

/// What to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Whether the message is bulk mail: `None` decides from the message (a
    /// `List-Unsubscribe`, `List-Id`, `Feedback-ID` or `Precedence: bulk|list` header).
    pub bulk: Option<bool>,
}

impl CheckOptions {
    /// Options that take the message as bulk mail (`true`) or not (`false`), whatever
    /// its headers say.
    pub fn bulk(bulk: bool) -> Self {
        CheckOptions { bulk: Some(bulk) }
    }
}

/// Renders `email` with `options` (its DKIM signers among them) and checks the bytes.
///
/// ```
/// use mailroom::{Email, ListUnsubscribe, RenderOptions};
/// use mailroom::deliverability::{CheckOptions, check_message};
///
/// let email = Email::builder().from("news@example.com").to("ann@example.org")
///     .list_unsubscribe(ListUnsubscribe::one_click("https://example.com/u/1"))
///     .text("hello").build()?;
/// let report = check_message(&email, &RenderOptions::new(), &CheckOptions::default())?;
/// // not DKIM-signed: an error
/// assert!(report.findings.iter().any(|f| f.code == "dkim-missing"));
/// assert!(report.has_errors());
/// # Ok::<(), mailroom::Error>(())
/// ```
pub fn check_message(
    email: &Email,
    options: &RenderOptions,
    check: &CheckOptions,
) -> Result<Report> {
    check_bytes(&email.render(options)?, check)
}

/// Checks a rendered message (RFC 5322 bytes). Bytes that are not a mail message are an
/// [`Error::InvalidMessage`] naming `message`.
pub fn check_bytes(bytes: &[u8], check: &CheckOptions) -> Result<Report> {
    let message = MessageParser::default()
        .parse(bytes)
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| Error::invalid("message", "is not a mail message (no header found)"))?;
    let headers: Vec<(String, String)> = message
        .headers_raw()
        .map(|(name, value)| (name.to_ascii_lowercase(), unfold(value)))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let bulk = check.bulk.unwrap_or_else(|| {
        ["list-unsubscribe", "list-id", "feedback-id"]
            .iter()
            .any(|h| get(h).is_some())
            || get("precedence")
                .is_some_and(|p| matches!(p.trim().to_ascii_lowercase().as_str(), "bulk" | "list"))
    });
    let mut report = Report {
        bulk,
        findings: Vec::new(),
    };
    let from_domain = message
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase());
    dkim_rules(&mut report, &headers, from_domain.as_deref());
    unsubscribe_rules(&mut report, &headers);
    if get("message-id").is_none() {
        report.push(
            Severity::Error,
            "message-id-missing",
            "the message has no Message-ID; receivers treat that as a spam signal (RFC 5322 §3.6.4)",
        );
    }
    if get("date").is_none() {
        report.push(
            Severity::Error,
            "date-missing",
            "the message has no Date, which RFC 5322 requires",
        );
    }
    header_lines(&mut report, bytes);
    let html: Vec<String> = message
        .html_bodies()
        .filter(|p| p.is_text_html())
        .filter_map(|p| p.text_contents().map(str::to_owned))
        .collect();
    let has_text = message.text_bodies().any(|p| {
        p.content_type()
            .is_none_or(|ct| ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain")))
            && !p.is_text_html()
    });
    html_rules(&mut report, &html, has_text);
    Ok(report)
}

/// A header value on one line.
fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tags of a DKIM-Signature value, names lowercased, whitespace removed from values.
fn tags(value: &str) -> Vec<(String, String)> {
    value
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .map(|(name, v)| {
            (
                name.trim().to_ascii_lowercase(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

/// DKIM present, and aligned: some `d=` equal to the From domain or a parent of it.
/// Records which signed headers the aligned signatures cover, for the unsubscribe rules.
fn dkim_rules(report: &mut Report, headers: &[(String, String)], from: Option<&str>) {
    let signatures: Vec<Vec<(String, String)>> = headers
        .iter()
        .filter(|(n, _)| n == "dkim-signature")
        .map(|(_, v)| tags(v))
        .collect();
    if signatures.is_empty() {
        report.push(
            Severity::Error,
            "dkim-missing",
            "the message is not DKIM-signed; sign it (--dkim-key, or `DkimSigner`) with a key of the From domain",
        );
        return;
    }
    let aligned = signatures.iter().any(|tags| {
        let d = tags
            .iter()
            .find(|(n, _)| n == "d")
            .map(|(_, v)| v.to_ascii_lowercase());
        match (d, from) {
            (Some(d), Some(from)) => from == d || from.ends_with(&format!(".{d}")),
            _ => false,
        }
    });
    if !aligned {
        report.push(
            Severity::Error,
            "dkim-unaligned",
            format!(
                "no DKIM signature's d= is the From domain `{}` or a parent of it; sign with a key of that domain",
                from.unwrap_or("?")
            ),
        );
    }
}

/// The names in `h=` of every DKIM signature, lowercased.
fn signed_headers(headers: &[(String, String)]) -> Vec<Vec<String>> {
    headers
        .iter()
        .filter(|(n, _)| n == "dkim-signature")
        .map(|(_, v)| {
            tags(v)
                .into_iter()
                .find(|(n, _)| n == "h")
                .map(|(_, h)| h.split(':').map(|s| s.to_ascii_lowercase()).collect())
                .unwrap_or_default()
        })
        .collect()
}

/// The URLs of a `List-Unsubscribe` value: `<…>` entries.
fn unsubscribe_urls(value: &str) -> Vec<String> {
    value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>').map(|(url, _)| url.trim().to_owned()))
        .collect()
}

fn unsubscribe_rules(report: &mut Report, headers: &[(String, String)]) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let urls = get("list-unsubscribe")
        .map(unsubscribe_urls)
        .unwrap_or_default();
    for url in &urls {
        let lower = url.to_ascii_lowercase();
        if !lower.starts_with("https:") && !lower.starts_with("mailto:") {
            report.push(
                Severity::Error,
                "unsubscribe-not-https",
                format!("the unsubscribe URL `{url}` is not https; receivers only POST one-click unsubscribes over https"),
            );
        }
    }
    if !report.bulk {
        return;
    }
    let Some(_) = get("list-unsubscribe") else {
        report.push(
            Severity::Error,
            "unsubscribe-missing",
            "bulk mail without List-Unsubscribe; give the message `list_unsubscribe` (RFC 2369, RFC 8058)",
        );
        return;
    };
    let one_click = get("list-unsubscribe-post")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(crate::message::ONE_CLICK));
    let https = urls
        .iter()
        .any(|u| u.to_ascii_lowercase().starts_with("https:"));
    if !(one_click && https) {
        report.push(
            Severity::Error,
            "one-click-missing",
            "bulk mail without one-click unsubscribe: give `list_unsubscribe` an https `url` and `one_click: true` (RFC 8058)",
        );
    }
    let signed = signed_headers(headers);
    let covers = |name: &str| signed.iter().any(|h| h.iter().any(|n| n == name));
    let mut needed = vec!["list-unsubscribe"];
    if get("list-unsubscribe-post").is_some() {
        needed.push("list-unsubscribe-post");
    }
    if !signed.is_empty() && !needed.iter().all(|h| covers(h)) {
        report.push(
            Severity::Error,
            "unsubscribe-unsigned",
            "the DKIM signature does not cover List-Unsubscribe and List-Unsubscribe-Post, as RFC 8058 §3 requires",
        );
    }
}

/// Header lines (before the first empty line) longer than 998 octets.
fn header_lines(report: &mut Report, bytes: &[u8]) {
    for line in bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() > MAX_LINE {
            let name = String::from_utf8_lossy(line.split(|&b| b == b':').next().unwrap_or(b""))
                .chars()
                .take(40)
                .collect::<String>();
            report.push(
                Severity::Error,
                "header-line-too-long",
                format!(
                    "a `{name}` header line is {} octets; RFC 5322 allows 998: fold it",
                    line.len()
                ),
            );
        }
    }
}

fn html_rules(report: &mut Report, html: &[String], has_text: bool) {
    if html.is_empty() {
        return;
    }
    if !has_text {
        report.push(
            Severity::Warning,
            "text-missing",
            "the HTML has no plain-text alternative; add `text` (or let the HTML pipeline write one)",
        );
    }
    let size: usize = html.iter().map(String::len).sum();
    if size > HTML_CLIP_BYTES {
        report.push(
            Severity::Warning,
            "html-too-large",
            format!(
                "the HTML is {} KB; Gmail clips messages over 102 KB, hiding the rest (and the unsubscribe link)",
                size / 1024
            ),
        );
    }
    for body in html {
        for tag in tags_named(body, "img") {
            if attribute(tag, "alt").is_none() {
                report.push(
                    Severity::Warning,
                    "image-alt-missing",
                    format!("`{}` has no alt text", shorten(tag)),
                );
            }
        }
        for (name, value) in links(body) {
            if value.trim().to_ascii_lowercase().starts_with("http:") {
                report.push(
                    Severity::Warning,
                    "http-link",
                    format!("`{name}=\"{}\"` is plain http; use https", shorten(&value)),
                );
            }
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// The start tags `<name …>` in `html`, each as its text up to `>`. A scanner, not a
/// parser: the bodies checked are the sender's own, and mis-scanning only costs a finding.
fn tags_named<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find(&open) {
        let start = at + i;
        let after = start + open.len();
        let boundary = lower[after..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || c == '>' || c == '/');
        let end = lower[after..]
            .find('>')
            .map_or(lower.len(), |e| after + e + 1);
        if boundary {
            out.push(&html[start..end]);
        }
        at = end.max(after);
    }
    out
}

/// The value of attribute `name` in a start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    attributes(tag)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The attributes of a start tag, `(name, value)`; a bare attribute has an empty value.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let inner = tag
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim_end_matches('/');
    let mut chars = inner.char_indices().peekable();
    // Skip the tag name.
    while chars.next_if(|(_, c)| !c.is_whitespace()).is_some() {}
    let mut out = Vec::new();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut end = start;
        while let Some((i, c)) = chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            end = i + c.len_utf8();
        }
        let name = inner[start..end].to_owned();
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '=').is_some() {
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            match chars.peek().map(|(_, c)| *c) {
                Some(q @ ('"' | '\'')) => {
                    chars.next();
                    for (_, c) in chars.by_ref() {
                        if c == q {
                            break;
                        }
                        value.push(c);
                    }
                }
                _ => {
                    while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                        value.push(c);
                    }
                }
            }
        }
        if name.is_empty() {
            chars.next();
            continue;
        }
        out.push((name, value));
    }
    out
}

/// Every `href` and `src` value in `html`'s start tags.
fn links(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = html[at..].find('<') {
        let start = at + i;
        let end = html[start..]
            .find('>')
            .map_or(html.len(), |e| start + e + 1);
        let tag = &html[start..end];
        if tag[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            for (name, value) in attributes(tag) {
                let lower = name.to_ascii_lowercase();
                if lower == "href" || lower == "src" {
                    out.push((lower, value));
                }
            }
        }
        at = end;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn attributes_quoted_unquoted_and_bare() {
        let attrs = attributes(r#"<img src="a b.png" alt=x hidden data-x='1'>"#);
        assert_eq!(
            attrs,
            [
                ("src".into(), "a b.png".into()),
                ("alt".into(), "x".into()),
                ("hidden".into(), String::new()),
                ("data-x".into(), "1".into())
            ]
        );
        assert_eq!(tags_named("<IMG src=x><imgx><img>", "img").len(), 2);
        assert_eq!(
            links(r#"<a href="http://x">x</a><img src='https://y'>"#),
            [
                ("href".to_owned(), "http://x".to_owned()),
                ("src".to_owned(), "https://y".to_owned())
            ]
        );
    }
}
