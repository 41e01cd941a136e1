//! `pool = { monthly, warn_at }`: a rule's pooled monthly budget, checked and resolved.

use super::*;

/// A rule's pooled monthly budget, once valid (`pool = { monthly, warn_at }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct PoolSpec {
    /// The group's monthly budget in minor units of the billing currency.
    pub monthly: u64,
    /// The warning threshold in basis points of `monthly` (8000 = 0.8).
    pub warn_at_bp: u32,
}

impl PoolSpec {
    /// `warn_at` when the rule leaves it out.
    pub const DEFAULT_WARN_AT_BP: u32 = 8_000;

    /// The spend at which the daemon warns (rounded up to a whole minor unit).
    pub fn warn_threshold(&self) -> u64 {
        let t = u128::from(self.monthly) * u128::from(self.warn_at_bp);
        u64::try_from(t.div_ceil(10_000)).unwrap_or(u64::MAX)
    }

    /// `warn_at` as the rule file writes it.
    pub fn warn_at(&self) -> f64 {
        f64::from(self.warn_at_bp) / 10_000.0
    }
}

/// A rule's pool, once valid.
pub(crate) fn pool_spec(pool: &PoolTable) -> Option<PoolSpec> {
    let monthly = match pool.monthly.as_ref()? {
        SpendAmount::Minor(n) => u64::try_from(*n).ok().filter(|n| *n > 0)?,
        _ => return None,
    };
    let warn_at = pool.warn_at.unwrap_or(0.8);
    if !(warn_at > 0.0 && warn_at < 1.0) {
        return None;
    }
    // In (0, 1): the product fits u32 basis points.
    let bp = (warn_at * 10_000.0).round().clamp(1.0, 9_999.0) as u32;
    Some(PoolSpec {
        monthly,
        warn_at_bp: bp,
    })
}

pub(super) fn check_pool(c: &mut Checker, s: &Subject, org: Option<&OrgSpec>, pool: &PoolTable) {
    if org.is_some_and(|o| !o.usage_credits) {
        c.err(
            s,
            "pool",
            ErrorCode::UsageCreditsOff,
            "a pool caps members with spend limits, which need usage credits, but org.usage_credits is false",
        );
    }
    for (field, value) in [("pool.weekly", &pool.weekly), ("pool.daily", &pool.daily)] {
        if value.is_some() {
            c.err(
                s,
                field,
                ErrorCode::UnsupportedPeriod,
                "only a monthly pool is supported; use `monthly`",
            );
        }
    }
    if pool.tokens.is_some() {
        c.err(
            s,
            "pool.tokens",
            ErrorCode::UnsupportedUnit,
            "pools are money, in minor units of the billing currency, not tokens; use `monthly`",
        );
    }
    if let (Some(cur), Some(org)) = (&pool.currency, org) {
        if *cur != org.billing_currency {
            c.err(
                s,
                "pool.currency",
                ErrorCode::CurrencyMismatch,
                format!(
                    "pools are in the org's billing currency ({})",
                    org.billing_currency
                ),
            );
        }
    }
    match &pool.monthly {
        None => {
            if pool.weekly.is_none() && pool.daily.is_none() && pool.tokens.is_none() {
                c.err(
                    s,
                    "pool.monthly",
                    ErrorCode::MissingField,
                    "is required: a whole, positive number of minor currency units",
                );
            }
        }
        Some(SpendAmount::Minor(n)) if *n <= 0 => c.err(
            s,
            "pool.monthly",
            ErrorCode::InvalidAmount,
            "must be a positive number of minor currency units",
        ),
        Some(SpendAmount::Minor(_)) => {}
        Some(SpendAmount::Fractional(_)) => c.err(
            s,
            "pool.monthly",
            ErrorCode::InvalidAmount,
            "must be a whole number of minor currency units",
        ),
        Some(SpendAmount::Text(_)) => c.err(
            s,
            "pool.monthly",
            ErrorCode::InvalidAmount,
            "must be a whole number of minor currency units, without quotes (a pool is never unlimited)",
        ),
    }
    if let Some(w) = pool.warn_at {
        if !(w > 0.0 && w < 1.0) {
            c.err(
                s,
                "pool.warn_at",
                ErrorCode::InvalidValue,
                "must be a share of the pool between 0 and 1, such as 0.8",
            );
        }
    }
}
