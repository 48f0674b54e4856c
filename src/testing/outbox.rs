//! Queries and assertions over an [`Outbox`] (the `memory:` transport's messages).

use crate::transport::{Outbox, SentMessage};

/// The process-wide default outbox that `memory:` transports write to (Django's
/// `mail.outbox`). Call [`Outbox::clear`] at the start of each test that uses it, or give
/// each test its own [`MemoryTransport`](crate::transport::MemoryTransport).
pub fn outbox() -> Outbox {
    Outbox::global()
}

impl Outbox {
    /// Messages whose envelope includes `address` (To, Cc or Bcc; case-insensitive).
    pub fn sent_to(&self, address: &str) -> Vec<SentMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.is_sent_to(address))
            .collect()
    }

    /// Messages whose subject contains `needle`.
    pub fn subject_contains(&self, needle: &str) -> Vec<SentMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.subject().is_some_and(|s| s.contains(needle)))
            .collect()
    }

    /// Messages whose bodies (text and HTML) all contain `needle`.
    pub fn body_contains(&self, needle: &str) -> Vec<SentMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.email().body_contains(needle))
            .collect()
    }

    /// Panics unless the outbox holds exactly `expected` messages.
    #[track_caller]
    pub fn assert_count(&self, expected: usize) {
        let messages = self.messages();
        assert!(
            messages.len() == expected,
            "expected {expected} message(s) in the outbox, found {}: {}",
            messages.len(),
            summary(&messages)
        );
    }

    /// Panics unless the outbox is empty.
    #[track_caller]
    pub fn assert_empty(&self) {
        self.assert_count(0);
    }

    /// Panics unless exactly one message went to `address`; returns it.
    #[track_caller]
    pub fn assert_sent_to(&self, address: &str) -> SentMessage {
        let mut found = self.sent_to(address);
        match found.len() {
            1 => found.remove(0),
            n => panic!(
                "expected one message to {address}, found {n}; the outbox holds: {}",
                summary(&self.messages())
            ),
        }
    }

    /// Panics unless no message went to `address`.
    #[track_caller]
    pub fn assert_not_sent_to(&self, address: &str) {
        let found = self.sent_to(address);
        assert!(
            found.is_empty(),
            "expected no message to {address}, found: {}",
            summary(&found)
        );
    }

    /// Panics unless exactly one message has a subject containing `needle`; returns it.
    #[track_caller]
    pub fn assert_subject_contains(&self, needle: &str) -> SentMessage {
        let mut found = self.subject_contains(needle);
        match found.len() {
            1 => found.remove(0),
            n => panic!(
                "expected one message whose subject contains {needle:?}, found {n}; the outbox holds: {}",
                summary(&self.messages())
            ),
        }
    }
}

fn summary(messages: &[SentMessage]) -> String {
    if messages.is_empty() {
        return "nothing".to_owned();
    }
    messages
        .iter()
        .map(|m| {
            format!(
                "[to {} subject {:?}]",
                m.envelope_to().join(", "),
                m.subject().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}
