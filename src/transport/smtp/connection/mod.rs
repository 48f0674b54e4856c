//! One SMTP connection: a tuned TCP (or TLS) stream driven by lettre's
//! `AsyncSmtpConnection`, with a timeout on every network operation. Opening it (stream,
//! greeting, STARTTLS, capabilities, AUTH) is here; the mail transactions it carries are
//! in `transaction.rs`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{
    Credentials as LettreCredentials, Mechanism as LettreMechanism,
};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::limit::{Capped, Encrypted};
use super::reply::{answer, broken, timed_out};
use super::tls::TlsStream;
use super::{Credentials, Mechanism, Settings, TlsMode, permanent};
use crate::error::{Error, Result};

mod transaction;

pub(crate) use transaction::{Outgoing, Start};

/// What the server said it supports, from its `EHLO` reply.
#[derive(Debug, Clone, Copy, Default)]
struct Capabilities {
    pipelining: bool,
    smtputf8: bool,
    eight_bit_mime: bool,
    size: Option<usize>,
}

impl Capabilities {
    fn parse(lines: &str) -> Self {
        let mut caps = Capabilities::default();
        // The first line is the server's greeting name; keywords follow, one per line.
        for line in lines.split('\n').skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SIZE" => caps.size = words.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0),
                _ => {}
            }
        }
        caps
    }
}

/// Counts open connections; one token lives inside each [`Connection`].
#[derive(Debug)]
pub(crate) struct OpenToken(Arc<AtomicUsize>);

impl OpenToken {
    pub(crate) fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        OpenToken(Arc::clone(counter))
    }
}

impl Drop for OpenToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An open, greeted (and, as configured, encrypted and authenticated) SMTP connection.
pub(crate) struct Connection {
    smtp: AsyncSmtpConnection,
    caps: Capabilities,
    server: Arc<str>,
    timeout: Duration,
    pub(crate) last_used: Instant,
    _open: OpenToken,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

/// The TCP stream to the server, with TCP_NODELAY, wrapped in implicit TLS when
/// `settings` ask for it; every reply is read through a [`Capped`] stream, so an endless
/// reply line fails fast.
async fn connect_stream(
    settings: &Settings,
    server: &str,
    encrypted_below: &Encrypted,
) -> Result<Box<dyn AsyncTokioStream>> {
    let limit = settings.timeout;
    let host = settings.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = match tokio::time::timeout(limit, TcpStream::connect((host, settings.port))).await {
        Err(_) => return Err(timed_out(server, "connect", limit)),
        Ok(Err(e)) => return Err(broken(&e, server, "connect")),
        Ok(Ok(tcp)) => tcp,
    };
    // The reason this module exists: without TCP_NODELAY every message waits on
    // Nagle's algorithm and the server's delayed ACK.
    tcp.set_nodelay(true)
        .map_err(|e| broken(&e, server, "connect"))?;
    if settings.tls != TlsMode::Implicit {
        return Ok(Box::new(Capped::new(tcp, encrypted_below.clone())));
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&settings.tls_config.implicit));
    let handshake = connector.connect(settings.tls_config.server_name.clone(), tcp);
    match tokio::time::timeout(limit, handshake).await {
        Err(_) => Err(timed_out(server, "TLS handshake", limit)),
        Ok(Err(e)) => Err(broken(&e, server, "TLS handshake")),
        Ok(Ok(tls)) => Ok(Box::new(Capped::new(
            TlsStream(tls),
            encrypted_below.clone(),
        ))),
    }
}

/// Reads the server's greeting and says EHLO (lettre's connect).
async fn greet(
    stream: Box<dyn AsyncTokioStream>,
    client_id: &ClientId,
    server: &str,
    limit: Duration,
) -> Result<AsyncSmtpConnection> {
    match tokio::time::timeout(
        limit,
        AsyncSmtpConnection::connect_with_transport(stream, client_id),
    )
    .await
    {
        Err(_) => Err(timed_out(server, "greeting", limit)),
        Ok(Ok(smtp)) => Ok(smtp),
        Ok(Err(e)) => Err(match answer(Err(e)) {
            Ok(negative) => negative.error("greeting"),
            Err(e) => broken(&e, server, "greeting"),
        }),
    }
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, upgrades with STARTTLS and logs in, as
    /// `settings` ask; every step under `settings.timeout`.
    pub(crate) async fn open(settings: &Settings, open: OpenToken) -> Result<Connection> {
        let server: Arc<str> = format!("{}:{}", settings.host, settings.port).into();
        let limit = settings.timeout;
        let encrypted_below = Encrypted::default();
        let stream = connect_stream(settings, &server, &encrypted_below).await?;
        let client_id = ClientId::Domain(settings.hello_name.clone());
        let smtp = greet(stream, &client_id, &server, limit).await?;
        let mut conn = Connection {
            smtp,
            caps: Capabilities::default(),
            server,
            timeout: limit,
            last_used: Instant::now(),
            _open: open,
        };
        let encrypted = settings.tls == TlsMode::Implicit
            || conn
                .starttls(settings, &client_id, &encrypted_below)
                .await?;
        conn.caps = conn.capabilities(settings).await?;
        if let Some(credentials) = &settings.credentials {
            conn.authenticate(settings, credentials, encrypted).await?;
        }
        tracing::debug!(server = %conn.server, caps = ?conn.caps, encrypted, "smtp connection open");
        Ok(conn)
    }

    /// Upgrades with STARTTLS when `settings` ask for it and the server offers it (an
    /// error when it is required and not offered); `true` when the connection is now
    /// encrypted so.
    async fn starttls(
        &mut self,
        settings: &Settings,
        client_id: &ClientId,
        encrypted_below: &Encrypted,
    ) -> Result<bool> {
        let limit = self.timeout;
        if !matches!(settings.tls, TlsMode::Required | TlsMode::Opportunistic) {
            return Ok(false);
        }
        if self.smtp.can_starttls() {
            // lettre puts TLS on top of the capped stream: it now sees ciphertext.
            encrypted_below.set();
            let params = settings.tls_config.starttls.clone();
            match tokio::time::timeout(limit, self.smtp.starttls(params, client_id)).await {
                Err(_) => Err(timed_out(&self.server, "STARTTLS", limit)),
                Ok(Err(e)) => Err(match answer(Err(e)) {
                    Ok(negative) => negative.error("STARTTLS"),
                    Err(e) => broken(&e, &self.server, "STARTTLS"),
                }),
                Ok(Ok(())) => Ok(true),
            }
        } else if settings.tls == TlsMode::Required {
            Err(permanent(format!(
                "{} does not offer STARTTLS, which tls=starttls requires; use smtps:// if it speaks implicit TLS",
                self.server
            )))
        } else {
            Ok(false)
        }
    }

    /// What the server supports: lettre keeps only the extensions it knows, so EHLO is
    /// said again to learn PIPELINING and SIZE.
    async fn capabilities(&mut self, settings: &Settings) -> Result<Capabilities> {
        let limit = self.timeout;
        let ehlo = format!("EHLO {}\r\n", settings.hello_name);
        let response = match tokio::time::timeout(limit, self.smtp.command(ehlo)).await {
            Err(_) => return Err(timed_out(&self.server, "EHLO", limit)),
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                return Err(match answer(Err(e)) {
                    Ok(negative) => negative.error("EHLO"),
                    Err(e) => broken(&e, &self.server, "EHLO"),
                });
            }
        };
        Ok(Capabilities::parse(
            &response.message().collect::<Vec<_>>().join("\n"),
        ))
    }

    /// Logs in with `credentials`, never in clear text to a host other than loopback.
    async fn authenticate(
        &mut self,
        settings: &Settings,
        credentials: &Credentials,
        encrypted: bool,
    ) -> Result<()> {
        let limit = self.timeout;
        if !encrypted && !settings.loopback {
            return Err(Error::configuration(
                "smtp.tls",
                format!(
                    "{} does not offer STARTTLS: refusing to send credentials in clear text; use smtps:// or a server with STARTTLS",
                    self.server
                ),
            ));
        }
        let mechanisms: Vec<LettreMechanism> = settings
            .mechanisms
            .iter()
            .map(|m| match m {
                Mechanism::Plain => LettreMechanism::Plain,
                Mechanism::Login => LettreMechanism::Login,
                Mechanism::Xoauth2 => LettreMechanism::Xoauth2,
            })
            .collect();
        let lettre_credentials =
            LettreCredentials::new(credentials.user.clone(), credentials.password.clone());
        let result =
            tokio::time::timeout(limit, self.smtp.auth(&mechanisms, &lettre_credentials)).await;
        match result {
            Err(_) => Err(timed_out(&self.server, "AUTH", limit)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_client() => Err(permanent(format!(
                "{} offers none of the AUTH mechanisms mailroom may use ({:?})",
                self.server, settings.mechanisms
            ))),
            Ok(Err(e)) => Err(match answer(Err(e)) {
                Ok(negative) => negative.error("AUTH"),
                Err(e) => broken(&e, &self.server, "AUTH"),
            }),
        }
    }

    /// Whether the server takes pipelined commands.
    pub(crate) fn pipelining(&self) -> bool {
        self.caps.pipelining
    }

    /// Says `QUIT` (bounded by the timeout) and closes.
    pub(crate) async fn quit(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.smtp.quit()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        let caps = Capabilities::parse("mx.example\nPIPELINING\nSIZE 1000\nsmtputf8\n8BITMIME");
        assert!(caps.pipelining && caps.smtputf8 && caps.eight_bit_mime);
        assert_eq!(caps.size, Some(1000));
    }
}
