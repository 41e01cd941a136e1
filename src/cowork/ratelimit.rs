//! Client-side pacing: a token bucket per rate-limit class (the shared admin limit,
//! the spend-limits limit, invite creation) and exponential backoff with jitter.
//!
//! Waiting uses `tokio::time`, so tests run with paused time and never sleep for real.
//! Imports nothing of ours.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// A token bucket: up to `capacity` requests at once, refilled at `per_period /
/// period`. A rate of zero means unlimited.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// `per_period` requests per `period`; 0 = unlimited. The bucket starts full, so a
    /// burst of `per_period` requests goes out at once and the rest are paced.
    pub fn new(per_period: u32, period: Duration) -> Self {
        let capacity = f64::from(per_period);
        let secs = period.as_secs_f64();
        let per_second = if secs > 0.0 { capacity / secs } else { 0.0 };
        Self {
            capacity,
            per_second,
            state: Mutex::new(BucketState {
                tokens: capacity,
                last: None,
            }),
        }
    }

    /// `per_minute` requests a minute; 0 = unlimited.
    pub fn per_minute(per_minute: u32) -> Self {
        Self::new(per_minute, Duration::from_secs(60))
    }

    /// Whether this bucket never waits.
    pub fn is_unlimited(&self) -> bool {
        self.capacity <= 0.0 || self.per_second <= 0.0
    }

    /// Takes one token, waiting (with `tokio::time::sleep`) until one is available.
    pub async fn acquire(&self) {
        if self.is_unlimited() {
            return;
        }
        loop {
            let wait = {
                let mut st = self.state.lock();
                let now = Instant::now();
                if let Some(last) = st.last {
                    let elapsed = now.saturating_duration_since(last).as_secs_f64();
                    st.tokens = (st.tokens + elapsed * self.per_second).min(self.capacity);
                }
                st.last = Some(now);
                if st.tokens >= 1.0 {
                    st.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - st.tokens) / self.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A small xorshift generator (jitter, simulated faults); not for secrets.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator with this seed (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// A value in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Shared backoff jitter; seeded once.
#[derive(Debug)]
pub struct Jitter {
    rng: Mutex<XorShift>,
}

impl Jitter {
    /// A generator seeded from the system's secure random source (or a constant if
    /// that fails; jitter quality does not matter for correctness).
    pub fn from_entropy() -> Self {
        let mut seed = [0u8; 8];
        let rng = ring::rand::SystemRandom::new();
        let seed = match ring::rand::SecureRandom::fill(&rng, &mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => 0x9E37_79B9_7F4A_7C15,
        };
        Self::seeded(seed)
    }

    /// A generator with a fixed seed.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Mutex::new(XorShift::new(seed)),
        }
    }

    /// A value in `[0, 1)`.
    pub fn next_unit(&self) -> f64 {
        self.rng.lock().next_unit()
    }
}

/// Exponential backoff with "equal jitter": attempt `n` (1-based) waits between half
/// and all of `min(cap, base * 2^(n-1))`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay (1 s by default).
    pub base: Duration,
    /// Largest delay (60 s by default).
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 = the first retry).
    pub fn delay(&self, attempt: u32, jitter: &Jitter) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.cap)
            .as_secs_f64();
        Duration::from_secs_f64(full / 2.0 + jitter.next_unit() * full / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_lets_a_burst_through_then_paces() {
        let bucket = TokenBucket::per_minute(60);
        let start = Instant::now();
        for _ in 0..60 {
            bucket.acquire().await;
        }
        assert_eq!(
            Instant::now(),
            start,
            "the first minute's worth goes at once"
        );
        bucket.acquire().await;
        bucket.acquire().await;
        let waited = Instant::now() - start;
        assert!(
            waited >= Duration::from_millis(1990) && waited <= Duration::from_millis(2100),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_rate_is_unlimited() {
        let bucket = TokenBucket::per_minute(0);
        let start = Instant::now();
        for _ in 0..10_000 {
            bucket.acquire().await;
        }
        assert_eq!(Instant::now(), start);
    }

    #[test]
    fn backoff_grows_to_the_cap_with_jitter() {
        let jitter = Jitter::seeded(7);
        let backoff = Backoff::default();
        let first = backoff.delay(1, &jitter);
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        let fourth = backoff.delay(4, &jitter);
        assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(8));
        for attempt in 7..40 {
            let d = backoff.delay(attempt, &jitter);
            assert!(d >= Duration::from_secs(30) && d <= Duration::from_secs(60));
        }
    }
}
