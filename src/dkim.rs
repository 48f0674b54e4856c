//! DKIM signing (RFC 6376, RFC 8463) over `mail-auth`: RSA-SHA256 and Ed25519-SHA256.
//!
//! A [`DkimSigner`] is a [`Signer`]: add one or more to
//! [`RenderOptions`](crate::RenderOptions) and every rendered message comes out signed.
//! Gmail ignores Ed25519 signatures, so sign with RSA, or with both.
//!
//! ```
//! use std::sync::Arc;
//! use mailroom::{Email, RenderOptions, dkim::DkimSigner};
//!
//! let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/dkim/ed25519.pem"))?;
//! let signer = DkimSigner::from_pem(&pem, "example.com", "mail")?;
//! // publish this TXT record at mail._domainkey.example.com
//! assert!(signer.dns_record().starts_with("v=DKIM1; k=ed25519; p="));
//! let email = Email::builder().from("a@example.com").to("b@example.org").subject("hi").text("hello").build()?;
//! let bytes = email.render(&RenderOptions::deterministic().signer(Arc::new(signer)))?;
//! assert!(bytes.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256; s=mail; d=example.com; c=relaxed/relaxed;"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Signed headers: From, Sender, To, Cc, Subject, Date, Message-ID, MIME-Version,
//! Content-Type, Reply-To, List-Unsubscribe and List-Unsubscribe-Post (RFC 8058 §3 requires
//! both signed), each when present, and From once more (over-signed) so that no second From
//! can be added without breaking the signature.
//!
//! The signature's `t=` is the signing time the renderer passes: now, whatever the message's
//! Date says (verifiers such as dkimpy reject a `t=` in the future, and a Date may be set
//! ahead). Under [`RenderOptions::deterministic`](crate::RenderOptions::deterministic) it is
//! the message's Date, so deterministic output stays deterministic: give such a message a
//! past `date` if its signature is to verify.
//!
//! The domain and selector are checked when the signer is made ([`DkimSigner::from_pem`]):
//! anything but a domain name or a selector is a configuration error naming `dkim_domain`
//! or `dkim_selector`, never a tag list altered by the value.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::{Algorithm, DkimKey, Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderStream, Writable, Writer};
use mail_auth::dkim::Signature;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::{Error, Result};
use crate::render::Signer;

/// The headers signed by default (each only when the message has it).
pub const DEFAULT_HEADERS: [&str; 12] = [
    "From",
    "Sender",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A DKIM canonicalization algorithm (RFC 6376 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Canonicalization {
    /// Tolerates whitespace changes and header case (the default).
    #[default]
    Relaxed,
    /// Byte for byte.
    Simple,
}

impl From<Canonicalization> for mail_auth::dkim::Canonicalization {
    fn from(c: Canonicalization) -> Self {
        match c {
            Canonicalization::Relaxed => mail_auth::dkim::Canonicalization::Relaxed,
            Canonicalization::Simple => mail_auth::dkim::Canonicalization::Simple,
        }
    }
}

/// The signing algorithm, decided by the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// `rsa-sha256`: what every verifier (Gmail included) checks.
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463): small and fast, ignored by some receivers.
    Ed25519Sha256,
}

/// Signs rendered messages with one DKIM key.
///
/// The key never appears in `Debug` output.
pub struct DkimSigner {
    key: DkimKey,
    public_key: Vec<u8>,
    algorithm: DkimAlgorithm,
    domain: String,
    selector: String,
    headers: Vec<String>,
    oversign_from: bool,
    header_canonicalization: Canonicalization,
    body_canonicalization: Canonicalization,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("algorithm", &self.algorithm)
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("headers", &self.headers)
            .field(
                "canonicalization",
                &(self.header_canonicalization, self.body_canonicalization),
            )
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// A signer from a PEM private key: RSA (PKCS#1 `RSA PRIVATE KEY` or PKCS#8
    /// `PRIVATE KEY`) or Ed25519 (PKCS#8 `PRIVATE KEY`). `domain` is the `d=` tag (a Unicode
    /// domain is written in punycode), `selector` the `s=` tag.
    pub fn from_pem(pem: &[u8], domain: &str, selector: &str) -> Result<DkimSigner> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
            Error::configuration(
                "dkim_key",
                format!("is not a PEM private key ({e}); give an RSA or Ed25519 key in PEM form"),
            )
        })?;
        Self::from_der(der, domain, selector)
    }

    /// A signer from a PEM private key file; see [`from_pem`](Self::from_pem).
    pub fn from_pem_file(
        path: impl AsRef<Path>,
        domain: &str,
        selector: &str,
    ) -> Result<DkimSigner> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        Self::from_pem(&pem, domain, selector)
    }

    fn from_der(der: PrivateKeyDer<'_>, domain: &str, selector: &str) -> Result<DkimSigner> {
        let bad_key =
            |e: mail_auth::Error| Error::configuration("dkim_key", format!("cannot be used: {e}"));
        let (key, public_key, algorithm) = match der {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                match Ed25519Key::from_pkcs8_der(pkcs8.secret_pkcs8_der()) {
                    Ok(key) => {
                        let public = key.public_key();
                        (DkimKey::Ed25519(key), public, DkimAlgorithm::Ed25519Sha256)
                    }
                    Err(_) => {
                        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                            pkcs8.secret_pkcs8_der().to_vec(),
                        ));
                        let key = RsaKey::<Sha256>::from_key_der(der).map_err(bad_key)?;
                        let public = spki_from_pkcs1(&key.public_key());
                        (DkimKey::Rsa(key), public, DkimAlgorithm::RsaSha256)
                    }
                }
            }
            der @ PrivateKeyDer::Pkcs1(_) => {
                let key = RsaKey::<Sha256>::from_key_der(der).map_err(bad_key)?;
                let public = spki_from_pkcs1(&key.public_key());
                (DkimKey::Rsa(key), public, DkimAlgorithm::RsaSha256)
            }
            _ => {
                return Err(Error::configuration(
                    "dkim_key",
                    "must be an RSA or Ed25519 key (SEC1 EC keys are not DKIM keys)",
                ));
            }
        };
        // The same check as an address's domain (IDNA, then letters, digits and hyphens
        // in each label): `d=` lands in a tag list, where `example.com; l=0` would add tags.
        let domain = crate::message::ascii_domain("dkim_domain", domain.trim())
            .ok()
            .filter(|d| d.contains('.'))
            .ok_or_else(|| {
                Error::configuration(
                    "dkim_domain",
                    format!(
                        "`{domain}` is not a domain name; give the signing domain, like `example.com`"
                    ),
                )
            })?;
        let selector = selector.trim();
        let valid_selector = !selector.is_empty()
            && selector.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid_selector {
            return Err(Error::configuration(
                "dkim_selector",
                format!(
                    "`{selector}` is not a selector; use letters, digits, `-` and `_` in dot-separated labels"
                ),
            ));
        }
        Ok(DkimSigner {
            key,
            public_key,
            algorithm,
            domain,
            selector: selector.to_owned(),
            headers: DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
            oversign_from: true,
            header_canonicalization: Canonicalization::Relaxed,
            body_canonicalization: Canonicalization::Relaxed,
        })
    }

    /// Sets the header and body canonicalization (default relaxed/relaxed).
    #[must_use]
    pub fn canonicalization(mut self, header: Canonicalization, body: Canonicalization) -> Self {
        self.header_canonicalization = header;
        self.body_canonicalization = body;
        self
    }

    /// Replaces the list of headers to sign (each is signed when the message has it).
    #[must_use]
    pub fn headers<S: Into<String>>(mut self, headers: impl IntoIterator<Item = S>) -> Self {
        self.headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `From` is listed once more than it occurs (on by default), so a second
    /// From header added in transit breaks the signature.
    #[must_use]
    pub fn oversign_from(mut self, on: bool) -> Self {
        self.oversign_from = on;
        self
    }

    /// The algorithm, given by the key.
    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The signing domain (`d=`), in ASCII.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// Where the public key is published: `selector._domainkey.domain`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish at [`dns_name`](Self::dns_name).
    pub fn dns_record(&self) -> String {
        let k = match self.algorithm {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        };
        format!("v=DKIM1; k={k}; p={}", STANDARD.encode(&self.public_key))
    }

    /// The `DKIM-Signature` header (CRLF-terminated) for `message`, signed at `timestamp`
    /// (seconds since the Unix epoch; `t=`).
    pub fn signature_header(&self, message: &[u8], timestamp: i64) -> Result<String> {
        let present: Vec<String> = {
            let mut names: Vec<&[u8]> = Vec::new();
            let mut it = Fields::new(message);
            while let Some((name, _)) = it.next_header() {
                names.push(name);
            }
            self.headers
                .iter()
                .filter(|h| names.iter().any(|n| n.eq_ignore_ascii_case(h.as_bytes())))
                .cloned()
                .collect()
        };
        if !present.iter().any(|h| h.eq_ignore_ascii_case("from")) {
            return Err(Error::invalid("from", "is required to DKIM-sign a message"));
        }
        let mut h = present;
        if self.oversign_from {
            // Listed once more than present: mail-auth puts it after the found instances,
            // where it signs the absence of another From.
            h.push("From".to_owned());
        }
        let mut signature = Signature {
            v: 1,
            a: match self.algorithm {
                DkimAlgorithm::RsaSha256 => Algorithm::RsaSha256,
                DkimAlgorithm::Ed25519Sha256 => Algorithm::Ed25519Sha256,
            },
            d: self.domain.clone(),
            s: self.selector.clone(),
            h,
            ch: self.header_canonicalization.into(),
            cb: self.body_canonicalization.into(),
            ..Default::default()
        };
        // The steps of mail-auth's `DkimSigner::sign`, which offers no way to pass the
        // signing time: canonicalize, hash the body, sign headers + signature header.
        let (_, canonical_headers, signed_headers, canonical_body) =
            signature.canonicalize(Fields::new(message));
        signature.bh = self.key.hash(canonical_body).as_ref().to_vec();
        signature.t = u64::try_from(timestamp).unwrap_or(0);
        signature.h = signed_headers;
        let b = self.key.sign(SignedData {
            headers: canonical_headers,
            signature: &signature,
        });
        signature.b =
            b.map_err(|e| Error::configuration("dkim_key", format!("signing failed: {e}")))?;
        let mut header = Vec::with_capacity(512);
        signature.write(&mut header, true);
        String::from_utf8(header)
            .map_err(|_| Error::invalid("dkim", "signature header is not UTF-8"))
    }
}

/// The header fields of a message and its body, for mail-auth's canonicalization (whose own
/// iterator is private). A field's value runs from after the colon through the CRLF that
/// ends its last (folded) line; the body starts after the first empty line.
struct Fields<'x> {
    message: &'x [u8],
    pos: usize,
    body: usize,
}

impl<'x> Fields<'x> {
    fn new(message: &'x [u8]) -> Self {
        Fields {
            message,
            pos: 0,
            body: message.len(),
        }
    }

    fn line_end(&self, from: usize) -> usize {
        self.message[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.message.len(), |i| from + i + 1)
    }
}

impl<'x> HeaderStream<'x> for Fields<'x> {
    fn next_header(&mut self) -> Option<(&'x [u8], &'x [u8])> {
        let rest = &self.message[self.pos..];
        if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            self.body =
                (self.pos + if rest.starts_with(b"\r\n") { 2 } else { 1 }).min(self.message.len());
            return None;
        }
        let start = self.pos;
        let mut end = self.line_end(start);
        while matches!(self.message.get(end), Some(b' ' | b'\t')) {
            end = self.line_end(end);
        }
        self.pos = end;
        let field = &self.message[start..end];
        match field.iter().position(|&b| b == b':') {
            Some(colon) => Some((&field[..colon], &field[colon + 1..])),
            None => Some((field, b"")),
        }
    }

    fn body(&mut self) -> &'x [u8] {
        while self.next_header().is_some() {}
        &self.message[self.body..]
    }
}

/// What the signature covers: the canonical headers, then the DKIM-Signature header with an
/// empty `b=`.
struct SignedData<'a> {
    headers: mail_auth::dkim::canonicalize::CanonicalHeaders<'a>,
    signature: &'a Signature,
}

impl Writable for SignedData<'_> {
    fn write(self, writer: &mut impl Writer) {
        self.headers.write(writer);
        self.signature.write(writer, false);
    }
}

impl Signer for DkimSigner {
    fn sign(&self, message: &[u8], timestamp: i64) -> Result<Vec<u8>> {
        self.signature_header(message, timestamp)
            .map(String::into_bytes)
    }
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, the form DKIM records carry.
/// (Written here because mail-auth only exposes the PKCS#1 form.)
fn spki_from_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x03];
    der_length(pkcs1.len() + 1, &mut bit_string);
    bit_string.push(0);
    bit_string.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_length(ALGORITHM.len() + bit_string.len(), &mut out);
    out.extend_from_slice(&ALGORITHM);
    out.extend_from_slice(&bit_string);
    out
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}
