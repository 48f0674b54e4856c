//! Date, Message-ID and boundaries: fresh for real mail, derived from a seed and the
//! content for deterministic (snapshot) rendering.

use std::cell::Cell;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::message::Email;

/// The identifiers one rendering uses.
#[derive(Debug)]
pub(crate) struct Ids {
    pub(crate) date: DateTime<FixedOffset>,
    /// The signing time (DKIM `t=`): now for real mail, whatever the Date says (a verifier
    /// rejects a `t=` in the future); the Date under deterministic rendering.
    pub(crate) signed_at: i64,
    /// Message-ID without angle brackets.
    pub(crate) message_id: String,
    /// `Some` under deterministic rendering: boundaries come from this digest.
    digest: Option<[u8; 32]>,
    counter: Cell<u32>,
}

/// 2000-01-01T00:00:00Z: derived dates fall in the ten years after it, always in the past
/// (a DKIM verifier rejects a signature whose `t=` lies in the future).
const EPOCH: i64 = 946_684_800;
const TEN_YEARS: u64 = 10 * 365 * 86_400;

impl Ids {
    /// Fresh values: the message's own Date and Message-ID, else now and a random id.
    pub(crate) fn fresh(email: &Email, smtputf8: bool) -> Result<Ids> {
        let message_id = match &email.message_id {
            Some(id) => strip_brackets(id),
            None => crate::message::new_message_id(&id_domain(email, smtputf8)?),
        };
        let now = super::now();
        Ok(Ids {
            date: email.date.unwrap_or(now),
            signed_at: now.timestamp(),
            message_id,
            digest: None,
            counter: Cell::new(0),
        })
    }

    /// Values derived from `seed` and the message's content.
    pub(crate) fn derived(email: &Email, seed: u64, smtputf8: bool) -> Result<Ids> {
        let mut hasher = Sha256::new();
        hasher.update(b"mailroom-deterministic-v1\0");
        hasher.update(seed.to_le_bytes());
        hasher.update([u8::from(smtputf8)]);
        hasher.update(email.to_json().as_bytes());
        let digest: [u8; 32] = hasher.finalize().into();
        let word = u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        let date = match email.date {
            Some(date) => date,
            None => Utc
                .timestamp_opt(EPOCH + (word % TEN_YEARS) as i64, 0)
                .single()
                .unwrap_or_default()
                .fixed_offset(),
        };
        let message_id = match &email.message_id {
            Some(id) => strip_brackets(id),
            None => format!("{}@{}", hex(&digest[8..20]), id_domain(email, smtputf8)?),
        };
        Ok(Ids {
            date,
            signed_at: date.timestamp(),
            message_id,
            digest: Some(digest),
            counter: Cell::new(0),
        })
    }

    /// The next multipart boundary, or `None` to let mail-builder pick a random one.
    pub(crate) fn boundary(&self) -> Option<String> {
        let digest = self.digest?;
        let n = self.counter.get();
        self.counter.set(n + 1);
        let mut hasher = Sha256::new();
        hasher.update(digest);
        hasher.update(n.to_le_bytes());
        let part: [u8; 32] = hasher.finalize().into();
        Some(format!("=_{}_{n}", hex(&part[..12])))
    }

    /// Ids for a message attached inside this one.
    pub(crate) fn nested(&self, email: &Email, smtputf8: bool) -> Result<Ids> {
        match self.digest {
            Some(digest) => {
                let n = self.counter.get();
                self.counter.set(n + 1);
                let seed = u64::from_le_bytes([
                    digest[24], digest[25], digest[26], digest[27], digest[28], digest[29],
                    digest[30], digest[31],
                ]) ^ u64::from(n);
                Ids::derived(email, seed, smtputf8)
            }
            None => Ids::fresh(email, smtputf8),
        }
    }
}

fn strip_brackets(id: &str) -> String {
    id.trim_start_matches('<').trim_end_matches('>').to_owned()
}

fn id_domain(email: &Email, smtputf8: bool) -> Result<String> {
    let from = email.from();
    if smtputf8 {
        Ok(from.domain().to_owned())
    } else {
        from.ascii_domain()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
