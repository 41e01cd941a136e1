//! Spend limits (`/spend_limits`): user overrides (tier A), group, seat-tier and
//! organization defaults (tier B writes), effective limits per member.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::*;

impl SimState {
    // ---------------------------------------------------------------- spend limits

    /// Spend-limit rows (for in-process inspection).
    pub fn spend_limits(&self) -> &Coll<SpendLimit> {
        &self.spend
    }

    fn require_spend_api(&self) -> ApiResult<()> {
        self.require_enterprise()?;
        if !self.org.settings.usage_credits_enabled {
            return Err(ApiError::invalid(
                Some("usage_credits_disabled"),
                "spend limits need usage credits to be turned on",
            ));
        }
        Ok(())
    }

    /// `GET /spend_limits/{id}`.
    pub fn get_spend_limit(&self, id: &str) -> ApiResult<SpendLimit> {
        self.require_spend_api()?;
        self.spend
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no spend limit with this id"))
    }

    /// `GET /spend_limits` (cursor pagination): configured rows of every scope, with
    /// the `scope_type[]` filter (any of them) and tier B's `rbac_group_id`. Rows come
    /// grouped by scope: organization, organization_service, rbac_group, seat_tier,
    /// user (the beta spend-limit reads; tier B offers the same list).
    pub fn list_spend_limits(
        &self,
        q: &CursorQuery,
        scope_types: &[&str],
        rbac_group_id: Option<&str>,
    ) -> ApiResult<CursorPage<SpendLimit>> {
        self.require_spend_api()?;
        const ORDER: [&str; 5] = [
            "organization",
            "organization_service",
            "rbac_group",
            "seat_tier",
            "user",
        ];
        for t in scope_types {
            if !ORDER.contains(t) {
                return Err(ApiError::invalid(
                    None,
                    "scope_type must be organization, organization_service, rbac_group, seat_tier or user",
                ));
            }
        }
        let start = q.start()?;
        let rank = |l: &SpendLimit| {
            ORDER
                .iter()
                .position(|t| *t == l.scope.type_name())
                .unwrap_or(ORDER.len()) as u64
        };
        // A position that keeps the scope grouping and, within it, creation order.
        let mut rows: Vec<(u64, SpendLimit)> = self
            .spend
            .by_seq()
            .iter()
            .filter(|(_, l)| scope_types.is_empty() || scope_types.contains(&l.scope.type_name()))
            .filter(|(_, l)| {
                rbac_group_id.is_none_or(|g| {
                    matches!(&l.scope, SpendScope::RbacGroup { rbac_group_id } if rbac_group_id == g)
                })
            })
            .map(|(k, l)| ((rank(l) << 48) | k, l.clone()))
            .collect();
        rows.sort_by_key(|(k, _)| *k);
        let from = start.after.map_or(0, |a| a.saturating_add(1));
        let items = rows.into_iter().skip_while(|(k, _)| *k < from);
        Ok(q.finish(start, items))
    }

    /// `POST /spend_limits`: upsert on (scope, period). Tier A writes only
    /// `scope.type: "user"`; with `extended` the group, seat-tier and organization
    /// scopes are writable too.
    pub fn upsert_spend_limit(
        &mut self,
        req: &SpendLimitRequest,
        extended: bool,
        now: DateTime<Utc>,
    ) -> ApiResult<SpendLimit> {
        self.require_spend_api()?;
        let period = req.period.clone().unwrap_or(Period::Monthly);
        if period != Period::Monthly {
            return Err(ApiError::invalid(
                Some("unsupported_period"),
                "monthly is the only supported period",
            ));
        }
        let currency = self.org.settings.billing_currency.clone();
        if let Some(c) = &req.currency {
            if !c.eq_ignore_ascii_case(&currency) {
                return Err(ApiError::invalid(
                    Some("currency_mismatch"),
                    "currency must be the organization's billing currency",
                ));
            }
        }
        if let Some(a) = &req.amount {
            if a.is_empty() || a.len() > 18 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid(
                    Some("invalid_amount"),
                    "amount must be a non-negative integer string in minor units",
                ));
            }
        }
        match &req.scope {
            SpendScope::User { user_id } => {
                if !self.users.contains(user_id) {
                    return Err(ApiError::not_found("no member with this id"));
                }
            }
            SpendScope::RbacGroup { rbac_group_id } if extended => {
                self.get_group(rbac_group_id)?;
            }
            SpendScope::SeatTier { .. } | SpendScope::Organization if extended => {}
            _ => {
                return Err(ApiError::invalid(
                    Some("scope_not_writable"),
                    "only scope.type \"user\" can be set through the API",
                ))
            }
        }
        let key = (req.scope.clone(), period.to_string());
        let limit = match self.spend_key.get(&key).cloned() {
            Some(existing) => {
                let l = self
                    .spend
                    .get_mut(&existing)
                    .ok_or_else(|| ApiError::not_found("no spend limit with this id"))?;
                if l.amount != req.amount {
                    l.amount = req.amount.clone();
                    l.updated_at = now;
                }
                l.clone()
            }
            None => {
                let (id, seq) = self.new_id("spl");
                let l = SpendLimit {
                    id: id.clone(),
                    scope: req.scope.clone(),
                    period,
                    amount: req.amount.clone(),
                    currency,
                    created_at: now,
                    updated_at: now,
                };
                self.spend_key.insert(key, id.clone());
                self.spend.insert(id, seq, l.clone());
                l
            }
        };
        self.touch_access(now);
        Ok(limit)
    }

    pub(super) fn remove_spend(&mut self, id: &str) -> Option<SpendLimit> {
        let l = self.spend.remove(id)?;
        self.spend_key
            .remove(&(l.scope.clone(), l.period.to_string()));
        Some(l)
    }

    /// `DELETE /spend_limits/{id}`.
    pub fn delete_spend_limit(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        self.require_spend_api()?;
        self.remove_spend(id)
            .ok_or_else(|| ApiError::not_found("no spend limit with this id"))?;
        self.touch_access(now);
        Ok(Deleted {
            kind: "spend_limit_deleted".into(),
            id: id.to_owned(),
        })
    }

    fn limit_for(&self, scope: SpendScope) -> Option<&SpendLimit> {
        self.spend_key
            .get(&(scope, Period::Monthly.to_string()))
            .and_then(|id| self.spend.get(id))
    }

    /// The monthly limit that applies to a member (§3.5 step 5), and whether several
    /// of the member's groups disagreed.
    pub fn resolve_spend(&self, user: &User) -> (Option<&SpendLimit>, bool) {
        if let Some(l) = self.limit_for(SpendScope::User {
            user_id: user.id.clone(),
        }) {
            return (Some(l), false);
        }
        let group_limits: Vec<&SpendLimit> = self
            .user_groups
            .get(&user.id)
            .into_iter()
            .flatten()
            .filter_map(|g| {
                self.limit_for(SpendScope::RbacGroup {
                    rbac_group_id: g.clone(),
                })
            })
            .collect();
        if !group_limits.is_empty() {
            let distinct: BTreeSet<Option<u64>> =
                group_limits.iter().map(|l| l.amount_minor()).collect();
            // Most permissive: no limit beats any amount, a larger amount a smaller.
            let best = group_limits
                .iter()
                .copied()
                .max_by_key(|l| match l.amount_minor() {
                    None => u128::MAX,
                    Some(a) => u128::from(a),
                });
            return (best, distinct.len() > 1);
        }
        if let Some(tier) = &user.seat_tier {
            if let Some(l) = self.limit_for(SpendScope::SeatTier {
                seat_tier: tier.clone(),
            }) {
                return (Some(l), false);
            }
        }
        (self.limit_for(SpendScope::Organization), false)
    }

    /// `GET /spend_limits/effective` (cursor pagination by member; `period[]` and
    /// `user_ids[]` filters). Members without a limit have no row.
    pub fn list_effective_spend(
        &self,
        q: &CursorQuery,
        periods: &[Period],
        user_ids: &[String],
    ) -> ApiResult<CursorPage<SpendSummary>> {
        self.require_spend_api()?;
        if user_ids.len() > 100 {
            return Err(ApiError::invalid(
                None,
                "user_ids may carry at most 100 ids",
            ));
        }
        let start = q.start()?;
        let wants_monthly = periods.is_empty() || periods.contains(&Period::Monthly);
        let items = self
            .users
            .by_seq()
            .range(start.range())
            .filter(|(_, u)| user_ids.is_empty() || user_ids.contains(&u.id))
            .filter_map(|(k, u)| {
                if !wants_monthly {
                    return None;
                }
                let (limit, _) = self.resolve_spend(u);
                let limit = limit?;
                Some((
                    *k,
                    SpendSummary {
                        actor: SpendActor {
                            user_id: u.id.clone(),
                            name: Some(u.name.clone()),
                            email_address: Some(u.email.clone()),
                            deleted: false,
                        },
                        amount: limit.amount.clone(),
                        currency: limit.currency.clone(),
                        period: Period::Monthly,
                        period_to_date_spend: "0".into(),
                        scope: SpendScope::User {
                            user_id: u.id.clone(),
                        },
                        source: limit.scope.clone(),
                        spend_limit_id: Some(limit.id.clone()),
                    },
                ))
            });
        let mut page = q.finish(start, items);
        // The effective endpoint documents only `data` and `next_page`.
        page.has_more = None;
        Ok(page)
    }
}
