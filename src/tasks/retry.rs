//! Retry backoff: exponential with jitter, bounded.

use std::time::Duration;

use rand::Rng;

/// How long to wait before attempt `n + 1` after attempt `n` failed with a retryable error.
///
/// The delay is `base * 2^(n-1)`, capped at `max`, then spread by ±`jitter` (a fraction,
/// 0.0..=1.0) so that tasks that failed together do not all come back together. The
/// result never exceeds `max` and is never below `base * (1 - jitter)`... see
/// [`RetryPolicy::bounds`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The delay after the first failed attempt (before jitter).
    pub base: Duration,
    /// The longest delay, whatever the attempt.
    pub max: Duration,
    /// The spread, as a fraction of the delay (0.0 = none, 0.25 = ±25 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 1 s, doubling, capped at one hour, ±25 % jitter.
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl RetryPolicy {
    /// A policy with the given base and cap and the default jitter.
    pub fn exponential(base: Duration, max: Duration) -> Self {
        RetryPolicy {
            base,
            max,
            ..Self::default()
        }
    }

    /// The delay before jitter, for the attempt (1-based) that just failed.
    fn nominal(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(62);
        let factor = 1u64 << exp;
        let nanos = (self.base.as_nanos()).saturating_mul(u128::from(factor));
        let nanos = nanos.min(self.max.as_nanos());
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn jitter(&self) -> f64 {
        if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The smallest and largest delay [`delay`](Self::delay) may return after `attempt`.
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        let nominal = self.nominal(attempt);
        let j = self.jitter();
        let low = nominal.mul_f64(1.0 - j);
        let high = nominal.mul_f64(1.0 + j).min(self.max.max(low));
        (low, high)
    }

    /// The delay before the next attempt, after `attempt` (1-based) failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let (low, high) = self.bounds(attempt);
        if high <= low {
            return low;
        }
        let span = (high - low).as_nanos();
        let pick = rand::rng().random_range(0..=span);
        low + Duration::from_nanos(u64::try_from(pick).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let p = RetryPolicy::exponential(Duration::from_secs(2), Duration::from_secs(60));
        for attempt in 1..80 {
            let (low, high) = p.bounds(attempt);
            assert!(low <= high);
            assert!(high <= Duration::from_secs(60));
            for _ in 0..50 {
                let d = p.delay(attempt);
                assert!(
                    d >= low && d <= high,
                    "attempt {attempt}: {d:?} not in {low:?}..={high:?}"
                );
            }
        }
        assert_eq!(
            p.bounds(1),
            (Duration::from_millis(1500), Duration::from_millis(2500))
        );
        assert_eq!(
            p.bounds(3),
            (Duration::from_secs(6), Duration::from_secs(10))
        );
        assert_eq!(p.bounds(30).1, Duration::from_secs(60));
    }

    #[test]
    fn zero_jitter_is_exact() {
        let p = RetryPolicy {
            base: Duration::from_millis(10),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        assert_eq!(p.delay(1), Duration::from_millis(10));
        assert_eq!(p.delay(4), Duration::from_millis(80));
        assert_eq!(p.delay(20), Duration::from_secs(1));
    }
}
