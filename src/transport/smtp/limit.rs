//! A bound on what a server may send before the client gives up on its reply.
//!
//! lettre reads replies with `read_line`, which only returns at a line feed: a server that
//! sends one endless line grows the client's buffer without end until the timeout (a
//! 400 MB line took 419 MB). lettre refuses a *finished* line over 1,000 octets and a reply
//! over 100,000; this stream, under lettre, refuses the unfinished one as it arrives.
//!
//! On plain text (and implicit TLS, which mailroom decrypts below this stream) it counts
//! the octets since the last line feed. Once lettre has put STARTTLS on top, it sees only
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

/// The most ciphertext read between two writes once STARTTLS is on.
pub(crate) const MAX_UNPROMPTED: usize = 1 << 20;

/// The error a [`Capped`] stream fails with (inside an `io::Error`).
#[derive(Debug)]
pub(crate) struct OverlongReply {
    encrypted: bool,
}

impl fmt::Display for OverlongReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.encrypted {
            write!(
                f,
                "the server sent an over-long reply (more than {MAX_UNPROMPTED} octets without a prompt)"
            )
        } else {
            write!(
                f,
                "the server sent an over-long reply (a line of more than {MAX_LINE} octets; RFC 5321 allows 512)"
            )
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
    /// Octets since the last line feed (plain text) or the last write (ciphertext).
    run: usize,
}

impl<S> Capped<S> {
    pub(crate) fn new(inner: S, encrypted: Encrypted) -> Self {
        Capped {
            inner,
            encrypted,
            run: 0,
        }
    }

    fn is_encrypted(&self) -> bool {
        self.encrypted.0.load(Ordering::Relaxed)
    }
}

/// Counts `data` into `run`; an error when it takes the run past its limit.
fn count(run: &mut usize, encrypted: bool, data: &[u8]) -> io::Result<()> {
    if encrypted {
        *run += data.len();
        if *run > MAX_UNPROMPTED {
            return Err(overlong(true));
        }
        return Ok(());
    }
    // A line feed ends a line of at most MAX_LINE octets: MAX_LINE - 1 before it.
    for segment in data.split_inclusive(|b| *b == b'\n') {
        let ended = segment.ends_with(b"\n");
        let before = segment.len() - usize::from(ended);
        if *run + before > MAX_LINE - 1 {
            return Err(overlong(false));
        }
        *run = if ended { 0 } else { *run + before };
    }
    Ok(())
}

fn overlong(encrypted: bool) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, OverlongReply { encrypted })
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
            Poll::Ready(Ok(())) => {
                Poll::Ready(count(&mut this.run, encrypted, &buf.filled()[before..]))
            }
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
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) && self.is_encrypted() {
            self.run = 0;
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
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) && self.is_encrypted() {
            self.run = 0;
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

/// The [`OverlongReply`] behind `error`, if any (walking sources and `io::Error` payloads).
pub(crate) fn overlong_reply<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a OverlongReply> {
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

    #[test]
    fn lines_up_to_the_limit_pass_across_reads() {
        let mut run = 0;
        let line = format!("250 {}\r\n", "x".repeat(MAX_LINE - 6));
        assert_eq!(line.len(), MAX_LINE);
        for chunk in line.as_bytes().chunks(7) {
            count(&mut run, false, chunk).unwrap();
        }
        count(&mut run, false, line.as_bytes()).unwrap();
        count(&mut run, false, b"250-a\r\n250-b\r\n250 c\r\n").unwrap();
    }

    #[test]
    fn a_line_over_the_limit_fails_before_its_end() {
        let mut run = 0;
        count(&mut run, false, b"250 ok\r\n250-").unwrap();
        let err = count(&mut run, false, &[b'x'; MAX_LINE]).unwrap_err();
        assert!(overlong_reply(&err).is_some(), "{err}");
        let mut run = 0;
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE - 5));
        assert!(count(&mut run, false, long.as_bytes()).is_err());
    }

    #[test]
    fn ciphertext_is_bounded_between_writes() {
        let mut run = 0;
        // Ciphertext has "long lines"; only the total counts.
        count(&mut run, true, &[b'x'; 4096]).unwrap();
        count(&mut run, true, &vec![b'x'; MAX_UNPROMPTED - 4096]).unwrap();
        assert!(count(&mut run, true, b"x").is_err());
    }
}
