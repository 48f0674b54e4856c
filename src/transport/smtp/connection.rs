//! One SMTP connection: a tuned TCP (or TLS) stream driven by lettre's
//! `AsyncSmtpConnection`, with a timeout on every network operation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{
    Credentials as LettreCredentials, Mechanism as LettreMechanism,
};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

use super::limit::{Capped, Encrypted};
use super::reply::{Answer, answer, broken, queue_id, reply_error, timed_out};
use super::tls::TlsStream;
use super::{Mechanism, Settings, TlsMode, permanent};
use crate::error::{Error, Result};
use crate::transport::{Delivery, Envelope, Rejection};

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

/// Why a transaction failed, and what that means for the connection.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    /// The connection can no longer be used.
    pub(crate) broken: bool,
    /// Nothing was accepted and the connection was found closed at its first use: a
    /// pooled connection the server dropped while idle, worth one retry on a fresh one.
    pub(crate) stale: bool,
    /// The next message's command group was written behind this body.
    pub(crate) next_opened: bool,
}

impl Failure {
    fn usable(error: Error) -> Self {
        Failure {
            error,
            broken: false,
            stale: false,
            next_opened: false,
        }
    }

    fn broken(error: Error, stale: bool) -> Self {
        Failure {
            error,
            broken: true,
            stale,
            next_opened: false,
        }
    }
}

/// One message ready to go: its envelope and rendered bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub(crate) envelope: &'a Envelope,
    pub(crate) data: &'a [u8],
    pub(crate) utf8: bool,
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

/// Runs one network operation under the time limit, sorting the result into a reply or
/// a broken connection.
async fn op<F>(
    server: &str,
    limit: Duration,
    context: &str,
    stale: bool,
    fut: F,
) -> Result<Answer, Failure>
where
    F: Future<Output = Result<Response, lettre::transport::smtp::Error>>,
{
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(Failure::broken(timed_out(server, context, limit), false)),
        Ok(result) => match answer(result) {
            Ok(answer) => {
                // 421: the server is closing the connection.
                let closing = answer.reply.code == 421;
                if closing {
                    return Err(Failure::broken(answer.error(context), stale));
                }
                Ok(answer)
            }
            Err(e) => Err(Failure::broken(broken(&e, server, context), stale)),
        },
    }
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, upgrades with STARTTLS and logs in, as
    /// `settings` ask; every step under `settings.timeout`.
    pub(crate) async fn open(settings: &Settings, open: OpenToken) -> Result<Connection> {
        let server: Arc<str> = format!("{}:{}", settings.host, settings.port).into();
        let limit = settings.timeout;
        let host = settings.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = match tokio::time::timeout(limit, TcpStream::connect((host, settings.port))).await
        {
            Err(_) => return Err(timed_out(&server, "connect", limit)),
            Ok(Err(e)) => return Err(broken(&e, &server, "connect")),
            Ok(Ok(tcp)) => tcp,
        };
        // The reason this module exists: without TCP_NODELAY every message waits on
        // Nagle's algorithm and the server's delayed ACK.
        tcp.set_nodelay(true)
            .map_err(|e| broken(&e, &server, "connect"))?;

        // Every reply is read through a Capped stream: an endless reply line fails fast.
        let encrypted_below = Encrypted::default();
        let stream: Box<dyn AsyncTokioStream> = if settings.tls == TlsMode::Implicit {
            let connector =
                tokio_rustls::TlsConnector::from(Arc::clone(&settings.tls_config.implicit));
            let handshake = connector.connect(settings.tls_config.server_name.clone(), tcp);
            match tokio::time::timeout(limit, handshake).await {
                Err(_) => return Err(timed_out(&server, "TLS handshake", limit)),
                Ok(Err(e)) => return Err(broken(&e, &server, "TLS handshake")),
                Ok(Ok(tls)) => Box::new(Capped::new(TlsStream(tls), encrypted_below.clone())),
            }
        } else {
            Box::new(Capped::new(tcp, encrypted_below.clone()))
        };

        let client_id = ClientId::Domain(settings.hello_name.clone());
        let smtp = match tokio::time::timeout(
            limit,
            AsyncSmtpConnection::connect_with_transport(stream, &client_id),
        )
        .await
        {
            Err(_) => return Err(timed_out(&server, "greeting", limit)),
            Ok(Ok(smtp)) => smtp,
            Ok(Err(e)) => {
                return Err(match answer(Err(e)) {
                    Ok(negative) => negative.error("greeting"),
                    Err(e) => broken(&e, &server, "greeting"),
                });
            }
        };
        let mut conn = Connection {
            smtp,
            caps: Capabilities::default(),
            server,
            timeout: limit,
            last_used: Instant::now(),
            _open: open,
        };

        let mut encrypted = settings.tls == TlsMode::Implicit;
        if matches!(settings.tls, TlsMode::Required | TlsMode::Opportunistic) {
            if conn.smtp.can_starttls() {
                // lettre puts TLS on top of the capped stream: it now sees ciphertext.
                encrypted_below.set();
                let params = settings.tls_config.starttls.clone();
                match tokio::time::timeout(limit, conn.smtp.starttls(params, &client_id)).await {
                    Err(_) => return Err(timed_out(&conn.server, "STARTTLS", limit)),
                    Ok(Err(e)) => {
                        return Err(match answer(Err(e)) {
                            Ok(negative) => negative.error("STARTTLS"),
                            Err(e) => broken(&e, &conn.server, "STARTTLS"),
                        });
                    }
                    Ok(Ok(())) => encrypted = true,
                }
            } else if settings.tls == TlsMode::Required {
                return Err(permanent(format!(
                    "{} does not offer STARTTLS, which tls=starttls requires; use smtps:// if it speaks implicit TLS",
                    conn.server
                )));
            }
        }

        // lettre keeps only the extensions it knows; ask again to learn PIPELINING and SIZE.
        let ehlo = format!("EHLO {}\r\n", settings.hello_name);
        let response = match tokio::time::timeout(limit, conn.smtp.command(ehlo)).await {
            Err(_) => return Err(timed_out(&conn.server, "EHLO", limit)),
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                return Err(match answer(Err(e)) {
                    Ok(negative) => negative.error("EHLO"),
                    Err(e) => broken(&e, &conn.server, "EHLO"),
                });
            }
        };
        conn.caps = Capabilities::parse(&response.message().collect::<Vec<_>>().join("\n"));

        if let Some(credentials) = &settings.credentials {
            if !encrypted && !settings.loopback {
                return Err(Error::configuration(
                    "smtp.tls",
                    format!(
                        "{} does not offer STARTTLS: refusing to send credentials in clear text; use smtps:// or a server with STARTTLS",
                        conn.server
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
                tokio::time::timeout(limit, conn.smtp.auth(&mechanisms, &lettre_credentials)).await;
            match result {
                Err(_) => return Err(timed_out(&conn.server, "AUTH", limit)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.is_client() => {
                    return Err(permanent(format!(
                        "{} offers none of the AUTH mechanisms mailroom may use ({:?})",
                        conn.server, settings.mechanisms
                    )));
                }
                Ok(Err(e)) => {
                    return Err(match answer(Err(e)) {
                        Ok(negative) => negative.error("AUTH"),
                        Err(e) => broken(&e, &conn.server, "AUTH"),
                    });
                }
            }
        }
        tracing::debug!(server = %conn.server, caps = ?conn.caps, encrypted, "smtp connection open");
        Ok(conn)
    }

    /// Whether the server takes pipelined commands.
    pub(crate) fn pipelining(&self) -> bool {
        self.caps.pipelining
    }

    /// Checks a message against what the server offers, before anything is sent.
    fn precheck(&self, msg: Outgoing<'_>) -> Result<(), Error> {
        if msg.utf8 && !self.caps.smtputf8 {
            return Err(permanent(format!(
                "the message needs SMTPUTF8 (an address has a non-ASCII local part) but {} does not offer it; use an ASCII address or a server with SMTPUTF8",
                self.server
            )));
        }
        if let Some(limit) = self.caps.size.filter(|limit| msg.data.len() > *limit) {
            return Err(permanent(format!(
                "the message is {} bytes but {} takes at most {limit}",
                msg.data.len(),
                self.server
            )));
        }
        Ok(())
    }

    fn mail_command(&self, msg: Outgoing<'_>) -> String {
        let mut mail = format!("MAIL FROM:<{}>", msg.envelope.from);
        if msg.utf8 {
            mail.push_str(" SMTPUTF8");
        }
        if !msg.data.is_ascii() && self.caps.eight_bit_mime {
            mail.push_str(" BODY=8BITMIME");
        }
        if self.caps.size.is_some() {
            mail.push_str(&format!(" SIZE={}", msg.data.len()));
        }
        mail.push_str("\r\n");
        mail
    }

    /// MAIL, every RCPT and DATA as one pipelined group (RFC 2920).
    fn pipelined_group(&self, msg: Outgoing<'_>) -> String {
        let mut group = self.mail_command(msg);
        for r in &msg.envelope.to {
            group.push_str("RCPT TO:<");
            group.push_str(r);
            group.push_str(">\r\n");
        }
        group.push_str("DATA\r\n");
        group
    }

    /// Sends one message: MAIL, RCPT per recipient, DATA (pipelined when the server
    /// offers PIPELINING), then the body. `first_use` marks a pooled connection's first
    /// command, whose failure means the server closed it while idle.
    ///
    /// Batches go faster: with `opened`, this message's MAIL/RCPT/DATA group was already
    /// written behind the previous body and only its replies are read; with `next`, the
    /// next message's group is written behind this body, in the same packet (RFC 2920
    /// lets message content open a group). The returned flag (also in [`Failure`]) says
    /// whether `next` was opened so.
    pub(crate) async fn transact(
        &mut self,
        msg: Outgoing<'_>,
        first_use: bool,
        opened: bool,
        next: Option<Outgoing<'_>>,
    ) -> Result<(Delivery, bool), Failure> {
        if let Err(error) = self.precheck(msg) {
            return Err(Failure::usable(error));
        }
        let server = Arc::clone(&self.server);
        let limit = self.timeout;
        let envelope = msg.envelope;

        let (mail_answer, rcpt_answers, data_answer) = if self.caps.pipelining {
            let mail_answer = if opened {
                op(
                    &server,
                    limit,
                    "MAIL FROM",
                    false,
                    self.smtp.read_response(),
                )
                .await?
            } else {
                let group = self.pipelined_group(msg);
                op(
                    &server,
                    limit,
                    "MAIL FROM",
                    first_use,
                    self.smtp.command(group),
                )
                .await?
            };
            let mut rcpt_answers = Vec::with_capacity(envelope.to.len());
            for _ in &envelope.to {
                rcpt_answers
                    .push(op(&server, limit, "RCPT TO", false, self.smtp.read_response()).await?);
            }
            let data_answer = op(&server, limit, "DATA", false, self.smtp.read_response()).await?;
            (mail_answer, rcpt_answers, Some(data_answer))
        } else {
            let mail = self.mail_command(msg);
            let mail_answer = op(
                &server,
                limit,
                "MAIL FROM",
                first_use,
                self.smtp.command(mail),
            )
            .await?;
            if !mail_answer.is_positive() {
                self.reset().await?;
                return Err(Failure::usable(mail_answer.error("MAIL FROM")));
            }
            let mut rcpt_answers = Vec::with_capacity(envelope.to.len());
            for r in &envelope.to {
                let rcpt = format!("RCPT TO:<{r}>\r\n");
                rcpt_answers
                    .push(op(&server, limit, "RCPT TO", false, self.smtp.command(rcpt)).await?);
            }
            let any_accepted = rcpt_answers.iter().any(Answer::is_positive);
            let data_answer = if any_accepted {
                Some(op(&server, limit, "DATA", false, self.smtp.command("DATA\r\n")).await?)
            } else {
                None
            };
            (mail_answer, rcpt_answers, data_answer)
        };

        // A server that took DATA although nothing was accepted gets an empty message
        // ended at once, which it will refuse.
        let data_open = data_answer.as_ref().is_some_and(|a| a.reply.code == 354);
        let mut accepted = Vec::new();
        let mut deferred = Vec::new();
        let mut rejected = Vec::new();
        for (recipient, answer) in envelope.to.iter().zip(&rcpt_answers) {
            if answer.is_positive() {
                accepted.push(recipient.clone());
                continue;
            }
            let refusal = Rejection {
                recipient: recipient.clone(),
                code: answer.reply.code,
                message: answer.reply.message.clone(),
            };
            if (400..500).contains(&answer.reply.code) {
                deferred.push(refusal);
            } else {
                rejected.push(refusal);
            }
        }
        let refusal = if !mail_answer.is_positive() {
            Some(mail_answer.error("MAIL FROM"))
        } else if accepted.is_empty() {
            Some(all_refused(&deferred, &rejected))
        } else {
            match &data_answer {
                Some(a) if !data_open => Some(a.error("DATA")),
                _ => None,
            }
        };
        if let Some(error) = refusal {
            if data_open {
                op(
                    &server,
                    limit,
                    "end of DATA",
                    false,
                    self.smtp.command(".\r\n"),
                )
                .await?;
            }
            self.reset().await?;
            return Err(Failure::usable(error));
        }

        // Larger messages get more time: the limit, plus a second per 256 KiB.
        let data_limit = limit + Duration::from_secs((msg.data.len() / (256 * 1024)) as u64);
        let mut next_opened = false;
        let final_answer = match std::str::from_utf8(msg.data) {
            Ok(text) => {
                let mut stuffed = dot_stuff(text);
                if let Some(next) =
                    next.filter(|n| self.caps.pipelining && self.precheck(*n).is_ok())
                {
                    stuffed.push_str(&self.pipelined_group(next));
                    next_opened = true;
                }
                op(
                    &server,
                    data_limit,
                    "end of DATA",
                    false,
                    self.smtp.command(stuffed.as_str()),
                )
                .await?
            }
            Err(_) => {
                op(
                    &server,
                    data_limit,
                    "end of DATA",
                    false,
                    self.smtp.message(msg.data),
                )
                .await?
            }
        };
        self.last_used = Instant::now();
        if !final_answer.is_positive() {
            return Err(Failure {
                error: final_answer.error("end of DATA"),
                broken: false,
                stale: false,
                next_opened,
            });
        }
        let delivery = Delivery {
            message_id: None,
            accepted,
            deferred,
            rejected,
            queue_id: queue_id(&final_answer.reply.message),
            reply: Some(final_answer.reply),
        };
        Ok((delivery, next_opened))
    }

    /// `RSET` after a refused transaction, so the connection can carry the next one.
    async fn reset(&mut self) -> Result<(), Failure> {
        let answer = op(
            &self.server,
            self.timeout,
            "RSET",
            false,
            self.smtp.command("RSET\r\n"),
        )
        .await?;
        if answer.is_positive() {
            Ok(())
        } else {
            Err(Failure::broken(answer.error("RSET"), false))
        }
    }

    /// Says `QUIT` (bounded by the timeout) and closes.
    pub(crate) async fn quit(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.smtp.quit()).await;
    }
}

/// The error when every recipient was refused: transient if any refusal was (a later
/// retry may reach that recipient), permanent otherwise.
fn all_refused(deferred: &[Rejection], rejected: &[Rejection]) -> Error {
    let text = deferred
        .iter()
        .chain(rejected)
        .map(|r| format!("{}: {} {}", r.recipient, r.code, r.message))
        .collect::<Vec<_>>()
        .join("; ");
    let code = deferred
        .first()
        .or_else(|| rejected.first())
        .map_or(554, |r| r.code);
    reply_error(
        code,
        &format!("every recipient was refused: {text}"),
        "RCPT TO",
    )
}

/// The message data with leading dots doubled, a final CRLF and the terminating `.`:
/// one buffer, so body and terminator leave in one write (lettre's `message()` writes
/// and flushes them separately).
fn dot_stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 5);
    for line in text.split_inclusive('\n') {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(".a\r\nb\r\n..c\r\n"), "..a\r\nb\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff("no newline"), "no newline\r\n.\r\n");
    }

    #[test]
    fn capabilities() {
        let caps = Capabilities::parse("mx.example\nPIPELINING\nSIZE 1000\nsmtputf8\n8BITMIME");
        assert!(caps.pipelining && caps.smtputf8 && caps.eight_bit_mime);
        assert_eq!(caps.size, Some(1000));
    }
}
