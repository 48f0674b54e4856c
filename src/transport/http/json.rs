//! What the JSON APIs (Postmark, Resend, SendGrid) share: the message's recipients,
//! attachments and headers as fields, checked so that nothing is silently dropped.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::message::{Address, AttachmentBody, Email};
use crate::render::Rendered;
use crate::transport::{Delivery, Reply};

/// Who a JSON request names: To and Cc as the message has them, and as Bcc every other
/// envelope recipient (the message's Bcc, with their names).
#[derive(Debug)]
pub(crate) struct Recipients<'a> {
    pub(crate) to: &'a [Address],
    pub(crate) cc: &'a [Address],
    pub(crate) bcc: Vec<Address>,
}

/// The comparable form of an address: ASCII domain, lowercase.
fn key(address: &Address) -> String {
    let email = address.email();
    // An ASCII address is its own ASCII form: no IDNA pass, one allocation.
    if email.is_ascii() {
        return email.to_ascii_lowercase();
    }
    address
        .ascii_email()
        .unwrap_or_else(|_| email.to_owned())
        .to_lowercase()
}

/// The comparable form of an envelope recipient, as [`key`] gives it for the address
/// it parses to.
fn envelope_key(recipient: &str) -> String {
    // A bare ASCII addr-spec parses to itself (no angle brackets, nothing to trim), and
    // one that does not parse is lowercased as it is: either way its ASCII lowercase,
    // without parsing (and IDNA-checking) it again.
    if recipient.is_ascii()
        && !recipient.contains(['<', '>'])
        && recipient.trim().len() == recipient.len()
    {
        return recipient.to_ascii_lowercase();
    }
    Address::parse(recipient)
        .map(|a| key(&a))
        .unwrap_or_else(|_| recipient.to_lowercase())
}

/// The recipients of `message` for a JSON API, which sends to everyone its To and Cc
/// fields name: a message whose envelope leaves out a To or Cc address (e.g.
/// [`Rendered::only`] some recipients) is an error naming `envelope.to`.
pub(crate) fn recipients<'a>(provider: &str, message: &'a Rendered) -> Result<Recipients<'a>> {
    let email = message.email();
    let envelope: Vec<(String, &str)> = message
        .envelope()
        .to()
        .iter()
        .map(|r| (envelope_key(r), r.as_str()))
        .collect();
    let on_envelope: HashSet<&str> = envelope.iter().map(|(k, _)| k.as_str()).collect();
    let mut named = HashSet::new();
    for address in email.to().iter().chain(email.cc()) {
        let k = key(address);
        if !on_envelope.contains(k.as_str()) {
            return Err(Error::invalid(
                "envelope.to",
                format!(
                    "leaves out `{}`, but {provider}'s API sends to every To and Cc address the message names; send the message to all of them, or through SMTP",
                    address.email()
                ),
            ));
        }
        named.insert(k);
    }
    // The Bcc addresses by key, built once: a lookup per envelope recipient into the list
    // would take time quadratic in the number of Bcc recipients.
    let mut bcc_by_key: HashMap<String, &Address> = HashMap::with_capacity(email.bcc().len());
    for b in email.bcc() {
        bcc_by_key.entry(key(b)).or_insert(b);
    }
    let mut bcc = Vec::new();
    for (k, raw) in &envelope {
        if named.contains(k) {
            continue;
        }
        let address = match bcc_by_key.get(k.as_str()) {
            Some(b) => (*b).clone(),
            None => Address::parse(raw)?,
        };
        named.insert(k.clone());
        bcc.push(address);
    }
    Ok(Recipients {
        to: email.to(),
        cc: email.cc(),
        bcc,
    })
}

/// An attachment or inline part as the JSON APIs take it.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    pub(crate) filename: String,
    pub(crate) content_type: &'a str,
    pub(crate) base64: String,
    pub(crate) inline: bool,
    pub(crate) content_id: Option<&'a str>,
}

/// The bytes to reserve for a JSON body carrying `email`'s text and HTML and `parts`:
/// their length, an eighth more for escapes, and room for the field names.
pub(crate) fn body_capacity(email: &Email, parts: &[Part<'_>]) -> usize {
    let size = email.text().map_or(0, str::len)
        + email.html().map_or(0, str::len)
        + parts.iter().map(|p| p.base64.len()).sum::<usize>();
    size + size / 8 + 512
}

/// The message's attachments and inline parts, in order. An attached message
/// (`message/rfc822`) is an error naming it: a JSON API takes files, not messages.
pub(crate) fn parts<'a>(provider: &str, email: &'a Email) -> Result<Vec<Part<'a>>> {
    email
        .attachments()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let AttachmentBody::Bytes(bytes) = a.body() else {
                return Err(Error::invalid(
                    format!("attachments[{i}]"),
                    format!(
                        "is an attached message (message/rfc822), which {provider}'s API cannot carry; send it through SMTP or a raw-MIME transport (ses://, mailgun://)"
                    ),
                ));
            };
            // The APIs require a file name: the Content-ID, else a numbered one.
            let filename = a
                .filename()
                .map(str::to_owned)
                .or_else(|| a.content_id().map(str::to_owned))
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            Ok(Part {
                filename,
                content_type: a.content_type(),
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                inline: a.is_inline(),
                content_id: a.content_id(),
            })
        })
        .collect()
}

/// One header of a JSON request: its name and value, borrowed from the message.
pub(crate) type Header<'a> = (&'a str, Cow<'a, str>);

/// The headers a JSON request carries: the message's own, then `Sender` (when it has one)
/// and `Message-ID`.
pub(crate) fn headers(message: &Rendered) -> Vec<Header<'_>> {
    let email = message.email();
    let mut headers: Vec<Header<'_>> = Vec::with_capacity(email.headers().len() + 2);
    headers.extend(
        email
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), Cow::Borrowed(value.as_str()))),
    );
    if let Some(sender) = email.sender() {
        headers.push(("Sender", Cow::Owned(sender.to_string())));
    }
    headers.push(("Message-ID", Cow::Borrowed(message.message_id())));
    headers
}

/// Up to this many headers, repeats are found by comparing each name with the ones
/// before it (no allocation); more go through a set of lowercased names.
const SCAN_HEADERS: usize = 32;

/// The headers for APIs that key headers by name, in the order of their names (as a JSON
/// object of them is written): a name given twice (compared without ASCII case) is an
/// error naming it.
pub(crate) fn unique_headers<'a>(
    provider: &str,
    message: &'a Rendered,
) -> Result<HeaderObject<'a>> {
    let mut headers = headers(message);
    let repeat = if headers.len() <= SCAN_HEADERS {
        (1..headers.len()).find(|&i| {
            headers[..i]
                .iter()
                .any(|(seen, _)| seen.eq_ignore_ascii_case(headers[i].0))
        })
    } else {
        let mut seen = HashSet::with_capacity(headers.len());
        headers
            .iter()
            .position(|(name, _)| !seen.insert(name.to_ascii_lowercase()))
    };
    if let Some(i) = repeat {
        return Err(Error::invalid(
            format!("headers[{i}]"),
            format!(
                "repeats `{}`, but {provider}'s API takes each header name once",
                headers[i].0
            ),
        ));
    }
    // The names are unique, so this is the order a `serde_json::Map` keeps them in.
    headers.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(HeaderObject(headers))
}

/// Headers with unique names, in name order, written as one JSON object.
#[derive(Debug)]
pub(crate) struct HeaderObject<'a>(Vec<Header<'a>>);

impl HeaderObject<'_> {
    /// Writes the headers as one JSON object to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let mut object = Object::start(out);
        for (name, value) in &self.0 {
            object.key(name);
            write_str(object.out, value);
        }
        object.end();
    }
}

/// Writes `addresses` as one JSON string of their RFC 5322 text (`Address`'s `Display`),
/// `", "` between them: the form Postmark takes a list of recipients in.
pub(crate) fn write_address_list(out: &mut Vec<u8>, addresses: &[Address]) {
    match addresses {
        // A bare address is its own text: no formatting, no copy.
        [single] if single.name().is_none() => write_str(out, single.email()),
        _ => write_str(out, &address_list(addresses)),
    }
}

/// Writes `address` as one JSON string of its RFC 5322 text.
pub(crate) fn write_address(out: &mut Vec<u8>, address: &Address) {
    write_address_list(out, std::slice::from_ref(address));
}

/// The RFC 5322 text of `addresses`, `", "` between them.
fn address_list(addresses: &[Address]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(addresses.iter().map(|a| a.email().len() + 24).sum());
    for (n, address) in addresses.iter().enumerate() {
        if n > 0 {
            text.push_str(", ");
        }
        // Writing to a `String` cannot fail.
        let _ = write!(text, "{address}");
    }
    text
}

/// Writes `value` to `out` as a JSON string, escaped exactly as `serde_json` escapes it
/// (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`,
/// everything else as it is), but not a byte at a time: a message's text is long and
/// mostly needs no escape. Clean 64-byte blocks are skipped with a test the compiler turns
/// into vector instructions; the next byte to escape is then found eight bytes at a time.
pub(crate) fn write_str(out: &mut Vec<u8>, value: &str) {
    static HEX: [u8; 16] = *b"0123456789abcdef";
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    while let Some(at) = next_special(bytes, run) {
        out.extend_from_slice(&bytes[run..at]);
        let byte = bytes[at];
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => b'u',
        };
        if short == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        run = at + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Whether JSON needs `byte` escaped: below 0x20, `"` or `\`.
fn special(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The position of the first byte from `i` on that JSON needs escaped.
fn next_special(bytes: &[u8], mut i: usize) -> Option<usize> {
    /// Bytes skipped in one test: one that looks at each byte and ORs the results, with
    /// no early exit, which the compiler turns into vector instructions (about one
    /// instruction per byte with SSE2, against three for the word test below).
    const BLOCK: usize = 64;
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    /// The high bit of each byte of `x` that needs an escape (the classic has-less and
    /// has-zero tests, OR-ed): a borrow may mark a byte above a marked one too, but the
    /// lowest mark is always exact.
    fn marks(x: u64) -> u64 {
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        ((x.wrapping_sub(ONES * 0x20) & !x)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & HIGH
    }
    while let Some(block) = bytes.get(i..i + BLOCK) {
        if block.iter().fold(0u8, |any, &b| any | u8::from(special(b))) != 0 {
            break;
        }
        i += BLOCK;
    }
    while let Some(word) = bytes.get(i..i + 8) {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        // Little-endian, so that the lowest mark is the first byte.
        let found = marks(u64::from_le_bytes(w));
        if found != 0 {
            return Some(i + found.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    bytes[i..].iter().position(|&b| special(b)).map(|n| i + n)
}

/// A JSON object being written to bytes: [`Object::key`] writes the comma between members.
pub(crate) struct Object<'w> {
    /// Where the object is written.
    pub(crate) out: &'w mut Vec<u8>,
    first: bool,
}

impl<'w> Object<'w> {
    /// Opens an object on `out`.
    pub(crate) fn start(out: &'w mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Writes the member name `name`; its value is to be written to `out` next.
    pub(crate) fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, name);
        self.out.push(b':');
    }

    /// The member `name` with a string value.
    pub(crate) fn str(&mut self, name: &str, value: &str) {
        self.key(name);
        write_str(self.out, value);
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// Writes `items` as a JSON array, each with `item`.
pub(crate) fn write_array<T>(
    out: &mut Vec<u8>,
    items: &[T],
    mut item: impl FnMut(&mut Vec<u8>, &T),
) {
    out.push(b'[');
    for (n, value) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        item(out, value);
    }
    out.push(b']');
}

/// A batch body: one JSON array, written into one buffer, of the bodies `write` could
/// write for `messages`, in order (`None` when it could write none), and each message's
/// outcome. `write` must leave the buffer as it was when it fails.
pub(crate) fn write_batch<'m>(
    messages: impl IntoIterator<Item = &'m Rendered>,
    mut write: impl FnMut(&Rendered, &mut Vec<u8>) -> Result<()>,
) -> (Option<Vec<u8>>, Vec<Result<()>>) {
    let mut array = vec![b'['];
    let mut ready = 0;
    let built = messages
        .into_iter()
        .map(|m| {
            let mark = array.len();
            if ready > 0 {
                array.push(b',');
            }
            let built = write(m, &mut array);
            match built {
                Ok(()) => ready += 1,
                // Nothing of the message was written but the comma.
                Err(_) => array.truncate(mark),
            }
            built
        })
        .collect();
    array.push(b']');
    ((ready > 0).then_some(array), built)
}

/// A delivery to every envelope recipient, as a provider that took the message reports it.
pub(crate) fn delivered(
    message: &Rendered,
    status: u16,
    reply: &str,
    id: Option<String>,
) -> Delivery {
    Delivery {
        message_id: Some(message.message_id().to_owned()),
        accepted: message.envelope().to().to_vec(),
        deferred: Vec::new(),
        rejected: Vec::new(),
        reply: Some(Reply {
            code: status,
            message: reply.to_owned(),
        }),
        queue_id: id,
    }
}

/// The same error again, for each message of a batch that one answer refused.
pub(crate) fn repeat(err: &Error) -> Error {
    match err {
        Error::Transient(f) => Error::Transient(f.clone()),
        Error::Permanent(f) => Error::Permanent(f.clone()),
        Error::InvalidMessage { field, reason } => Error::invalid(field.clone(), reason.clone()),
        Error::Configuration { field, reason } => {
            Error::configuration(field.clone(), reason.clone())
        }
        other => Error::Transient(crate::error::DeliveryFailure::local(other.to_string())),
    }
}

/// The string value of `field` in a JSON object, if it is one.
pub(crate) fn str_field<'a>(value: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(serde_json::Value::as_str)
}

/// Messages with every field the JSON providers take, and with few, for the tests that
/// compare a provider's written body with the `serde_json::Value` it was once built as;
/// `header` is the second extra header of the full message.
#[cfg(test)]
pub(super) fn sample_emails(header: (&str, &str)) -> Vec<Email> {
    vec![
        Email::builder()
            .from("zoe@example.com")
            .to("bob@example.org")
            .text("hello")
            .build()
            .unwrap(),
        Email::builder()
            .from("\"Zoë \\\"Z\\\" Müller\" <zoe@bücher.example>")
            .sender("s@example.com")
            .to("Jürgen <jurgen@example.org>")
            .to("plain@example.org")
            .cc("Ana <ana@example.org>")
            .cc("\"Ben, Jr.\" <ben@example.org>")
            .bcc("hidden@example.org")
            .bcc("Hidden Two <hidden2@example.org>")
            .reply_to("a@example.com")
            .reply_to("Hilfe <help@example.com>")
            .subject("Ваш заказ \"готов\" ✓")
            .header("X-Campaign", "herbst\t2026")
            .header(header.0, header.1)
            .text("line one\r\nline two \\ \u{1}")
            .html("<p class=\"x\">hi</p>\n")
            .inline("logo", "logo.png", b"\x89PNG".to_vec())
            .attach("rechnung-über.pdf", b"%PDF-1.4".to_vec())
            .build()
            .unwrap(),
        Email::builder()
            .from("Zoë <zoe@example.com>")
            .bcc("only-bcc@example.org")
            .reply_to("Hilfe <help@example.com>")
            .html("<b>only html</b>")
            .build()
            .unwrap(),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::RenderOptions;

    /// Every Bcc recipient keeps the name the message gives it, found through one map built
    /// once (a search of the Bcc list per envelope recipient was quadratic: 43 s for this
    /// message in a debug build, against 0.3 s now).
    #[test]
    fn many_bcc_recipients_keep_their_names_in_envelope_order() {
        let mut builder = crate::Email::builder()
            .from("a@example.com")
            .to("b@example.com")
            .subject("s")
            .text("t");
        for i in 0..20_000 {
            builder = builder.bcc(format!("Reader {i} <r{i}@example.org>").as_str());
        }
        let email = builder.build().unwrap();
        let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
        let got = recipients("sendgrid", &rendered).unwrap();
        assert_eq!(got.bcc.len(), 20_000);
        for (i, b) in got.bcc.iter().enumerate() {
            assert_eq!(b.email(), format!("r{i}@example.org"));
            assert_eq!(b.name(), Some(format!("Reader {i}").as_str()));
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut every_ascii: String = (0u8..0x80).map(char::from).collect();
        every_ascii.push_str("Zoë \u{2028} ✓ 𝄞");
        let mut samples = vec![
            String::new(),
            "plain".to_owned(),
            "\"".to_owned(),
            "a\\b".to_owned(),
            "line\r\nbreak\ttab\u{7f}\u{1}\u{1f}".to_owned(),
            every_ascii.clone(),
        ];
        // Every position in the eight-byte words, before and after a long clean run.
        for at in 0..17 {
            for special in ["\"", "\\", "\n", "\u{0}", "ü", "\u{1b}"] {
                let mut s = "x".repeat(at);
                s.push_str(special);
                s.push_str(&"y".repeat(19 - at));
                samples.push(s);
            }
        }
        // The same past the 64-byte blocks: in a block, in the words after it, in the tail.
        for at in 0..150 {
            for special in ["\"", "\\", "\n", "\u{0}", "\u{1f}", "ü"] {
                let mut s = "x".repeat(at);
                s.push_str(special);
                s.push_str(&"y".repeat(150 - at));
                s.push_str(special);
                samples.push(s);
            }
        }
        samples.push(every_ascii.repeat(9));
        samples.push("a line of text, as a message has many of them\r\n".repeat(40));
        for sample in samples {
            let mut out = Vec::new();
            write_str(&mut out, &sample);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&sample).unwrap(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn header_objects_are_in_name_order_and_refuse_repeats() {
        let email = Email::builder()
            .from("a@example.com")
            .sender("s@example.com")
            .to("b@example.org")
            .header("X-B", "2")
            .header("X-A", "1 \"quoted\"")
            .text("t")
            .message_id("<m@example.com>")
            .build()
            .unwrap();
        let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
        let mut out = Vec::new();
        unique_headers("sendgrid", &rendered)
            .unwrap()
            .write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"Message-ID":"<m@example.com>","Sender":"s@example.com","X-A":"1 \"quoted\"","X-B":"2"}"#
        );
        let twice = email
            .to_builder()
            .header("x-a", "again")
            .build()
            .unwrap()
            .prepare(&RenderOptions::deterministic())
            .unwrap();
        let err = unique_headers("sendgrid", &twice).unwrap_err();
        assert_eq!(err.field(), Some("headers[2]"));
    }

    #[test]
    fn bcc_comes_from_the_envelope_and_to_cc_must_all_be_on_it() {
        let email = Email::builder()
            .from("a@example.com")
            .to("Bø <b@bücher.example>")
            .cc("c@example.com")
            .bcc("Dee <d@example.com>")
            .subject("s")
            .text("t")
            .build()
            .unwrap();
        let rendered = email.prepare(&RenderOptions::deterministic()).unwrap();
        let r = recipients("postmark", &rendered).unwrap();
        assert_eq!(r.to.len(), 1);
        assert_eq!(r.bcc, [Address::parse("Dee <d@example.com>").unwrap()]);
        let only_bcc = rendered.only(&["d@example.com".to_owned()]).unwrap();
        let err = recipients("postmark", &only_bcc).unwrap_err();
        assert_eq!(err.field(), Some("envelope.to"));
    }
}
