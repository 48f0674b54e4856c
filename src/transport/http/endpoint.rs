//! The parts every provider URL shares: scheme, key (user information), host, port, path
//! and the options `tls=none` and `timeout=`.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::error::{Error, Result};
use crate::transport::url::{duration, is_loopback, percent_decode, redact};

/// The whole-request timeout when the URL gives none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most time connecting may take (less when the whole request has less).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A credential: shown as `****` in `Debug`, marked sensitive in headers.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl Secret {
    /// A secret from its value.
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `prefix` then the secret, as a header value that loggers and HTTP/2's header
    /// compression treat as sensitive.
    pub(crate) fn header(&self, prefix: &str) -> HeaderValue {
        // `Endpoint::key` allows visible ASCII only, which is always a valid header value.
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(true);
        value
    }

    /// `Basic base64(user:secret)`, sensitive.
    pub(crate) fn basic_header(&self, user: &str) -> HeaderValue {
        use base64::Engine as _;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", self.0));
        Secret(credentials).header("Basic ")
    }
}

/// A header value that holds a credential, built once per transport rather than per
/// request: shown as `****` in `Debug`, marked sensitive.
#[derive(Clone)]
pub(crate) struct SecretHeader(HeaderValue);

impl fmt::Debug for SecretHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl SecretHeader {
    /// `prefix` then the secret (see [`Secret::header`]).
    pub(crate) fn new(secret: &Secret, prefix: &str) -> Self {
        SecretHeader(secret.header(prefix))
    }

    /// `Basic base64(user:secret)` (see [`Secret::basic_header`]).
    pub(crate) fn basic(secret: &Secret, user: &str) -> Self {
        SecretHeader(secret.basic_header(user))
    }

    /// The value, for one request (a reference-counted copy).
    pub(crate) fn value(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// The URL as errors show it: user information masked (`redact`), and the query left out,
/// since it may hold a credential too (`session_token=`).
fn shown(raw: &str) -> String {
    let masked = redact(raw.trim());
    let host_start = masked.rfind('@').unwrap_or(0);
    match masked[host_start..].find('?') {
        Some(at) => format!("{}?…", &masked[..host_start + at]),
        None => masked,
    }
}

/// A parsed provider URL.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The field errors name (e.g. `transport`).
    pub(crate) field: String,
    /// `https://host[:port]` (or `http://` for a loopback host with `tls=none`).
    pub(crate) base: String,
    /// The host, as written.
    pub(crate) host: String,
    user: Option<Secret>,
    password: Option<Secret>,
    /// The path without its leading `/`, percent-decoded.
    pub(crate) path: String,
    options: Vec<(String, String)>,
    /// The whole-request timeout.
    pub(crate) timeout: Duration,
    /// The connect timeout.
    pub(crate) connect_timeout: Duration,
    /// `true` for plain `http://` (loopback only).
    pub(crate) plain: bool,
    form: &'static str,
}

impl Endpoint {
    /// Parses `raw`, written as `form` says (for errors, e.g.
    /// `postmark://SERVER_TOKEN@api.postmarkapp.com`).
    pub(crate) fn parse(raw: &str, field: &str, form: &'static str) -> Result<Endpoint> {
        let url = ::url::Url::parse(raw.trim()).map_err(|e| {
            Error::configuration(
                field,
                format!(
                    "`{}` is not a valid URL: {e}; write it as `{form}` and percent-encode any `@`, `:`, `/`, `?` or `#` in the key",
                    shown(raw)
                ),
            )
        })?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                Error::configuration(
                    field,
                    format!("`{}` names no host; write it as `{form}`", shown(raw)),
                )
            })?
            .to_owned();
        let secret = |s: &str, part: &str| -> Result<Option<Secret>> {
            if s.is_empty() {
                return Ok(None);
            }
            let decoded = percent_decode(s)
                .filter(|d| d.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| {
                    Error::configuration(
                        format!("{field}.{part}"),
                        "is not a valid key: it must be percent-encoded visible ASCII",
                    )
                })?;
            Ok(Some(Secret(decoded)))
        };
        let user = secret(url.username(), "user")?;
        let password = secret(url.password().unwrap_or(""), "password")?;
        let path = percent_decode(url.path().trim_start_matches('/')).ok_or_else(|| {
            Error::configuration(
                format!("{field}.path"),
                "is not valid percent-encoded UTF-8",
            )
        })?;
        let mut endpoint = Endpoint {
            field: field.to_owned(),
            base: String::new(),
            host,
            user,
            password,
            path,
            options: url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            plain: false,
            form,
        };
        if let Some(tls) = endpoint.option("tls") {
            match tls.as_str() {
                "none" if is_loopback(&endpoint.host) => endpoint.plain = true,
                "none" => {
                    return Err(Error::configuration(
                        format!("{field}.tls"),
                        format!(
                            "`none` (plain http://) is allowed for a loopback host only, not `{}`: the key would cross the network in clear text",
                            endpoint.host
                        ),
                    ));
                }
                "required" | "https" => {}
                other => {
                    return Err(Error::configuration(
                        format!("{field}.tls"),
                        format!(
                            "`{other}` is not a TLS mode; leave it out (HTTPS) or use none for a loopback mock server"
                        ),
                    ));
                }
            }
        }
        if let Some(value) = endpoint.option("timeout") {
            endpoint.timeout = duration(&value, &format!("{field}.timeout"))?;
        }
        endpoint.connect_timeout = endpoint.timeout.min(CONNECT_TIMEOUT);
        let scheme = if endpoint.plain { "http" } else { "https" };
        let host = match url.host() {
            Some(::url::Host::Ipv6(ip)) => format!("[{ip}]"),
            _ => endpoint.host.clone(),
        };
        endpoint.base = match url.port() {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        Ok(endpoint)
    }

    /// The URL of `path` (which starts with `/`) on the API, parsed once so that requests
    /// need not parse it again.
    pub(crate) fn url(&self, path: &str) -> Result<reqwest::Url> {
        reqwest::Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            Error::configuration(&self.field, format!("cannot build the API's URL: {e}"))
        })
    }

    /// Takes the option `name` out of the query, if given.
    pub(crate) fn option(&mut self, name: &str) -> Option<String> {
        let at = self.options.iter().position(|(k, _)| k == name)?;
        Some(self.options.remove(at).1)
    }

    /// The key: the user name (`SCHEME://KEY@host`), or the password when `user` names
    /// the fixed user name the provider expects (`mailgun://api:KEY@host`).
    pub(crate) fn key(&mut self, user: Option<&str>) -> Result<Secret> {
        let (part, found) = match user {
            None if self.password.is_none() => ("user", self.user.take()),
            None => ("password", None),
            Some(expected) => {
                let got = self.user.as_ref().map(Secret::expose);
                if got != Some(expected) {
                    return Err(Error::configuration(
                        format!("{}.user", self.field),
                        format!("must be `{expected}`; write the URL as `{}`", self.form),
                    ));
                }
                ("password", self.password.take())
            }
        };
        found.ok_or_else(|| {
            let reason = if part == "password" && user.is_none() {
                "is given, but this provider takes the key alone as the user information (no `:`)"
                    .to_owned()
            } else {
                format!(
                    "is missing: the key goes there; write the URL as `{}`",
                    self.form
                )
            };
            Error::configuration(format!("{}.{part}", self.field), reason)
        })
    }

    /// The key pair `ID:SECRET` of the user information (both required).
    pub(crate) fn key_pair(&mut self) -> Result<(Secret, Secret)> {
        let missing = |part: &str, form: &str| {
            Error::configuration(
                format!("{}.{part}", self.field),
                format!("is missing; write the URL as `{form}`"),
            )
        };
        let id = self.user.take().ok_or_else(|| missing("user", self.form))?;
        let secret = self
            .password
            .take()
            .ok_or_else(|| missing("password", self.form))?;
        Ok((id, secret))
    }

    /// Fails when the URL has a path, for the providers whose URL takes none.
    pub(crate) fn no_path(&self) -> Result<()> {
        if self.path.is_empty() {
            return Ok(());
        }
        Err(Error::configuration(
            format!("{}.path", self.field),
            format!("must be empty; write the URL as `{}`", self.form),
        ))
    }

    /// Fails on any option not taken, naming it and the ones `known` lists.
    pub(crate) fn finish(&self, known: &str) -> Result<()> {
        match self.options.first() {
            None => Ok(()),
            Some((name, _)) => Err(Error::configuration(
                format!("{}.{name}", self.field),
                format!("unknown option `{name}`; this URL takes {known}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FORM: &str = "postmark://SERVER_TOKEN@api.postmarkapp.com";

    #[test]
    fn keys_are_percent_decoded_and_never_shown() {
        let mut e =
            Endpoint::parse("postmark://se%2Fcret@api.postmarkapp.com:8443", "t", FORM).unwrap();
        assert_eq!(e.base, "https://api.postmarkapp.com:8443");
        let debug = format!("{e:?}");
        assert!(
            !debug.contains("se/cret") && !debug.contains("se%2Fcret"),
            "{debug}"
        );
        let key = e.key(None).unwrap();
        assert_eq!(key.expose(), "se/cret");
        assert_eq!(format!("{key:?}"), "****");
        assert!(key.header("Bearer ").is_sensitive());
    }

    #[test]
    fn basic_auth_headers_are_built_once_and_stay_secret() {
        let header = SecretHeader::basic(&Secret::new("key-123"), "api");
        // base64("api:key-123")
        assert_eq!(header.value(), "Basic YXBpOmtleS0xMjM=");
        assert!(header.value().is_sensitive());
        assert_eq!(format!("{header:?}"), "****");
    }

    #[test]
    fn errors_show_neither_the_key_nor_the_query() {
        let err = Endpoint::parse(
            "ses://AKID:secret@email.eu-west-1.amazonaws.com:99999?session_token=T0KEN",
            "t",
            FORM,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            !text.contains("secret") && !text.contains("T0KEN"),
            "{text}"
        );
        assert!(
            text.contains("ses://AKID:****@email.eu-west-1.amazonaws.com:99999?…"),
            "{text}"
        );
        assert_eq!(shown("postmark://k?e@y@h"), "postmark://****@h");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let e = Endpoint::parse("postmark://k@127.0.0.1:9999?tls=none", "t", FORM).unwrap();
        assert_eq!(e.base, "http://127.0.0.1:9999");
        let e = Endpoint::parse("postmark://k@[::1]:9999?tls=none", "t", FORM).unwrap();
        assert_eq!(e.base, "http://[::1]:9999");
        let err =
            Endpoint::parse("postmark://secret@api.example.com?tls=none", "t", FORM).unwrap_err();
        assert_eq!(err.field(), Some("t.tls"));
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn options_and_user_names() {
        let mut e = Endpoint::parse(
            "mailgun://api:k3y@api.mailgun.net/mg.example.com?timeout=2s&x=1",
            "t",
            "mailgun://api:KEY@api.mailgun.net/DOMAIN",
        )
        .unwrap();
        assert_eq!(e.timeout, Duration::from_secs(2));
        assert_eq!(e.connect_timeout, Duration::from_secs(2));
        assert_eq!(e.path, "mg.example.com");
        assert_eq!(e.key(Some("api")).unwrap().expose(), "k3y");
        assert_eq!(e.finish("timeout").unwrap_err().field(), Some("t.x"));
        let mut e = Endpoint::parse("mailgun://bob:k3y@h/d", "t", FORM).unwrap();
        let err = e.key(Some("api")).unwrap_err();
        assert_eq!(err.field(), Some("t.user"));
        assert!(!err.to_string().contains("k3y"));
        let mut e = Endpoint::parse("postmark://api.postmarkapp.com", "t", FORM).unwrap();
        assert_eq!(e.key(None).unwrap_err().field(), Some("t.user"));
        let err = Endpoint::parse("postmark://a b@h", "t", FORM).unwrap_err();
        assert!(!err.to_string().contains("a b"), "{err}");
    }
}
