//! Token buckets keyed by caller, refilled from the [`Clock`]: the inbound request
//! budget per bearer subject, and the budget for recording authentication failures.
//! Imports only the clock.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::clock::Clock;

/// Most distinct keys remembered before idle ones are dropped.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// A set of token buckets, one per key.
#[derive(Debug)]
pub struct KeyedLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl KeyedLimiter {
    /// `per_second` sustained, up to `burst` at once. `per_second == 0` disables it.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A limiter that never refuses.
    pub fn unlimited() -> Self {
        Self::new(0.0, 1.0)
    }

    /// Takes one token for `key`, or returns the whole seconds to wait.
    pub fn check(&self, key: &str, clock: &dyn Clock) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = clock.now_millis();
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let full_after_ms = (self.burst / self.per_second * 1000.0) as u64;
            buckets.retain(|_, b| now.saturating_sub(b.at_ms) < full_after_ms);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at_ms: now,
        });
        let elapsed = now.saturating_sub(bucket.at_ms) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at_ms = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::Duration;

    #[test]
    fn a_burst_is_allowed_then_refused_until_refilled() {
        let clock = ManualClock::at_epoch_2026();
        let limiter = KeyedLimiter::new(1.0, 3.0);
        for _ in 0..3 {
            assert!(limiter.check("okta", &clock).is_ok());
        }
        assert_eq!(limiter.check("okta", &clock), Err(1));
        assert!(
            limiter.check("entra", &clock).is_ok(),
            "keys are independent"
        );
        clock.advance(Duration::seconds(1));
        assert!(limiter.check("okta", &clock).is_ok());
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let clock = ManualClock::at_epoch_2026();
        let limiter = KeyedLimiter::unlimited();
        for _ in 0..10_000 {
            assert!(limiter.check("x", &clock).is_ok());
        }
    }
}
