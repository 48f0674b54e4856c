//! SMTP delivery over lettre's connection-level client, with mailroom's own pool.
//!
//! Why not lettre's pooled `AsyncSmtpTransport`: it writes the body and the final `.` as
//! separate small writes on a socket without `TCP_NODELAY` (Nagle plus delayed ACK cost
//! ~40 ms per message), has no timeout on commands after connect (lettre #1027) and can
//! hand out connections the server already closed (lettre #743). Here mailroom opens and
//! tunes the TCP stream itself, gives it to lettre's `AsyncSmtpConnection`, pipelines
//! `MAIL`/`RCPT`/`DATA` when the server offers PIPELINING, sends the body and its final
//! `.` in one write, bounds every network operation by a timeout, and pools connections
//! with a hard cap, idle expiry and a retry on a fresh connection when a pooled one turns
//! out to be closed before anything was accepted.

mod connection;
mod hello;
mod limit;
mod pool;
mod reply;
mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use std::sync::atomic::AtomicUsize;
use tracing::Instrument;

use super::url::is_loopback;
use super::{Delivery, Transport};
use crate::error::{DeliveryFailure, Error, Result};
use crate::render::Rendered;

use connection::Outgoing;
use pool::Pool;

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
    /// `STARTTLS` required: a server that does not offer it is an error.
    Required,
    /// `STARTTLS` when the server offers it, plain text otherwise. Credentials are still
    /// never sent in clear text to a host other than loopback.
    Opportunistic,
    /// Plain text (`tls=none`); allowed with credentials only for loopback hosts.
    None,
}

/// Login details. `Debug` never shows the password.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Refuses what would change the meaning of the SASL message the credentials go
    /// into: NUL separates the fields of AUTH PLAIN (RFC 4616), `^A` those of XOAUTH2,
    /// and a user name has no business holding control characters. The password is never
    /// repeated in the error.
    fn check(&self, field: &str, mechanisms: &[Mechanism]) -> Result<()> {
        if self.user.is_empty() {
            return Err(Error::configuration(
                format!("{field}.user"),
                "is empty; give the user name to log in with",
            ));
        }
        if self.user.chars().any(char::is_control) {
            return Err(Error::configuration(
                format!("{field}.user"),
                "holds a control character (NUL, CR, LF...); give the user name as the server knows it",
            ));
        }
        let separator =
            |c: char| c == '\0' || (c == '\u{1}' && mechanisms.contains(&Mechanism::Xoauth2));
        if self.password.chars().any(separator) {
            return Err(Error::configuration(
                format!("{field}.password"),
                "holds a NUL or ^A character, which would split the AUTH message; check the password",
            ));
        }
        Ok(())
    }
}

/// SASL mechanisms mailroom may use, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    Plain,
    Login,
    Xoauth2,
}

/// Everything a connection needs to know; shared by the pool.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: TlsMode,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) mechanisms: Vec<Mechanism>,
    pub(crate) timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) hello_name: String,
    pub(crate) tls_config: tls::TlsConfig,
    pub(crate) loopback: bool,
}

/// Builds an [`SmtpTransport`]; start with [`SmtpTransport::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SmtpBuilder {
    host: String,
    port: Option<u16>,
    tls: Option<TlsMode>,
    credentials: Option<Credentials>,
    mechanisms: Vec<Mechanism>,
    timeout: Duration,
    max_connections: usize,
    idle_timeout: Duration,
    hello_name: Option<String>,
    extra_roots_pem: Vec<(String, Vec<u8>)>,
    field: String,
}

impl SmtpBuilder {
    /// The port (default 587 for STARTTLS, 465 for implicit TLS, 25 for plain loopback).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// How to secure the connection. The default is [`TlsMode::Required`], except for
    /// loopback hosts, where it is [`TlsMode::Opportunistic`].
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.tls = Some(mode);
        self
    }

    /// Log in with AUTH PLAIN or LOGIN, whichever the server offers.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Log in with AUTH XOAUTH2 and this OAuth 2 access token.
    pub fn oauth2(mut self, user: impl Into<String>, token: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: token.into(),
        });
        self.mechanisms = vec![Mechanism::Xoauth2];
        self
    }

    /// The time limit for each network operation: connecting, the TLS handshake, each
    /// command and the message data (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connections open at once (default 4); also how many messages
    /// [`Transport::send_batch`] sends at the same time.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long an unused connection stays open (default 60 s).
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// The name sent with `EHLO` (default: this machine's host name).
    pub fn hello_name(mut self, name: impl Into<String>) -> Self {
        self.hello_name = Some(name.into());
        self
    }

    /// Also trusts the CA certificates in this PEM (for private or test CAs). The public
    /// web roots stay trusted; certificate verification is never turned off.
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem
            .push((format!("{}.ca", self.field), pem.into()));
        self
    }

    pub(crate) fn field(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }

    pub(crate) fn add_root_file(mut self, path: &str) -> Result<Self> {
        let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.extra_roots_pem
            .push((format!("{}.ca", self.field), pem));
        Ok(self)
    }

    /// Checks the settings and builds the transport. Nothing connects yet.
    pub fn build(self) -> Result<SmtpTransport> {
        let field = self.field;
        if self.host.is_empty() {
            return Err(Error::configuration(
                format!("{field}.host"),
                "is empty; name the SMTP server",
            ));
        }
        let loopback = is_loopback(&self.host);
        let tls = self.tls.unwrap_or(if loopback {
            TlsMode::Opportunistic
        } else {
            TlsMode::Required
        });
        if self.credentials.is_some() && !loopback && tls == TlsMode::None {
            return Err(Error::configuration(
                format!("{field}.tls"),
                format!(
                    "is `none` but credentials are set: refusing to send a password in clear text to {}; use tls=starttls or smtps://",
                    self.host
                ),
            ));
        }
        let port = self.port.unwrap_or(match tls {
            TlsMode::Implicit => 465,
            TlsMode::Required => 587,
            TlsMode::Opportunistic | TlsMode::None => 25,
        });
        let tls_config = tls::TlsConfig::new(&self.host, &self.extra_roots_pem)?;
        let hello_name = match self.hello_name {
            Some(name) => {
                hello::check(&name, &format!("{field}.helo"))?;
                name
            }
            None => hello::default_name(),
        };
        let mechanisms = if self.mechanisms.is_empty() {
            vec![Mechanism::Plain, Mechanism::Login]
        } else {
            self.mechanisms
        };
        if let Some(credentials) = &self.credentials {
            credentials.check(&field, &mechanisms)?;
        }
        let settings = Settings {
            host: self.host,
            port,
            tls,
            credentials: self.credentials,
            mechanisms,
            timeout: self.timeout,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            hello_name,
            tls_config,
            loopback,
        };
        Ok(SmtpTransport {
            pool: Arc::new(Pool::new(settings)),
        })
    }
}

/// Delivers over SMTP with a pool of connections. Needs a tokio runtime.
///
/// - **TLS**: `smtps://` is implicit TLS (port 465); `smtp://` requires STARTTLS (port
///   587) unless the host is loopback, where STARTTLS is used when offered (port 25).
///   Certificates are always verified against the web PKI roots plus any CA added with
///   `?ca=PATH` / [`SmtpBuilder::add_root_certificates_pem`]; there is no switch to turn
///   verification off.
/// - **Credentials** are never sent in clear text to a host other than loopback (a
///   [`Error::Configuration`] error instead) and never appear in `Debug` output or logs.
/// - **SMTPUTF8** is decided per message: UTF-8 headers and the `SMTPUTF8` parameter
///   only when an address has a non-ASCII local part and the server offers it;
///   otherwise punycode domains and encoded words. A non-ASCII local part on a server
///   without SMTPUTF8 is a permanent error that says so.
/// - **Errors**: 4xx replies, connection failures, resets and timeouts are
///   [`Error::Transient`]; 5xx replies, an untrusted certificate and a message the
///   server cannot take are [`Error::Permanent`]. A message some recipients refused is
///   delivered to the others and succeeds, listing the refusals in
///   [`Delivery::deferred`] (4xx, to retry with [`Transport::send_to`]) and
///   [`Delivery::rejected`] (5xx). When every recipient is refused, the error is
///   transient if any refusal was.
/// - **Replies** are bounded: a reply line longer than 1,000 octets (RFC 5321 allows
///   512), a reply of more than 128 lines or 100,000 octets, or (once STARTTLS is on)
///   more than 1 MiB read without the client writing is a transient error saying the
///   server sent an over-long reply, and the connection is closed.
/// - **Pool**: at most `max_connections` open connections (`?pool=`, default 4), idle
///   ones closed after `?idle=` (default 60 s), a connection the server closed while
///   idle replaced transparently, every network operation bounded by `?timeout=`
///   (default 30 s). [`Transport::send_batch`] spreads a batch over the pool and, on
///   servers with PIPELINING, sends each message's commands behind the previous body.
///
/// Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct SmtpTransport {
    pool: Arc<Pool>,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.pool.settings();
        f.debug_struct("SmtpTransport")
            .field("host", &s.host)
            .field("port", &s.port)
            .field("tls", &s.tls)
            .field("user", &s.credentials.as_ref().map(|c| c.user.as_str()))
            .field("max_connections", &s.max_connections)
            .field("timeout", &s.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Starts a builder for a server.
    pub fn builder(host: impl Into<String>) -> SmtpBuilder {
        SmtpBuilder {
            host: host.into(),
            port: None,
            tls: None,
            credentials: None,
            mechanisms: Vec::new(),
            timeout: Duration::from_secs(30),
            max_connections: 4,
            idle_timeout: Duration::from_secs(60),
            hello_name: None,
            extra_roots_pem: Vec::new(),
            field: "smtp".to_owned(),
        }
    }

    /// Builds the transport from an `smtp://` or `smtps://` URL (see
    /// [`transport::from_url`](crate::transport::from_url) for the options).
    pub fn from_url(url: &str) -> Result<SmtpTransport> {
        super::url::smtp(url, "transport")
    }

    /// The number of connections open now (idle or busy).
    pub fn open_connections(&self) -> usize {
        self.pool.open_connections()
    }

    /// Closes the idle connections politely (`QUIT`); busy ones close when they finish.
    pub async fn close_idle(&self) {
        self.pool.close_idle().await;
    }

    async fn send_one(&self, message: &Rendered) -> Result<Delivery> {
        let span = span(message);
        let result = self
            .pool
            .deliver(outgoing(message))
            .instrument(span.clone())
            .await;
        span.in_scope(|| finish(message, result))
    }
}

/// What the pool sends of a rendered message.
fn outgoing(message: &Rendered) -> Outgoing<'_> {
    Outgoing {
        envelope: message.envelope(),
        data: message.bytes(),
        utf8: message.smtputf8(),
    }
}

fn span(message: &Rendered) -> tracing::Span {
    tracing::info_span!(
        "mailroom.smtp.send",
        message_id = message.message_id(),
        recipients = message.envelope().to().len(),
        bytes = message.bytes().len(),
        smtputf8 = message.smtputf8(),
    )
}

/// Fills in the message id and logs the outcome.
fn finish(message: &Rendered, result: Result<Delivery>) -> Result<Delivery> {
    match result {
        Ok(mut delivery) => {
            delivery.message_id = Some(message.message_id().to_owned());
            tracing::info!(
                accepted = delivery.accepted.len(),
                deferred = delivery.deferred.len(),
                rejected = delivery.rejected.len(),
                queue_id = delivery.queue_id.as_deref().unwrap_or(""),
                "message delivered"
            );
            Ok(delivery)
        }
        Err(error) => {
            tracing::warn!(%error, transient = error.is_transient(), "message not delivered");
            Err(error)
        }
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        self.send_one(message).await
    }

    async fn close(&self) {
        self.pool.close_idle().await;
    }

    async fn send_rendered_batch(&self, messages: &[Rendered]) -> Vec<Result<Delivery>> {
        let items: Vec<Outgoing<'_>> = messages.iter().map(outgoing).collect();
        let cursor = AtomicUsize::new(0);
        let width = self.pool.settings().max_connections.min(items.len()).max(1);
        let batch = tracing::info_span!(
            "mailroom.smtp.send_batch",
            messages = messages.len(),
            connections = width
        );
        // FuturesUnordered polls only the worker whose connection woke it.
        let workers: futures_util::stream::FuturesUnordered<_> = (0..width)
            .map(|_| self.pool.worker(&items, &cursor))
            .collect();
        let finished: Vec<_> = workers.collect().instrument(batch).await;

        let mut results: Vec<Option<Result<Delivery>>> =
            (0..messages.len()).map(|_| None).collect();
        for (item, result) in finished.into_iter().flatten() {
            let message = &messages[item];
            results[item] = Some(span(message).in_scope(|| finish(message, result)));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(transient("the message was not sent"))))
            .collect()
    }
}

pub(crate) fn transient(message: impl Into<String>) -> Error {
    Error::Transient(DeliveryFailure::local(message))
}

pub(crate) fn permanent(message: impl Into<String>) -> Error {
    Error::Permanent(DeliveryFailure::local(message))
}
