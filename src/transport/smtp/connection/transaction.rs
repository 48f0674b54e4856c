//! One mail transaction on an open [`Connection`]: the envelope phase (MAIL FROM, RCPT TO
//! per recipient, DATA; pipelined or one command at a time), the decision whether the
//! body can go, and the data phase (the body and the final reply).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::transport::smtp::response::Response;

use super::super::permanent;
use super::super::reply::{Answer, answer, broken, queue_id, reply_error, timed_out};
use super::Connection;
use crate::error::{Error, Result};
use crate::transport::{Delivery, Envelope, Rejection};

/// Why a transaction failed, and what that means for the connection.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    /// The connection can no longer be used.
    pub(crate) broken: bool,
    /// Nothing was accepted and the connection was found closed at its first use: a
    /// pooled connection the server dropped while idle, worth one retry on a fresh one.
    pub(crate) stale: bool,
    /// How the next message's transaction begins on this connection, if it is still
    /// usable: [`Start::Opened`] when its command group was written behind this body.
    pub(crate) next: Start,
}

impl Failure {
    fn usable(error: Error) -> Self {
        Failure {
            error,
            broken: false,
            stale: false,
            next: Start::Fresh,
        }
    }

    fn broken(error: Error, stale: bool) -> Self {
        Failure {
            error,
            broken: true,
            stale,
            next: Start::Fresh,
        }
    }
}

/// How a message's transaction begins on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Nothing of it is written yet, on a connection known to be alive.
    Fresh,
    /// Nothing of it is written yet, on a pooled connection not used since it sat idle: a
    /// closed connection found by its first command makes the failure
    /// [`stale`](Failure::stale).
    Idle,
    /// Its MAIL/RCPT/DATA group was written behind the previous message's body
    /// (pipelining): only the replies are left to read.
    Opened,
}

impl Start {
    /// A failure of the first command would mean the server closed the idle connection.
    fn is_idle(self) -> bool {
        self == Start::Idle
    }
}

/// The server's replies to one message's envelope.
#[derive(Debug)]
struct EnvelopeReplies {
    mail: Answer,
    /// One per recipient, in envelope order.
    rcpt: Vec<Answer>,
    /// `None` when DATA was not sent (nothing accepted, without pipelining).
    data: Option<Answer>,
}

impl EnvelopeReplies {
    /// The server took DATA and waits for the body.
    fn data_open(&self) -> bool {
        self.data.as_ref().is_some_and(|a| a.reply.code == 354)
    }

    /// Why the body cannot be sent, if it cannot: MAIL FROM refused, every recipient
    /// refused, or DATA refused.
    fn refusal(&self, recipients: &Recipients) -> Option<Error> {
        if !self.mail.is_positive() {
            Some(self.mail.error("MAIL FROM"))
        } else if recipients.accepted.is_empty() {
            Some(all_refused(&recipients.deferred, &recipients.rejected))
        } else {
            match &self.data {
                Some(a) if !self.data_open() => Some(a.error("DATA")),
                _ => None,
            }
        }
    }
}

/// The envelope's recipients, sorted by their RCPT TO replies.
#[derive(Debug)]
struct Recipients {
    accepted: Vec<String>,
    /// Refused for now (4xx).
    deferred: Vec<Rejection>,
    /// Refused for good (5xx).
    rejected: Vec<Rejection>,
}

impl Recipients {
    fn sort(envelope: &Envelope, rcpt: &[Answer]) -> Self {
        let mut sorted = Recipients {
            accepted: Vec::new(),
            deferred: Vec::new(),
            rejected: Vec::new(),
        };
        for (recipient, answer) in envelope.to().iter().zip(rcpt) {
            if answer.is_positive() {
                sorted.accepted.push(recipient.clone());
                continue;
            }
            let refusal = Rejection {
                recipient: recipient.clone(),
                code: answer.reply.code,
                message: answer.reply.message.clone(),
            };
            if (400..500).contains(&answer.reply.code) {
                sorted.deferred.push(refusal);
            } else {
                sorted.rejected.push(refusal);
            }
        }
        sorted
    }
}

/// One message ready to go: its envelope and rendered bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub(crate) envelope: &'a Envelope,
    pub(crate) data: &'a [u8],
    pub(crate) utf8: bool,
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
        let mut mail = format!("MAIL FROM:<{}>", msg.envelope.from());
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
        for r in msg.envelope.to() {
            group.push_str("RCPT TO:<");
            group.push_str(r);
            group.push_str(">\r\n");
        }
        group.push_str("DATA\r\n");
        group
    }

    /// Sends one message: its envelope (MAIL, RCPT per recipient, DATA; pipelined when
    /// the server offers PIPELINING), then its body. `start` says how far the envelope
    /// already got (see [`Start`]).
    ///
    /// Batches go faster: with `next`, the next message's MAIL/RCPT/DATA group is written
    /// behind this body, in the same packet (RFC 2920 lets message content open a group).
    /// The returned [`Start`] (also in [`Failure`]) is how the next message's transaction
    /// begins on this connection: [`Start::Opened`] when its group was written so.
    pub(crate) async fn transact(
        &mut self,
        msg: Outgoing<'_>,
        start: Start,
        next: Option<Outgoing<'_>>,
    ) -> Result<(Delivery, Start), Failure> {
        self.precheck(msg).map_err(Failure::usable)?;
        let replies = self.envelope(msg, start).await?;
        let recipients = Recipients::sort(msg.envelope, &replies.rcpt);
        if let Some(error) = replies.refusal(&recipients) {
            self.abandon(&replies).await?;
            return Err(Failure::usable(error));
        }
        let (final_answer, next_start) = self.data(msg, next).await?;
        self.last_used = Instant::now();
        if !final_answer.is_positive() {
            return Err(Failure {
                error: final_answer.error("end of DATA"),
                broken: false,
                stale: false,
                next: next_start,
            });
        }
        let delivery = Delivery {
            message_id: None,
            accepted: recipients.accepted,
            deferred: recipients.deferred,
            rejected: recipients.rejected,
            queue_id: queue_id(&final_answer.reply.message),
            reply: Some(final_answer.reply),
        };
        Ok((delivery, next_start))
    }

    /// The envelope phase: MAIL FROM, RCPT TO per recipient and DATA, as one pipelined
    /// group when the server takes it, or one command at a time.
    async fn envelope(
        &mut self,
        msg: Outgoing<'_>,
        start: Start,
    ) -> Result<EnvelopeReplies, Failure> {
        if self.caps.pipelining {
            self.envelope_pipelined(msg, start).await
        } else {
            self.envelope_stepwise(msg, start).await
        }
    }

    /// Writes the MAIL/RCPT/DATA group (unless it was written behind the previous body)
    /// and reads its replies.
    async fn envelope_pipelined(
        &mut self,
        msg: Outgoing<'_>,
        start: Start,
    ) -> Result<EnvelopeReplies, Failure> {
        let server = Arc::clone(&self.server);
        let limit = self.timeout;
        let mail = match start {
            Start::Opened => {
                op(
                    &server,
                    limit,
                    "MAIL FROM",
                    false,
                    self.smtp.read_response(),
                )
                .await?
            }
            Start::Fresh | Start::Idle => {
                let group = self.pipelined_group(msg);
                op(
                    &server,
                    limit,
                    "MAIL FROM",
                    start.is_idle(),
                    self.smtp.command(group),
                )
                .await?
            }
        };
        let mut rcpt = Vec::with_capacity(msg.envelope.to().len());
        for _ in msg.envelope.to() {
            rcpt.push(op(&server, limit, "RCPT TO", false, self.smtp.read_response()).await?);
        }
        let data = op(&server, limit, "DATA", false, self.smtp.read_response()).await?;
        Ok(EnvelopeReplies {
            mail,
            rcpt,
            data: Some(data),
        })
    }

    /// MAIL FROM, then RCPT TO per recipient, then DATA if any recipient was accepted,
    /// each waiting for its reply; a refused MAIL FROM ends the transaction (with `RSET`).
    async fn envelope_stepwise(
        &mut self,
        msg: Outgoing<'_>,
        start: Start,
    ) -> Result<EnvelopeReplies, Failure> {
        let server = Arc::clone(&self.server);
        let limit = self.timeout;
        let command = self.mail_command(msg);
        let mail = op(
            &server,
            limit,
            "MAIL FROM",
            start.is_idle(),
            self.smtp.command(command),
        )
        .await?;
        if !mail.is_positive() {
            self.reset().await?;
            return Err(Failure::usable(mail.error("MAIL FROM")));
        }
        let mut rcpt = Vec::with_capacity(msg.envelope.to().len());
        for r in msg.envelope.to() {
            let command = format!("RCPT TO:<{r}>\r\n");
            rcpt.push(op(&server, limit, "RCPT TO", false, self.smtp.command(command)).await?);
        }
        let data = if rcpt.iter().any(Answer::is_positive) {
            Some(op(&server, limit, "DATA", false, self.smtp.command("DATA\r\n")).await?)
        } else {
            None
        };
        Ok(EnvelopeReplies { mail, rcpt, data })
    }

    /// Ends a refused transaction so the connection can carry the next one: a server that
    /// took DATA although nothing was accepted gets an empty message ended at once (which
    /// it will refuse), then `RSET`.
    async fn abandon(&mut self, replies: &EnvelopeReplies) -> Result<(), Failure> {
        if replies.data_open() {
            op(
                &self.server,
                self.timeout,
                "end of DATA",
                false,
                self.smtp.command(".\r\n"),
            )
            .await?;
        }
        self.reset().await
    }

    /// The data phase, once DATA was taken: the body (dot-stuffed, with `next`'s pipelined
    /// group behind it when the server takes that) and the final reply, with how the next
    /// message's transaction begins.
    async fn data(
        &mut self,
        msg: Outgoing<'_>,
        next: Option<Outgoing<'_>>,
    ) -> Result<(Answer, Start), Failure> {
        let server = Arc::clone(&self.server);
        // Larger messages get more time: the limit, plus a second per 256 KiB.
        let data_limit = self.timeout + Duration::from_secs((msg.data.len() / (256 * 1024)) as u64);
        let Ok(text) = std::str::from_utf8(msg.data) else {
            let answer = op(
                &server,
                data_limit,
                "end of DATA",
                false,
                self.smtp.message(msg.data),
            )
            .await?;
            return Ok((answer, Start::Fresh));
        };
        let mut stuffed = dot_stuff(text);
        let mut next_start = Start::Fresh;
        if let Some(next) = next.filter(|n| self.caps.pipelining && self.precheck(*n).is_ok()) {
            stuffed.push_str(&self.pipelined_group(next));
            next_start = Start::Opened;
        }
        let answer = op(
            &server,
            data_limit,
            "end of DATA",
            false,
            self.smtp.command(stuffed.as_str()),
        )
        .await?;
        Ok((answer, next_start))
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
}
