//! Test helpers: outbox assertions for applications that send mail.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> mailroom::Result<()> {
//! use mailroom::transport::{MemoryTransport, Transport};
//! use mailroom::Email;
//!
//! let transport = MemoryTransport::new();
//! let outbox = transport.outbox();
//! let email = Email::builder().from("shop@example.com").to("ann@example.org")
//!     .subject("Your order #42").text("Thanks!").build()?;
//! transport.send(&email).await?;
//!
//! outbox.assert_count(1);
//! let sent = outbox.assert_sent_to("ann@example.org");
//! assert!(sent.email().body_contains("Thanks"));
//! outbox.assert_subject_contains("order #42");
//! # Ok(()) }
//! ```

mod buffer;
mod outbox;

pub use buffer::SharedBuffer;

pub use crate::transport::{Outbox, SentMessage};
pub use outbox::outbox;
