//! Rate-limited logging of refused requests (4xx): at most `log.refusals_per_minute`
//! lines a minute, then one summary line per minute with how many were left out, as
//! the audit trail already does for authentication failures. A flood of bad tokens
//! must not become a flood of log lines (69,000 in 10 s before this).

use chrono::{DateTime, Utc};

/// What to do with one refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Log it; `suppressed_before` lines of the previous window were left out (log
    /// that summary first when above zero).
    Log {
        /// Refusals not logged in the window that just ended.
        suppressed_before: u64,
    },
    /// Over the budget, but a window just ended: log only its summary.
    Summarise {
        /// Refusals not logged in the window that just ended.
        suppressed_before: u64,
    },
    /// Over the budget: count it, do not log it.
    Suppress,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<DateTime<Utc>>,
    logged: u32,
    suppressed: u64,
}

/// The budget, shared by every worker.
#[derive(Debug)]
pub struct RefusalLog {
    per_minute: u32,
    window: parking_lot::Mutex<Window>,
}

impl RefusalLog {
    /// A budget of `per_minute` lines (0: refusals are never logged one by one, only
    /// summarised).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            window: parking_lot::Mutex::new(Window::default()),
        }
    }

    /// Decides for a refusal seen at `now`.
    pub fn decide(&self, now: DateTime<Utc>) -> Decision {
        let mut w = self.window.lock();
        let mut suppressed_before = 0;
        let expired = w
            .started
            .is_none_or(|s| now - s >= chrono::Duration::minutes(1) || now < s);
        if expired {
            suppressed_before = std::mem::take(&mut w.suppressed);
            w.started = Some(now);
            w.logged = 0;
        }
        if w.logged < self.per_minute {
            w.logged += 1;
            Decision::Log { suppressed_before }
        } else {
            w.suppressed += 1;
            if suppressed_before > 0 {
                Decision::Summarise { suppressed_before }
            } else {
                Decision::Suppress
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn refusals_beyond_the_budget_are_counted_and_summarised_in_the_next_minute() {
        let clock = ManualClock::at_epoch_2026();
        let log = RefusalLog::new(3);
        let decisions: Vec<Decision> = (0..10).map(|_| log.decide(clock.now())).collect();
        assert_eq!(
            decisions
                .iter()
                .filter(|d| **d == Decision::Suppress)
                .count(),
            7
        );
        assert_eq!(
            decisions[0],
            Decision::Log {
                suppressed_before: 0
            }
        );
        clock.advance(chrono::Duration::seconds(61));
        assert_eq!(
            log.decide(clock.now()),
            Decision::Log {
                suppressed_before: 7
            }
        );
        assert_eq!(
            log.decide(clock.now()),
            Decision::Log {
                suppressed_before: 0
            }
        );
        // With no budget, only the summaries are logged.
        let log = RefusalLog::new(0);
        assert_eq!(log.decide(clock.now()), Decision::Suppress);
        assert_eq!(log.decide(clock.now()), Decision::Suppress);
        clock.advance(chrono::Duration::minutes(1));
        assert_eq!(
            log.decide(clock.now()),
            Decision::Summarise {
                suppressed_before: 2
            }
        );
    }
}
