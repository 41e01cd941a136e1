//! Reading the downstream state into an [`ActualState`] for the planner.
//!
//! A full read takes: the organization (`GET /me`, tolerated when absent), every
//! member and invite (ID pagination), every group and role (cursor pagination), the
//! members of the daemon's groups only (not of foreign groups: fewer calls), the
//! spend-limit rows (tier B, or the beta spend-limit reads) and plugin policies
//! (tier B) or, in real mode, the installation settings of the plugins the rules
//! name (the beta Plugins API); unknown where the server offers none of them, and
//! the planner then skips those checks. Every list follows
//! its pages to the end inside the client's rate budget.
//!
//! A failed read that a retry may fix (rate limit, unavailable) fails the read; an
//! optional read the server refuses (404, 400, 403 on a tier-B endpoint) leaves that
//! part unknown. Imports the client trait only.

use std::collections::{BTreeMap, BTreeSet};

use super::error::ReconcileError;
use super::ownership::Ownership;
use super::plan::{
    spend_limit_of, ActualInvite, ActualPlugin, ActualSpend, ActualState, ActualUser,
};
use super::report::{Phase, Progress, ProgressFn};
use crate::cowork::{
    CoworkApi, CoworkError, Invite, InviteStatus, Mode, PluginTarget, Preference, SpendLimitFilter,
    SpendScope, User,
};

/// What to read beyond the always-read parts.
#[derive(Debug, Clone, Default)]
pub struct ReadPlan {
    /// Rule keys of the desired groups (their groups' members are read in extended
    /// mode even before the daemon recorded them, to adopt them).
    pub desired_keys: BTreeSet<String>,
    /// Per-user spend overrides are needed (materializing, or owned overrides exist).
    pub user_spend: bool,
    /// Plugin names the rules give settings, org-wide or per group (their
    /// installation settings are read through the beta Plugins API in real mode).
    pub plugin_names: BTreeSet<String>,
}

fn optional<T>(result: Result<T, CoworkError>) -> Result<Option<T>, ReconcileError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_retryable() => Err(ReconcileError::Downstream(e)),
        Err(e @ CoworkError::Unauthorized { status: 401, .. }) => {
            Err(ReconcileError::Downstream(e))
        }
        Err(e) => {
            tracing::debug!(error = %e, "optional downstream read unavailable");
            Ok(None)
        }
    }
}

/// Reads of a full read beside the member lists: the organization, the people,
/// the groups and roles, and the rest (spend, plugins) as one step.
const FIXED_READS: usize = 4;

fn report(progress: Option<&ProgressFn>, done: usize, total: usize, message: &str) {
    if let Some(p) = progress {
        p(&Progress {
            phase: Phase::Reading,
            done,
            total,
            message: message.to_string(),
        });
    }
}

/// Members by id and pending invites by email, from the two people lists.
pub fn people(
    users: Vec<User>,
    invites: Vec<Invite>,
) -> (BTreeMap<String, ActualUser>, BTreeMap<String, ActualInvite>) {
    let users = users
        .into_iter()
        .map(|u| {
            (
                u.id.clone(),
                ActualUser {
                    id: u.id,
                    email: u.email.to_lowercase(),
                    role: u.role,
                },
            )
        })
        .collect();
    let invites = invites
        .into_iter()
        .filter(|i| i.status == InviteStatus::Pending)
        .map(|i| {
            (
                i.email.to_lowercase(),
                ActualInvite {
                    id: i.id,
                    group_ids: i.rbac_group_ids,
                },
            )
        })
        .collect();
    (users, invites)
}

/// Reads everything the full plan compares.
pub async fn read_full<C: CoworkApi>(
    client: &C,
    ownership: &Ownership,
    what: &ReadPlan,
    progress: Option<&ProgressFn>,
) -> Result<ActualState, ReconcileError> {
    // The total is known up front from the groups the daemon owns, and exact once
    // the group list is read.
    let mut total = FIXED_READS + ownership.groups.len();
    report(progress, 0, total, "reading the downstream state");
    let org = optional(client.get_me().await)?;
    report(progress, 1, total, "organization read");
    let users = client.list_users().await?;
    let invites = client.list_invites().await?;
    report(
        progress,
        2,
        total,
        &format!("{} members and {} invites read", users.len(), invites.len()),
    );
    let (users, invites) = people(users, invites);
    let groups = client.list_groups().await?;
    let roles = client.list_roles().await?;

    let owned_ids: BTreeSet<&str> = ownership.groups.values().map(|g| g.id.as_str()).collect();
    let extended = client.mode() == Mode::Extended;
    let to_read: Vec<String> = groups
        .iter()
        .filter(|g| !g.is_scim())
        .filter(|g| {
            owned_ids.contains(g.id.as_str())
                || (extended
                    && g.external_id.as_ref().is_some_and(|k| {
                        what.desired_keys.contains(k) || ownership.groups.contains_key(k)
                    }))
        })
        .map(|g| g.id.clone())
        .collect();
    total = FIXED_READS + to_read.len();
    report(
        progress,
        3,
        total,
        &format!("{} groups and {} roles read", groups.len(), roles.len()),
    );
    let mut members = BTreeMap::new();
    for (i, id) in to_read.iter().enumerate() {
        let list = client.list_group_members(id).await?;
        members.insert(
            id.clone(),
            list.into_iter().map(|m| m.user_id).collect::<BTreeSet<_>>(),
        );
        report(
            progress,
            4 + i,
            total,
            &format!("members of {} of {} groups read", i + 1, to_read.len()),
        );
    }

    let caps = org.as_ref().map(|o| o.capabilities).unwrap_or_default();
    let credits = org
        .as_ref()
        .and_then(|o| o.settings.as_ref())
        .is_none_or(|s| s.usage_credits_enabled);
    let tier_b_spend = caps.group_spend_limits_writable || caps.extended_api;
    // Group limits are readable everywhere now: tier B, or the beta spend-limit reads
    // (unknown when that beta is not available to the org).
    let group_spend = if credits {
        optional(
            client
                .list_spend_limits(&SpendLimitFilter {
                    scope_type: Some("rbac_group".into()),
                    rbac_group_id: None,
                })
                .await,
        )?
        .map(|rows| {
            rows.into_iter()
                .filter_map(|r| match &r.scope {
                    SpendScope::RbacGroup { rbac_group_id } => Some((
                        rbac_group_id.clone(),
                        ActualSpend {
                            limit: spend_limit_of(r.amount.as_deref())?,
                            id: r.id,
                        },
                    )),
                    _ => None,
                })
                .collect()
        })
    } else {
        None
    };
    let user_spend = if what.user_spend && credits {
        if tier_b_spend {
            optional(
                client
                    .list_spend_limits(&SpendLimitFilter {
                        scope_type: Some("user".into()),
                        rbac_group_id: None,
                    })
                    .await,
            )?
            .map(|rows| {
                rows.into_iter()
                    .filter_map(|r| match &r.scope {
                        SpendScope::User { user_id } => Some((
                            user_id.clone(),
                            ActualSpend {
                                limit: spend_limit_of(r.amount.as_deref())?,
                                id: r.id,
                            },
                        )),
                        _ => None,
                    })
                    .collect()
            })
        } else {
            // Tier A: the effective rows whose source is the member's own override.
            optional(client.list_effective_spend().await)?.map(|rows| {
                rows.into_iter()
                    .filter_map(|r| match (&r.source, r.spend_limit_id) {
                        (SpendScope::User { user_id }, Some(id)) => Some((
                            user_id.clone(),
                            ActualSpend {
                                limit: spend_limit_of(r.amount.as_deref())?,
                                id,
                            },
                        )),
                        _ => None,
                    })
                    .collect()
            })
        }
    } else if what.user_spend {
        None
    } else {
        Some(BTreeMap::new())
    };
    let plugins = if caps.plugin_policies {
        optional(client.list_plugin_policies().await)?
            .map(|list| list.into_iter().map(|p| (p.plugin_id.clone(), p)).collect())
    } else {
        None
    };
    let plugin_settings = if caps.plugin_policies || what.plugin_names.is_empty() {
        None
    } else {
        read_plugin_settings(client, &what.plugin_names).await?
    };
    report(progress, total, total, "downstream state read");
    Ok(ActualState {
        complete: true,
        org,
        users,
        invites,
        groups: groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
        members,
        roles: roles.into_iter().map(|r| (r.id.clone(), r)).collect(),
        group_spend,
        user_spend,
        plugins,
        plugin_settings,
    })
}

/// The beta Plugins API: the named plugins' ids and installation settings, one
/// plugin at a time (its own 300/min read budget). `None` when the API is not
/// available to the org: the planner then says so, once per run, and goes on.
async fn read_plugin_settings<C: CoworkApi>(
    client: &C,
    names: &BTreeSet<String>,
) -> Result<Option<BTreeMap<String, ActualPlugin>>, ReconcileError> {
    let Some(plugins) = optional(client.list_plugins().await)? else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for p in plugins.into_iter().filter(|p| names.contains(&p.name)) {
        let Some(settings) = optional(client.list_plugin_settings(&p.id).await)? else {
            return Ok(None);
        };
        let mut plugin = ActualPlugin {
            id: p.id.clone(),
            ..ActualPlugin::default()
        };
        for s in settings {
            let pref = Preference::from(s.installation_preference);
            match s.target {
                PluginTarget::Organization => plugin.org = Some(pref),
                PluginTarget::RbacGroup { rbac_group_id } => {
                    plugin.groups.insert(rbac_group_id, pref);
                }
            }
        }
        out.insert(p.name, plugin);
    }
    Ok(Some(out))
}

/// What the event path believes is downstream for the users it plans: their links,
/// memberships and owned overrides from the ownership records; nothing read.
pub fn believed(ownership: &Ownership) -> ActualState {
    let mut actual = ActualState {
        complete: false,
        user_spend: Some(BTreeMap::new()),
        ..ActualState::default()
    };
    for link in ownership.links.values() {
        match (&link.user_id, &link.invite_id) {
            (Some(id), _) => {
                actual.users.insert(
                    id.clone(),
                    ActualUser {
                        id: id.clone(),
                        email: link.email.clone(),
                        role: link.role.clone().unwrap_or(crate::cowork::OrgRole::Managed),
                    },
                );
            }
            (None, Some(invite)) => {
                actual.invites.insert(
                    link.email.clone(),
                    ActualInvite {
                        id: invite.clone(),
                        group_ids: Vec::new(),
                    },
                );
            }
            (None, None) => {}
        }
    }
    if let Some(rows) = actual.user_spend.as_mut() {
        for s in ownership.spend.values() {
            rows.insert(
                s.user_id.clone(),
                ActualSpend {
                    id: s.spend_limit_id.clone(),
                    limit: match s.amount {
                        Some(n) => crate::rules::SpendLimit::Amount(n),
                        None => crate::rules::SpendLimit::Unlimited,
                    },
                },
            );
        }
    }
    actual
}
