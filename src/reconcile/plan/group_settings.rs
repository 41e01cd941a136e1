//! Phase: the settings of each bound group: its name and description, the roles
//! attached to it, and its monthly per-member spend limit. Full plans check every
//! bound group; the event path only a group it has just created (which must not
//! stay without its roles and limit).

use std::collections::BTreeSet;

use super::action::{ActionKind, GroupRef, Op, RoleRef};
use super::convert::{money, CONSOLE};
use super::findings::Findings;
use super::groups::BoundGroups;
use super::index::Ctx;
use super::model::{ActualSpend, DriftKind};
use super::roles::Roles;
use crate::cowork::RbacGroup;
use crate::rules::DesiredGroup;

/// Renames, role attachments and spend limits of the bound groups.
pub(super) fn plan(ctx: &Ctx<'_>, bound: &BoundGroups<'_>, roles: &Roles) -> Findings {
    let mut out = Findings::default();
    for (key, b) in bound {
        let (desired, actual, gref, created) = (b.desired, b.actual, &b.gref, b.created);
        // Group-level settings belong to the full plan, except for a group the
        // event path just created (it must not stay without its roles and limit).
        if !ctx.scope.is_full() && !created {
            continue;
        }
        let target = format!("group:{key}");
        if let Some(g) = actual {
            let rename_to = (g.name != desired.name).then(|| desired.name.clone());
            let description = match (&desired.description, ctx.extended()) {
                (Some(d), true) if g.description.as_ref() != Some(d) => Some(d.clone()),
                _ => None,
            };
            if rename_to.is_some() || description.is_some() {
                let what = match &rename_to {
                    Some(to) => format!("rename group {:?} (key {key}) to {to:?}", g.name),
                    None => format!("set the description of group {:?} (key {key})", g.name),
                };
                out.push(
                    ActionKind::UpdateGroup,
                    target.clone(),
                    what,
                    Op::UpdateGroup {
                        group: gref.clone(),
                        rename_to,
                        description,
                    },
                );
            }
        }
        out.extend(attach_roles(
            ctx, roles, key, desired, actual, gref, created,
        ));
        out.extend(spend(ctx, key, desired, actual, gref, created));
    }
    out
}

/// The roles attached to one group: set (extended mode) or reported (real mode).
fn attach_roles(
    ctx: &Ctx<'_>,
    roles: &Roles,
    key: &str,
    desired: &DesiredGroup,
    actual: Option<&RbacGroup>,
    gref: &GroupRef,
    created: bool,
) -> Findings {
    let mut out = Findings::default();
    let target = format!("group:{key}");
    let have: BTreeSet<String> = match actual {
        Some(g) => match &g.roles {
            Some(r) => r.iter().cloned().collect(),
            None => {
                out.notes.push(format!(
                        "roles of group {key} are temporarily unknown (roles: null); not checked this run"
                    ));
                return out;
            }
        },
        None => BTreeSet::new(),
    };
    let wanted: Vec<RoleRef> = desired
        .roles
        .iter()
        .map(|k| {
            roles.refs.get(k).cloned().unwrap_or(RoleRef {
                key: k.clone(),
                id: None,
            })
        })
        .collect();
    let wanted_ids: BTreeSet<String> = wanted.iter().filter_map(|r| r.id.clone()).collect();
    let all_known = wanted.iter().all(|r| r.id.is_some());
    let differs = !all_known || wanted_ids != have;
    if !differs || (created && wanted.is_empty()) {
        return out;
    }
    if ctx.extended() {
        let resolvable = wanted
            .iter()
            .all(|r| r.id.is_some() || roles.created.contains(&r.key));
        if !resolvable {
            out.notes.push(format!(
                    "roles of new group {key} are set by the next full reconcile (role ids not known yet)"
                ));
            return out;
        }
        let names: Vec<String> = wanted.iter().map(|r| ctx.role_name(&r.key)).collect();
        out.push(
            ActionKind::SetGroupRoles,
            target,
            format!(
                "attach roles [{}] to group {:?} (key {key})",
                names.join(", "),
                desired.name
            ),
            Op::SetGroupRoles {
                group: gref.clone(),
                roles: wanted,
            },
        );
    } else {
        for r in &wanted {
            if r.id.as_ref().is_some_and(|id| have.contains(id)) {
                continue;
            }
            let name = ctx.role_name(&r.key);
            out.drift(
                DriftKind::TierB,
                target.clone(),
                format!("role {name:?} is not attached to group {:?}", desired.name),
                Some(format!(
                    "{CONSOLE} › Groups › {}: attach role {name:?}",
                    desired.name
                )),
            );
        }
        for id in have.difference(&wanted_ids) {
            let name = ctx
                .input
                .actual
                .roles
                .get(id)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| id.clone());
            out.drift(
                DriftKind::TierB,
                target.clone(),
                format!(
                    "role {name:?} is attached to group {:?} but not in the rules",
                    desired.name
                ),
                Some(format!(
                    "{CONSOLE} › Groups › {}: detach role {name:?}",
                    desired.name
                )),
            );
        }
    }
    out
}

/// One group's monthly per-member spend limit: set or cleared (extended mode),
/// materialized per user (real mode, optionally; see the users phase) or reported.
fn spend(
    ctx: &Ctx<'_>,
    key: &str,
    desired: &DesiredGroup,
    actual: Option<&RbacGroup>,
    gref: &GroupRef,
    created: bool,
) -> Findings {
    let mut out = Findings::default();
    let target = format!("group:{key}");
    let currency = ctx.input.desired.org.billing_currency.clone();
    let have: Option<Option<&ActualSpend>> = match (actual, &ctx.input.actual.group_spend) {
        (Some(g), Some(rows)) => Some(rows.get(&g.id)),
        // A new group has no limit, but say so only where limits can be read, so
        // a run and the next one report the same.
        (None, Some(_)) => Some(None),
        (None, None) if ctx.extended() => Some(None),
        (_, None) => None,
    };
    let Some(have) = have else {
        match desired.monthly_spend {
                Some(limit) if !ctx.extended() && !ctx.materializing() => out.drift(
                    DriftKind::TierB,
                    target,
                    format!(
                        "group {:?} should have a monthly spend limit of {}; the API can neither read nor write group limits",
                        desired.name,
                        money(limit, &currency)
                    ),
                    Some(format!(
                        "{CONSOLE} › Groups › {}: check that the monthly spend limit is {}",
                        desired.name,
                        money(limit, &currency)
                    )),
                ),
                Some(_) if !ctx.materializing() => out.notes.push(format!(
                    "the spend limit of group {key} cannot be read; not checked this run"
                )),
                _ => {}
            }
        return out;
    };
    let have_limit = have.map(|s| s.limit);
    if have_limit == desired.monthly_spend {
        return out;
    }
    if ctx.extended() {
        match (desired.monthly_spend, have) {
            (Some(limit), _) => out.push(
                ActionKind::SetGroupSpend,
                target,
                format!(
                    "set the monthly spend limit of group {:?} (key {key}) to {}",
                    desired.name,
                    money(limit, &currency)
                ),
                Op::SetGroupSpend {
                    group: gref.clone(),
                    limit,
                    currency,
                },
            ),
            (None, Some(row)) if !created => out.push(
                ActionKind::ClearGroupSpend,
                target,
                format!(
                    "remove the monthly spend limit of group {:?} (key {key})",
                    desired.name
                ),
                Op::ClearGroupSpend {
                    group: gref.clone(),
                    spend_limit_id: row.id.clone(),
                },
            ),
            (None, _) => {}
        }
    } else if !ctx.materializing() {
        let (detail, step) = match desired.monthly_spend {
            Some(limit) => (
                format!(
                    "group {:?} should have a monthly spend limit of {}",
                    desired.name,
                    money(limit, &currency)
                ),
                format!(
                    "{CONSOLE} › Groups › {}: set the monthly spend limit to {}",
                    desired.name,
                    money(limit, &currency)
                ),
            ),
            None => (
                format!(
                    "group {:?} has a spend limit the rules do not set",
                    desired.name
                ),
                format!(
                    "{CONSOLE} › Groups › {}: remove the group spend limit",
                    desired.name
                ),
            ),
        };
        out.drift(DriftKind::TierB, target, detail, Some(step));
    }
    out
}
