//! Token buckets of rate-limited queues: how many tasks a bucket pays for now, refilled
//! continuously at `limit` per `per` up to `limit`. Buckets are stored per queue and key
//! and updated in the transaction that claims the tasks they pay for.

use chrono::{DateTime, Utc};

use super::is_label_name;
use super::operations::RateLimit;

/// One bucket as read (and refilled) at claim time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    /// Tokens left (fractional: refills are continuous).
    pub(crate) tokens: f64,
    /// When `tokens` was computed.
    pub(crate) refilled_at: DateTime<Utc>,
}

impl Bucket {
    /// A bucket never used (or full since): `limit` tokens.
    pub(crate) fn full(rate: &RateLimit, now: DateTime<Utc>) -> Self {
        Bucket {
            tokens: f64::from(rate.limit),
            refilled_at: now,
        }
    }

    /// A bucket as stored.
    pub(crate) fn stored(tokens: f64, refilled_at: DateTime<Utc>) -> Self {
        Bucket {
            tokens,
            refilled_at,
        }
    }

    /// This bucket at `now`: refilled for the time since `refilled_at`, never above `limit`.
    /// A clock that went back refills nothing.
    pub(crate) fn refilled(self, rate: &RateLimit, now: DateTime<Utc>) -> Self {
        let limit = f64::from(rate.limit);
        let elapsed_ms = (now - self.refilled_at)
            .num_microseconds()
            .unwrap_or(i64::MAX) as f64
            / 1000.0;
        let per_ms = rate.per.as_secs_f64() * 1000.0;
        let gained = if elapsed_ms > 0.0 && per_ms > 0.0 {
            elapsed_ms * limit / per_ms
        } else {
            0.0
        };
        Bucket {
            tokens: (self.tokens.max(0.0) + gained).min(limit),
            refilled_at: now.max(self.refilled_at),
        }
    }

    /// How many whole tasks the bucket pays for now.
    pub(crate) fn whole_tokens(&self) -> i64 {
        self.tokens.max(0.0).floor() as i64
    }

    /// Takes `n` tokens.
    pub(crate) fn take(&mut self, n: u32) {
        self.tokens = (self.tokens - f64::from(n)).max(0.0);
    }
}

/// The `key_by` label names safe to put in SQL text (checked when stored; checked again
/// here so that a tampered row cannot inject SQL).
pub(crate) fn key_sql_names(key_by: &[String]) -> impl Iterator<Item = &str> {
    key_by
        .iter()
        .map(String::as_str)
        .filter(|n| is_label_name(n))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_refills_at_the_rate_up_to_the_limit() {
        let rate = RateLimit::new(20, Duration::from_secs(1));
        let t0 = Utc::now();
        let mut b = Bucket::full(&rate, t0);
        assert_eq!(b.whole_tokens(), 20);
        b.take(20);
        assert_eq!(b.whole_tokens(), 0);
        let later = b.refilled(&rate, t0 + chrono::Duration::milliseconds(250));
        assert_eq!(later.whole_tokens(), 5);
        let much_later = b.refilled(&rate, t0 + chrono::Duration::seconds(60));
        assert_eq!(much_later.whole_tokens(), 20, "never above the limit");
        let back = b.refilled(&rate, t0 - chrono::Duration::seconds(5));
        assert_eq!(
            (back.whole_tokens(), back.refilled_at),
            (0, t0),
            "a clock going back refills nothing"
        );
    }
}
