//! The spend advisor: a suggested per-member monthly limit for a group from its
//! measured usage, with the heuristic admins are taught (design §6.1):
//!
//! sessions per user per week × cost per session × 4.3 weeks a month × 1.25 headroom.
//!
//! Every input comes with the window it was measured over, and the answer carries
//! them all so that `insights spend` can print them. The arithmetic is exact (integer,
//! rounded up to a whole minor unit at the end), so the same usage always gives the
//! same suggestion. Pure: imports nothing that does I/O.

use chrono::NaiveDate;
use serde::Serialize;

/// Weeks in a month, as the heuristic counts them (tenths: 4.3).
pub const WEEKS_PER_MONTH_TENTHS: u128 = 43;
/// Headroom over the expected spend (hundredths: 1.25).
pub const HEADROOM_HUNDREDTHS: u128 = 125;

/// A range of whole UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// First day.
    pub from: NaiveDate,
    /// Last day (included).
    pub to: NaiveDate,
}

impl Window {
    /// The window of `days` days that ends on `to` (at least one day).
    pub fn ending(to: NaiveDate, days: u32) -> Self {
        let back = i64::from(days.max(1)) - 1;
        let from = to
            .checked_sub_signed(chrono::Duration::days(back))
            .unwrap_or(NaiveDate::MIN);
        Self { from, to }
    }

    /// How many days it covers (0 when `to` is before `from`).
    pub fn days(&self) -> u64 {
        u64::try_from((self.to - self.from).num_days() + 1).unwrap_or(0)
    }

    /// Whether `day` is inside.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && day <= self.to
    }
}

/// What the advisor measures a group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AdvisorInput {
    /// Cowork sessions of the group's members in `engagement`.
    pub sessions: u64,
    /// Members with at least one session in `engagement`.
    pub active_users: u64,
    /// The window sessions and active users were measured over.
    pub engagement: Window,
    /// The group's cost in `cost` (minor units of the billing currency).
    pub cost_minor: u64,
    /// Sessions in `cost`, to divide the cost by.
    pub cost_sessions: u64,
    /// The window the cost was measured over.
    pub cost: Window,
}

/// A suggestion and the figures it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Advice {
    /// Sessions per active user per week (rounded to hundredths, for display).
    pub sessions_per_user_per_week: f64,
    /// Cost per session in minor units (rounded to hundredths, for display).
    pub cost_per_session_minor: f64,
    /// 4.3.
    pub weeks_per_month: f64,
    /// 1.25.
    pub headroom: f64,
    /// The suggested per-member monthly limit in minor units, rounded up.
    pub suggested_monthly_minor: u64,
    /// The inputs, with their windows.
    pub input: AdvisorInput,
}

/// Why there is no suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum NoAdvice {
    /// Nobody in the group had a session in the engagement window.
    #[error("no member had a session in the engagement window")]
    NoActiveUsers,
    /// No sessions in the cost window, so there is no cost per session.
    #[error("no sessions in the cost window to divide the cost by")]
    NoSessions,
    /// A window covers no day.
    #[error("a measurement window is empty")]
    EmptyWindow,
}

fn hundredths(num: u128, den: u128) -> f64 {
    if den == 0 {
        return 0.0;
    }
    let h = (num * 100 + den / 2) / den;
    // Display only: u128 → f64 loses nothing at the sizes usage reaches.
    h as f64 / 100.0
}

/// The suggested per-member monthly limit.
///
/// `suggested = ⌈ (sessions / active_users / (days / 7)) × (cost / cost_sessions) × 4.3 × 1.25 ⌉`
pub fn advise(input: AdvisorInput) -> Result<Advice, NoAdvice> {
    let days = u128::from(input.engagement.days());
    if days == 0 || input.cost.days() == 0 {
        return Err(NoAdvice::EmptyWindow);
    }
    if input.active_users == 0 {
        return Err(NoAdvice::NoActiveUsers);
    }
    if input.cost_sessions == 0 {
        return Err(NoAdvice::NoSessions);
    }
    let sessions = u128::from(input.sessions);
    let users = u128::from(input.active_users);
    let cost = u128::from(input.cost_minor);
    let cost_sessions = u128::from(input.cost_sessions);
    // (sessions × 7 / (users × days)) × (cost / cost_sessions) × 43/10 × 125/100
    let num = sessions
        .saturating_mul(7)
        .saturating_mul(cost)
        .saturating_mul(WEEKS_PER_MONTH_TENTHS * HEADROOM_HUNDREDTHS);
    let den = users
        .saturating_mul(days)
        .saturating_mul(cost_sessions)
        .saturating_mul(1000);
    let suggested = num.div_ceil(den);
    Ok(Advice {
        sessions_per_user_per_week: hundredths(sessions * 7, users * days),
        cost_per_session_minor: hundredths(cost, cost_sessions),
        weeks_per_month: 4.3,
        headroom: 1.25,
        suggested_monthly_minor: u64::try_from(suggested).unwrap_or(u64::MAX),
        input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn input(sessions: u64, users: u64, days: u32, cost: u64, cost_sessions: u64) -> AdvisorInput {
        let w = Window::ending(day("2026-11-30"), days);
        AdvisorInput {
            sessions,
            active_users: users,
            engagement: w,
            cost_minor: cost,
            cost_sessions,
            cost: w,
        }
    }

    #[test]
    fn windows_count_both_ends() {
        let w = Window::ending(day("2026-11-30"), 28);
        assert_eq!(w.from, day("2026-11-03"));
        assert_eq!(w.days(), 28);
        assert!(w.contains(day("2026-11-03")) && w.contains(day("2026-11-30")));
        assert!(!w.contains(day("2026-12-01")));
        assert_eq!(Window::ending(day("2026-11-30"), 0).days(), 1);
    }

    #[test]
    fn the_taught_example_gives_the_taught_answer() {
        // 10 users, 28 days, 400 sessions: 10 sessions per user per week.
        // $120.00 over those 400 sessions: 30 cents a session.
        // 10 × 30 × 4.3 × 1.25 = 1612.5 → 1613 minor units.
        let a = advise(input(400, 10, 28, 12_000, 400)).unwrap();
        assert_eq!(a.sessions_per_user_per_week, 10.0);
        assert_eq!(a.cost_per_session_minor, 30.0);
        assert_eq!(a.suggested_monthly_minor, 1613);
    }

    #[test]
    fn whole_results_are_not_rounded_up() {
        // 2 sessions/user/week × 100 per session × 4.3 × 1.25 = 1075 exactly.
        let a = advise(input(8, 1, 28, 800, 8)).unwrap();
        assert_eq!(a.suggested_monthly_minor, 1075);
    }

    #[test]
    fn missing_data_gives_no_advice_rather_than_zero() {
        assert_eq!(advise(input(0, 0, 28, 0, 0)), Err(NoAdvice::NoActiveUsers));
        assert_eq!(advise(input(5, 2, 28, 100, 0)), Err(NoAdvice::NoSessions));
        let mut i = input(5, 2, 28, 100, 5);
        i.cost = Window {
            from: day("2026-11-30"),
            to: day("2026-11-01"),
        };
        assert_eq!(advise(i), Err(NoAdvice::EmptyWindow));
    }

    proptest! {
        #[test]
        fn suggestion_matches_the_formula_within_a_minor_unit(
            sessions in 1u64..100_000,
            users in 1u64..5_000,
            days in 1u32..=90,
            cost in 0u64..100_000_000,
            cost_sessions in 1u64..100_000,
        ) {
            let a = advise(input(sessions, users, days, cost, cost_sessions)).unwrap();
            let f = sessions as f64 / users as f64 / (f64::from(days) / 7.0)
                * (cost as f64 / cost_sessions as f64) * 4.3 * 1.25;
            let s = a.suggested_monthly_minor as f64;
            prop_assert!(s >= f - 1e-6 * f.max(1.0) && s < f + 1.0 + 1e-6 * f.max(1.0), "{s} vs {f}");
        }

        #[test]
        fn more_cost_never_lowers_the_suggestion(
            sessions in 1u64..10_000, users in 1u64..500, cost in 0u64..1_000_000, extra in 0u64..1_000_000,
        ) {
            let a = advise(input(sessions, users, 28, cost, sessions)).unwrap();
            let b = advise(input(sessions, users, 28, cost + extra, sessions)).unwrap();
            prop_assert!(b.suggested_monthly_minor >= a.suggested_monthly_minor);
        }
    }
}
