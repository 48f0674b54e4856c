//! A bound on what a server may send before the client gives up on its reply.
//!
//! lettre reads replies with `read_line`, which only returns at a line feed: a server that
//! sends one endless line grows the client's buffer without end until the timeout (a
//! 400 MB line took 419 MB). lettre refuses a *finished* line over 1,000 octets and a reply
//! over 100,000; this stream, under lettre, refuses the unfinished one as it arrives.
//!
//! On plain text (and implicit TLS, which mailroom decrypts below this stream) it counts
//! the octets since the last line feed and the lines of each reply (lettre parses a reply
//! again at each of its lines: 100,000 octets of short lines took minutes of CPU, which
//! no timeout interrupts). Once lettre has put STARTTLS on top, it sees only
//! ciphertext, which has no lines: it then counts the octets read since the client last
//! wrote, a bound every reply (or pipelined group of replies) stays far under.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest reply line, CRLF included: lettre's limit for a finished line, so that
/// a line too long is refused the same way whether or not its end has arrived. RFC 5321
/// §4.5.3.1.5 gives 512.
pub(crate) const MAX_LINE: usize = 1000;

/// The most lines in one reply. lettre parses the whole reply again at each line, so
/// thousands of short lines cost it seconds of CPU that no timeout interrupts; an EHLO
/// reply has a dozen.
pub(crate) const MAX_LINES: usize = 128;

/// The most ciphertext read between two writes once STARTTLS is on.
pub(crate) const MAX_UNPROMPTED: usize = 1 << 20;

/// The error a [`Capped`] stream fails with (inside an `io::Error`): what was too long.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OverlongReply {
    Line,
    Lines,
    Unprompted,
}

impl fmt::Display for OverlongReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverlongReply::Line => write!(
                f,
                "a line of more than {MAX_LINE} octets; RFC 5321 allows 512"
            ),
            OverlongReply::Lines => write!(f, "more than {MAX_LINES} lines in one reply"),
            OverlongReply::Unprompted => {
                write!(f, "more than {MAX_UNPROMPTED} octets without a prompt")
            }
        }
    }
}

impl std::error::Error for OverlongReply {}

/// Set before lettre starts STARTTLS on a [`Capped`] stream: from then on it carries
/// ciphertext.
#[derive(Debug, Clone, Default)]
pub(crate) struct Encrypted(Arc<AtomicBool>);

impl Encrypted {
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A stream that fails reads once the server sends more than a reply may hold.
#[derive(Debug)]
pub(crate) struct Capped<S> {
    inner: S,
    encrypted: Encrypted,
    counter: Counter,
}

impl<S> Capped<S> {
    pub(crate) fn new(inner: S, encrypted: Encrypted) -> Self {
        Capped {
            inner,
            encrypted,
            counter: Counter::default(),
        }
    }

    fn is_encrypted(&self) -> bool {
        self.encrypted.0.load(Ordering::Relaxed)
    }
}

/// Where the server is in its reply.
#[derive(Debug, Default)]
struct Counter {
    /// Octets of the current line so far.
    line: usize,
    /// The current line's fourth octet: `-` when another line of the reply follows.
    fourth: Option<u8>,
    /// Lines of the current reply before this one.
    lines: usize,
    /// Ciphertext octets since the last write.
    unprompted: usize,
}

impl Counter {
    /// Counts what the server sent; an error when it passes a limit.
    fn read(&mut self, encrypted: bool, data: &[u8]) -> Result<(), OverlongReply> {
        if encrypted {
            self.unprompted += data.len();
            return if self.unprompted > MAX_UNPROMPTED {
                Err(OverlongReply::Unprompted)
            } else {
                Ok(())
            };
        }
        for &byte in data {
            if byte == b'\n' {
                // `250-...` is followed by another line of the same reply, `250 ...` ends it.
                self.lines = if self.fourth == Some(b'-') {
                    self.lines + 1
                } else {
                    0
                };
                if self.lines >= MAX_LINES {
                    return Err(OverlongReply::Lines);
                }
                self.line = 0;
                self.fourth = None;
                continue;
            }
            if self.line == 3 {
                self.fourth = Some(byte);
            }
            self.line += 1;
            // The line feed still has to come: MAX_LINE - 1 octets before it.
            if self.line > MAX_LINE - 1 {
                return Err(OverlongReply::Line);
            }
        }
        Ok(())
    }

    /// The client wrote: what the server sends next answers it.
    fn wrote(&mut self) {
        self.unprompted = 0;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let encrypted = self.is_encrypted();
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(
                this.counter
                    .read(encrypted, &buf.filled()[before..])
                    .map_err(|what| io::Error::new(io::ErrorKind::InvalidData, what)),
            ),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.counter.wrote();
        }
        result
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.counter.wrote();
        }
        result
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: AsyncTokioStream> AsyncTokioStream for Capped<S> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// What was too long, when `error` is about an over-long reply: a [`Capped`] stream's
/// [`OverlongReply`], or lettre's own refusal of a finished line or reply that is too long.
pub(crate) fn overlong(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(ours) = overlong_reply(error) {
        return Some(ours.to_string());
    }
    // lettre has no error kind for these; its messages are "SMTP response line too long"
    // and "SMTP response too large".
    let lettre = error.downcast_ref::<lettre::transport::smtp::Error>()?;
    let text = lettre.to_string();
    (lettre.is_response() && (text.contains("too long") || text.contains("too large")))
        .then_some(text)
}

/// The [`OverlongReply`] behind `error`, if any (walking sources and `io::Error` payloads).
fn overlong_reply<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a OverlongReply> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<OverlongReply>() {
            return Some(r);
        }
        if let Some(r) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| overlong_reply(inner))
        {
            return Some(r);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(chunks: &[&[u8]]) -> Result<(), OverlongReply> {
        let mut counter = Counter::default();
        chunks.iter().try_for_each(|c| counter.read(false, c))
    }

    #[test]
    fn lines_up_to_the_limit_pass_across_reads() {
        let line = format!("250 {}\r\n", "x".repeat(MAX_LINE - 6));
        assert_eq!(line.len(), MAX_LINE);
        let chunks: Vec<&[u8]> = line.as_bytes().chunks(7).collect();
        plain(&chunks).unwrap();
        plain(&[
            line.as_bytes(),
            line.as_bytes(),
            b"250-a\r\n250-b\r\n250 c\r\n",
        ])
        .unwrap();
    }

    #[test]
    fn a_line_over_the_limit_fails_before_its_end() {
        let err = plain(&[b"250 ok\r\n250-", &[b'x'; MAX_LINE]]).unwrap_err();
        assert!(matches!(err, OverlongReply::Line));
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE - 5));
        assert!(plain(&[long.as_bytes()]).is_err());
        let io = io::Error::new(io::ErrorKind::InvalidData, err);
        assert!(
            overlong(&io).is_some_and(|what| what.contains("octets")),
            "{io}"
        );
    }

    #[test]
    fn replies_have_a_bounded_number_of_lines() {
        let reply = |lines: usize| {
            let mut r = "250-x\r\n".repeat(lines - 1);
            r.push_str("250 x\r\n");
            r
        };
        // Many replies of the most lines each are fine; one line more is not.
        let most = reply(MAX_LINES);
        plain(&[most.as_bytes(), most.as_bytes()]).unwrap();
        let err = plain(&[reply(MAX_LINES + 1).as_bytes()]).unwrap_err();
        assert!(matches!(err, OverlongReply::Lines));
        // Counted across reads, whatever the chunking.
        let too_many = reply(MAX_LINES + 1);
        let chunks: Vec<&[u8]> = too_many.as_bytes().chunks(3).collect();
        assert!(plain(&chunks).is_err());
    }

    #[test]
    fn ciphertext_is_bounded_between_writes() {
        let mut counter = Counter::default();
        // Ciphertext has "long lines"; only the total counts.
        counter.read(true, &[b'x'; 4096]).unwrap();
        counter
            .read(true, &vec![b'x'; MAX_UNPROMPTED - 4096])
            .unwrap();
        counter.wrote();
        counter.read(true, &vec![b'x'; MAX_UNPROMPTED]).unwrap();
        assert!(matches!(
            counter.read(true, b"x"),
            Err(OverlongReply::Unprompted)
        ));
    }
}
