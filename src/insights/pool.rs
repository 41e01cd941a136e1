//! Pooled team budgets: the state machine of one rule's `pool = { monthly, warn_at }`
//! over a month (design §6.1).
//!
//! Claude's group limit is a per-member default; a pool is a budget for the whole
//! group. Each check feeds [`step`] the group's month-to-date cost (the cost report
//! by `rbac_group_id`), each member's month-to-date spend and the current pool; it
//! answers the new [`PoolRecord`] and what happened ([`PoolEvent`]):
//!
//! - `ok` → `warn` when the spend reaches `warn_at` of the pool (warned once a month);
//! - → `capped` when the pool is spent: every member is capped at what they have
//!   spent so far (a per-user override), members who join while capped too; a cap
//!   never rises within the month (late cost data must not open the tap again);
//! - caps clear when the month turns, when the pool is raised above the spend, when
//!   the cost is revised below the pool, and for a member who leaves the group; a
//!   pool removed from the rules clears everything.
//!
//! A member of two pooled groups counts toward both (the cost report attributes
//! their cost to every group they hold) and is capped by either; [`caps_of`] takes
//! the lowest cap across pools. Pure: no I/O, no clock (the caller names the month).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use crate::rules::PoolSpec;

/// Where a pool stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolLevel {
    /// Below `warn_at`.
    Ok,
    /// At or above `warn_at`, not yet spent.
    Warn,
    /// Spent: members are capped.
    Capped,
}

impl PoolLevel {
    /// The name used in metrics, status and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolLevel::Ok => "ok",
            PoolLevel::Warn => "warn",
            PoolLevel::Capped => "capped",
        }
    }
}

/// A pool's state, kept in the store between checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    /// The downstream group's key.
    pub group_key: String,
    /// The month this record is about: `YYYY-MM` (UTC).
    pub month: String,
    /// The pool at the last check.
    pub spec: PoolSpec,
    /// The group's month-to-date cost at the last check (minor units).
    pub spent: u64,
    /// Where it stands.
    pub level: PoolLevel,
    /// Whether the warning was given this month.
    pub warned: bool,
    /// Caps by directory user id (minor units), only while `capped`.
    pub caps: BTreeMap<String, u64>,
}

/// One check's measurements.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// `YYYY-MM` (UTC) of the check.
    pub month: String,
    /// The group's month-to-date cost, minor units.
    pub spent: u64,
    /// The group's members now, by directory user id.
    pub members: BTreeSet<String>,
    /// Each member's month-to-date spend, minor units (missing = 0).
    pub member_spend: BTreeMap<String, u64>,
}

/// Why a cap was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearReason {
    /// A new month began.
    MonthTurned,
    /// The pool was raised above the spend.
    PoolRaised,
    /// The cost was revised below the pool.
    CostRevised,
    /// The member left the group.
    LeftGroup,
    /// The rule no longer has a pool.
    PoolRemoved,
}

impl ClearReason {
    /// For messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ClearReason::MonthTurned => "the month turned",
            ClearReason::PoolRaised => "the pool was raised",
            ClearReason::CostRevised => "the cost was revised below the pool",
            ClearReason::LeftGroup => "the member left the group",
            ClearReason::PoolRemoved => "the rule no longer has a pool",
        }
    }
}

/// What a check changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PoolEvent {
    /// The spend reached `warn_at` (once a month).
    Warned {
        /// Month-to-date cost.
        spent: u64,
        /// The pool.
        monthly: u64,
    },
    /// The pool is spent; members are capped from now on.
    Spent {
        /// Month-to-date cost.
        spent: u64,
        /// The pool.
        monthly: u64,
    },
    /// A member was capped at their spend so far.
    Capped {
        /// Directory user id.
        user: String,
        /// The cap, minor units.
        at: u64,
    },
    /// A member's cap was lifted.
    Cleared {
        /// Directory user id.
        user: String,
        /// Why.
        reason: ClearReason,
    },
}

fn level_of(spec: PoolSpec, spent: u64) -> PoolLevel {
    if spent >= spec.monthly {
        PoolLevel::Capped
    } else if spent >= spec.warn_threshold() {
        PoolLevel::Warn
    } else {
        PoolLevel::Ok
    }
}

/// One check of one pool. `spec` is `None` when the rule no longer has a pool (the
/// answer is then `None`, with every cap cleared).
pub fn step(
    prev: Option<&PoolRecord>,
    group_key: &str,
    spec: Option<PoolSpec>,
    obs: &Observation,
) -> (Option<PoolRecord>, Vec<PoolEvent>) {
    let mut events = Vec::new();
    let Some(spec) = spec else {
        if let Some(p) = prev {
            clear_all(p, ClearReason::PoolRemoved, &mut events);
        }
        return (None, events);
    };
    // A record of another month starts over.
    let prev = match prev {
        Some(p) if p.month != obs.month => {
            clear_all(p, ClearReason::MonthTurned, &mut events);
            None
        }
        other => other,
    };
    let level = level_of(spec, obs.spent);
    let mut warned = prev.is_some_and(|p| p.warned);
    let was_capped = prev.is_some_and(|p| p.level == PoolLevel::Capped);
    if level >= PoolLevel::Warn && !warned {
        warned = true;
        events.push(PoolEvent::Warned {
            spent: obs.spent,
            monthly: spec.monthly,
        });
    }
    let mut caps = BTreeMap::new();
    if level == PoolLevel::Capped {
        if !was_capped {
            events.push(PoolEvent::Spent {
                spent: obs.spent,
                monthly: spec.monthly,
            });
        }
        let old = prev.map(|p| &p.caps);
        if let Some(old) = old {
            for user in old.keys().filter(|u| !obs.members.contains(*u)) {
                events.push(PoolEvent::Cleared {
                    user: user.clone(),
                    reason: ClearReason::LeftGroup,
                });
            }
        }
        for user in &obs.members {
            let so_far = obs.member_spend.get(user).copied().unwrap_or(0);
            match old.and_then(|o| o.get(user)) {
                Some(&cap) => {
                    caps.insert(user.clone(), cap);
                }
                None => {
                    caps.insert(user.clone(), so_far);
                    events.push(PoolEvent::Capped {
                        user: user.clone(),
                        at: so_far,
                    });
                }
            }
        }
    } else if let Some(p) = prev.filter(|_| was_capped) {
        let reason = if spec.monthly > p.spec.monthly {
            ClearReason::PoolRaised
        } else {
            ClearReason::CostRevised
        };
        clear_all(p, reason, &mut events);
    }
    let record = PoolRecord {
        group_key: group_key.to_string(),
        month: obs.month.clone(),
        spec,
        spent: obs.spent,
        level,
        warned,
        caps,
    };
    (Some(record), events)
}

fn clear_all(p: &PoolRecord, reason: ClearReason, events: &mut Vec<PoolEvent>) {
    for user in p.caps.keys() {
        events.push(PoolEvent::Cleared {
            user: user.clone(),
            reason,
        });
    }
}

/// The caps all pools want, by directory user id: the lowest where a member is
/// capped by more than one pool.
pub fn caps_of<'a>(records: impl IntoIterator<Item = &'a PoolRecord>) -> BTreeMap<String, u64> {
    let mut caps: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        for (user, &at) in &r.caps {
            caps.entry(user.clone())
                .and_modify(|c| *c = (*c).min(at))
                .or_insert(at);
        }
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POOL: PoolSpec = PoolSpec {
        monthly: 10_000,
        warn_at_bp: 8_000,
    };

    fn obs(month: &str, spent: u64, members: &[(&str, u64)]) -> Observation {
        Observation {
            month: month.into(),
            spent,
            members: members.iter().map(|(u, _)| u.to_string()).collect(),
            member_spend: members.iter().map(|(u, s)| (u.to_string(), *s)).collect(),
        }
    }

    fn run(
        prev: Option<&PoolRecord>,
        spec: PoolSpec,
        o: &Observation,
    ) -> (PoolRecord, Vec<PoolEvent>) {
        let (r, e) = step(prev, "team", Some(spec), o);
        (r.unwrap(), e)
    }

    #[test]
    fn below_warn_at_is_ok_and_silent() {
        let (r, e) = run(None, POOL, &obs("2026-12", 7_999, &[("a", 7_999)]));
        assert_eq!(r.level, PoolLevel::Ok);
        assert!(e.is_empty());
        assert!(r.caps.is_empty());
    }

    #[test]
    fn reaching_warn_at_warns_once_a_month() {
        let (r, e) = run(None, POOL, &obs("2026-12", 8_000, &[("a", 8_000)]));
        assert_eq!(r.level, PoolLevel::Warn);
        assert_eq!(
            e,
            vec![PoolEvent::Warned {
                spent: 8_000,
                monthly: 10_000
            }]
        );
        let (r2, e2) = run(Some(&r), POOL, &obs("2026-12", 9_000, &[("a", 9_000)]));
        assert_eq!(r2.level, PoolLevel::Warn);
        assert!(e2.is_empty(), "{e2:?}");
    }

    #[test]
    fn a_spent_pool_caps_every_member_at_their_spend_so_far() {
        let (r, e) = run(
            None,
            POOL,
            &obs("2026-12", 10_500, &[("a", 7_000), ("b", 3_500), ("c", 0)]),
        );
        assert_eq!(r.level, PoolLevel::Capped);
        assert_eq!(
            r.caps,
            BTreeMap::from([("a".into(), 7_000), ("b".into(), 3_500), ("c".into(), 0)])
        );
        assert!(e.contains(&PoolEvent::Warned {
            spent: 10_500,
            monthly: 10_000
        }));
        assert!(e.contains(&PoolEvent::Spent {
            spent: 10_500,
            monthly: 10_000
        }));
        assert!(e.contains(&PoolEvent::Capped {
            user: "c".into(),
            at: 0
        }));
        // A later check with late cost data keeps the caps where they were.
        let (r2, e2) = run(
            Some(&r),
            POOL,
            &obs("2026-12", 11_000, &[("a", 7_400), ("b", 3_600), ("c", 0)]),
        );
        assert_eq!(r2.caps, r.caps);
        assert!(e2.is_empty(), "{e2:?}");
    }

    #[test]
    fn a_member_joining_a_capped_group_is_capped_and_one_leaving_is_cleared() {
        let (r, _) = run(
            None,
            POOL,
            &obs("2026-12", 10_000, &[("a", 6_000), ("b", 4_000)]),
        );
        let (r2, e2) = run(
            Some(&r),
            POOL,
            &obs("2026-12", 10_000, &[("a", 6_000), ("n", 25)]),
        );
        assert_eq!(
            r2.caps,
            BTreeMap::from([("a".into(), 6_000), ("n".into(), 25)])
        );
        assert!(e2.contains(&PoolEvent::Cleared {
            user: "b".into(),
            reason: ClearReason::LeftGroup
        }));
        assert!(e2.contains(&PoolEvent::Capped {
            user: "n".into(),
            at: 25
        }));
    }

    #[test]
    fn the_month_turning_clears_caps_and_the_warning() {
        let (r, _) = run(None, POOL, &obs("2026-12", 12_000, &[("a", 12_000)]));
        let (r2, e2) = run(Some(&r), POOL, &obs("2027-01", 0, &[("a", 0)]));
        assert_eq!(r2.level, PoolLevel::Ok);
        assert!(!r2.warned);
        assert!(r2.caps.is_empty());
        assert_eq!(
            e2,
            vec![PoolEvent::Cleared {
                user: "a".into(),
                reason: ClearReason::MonthTurned
            }]
        );
    }

    #[test]
    fn raising_the_pool_above_the_spend_clears_the_caps() {
        let (r, _) = run(None, POOL, &obs("2026-12", 10_000, &[("a", 10_000)]));
        let raised = PoolSpec {
            monthly: 20_000,
            ..POOL
        };
        let (r2, e2) = run(Some(&r), raised, &obs("2026-12", 10_000, &[("a", 10_000)]));
        assert_eq!(r2.level, PoolLevel::Ok);
        assert!(r2.caps.is_empty());
        assert_eq!(
            e2,
            vec![PoolEvent::Cleared {
                user: "a".into(),
                reason: ClearReason::PoolRaised
            }]
        );
        // Raised but still spent: the caps stay.
        let small_raise = PoolSpec {
            monthly: 10_001,
            ..POOL
        };
        let (r3, _) = run(
            Some(&r),
            small_raise,
            &obs("2026-12", 10_500, &[("a", 10_500)]),
        );
        assert_eq!(r3.caps, r.caps);
    }

    #[test]
    fn a_pool_removed_from_the_rules_clears_everything() {
        let (r, _) = run(None, POOL, &obs("2026-12", 10_000, &[("a", 10_000)]));
        let (r2, e2) = step(Some(&r), "team", None, &obs("2026-12", 10_000, &[]));
        assert!(r2.is_none());
        assert_eq!(
            e2,
            vec![PoolEvent::Cleared {
                user: "a".into(),
                reason: ClearReason::PoolRemoved
            }]
        );
    }

    #[test]
    fn a_member_of_two_pooled_groups_is_capped_at_the_lower_cap() {
        let (a, _) = step(
            None,
            "a",
            Some(POOL),
            &obs("2026-12", 10_000, &[("u", 300)]),
        );
        let (b, _) = step(
            None,
            "b",
            Some(POOL),
            &obs("2026-12", 10_000, &[("u", 250), ("v", 1)]),
        );
        let caps = caps_of([a.as_ref().unwrap(), b.as_ref().unwrap()]);
        assert_eq!(caps, BTreeMap::from([("u".into(), 250), ("v".into(), 1)]));
    }

    #[test]
    fn warn_threshold_rounds_up() {
        let p = PoolSpec {
            monthly: 3,
            warn_at_bp: 5_000,
        };
        assert_eq!(p.warn_threshold(), 2);
        assert_eq!(POOL.warn_threshold(), 8_000);
        assert_eq!(POOL.warn_at(), 0.8);
    }

    proptest! {
        #[test]
        fn caps_exist_exactly_while_capped_and_never_rise_within_a_month(
            spends in proptest::collection::vec(0u64..30_000, 1..12),
            monthly in 1u64..20_000,
        ) {
            let spec = PoolSpec { monthly, warn_at_bp: 8_000 };
            let mut prev: Option<PoolRecord> = None;
            let mut total = 0;
            for s in spends {
                total += s / 10;
                let o = obs("2026-12", total, &[("a", total / 2), ("b", total / 2)]);
                let (r, _) = run(prev.as_ref(), spec, &o);
                prop_assert_eq!(r.caps.is_empty(), r.level != PoolLevel::Capped);
                if let Some(p) = &prev {
                    for (u, c) in &r.caps {
                        if let Some(old) = p.caps.get(u) {
                            prop_assert!(c <= old);
                        }
                    }
                }
                prev = Some(r);
            }
        }
    }
}
