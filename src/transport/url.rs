//! Transport URLs, as the [`transport`](super) module lists them.
//!
//! `smtp://[user[:password]@]host[:port][?tls=opportunistic|starttls|none]`, `smtps://…`,
//! `file:DIR`, `console:`, `memory:[NAME]`, `dummy:`. SMTP URLs also take
//! `timeout=` (per network operation: `30`, `30s`, `500ms`), `pool=` (most open
//! connections), `idle=` (idle connection lifetime), `ca=PATH` (also trust the CA
//! certificates in this PEM file), `helo=NAME` and `auth=xoauth2` (the password is an
//! OAuth 2 token). User and password are percent-decoded. The HTTP API transports'
//! URLs (`postmark://`, `resend://`, `sendgrid://`, `mailgun://`) are parsed in
//! `transport/http/endpoint.rs`.

use std::sync::Arc;
#[cfg(any(feature = "smtp", feature = "http"))]
use std::time::Duration;

use super::{ConsoleTransport, DummyTransport, FileTransport, MemoryTransport, Outbox, Transport};
use crate::error::{Error, Result};

/// Parses `url`; errors name `field` (e.g. `MAILROOM_TRANSPORT`).
pub(crate) fn parse(url: &str, field: &str) -> Result<Arc<dyn Transport>> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once(':')
        .filter(|(scheme, _)| is_scheme(scheme))
        .ok_or_else(|| {
            Error::configuration(
                field,
                format!(
                    "`{}` is not a transport URL; try smtp://host, file:DIR, console:, memory: or dummy:",
                    redact(url)
                ),
            )
        })?;
    match scheme.to_ascii_lowercase().as_str() {
        "console" => Ok(Arc::new(ConsoleTransport::new())),
        "dummy" => Ok(Arc::new(DummyTransport::new())),
        "memory" => {
            let name = rest.trim_start_matches("//");
            let outbox = if name.is_empty() {
                Outbox::global()
            } else {
                Outbox::named(name)
            };
            Ok(Arc::new(MemoryTransport::with_outbox(outbox)))
        }
        "file" => {
            let dir = rest.strip_prefix("//").unwrap_or(rest);
            if dir.is_empty() {
                return Err(Error::configuration(
                    field,
                    "`file:` needs a directory, e.g. `file:/var/spool/mail-out`",
                ));
            }
            Ok(Arc::new(FileTransport::new(dir)))
        }
        #[cfg(feature = "smtp")]
        "smtp" | "smtps" => Ok(Arc::new(smtp(url, field)?)),
        #[cfg(not(feature = "smtp"))]
        "smtp" | "smtps" => Err(Error::configuration(
            field,
            "SMTP needs mailroom's `smtp` feature",
        )),
        #[cfg(feature = "http")]
        scheme if super::http::SCHEMES.contains(&scheme) => {
            super::http::from_url(scheme, url, field)
                .unwrap_or_else(|| Err(Error::configuration(field, "unknown HTTP transport")))
        }
        #[cfg(not(feature = "http"))]
        "ses" | "mailgun" | "postmark" | "sendgrid" | "resend" => Err(Error::configuration(
            field,
            "HTTP API transports need mailroom's `http` feature",
        )),
        other => Err(Error::configuration(
            field,
            format!(
                "unknown transport scheme `{other}:`; use smtp://, smtps://, ses://, mailgun://, postmark://, sendgrid://, resend://, file:, console:, memory: or dummy:"
            ),
        )),
    }
}

/// The URL with its user information masked, for error messages.
///
/// By string rules, not by parsing: a URL that does not parse (a bad port, a space in the
/// host, `smtp:` without `//`...) is exactly the one an error shows, so it must be masked
/// too. Everything between the scheme (with its `//`) and the *last* `@` is user
/// information: `smtp://u:secret@h` → `smtp://u:****@h`. The user name stays when it is
/// plainly one (ASCII, no `/` or `@`); anything else becomes `****` as a whole. A password
/// holding `/`, `?` or `#` that was not percent-encoded is masked as well, at the price of
/// masking too much when a query value holds an `@`.
pub(crate) fn redact(url: &str) -> String {
    let (prefix, rest) = match url.split_once(':') {
        Some((scheme, rest)) if is_scheme(scheme) => {
            let slashes = if rest.starts_with("//") { 2 } else { 0 };
            url.split_at(scheme.len() + 1 + slashes)
        }
        _ => ("", url),
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = rest.split_at(at);
    let masked = match userinfo.split_once(':') {
        Some((user, _)) if is_plain_user(user) => format!("{user}:****"),
        _ => "****".to_owned(),
    };
    format!("{prefix}{masked}{host}")
}

/// RFC 3986 `scheme`: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// A user name safe to show: RFC 3986 `userinfo` characters other than `:`.
fn is_plain_user(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(c))
}

#[cfg(feature = "smtp")]
pub(crate) fn smtp(raw: &str, field: &str) -> Result<super::SmtpTransport> {
    use super::{SmtpTransport, TlsMode};
    use std::borrow::Cow;

    let url = ::url::Url::parse(raw).map_err(|e| {
        let hint = if raw.contains('@') {
            "; percent-encode any `@`, `:`, `/`, `?` or `#` in the user name or password"
        } else {
            ""
        };
        Error::configuration(
            field,
            format!("`{}` is not a valid URL: {e}{hint}", redact(raw)),
        )
    })?;
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        Error::configuration(
            field,
            format!(
                "`{}` names no host; write it as `{}://[user[:password]@]host[:port]`",
                redact(raw),
                url.scheme()
            ),
        )
    })?;
    let decode = |s: &str, part: &str| -> Result<String> {
        percent_decode(s).ok_or_else(|| {
            Error::configuration(
                format!("{field}.{part}"),
                "is not valid percent-encoded UTF-8",
            )
        })
    };
    let mut builder = SmtpTransport::builder(host).field(field);
    if let Some(port) = url.port() {
        builder = builder.port(port);
    }
    let implicit = url.scheme() == "smtps";
    if implicit {
        builder = builder.tls(TlsMode::Implicit);
    }
    let mut oauth2 = false;
    for (key, value) in url.query_pairs() {
        let value: Cow<'_, str> = value;
        let part = format!("{field}.{key}");
        match key.as_ref() {
            "tls" if implicit => {
                if value != "implicit" {
                    return Err(Error::configuration(
                        part,
                        "smtps:// is always implicit TLS; use smtp:// for STARTTLS",
                    ));
                }
            }
            "tls" => {
                let mode = match value.as_ref() {
                    "starttls" | "required" => TlsMode::Required,
                    "opportunistic" => TlsMode::Opportunistic,
                    "none" => TlsMode::None,
                    other => {
                        return Err(Error::configuration(
                            part,
                            format!(
                                "`{other}` is not a TLS mode; use starttls, opportunistic or none"
                            ),
                        ));
                    }
                };
                builder = builder.tls(mode);
            }
            "timeout" => builder = builder.timeout(duration(&value, &part)?),
            "idle" => builder = builder.idle_timeout(duration(&value, &part)?),
            "pool" => {
                let n: usize = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::configuration(
                        part,
                        format!("`{value}` is not a positive number of connections"),
                    )
                })?;
                builder = builder.max_connections(n);
            }
            "ca" => builder = builder.add_root_file(&value)?,
            "helo" => builder = builder.hello_name(value.into_owned()),
            "auth" => match value.to_ascii_lowercase().as_str() {
                "xoauth2" => oauth2 = true,
                "plain" | "login" | "auto" => {}
                other => {
                    return Err(Error::configuration(
                        part,
                        format!("`{other}` is not supported; use xoauth2 or leave it out"),
                    ));
                }
            },
            other => {
                return Err(Error::configuration(
                    part,
                    format!(
                        "unknown option `{other}`; SMTP URLs take tls, timeout, pool, idle, ca, helo and auth"
                    ),
                ));
            }
        }
    }
    if url.username().is_empty() && url.password().is_some() {
        return Err(Error::configuration(
            format!("{field}.user"),
            "is empty but a password is given; put the user name before the `:` that starts the password",
        ));
    }
    if !url.username().is_empty() {
        let user = decode(url.username(), "user")?;
        let password = decode(url.password().unwrap_or(""), "password")?;
        builder = if oauth2 {
            builder.oauth2(user, password)
        } else {
            builder.credentials(user, password)
        };
    }
    builder.build()
}

#[cfg(any(feature = "smtp", feature = "http"))]
pub(crate) fn duration(value: &str, field: &str) -> Result<Duration> {
    let bad = || {
        Error::configuration(
            field,
            format!("`{value}` is not a duration; use e.g. 30, 30s or 500ms"),
        )
    };
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else {
        (value, 1.0)
    };
    let secs: f64 = number.trim().parse().map_err(|_| bad())?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Duration::try_from_secs_f64(secs * scale).map_err(|_| bad())
}

/// `true` for `localhost` and loopback IP addresses (brackets allowed): the hosts that may
/// get credentials in clear text (SMTP) or plain `http://` (providers).
#[cfg(any(feature = "smtp", feature = "http"))]
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(any(feature = "smtp", feature = "http"))]
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn simple_schemes() {
        for url in [
            "console:",
            "dummy:",
            "memory:",
            "memory:inbox-a",
            "file:/tmp/x",
            "file:///tmp/x",
        ] {
            parse(url, "transport").unwrap();
        }
        assert!(parse("gopher://x", "transport").is_err());
        assert!(parse("nonsense", "transport").is_err());
        assert!(parse("file:", "transport").is_err());
    }

    #[cfg(feature = "smtp")]
    #[test]
    fn smtp_urls() {
        let t = parse(
            "smtp://localhost:2525?tls=none&timeout=500ms&pool=2",
            "transport",
        )
        .unwrap();
        let debug = format!("{t:?}");
        assert!(debug.contains("2525") && debug.contains("None"), "{debug}");
        // Credentials over plain text to a remote host are refused.
        let err = parse("smtp://u:secret@mail.example.com?tls=none", "transport").unwrap_err();
        assert_eq!(err.field(), Some("transport.tls"));
        assert!(!err.to_string().contains("secret"));
        // Loopback may (development servers).
        parse("smtp://u:secret@127.0.0.1:2525?tls=none", "transport").unwrap();
        // Remote hosts default to STARTTLS required, port 587; passwords never in Debug.
        let t = parse("smtp://u:p%40ss@mail.example.com", "transport").unwrap();
        let debug = format!("{t:?}");
        assert!(
            debug.contains("Required") && debug.contains("587") && !debug.contains("p@ss"),
            "{debug}"
        );
        assert!(
            format!(
                "{:?}",
                parse("smtps://mail.example.com", "transport").unwrap()
            )
            .contains("465")
        );
        assert!(parse("smtp://h?tls=maybe", "transport").is_err());
        assert!(parse("smtp://h?timeout=-1", "transport").is_err());
        assert!(parse("smtp://h?bogus=1", "transport").is_err());
        assert_eq!(redact("smtp://u:secret@h"), "smtp://u:****@h");
    }

    #[test]
    fn redaction_by_string_rules() {
        for (url, shown) in [
            ("smtp://u:pw@h:99999", "smtp://u:****@h:99999"),
            ("smtps://u:pw@[::1", "smtps://u:****@[::1"),
            ("smtp:u:pw@h", "smtp:u:****@h"),
            ("smtp://u:p@w@h", "smtp://u:****@h"),
            ("smtp://u:p/w?x#y@h", "smtp://u:****@h"),
            ("smtp://pw@h", "smtp://****@h"),
            ("smtp://ü:pw@h", "smtp://****@h"),
            ("pw@h", "****@h"),
            ("smtp ://u:pw@h", "****@h"),
            ("smtp://h:25?tls=none", "smtp://h:25?tls=none"),
            ("file:/var/mail", "file:/var/mail"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }
}
