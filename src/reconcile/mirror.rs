//! A downstream exactly as the rules want it, already owned and linked: the starting
//! point of planner tests ("`plan(x, x)` is empty") and of the reconcile benchmark.
//!
//! Pure, like the planner: builds values, performs no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::ownership::{Membership, OwnedGroup, OwnedRole, Ownership, UserLink};
use super::plan::{preference, role_spec, ActualSpend, ActualState, ActualUser, DirectoryView};
use crate::cowork::{GroupOverride, Mode, OrgRole, PluginPolicy, RbacGroup, RbacRole, SourceType};
use crate::rules::DesiredState;

/// A downstream, the daemon's records of it, and the directory users behind it.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// What the Admin API would report.
    pub actual: ActualState,
    /// What the daemon believes it owns.
    pub ownership: Ownership,
    /// Lowercased email → SCIM id.
    pub directory: DirectoryView,
}

/// Downstream ids in a mirror: `rbac_role_<key>`, `rbac_group_<key>`, `user_<scim id>`.
pub fn mirror_id(prefix: &str, key: &str) -> String {
    format!("{prefix}_{key}")
}

/// The downstream matching `desired`, as of `at`. In real mode nothing carries an
/// `external_id` and roles are not owned (the real API cannot write them).
pub fn mirror(desired: &DesiredState, mode: Mode, at: DateTime<Utc>) -> Mirror {
    let extended = mode == Mode::Extended;
    let mut actual = ActualState {
        complete: true,
        group_spend: Some(BTreeMap::new()),
        user_spend: Some(BTreeMap::new()),
        plugins: Some(BTreeMap::new()),
        ..ActualState::default()
    };
    let mut ownership = Ownership::default();
    let mut directory = DirectoryView::default();
    for (key, r) in &desired.roles {
        let spec = role_spec(key, r);
        let id = mirror_id("rbac_role", key);
        actual.roles.insert(
            id.clone(),
            RbacRole {
                id: id.clone(),
                name: spec.name.clone(),
                source: Some(crate::cowork::RoleSource::custom()),
                created_at: at,
                updated_at: at,
                description: spec.description.clone(),
                external_id: extended.then(|| key.clone()),
                version: Some(1),
                default_model: spec.default_model.clone(),
                capabilities: Some(spec.capabilities.clone()),
                connectors: Some(spec.connectors.clone()),
                admin_permissions: Some(spec.admin_permissions.clone()),
            },
        );
        if extended {
            ownership.roles.insert(
                key.clone(),
                OwnedRole {
                    key: key.clone(),
                    id,
                },
            );
        }
    }
    for (scim, m) in &desired.managed_users {
        let Some(email) = m.email.as_ref().map(|e| e.to_lowercase()) else {
            continue;
        };
        let uid = mirror_id("user", scim);
        actual.users.insert(
            uid.clone(),
            ActualUser {
                id: uid.clone(),
                email: email.clone(),
                role: OrgRole::Managed,
            },
        );
        directory.insert(scim, Some(&email), true);
        ownership.links.insert(
            scim.clone(),
            UserLink {
                scim_id: scim.clone(),
                email,
                user_id: Some(uid),
                role: Some(OrgRole::Managed),
                invite_id: None,
            },
        );
    }
    let mut policies: BTreeMap<String, PluginPolicy> = desired
        .org
        .plugins
        .iter()
        .map(|(p, pref)| {
            (
                p.clone(),
                PluginPolicy {
                    plugin_id: p.clone(),
                    marketplace_id: "mkt".into(),
                    org_preference: preference(*pref),
                    group_overrides: Vec::new(),
                },
            )
        })
        .collect();
    for (key, g) in &desired.groups {
        let id = mirror_id("rbac_group", key);
        actual.groups.insert(
            id.clone(),
            RbacGroup {
                id: id.clone(),
                name: g.name.clone(),
                source_type: SourceType::Direct,
                roles: Some(g.roles.iter().map(|r| mirror_id("rbac_role", r)).collect()),
                created_at: at,
                updated_at: at,
                description: g.description.clone(),
                external_id: extended.then(|| key.clone()),
                managed_by: None,
                version: Some(1),
            },
        );
        actual.members.insert(
            id.clone(),
            g.members.iter().map(|m| mirror_id("user", m)).collect(),
        );
        if let (Some(limit), Some(spend)) = (g.monthly_spend, actual.group_spend.as_mut()) {
            spend.insert(
                id.clone(),
                ActualSpend {
                    id: mirror_id("spl", key),
                    limit,
                },
            );
        }
        for (plugin, pref) in &g.plugins {
            policies
                .entry(plugin.clone())
                .or_insert_with(|| PluginPolicy {
                    plugin_id: plugin.clone(),
                    marketplace_id: "mkt".into(),
                    org_preference: crate::cowork::Preference::Available,
                    group_overrides: Vec::new(),
                })
                .group_overrides
                .push(GroupOverride {
                    rbac_group_id: id.clone(),
                    preference: preference(*pref),
                });
        }
        ownership.groups.insert(
            key.clone(),
            OwnedGroup {
                key: key.clone(),
                id: id.clone(),
                name: g.name.clone(),
                created: true,
            },
        );
        for m in &g.members {
            ownership.memberships.insert(
                (m.clone(), key.clone()),
                Membership {
                    scim_id: m.clone(),
                    group_key: key.clone(),
                    group_id: id.clone(),
                    user_id: mirror_id("user", m),
                },
            );
        }
    }
    ownership.membership_count = ownership.memberships.len();
    actual.plugins = Some(policies);
    Mirror {
        actual,
        ownership,
        directory,
    }
}
