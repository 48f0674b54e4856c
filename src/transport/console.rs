//! `console:`: writes each message to standard output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tracing::Instrument;

use super::{Delivery, Transport};
use crate::error::{Error, Result};
use crate::render::Rendered;

/// Where the console transport writes: standard output, or a stream of the caller's.
type Stream = Arc<Mutex<Box<dyn Write + Send>>>;

/// Writes each rendered message to standard output (or a stream given with
/// [`ConsoleTransport::with_stream`]), followed by a line of dashes, like Django's console
/// backend. For development.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> mailroom::Result<()> {
/// use mailroom::transport::{ConsoleTransport, Transport};
/// let shown = mailroom::testing::SharedBuffer::default();
/// let console = ConsoleTransport::new().with_stream(shown.clone());
/// let email = mailroom::Email::builder()
///     .from("a@example.com")
///     .to("b@example.org")
///     .subject("Hello")
///     .text("Hi")
///     .build()?;
/// console.send(&email).await?;
/// assert!(shown.text().contains("Subject: Hello\r\n"));
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct ConsoleTransport {
    stream: Option<Stream>,
}

impl std::fmt::Debug for ConsoleTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleTransport")
            .field("stream", &self.target())
            .finish()
    }
}

impl ConsoleTransport {
    /// A console transport writing to standard output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes to `stream` instead of standard output (Django's `stream=` argument).
    pub fn with_stream(mut self, stream: impl Write + Send + 'static) -> Self {
        self.stream = Some(Arc::new(Mutex::new(Box::new(stream))));
        self
    }

    /// Where the messages go, for `Debug` and errors.
    fn target(&self) -> &'static str {
        if self.stream.is_some() {
            "the console stream"
        } else {
            "standard output"
        }
    }

    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        const SEPARATOR: &[u8] =
            b"\n-------------------------------------------------------------------------------\n";
        let write_all = |out: &mut dyn Write| {
            out.write_all(bytes)?;
            out.write_all(SEPARATOR)?;
            out.flush()
        };
        match &self.stream {
            None => write_all(&mut std::io::stdout().lock()),
            Some(stream) => {
                let mut out = stream
                    .lock()
                    .map_err(|_| std::io::Error::other("the console stream's lock is poisoned"))?;
                write_all(&mut **out)
            }
        }
    }
}

#[async_trait]
impl Transport for ConsoleTransport {
    async fn send_rendered(&self, message: &Rendered) -> Result<Delivery> {
        let span = super::send_span("console", message);
        async move {
            self.write(message.bytes())
                .map_err(|e| Error::io(self.target(), e))?;
            Ok(Delivery::local(message))
        }
        .instrument(span)
        .await
    }
}
