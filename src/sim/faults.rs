//! Fault injection (`PUT /_sim/faults`) and the simulator's own rate limiter.
//!
//! Fault decisions come from a seeded xorshift generator and draw the same number of
//! values per request whatever the configuration, so a test that sends requests one
//! at a time sees the same faults on every run.

use serde::{Deserialize, Serialize};

use super::page::splitmix64;
use crate::cowork::ratelimit::XorShift;

/// What `PUT /_sim/faults` sets. Rates are probabilities in `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// Share of API requests answered 500 `api_error` or 529 `overloaded_error`
    /// before they are processed (nothing is applied).
    #[serde(default)]
    pub error_rate: f64,
    /// Share of API requests answered 429 with `retry-after: 1` (nothing is applied).
    #[serde(default)]
    pub rate_limit_rate: f64,
    /// Delay added to every API request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of API requests whose answer is cut off after they were processed: the
    /// write is applied but the client never sees the answer (so it retries).
    #[serde(default)]
    pub drop_rate: f64,
    /// Reseeds the generator (the default seed is the simulator's fault seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl FaultConfig {
    /// Refuses rates outside `[0, 1]` (naming the field).
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        Ok(())
    }
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this 5xx status before processing.
    Error(u16),
    /// Answer 429 before processing.
    RateLimited,
}

/// The decision for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Delay before answering, in milliseconds.
    pub latency_ms: u64,
    /// A fault answered instead of processing.
    pub before: Option<Fault>,
    /// Cut the answer off after processing.
    pub drop_after: bool,
}

/// The fault configuration and its generator.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: XorShift,
}

impl Faults {
    /// No faults, generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            config: FaultConfig::default(),
            rng: XorShift::new(splitmix64(seed)),
        }
    }

    /// The current configuration.
    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Replaces the configuration (and reseeds when it carries a seed).
    pub fn set(&mut self, config: FaultConfig) {
        if let Some(seed) = config.seed {
            self.rng = XorShift::new(splitmix64(seed));
        }
        self.config = config;
    }

    /// Decides the fate of the next request.
    pub fn decide(&mut self) -> Decision {
        let rng = &mut self.rng;
        let (e, r, d, which) = (
            rng.next_unit(),
            rng.next_unit(),
            rng.next_unit(),
            rng.next_unit(),
        );
        let c = &self.config;
        let before = if e < c.error_rate {
            Some(Fault::Error(if which < 0.5 { 500 } else { 529 }))
        } else if r < c.rate_limit_rate {
            Some(Fault::RateLimited)
        } else {
            None
        };
        Decision {
            latency_ms: c.latency_ms,
            before,
            drop_after: before.is_none() && d < c.drop_rate,
        }
    }
}

/// A token bucket on the simulator's clock (milliseconds).
#[derive(Debug, Clone)]
pub struct SimBucket {
    capacity: f64,
    per_ms: f64,
    tokens: f64,
    last_ms: Option<u64>,
}

impl SimBucket {
    /// `per_period` requests per `period_ms`; 0 = unlimited.
    pub fn new(per_period: u32, period_ms: u64) -> Self {
        let capacity = f64::from(per_period);
        Self {
            capacity,
            per_ms: if period_ms == 0 {
                0.0
            } else {
                capacity / period_ms as f64
            },
            tokens: capacity,
            last_ms: None,
        }
    }

    /// Takes a token at `now_ms`, or says how many whole seconds until one is free.
    pub fn try_take(&mut self, now_ms: u64) -> Result<(), u64> {
        if self.capacity <= 0.0 || self.per_ms <= 0.0 {
            return Ok(());
        }
        if let Some(last) = self.last_ms {
            let elapsed = now_ms.saturating_sub(last) as f64;
            self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        }
        self.last_ms = Some(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = (1.0 - self.tokens) / self.per_ms;
            Err(((wait_ms / 1000.0).ceil() as u64).max(1))
        }
    }
}

/// The simulator's rate-limit classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitClass {
    /// E1–E12, E16, E17: 100 a minute by default.
    Admin,
    /// E13–E15: 60 a minute by default.
    Spend,
    /// Invite creation: 1,200 an hour, and the admin limit.
    Invite,
    /// Plugins API reads: 300 a minute by default (its own limit).
    PluginRead,
    /// Plugins API writes: 60 a minute by default (its own limit).
    PluginWrite,
    /// The Analytics API and cost reports: 60 a minute by default (per org).
    Analytics,
}

/// The simulator's buckets.
#[derive(Debug, Clone)]
pub struct Throttle {
    admin: SimBucket,
    spend: SimBucket,
    invite: SimBucket,
    plugin_read: SimBucket,
    plugin_write: SimBucket,
    analytics: SimBucket,
}

impl Throttle {
    /// `rpm` for the admin endpoints (0 = off); the spend, invite, Plugins API and
    /// Analytics limits scale with it (60, 1,200/h, 300 reads and 60 writes, 60 at the
    /// documented 100).
    pub fn new(rpm: u32, spend_rpm: Option<u32>) -> Self {
        let spend = spend_rpm.unwrap_or(rpm.saturating_mul(60) / 100);
        Self {
            admin: SimBucket::new(rpm, 60_000),
            spend: SimBucket::new(if rpm == 0 { 0 } else { spend }, 60_000),
            invite: SimBucket::new(rpm.saturating_mul(12), 3_600_000),
            plugin_read: SimBucket::new(rpm.saturating_mul(3), 60_000),
            plugin_write: SimBucket::new(rpm.saturating_mul(60) / 100, 60_000),
            analytics: SimBucket::new(rpm.saturating_mul(60) / 100, 60_000),
        }
    }

    /// Takes a token of `class`, or the `retry-after` seconds.
    pub fn try_take(&mut self, class: LimitClass, now_ms: u64) -> Result<(), u64> {
        match class {
            LimitClass::Admin => self.admin.try_take(now_ms),
            LimitClass::Spend => self.spend.try_take(now_ms),
            LimitClass::Invite => {
                self.invite.try_take(now_ms)?;
                self.admin.try_take(now_ms)
            }
            LimitClass::PluginRead => self.plugin_read.try_take(now_ms),
            LimitClass::PluginWrite => self.plugin_write.try_take(now_ms),
            LimitClass::Analytics => self.analytics.try_take(now_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config = FaultConfig {
            error_rate: 0.3,
            drop_rate: 0.1,
            seed: Some(42),
            ..FaultConfig::default()
        };
        let run = || {
            let mut f = Faults::new(0);
            f.set(config.clone());
            (0..200).map(|_| f.decide()).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let errors = a.iter().filter(|d| d.before.is_some()).count();
        assert!((40..=80).contains(&errors), "{errors} of 200 at 30 %");
        assert!(a.iter().any(|d| d.drop_after));
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let bad = FaultConfig {
            drop_rate: 1.5,
            ..FaultConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "drop_rate must be between 0 and 1"
        );
    }

    #[test]
    fn the_bucket_refills_on_the_simulators_clock() {
        let mut t = Throttle::new(100, None);
        for _ in 0..100 {
            t.try_take(LimitClass::Admin, 0).unwrap();
        }
        assert_eq!(t.try_take(LimitClass::Admin, 0), Err(1));
        t.try_take(LimitClass::Admin, 600).unwrap();
        for _ in 0..60 {
            t.try_take(LimitClass::Spend, 0).unwrap();
        }
        assert!(t.try_take(LimitClass::Spend, 0).is_err());
        for _ in 0..60 {
            t.try_take(LimitClass::Analytics, 0).unwrap();
        }
        assert_eq!(t.try_take(LimitClass::Analytics, 0), Err(1), "60 a minute");
        let mut off = Throttle::new(0, None);
        for _ in 0..10_000 {
            off.try_take(LimitClass::Spend, 0).unwrap();
        }
    }
}
