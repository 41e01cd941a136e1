//! Effective access (E17), resolved the way the product does (§3.5 of the reference):
//! built-in roles ignore custom roles; features are the union over the member's
//! groups' roles, capped by org switches; connector tools take the most permissive
//! mode, capped by the org's default; plugins take the most permissive override; spend
//! takes the user override, then the most permissive group default, then seat tier,
//! then org. Pure: callers pass `now`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::state::{ApiResult, SimState, GA_FEATURES};
use crate::cowork::types::*;

/// How long capability and connector changes take to reach members (≤ 1 minute).
const PROPAGATION_SECS: i64 = 60;

/// The mode a role gives a connector tool (`Deny` when the role says nothing).
fn role_tool_mode(role: &RbacRole, connector_id: &str, tool: &str) -> ToolMode {
    match &role.connectors {
        Some(ConnectorPolicy::All { all_connectors }) => all_connectors.default_tool_mode,
        Some(ConnectorPolicy::List(grants)) => {
            match grants.iter().find(|g| g.connector_id == connector_id) {
                Some(g) if g.access == ConnectorAccess::Allow => g
                    .tools
                    .iter()
                    .find(|t| t.tool_name == tool)
                    .map_or(g.default_tool_mode, |t| t.mode),
                _ => ToolMode::Deny,
            }
        }
        None => ToolMode::Deny,
    }
}

fn role_grants(role: &RbacRole, feature: &str) -> bool {
    let Some(caps) = &role.capabilities else {
        return false;
    };
    match caps.all {
        Blanket::All => return true,
        Blanket::AllGa if GA_FEATURES.contains(&feature) => return true,
        _ => {}
    }
    caps.features.get(feature).copied().unwrap_or(false)
}

impl SimState {
    /// `GET /users/{id}/effective_access`.
    pub fn effective_access(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<EffectiveAccess> {
        let user = self.get_user(user_id)?;
        let settings = &self.org().settings;
        let groups = self.groups_of(user_id);
        let custom = user.role == OrgRole::Managed;
        let mut notes = Vec::new();

        let mut role_ids: Vec<String> = Vec::new();
        for gid in &groups {
            if let Some(g) = self.groups().get(gid) {
                for rid in g.roles.iter().flatten() {
                    if !role_ids.contains(rid) {
                        role_ids.push(rid.clone());
                    }
                }
            }
        }
        if !custom && !role_ids.is_empty() {
            notes.push(format!(
                "role_not_managed: org role is {}, so custom roles are ignored",
                user.role
            ));
        }
        let roles: Vec<&RbacRole> = if custom {
            role_ids
                .iter()
                .filter_map(|r| self.roles().get(r))
                .collect()
        } else {
            Vec::new()
        };

        // Features: the known ones plus any a role names.
        let mut features: BTreeSet<String> = GA_FEATURES.iter().map(|f| (*f).to_owned()).collect();
        features.insert("computer_use".into());
        for r in &roles {
            if let Some(caps) = &r.capabilities {
                features.extend(caps.features.keys().cloned());
            }
        }
        let mut capabilities = BTreeMap::new();
        for f in features {
            let org_on = settings.feature_switch(&f) != Some(false);
            let granted = org_on && (!custom || roles.iter().any(|r| role_grants(r, &f)));
            capabilities.insert(f, granted);
        }

        let cap_mode = |mode: ToolMode| {
            if settings.connector_tools_default_always_allow {
                mode
            } else {
                mode.min(ToolMode::NeedsApproval)
            }
        };
        let connectors = settings
            .connectors
            .iter()
            .map(|c| {
                let tools = c
                    .tools
                    .iter()
                    .map(|t| {
                        let mode = if !c.enabled {
                            ToolMode::Deny
                        } else if custom {
                            roles
                                .iter()
                                .map(|r| role_tool_mode(r, &c.id, t))
                                .max()
                                .unwrap_or(ToolMode::Deny)
                        } else {
                            ToolMode::AlwaysAllow
                        };
                        (t.clone(), cap_mode(mode))
                    })
                    .collect();
                EffectiveConnector {
                    connector_id: c.id.clone(),
                    tools,
                }
            })
            .collect();

        let marketplace_on = settings.cowork_enabled && settings.skills_enabled;
        if !marketplace_on && !settings.plugins.is_empty() {
            notes.push("plugins_unavailable: the marketplace needs Cowork and Skills".into());
        }
        let plugins = settings
            .plugins
            .iter()
            .map(|p| {
                let applicable: Vec<&GroupOverride> = self
                    .plugin_overrides(&p.id)
                    .iter()
                    .filter(|o| groups.contains(&o.rbac_group_id))
                    .collect();
                let distinct: BTreeSet<Preference> =
                    applicable.iter().map(|o| o.preference).collect();
                let best = applicable.iter().max_by_key(|o| o.preference);
                let (preference, source) = match best {
                    Some(o) => (o.preference, o.rbac_group_id.clone()),
                    None => (p.org_preference, "org".to_owned()),
                };
                EffectivePlugin {
                    plugin_id: p.id.clone(),
                    preference: if marketplace_on {
                        preference
                    } else {
                        Preference::NotAvailable
                    },
                    source,
                    conflicting: distinct.len() > 1,
                }
            })
            .collect::<Vec<_>>();
        for p in plugins.iter().filter(|p| p.conflicting) {
            notes.push(format!(
                "multi_group_plugin_conflict: groups disagree on {}",
                p.plugin_id
            ));
        }

        let (limit, conflict) = self.resolve_spend(&user);
        if conflict {
            notes
                .push("multi_group_spend_conflict: the most permissive group limit applies".into());
        }
        let spend = limit.map(|l| EffectiveSpend {
            amount: l.amount.clone(),
            currency: l.currency.clone(),
            period: l.period.clone(),
            source: l.scope.clone(),
        });

        let pending_until = self
            .access_changed_at()
            .map(|t| t + Duration::seconds(PROPAGATION_SECS))
            .filter(|t| *t > now);

        Ok(EffectiveAccess {
            user_id: user.id.clone(),
            role: user.role.clone(),
            custom_roles_apply: custom,
            groups,
            roles: roles.iter().map(|r| r.id.clone()).collect(),
            capabilities,
            connectors,
            plugins,
            spend,
            notes,
            pending_until,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sim::state::NewMember;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap()
    }

    struct Fixture {
        s: SimState,
        user: String,
        g1: String,
        g2: String,
    }

    fn fixture(role: OrgRole) -> Fixture {
        let mut s = SimState::seeded(t0());
        let new = NewMember {
            email: "a@example.com".into(),
            name: None,
            role: Some(role),
            seat_tier: None,
        };
        let user = s.sim_add_member(&new, t0()).unwrap().id;
        let mk = |s: &mut SimState, name: &str| {
            s.create_group(
                &NewGroup {
                    name: name.into(),
                    ..NewGroup::default()
                },
                t0(),
            )
            .unwrap()
            .id
        };
        let g1 = mk(&mut s, "g1");
        let g2 = mk(&mut s, "g2");
        s.add_member(&g1, &user, t0()).unwrap();
        s.add_member(&g2, &user, t0()).unwrap();
        let r1 = s
            .create_role(
                &RoleSpec {
                    name: "r1".into(),
                    capabilities: serde_json::from_value(json!({"chat": true})).unwrap(),
                    connectors: serde_json::from_value(json!([
                        {"connector_id": "mcpsrv_github", "default_tool_mode": "needs_approval",
                         "tools": [{"tool_name": "create_issue", "mode": "deny"}]}
                    ]))
                    .unwrap(),
                    ..RoleSpec::default()
                },
                t0(),
            )
            .unwrap()
            .id;
        let r2 = s
            .create_role(
                &RoleSpec {
                    name: "r2".into(),
                    capabilities: serde_json::from_value(json!({"cowork": true})).unwrap(),
                    connectors: serde_json::from_value(json!([
                        {"connector_id": "mcpsrv_github", "default_tool_mode": "deny",
                         "tools": [{"tool_name": "search_code", "mode": "always_allow"}]}
                    ]))
                    .unwrap(),
                    ..RoleSpec::default()
                },
                t0(),
            )
            .unwrap()
            .id;
        s.set_group_roles(&g1, &[r1], t0()).unwrap();
        s.set_group_roles(&g2, &[r2], t0()).unwrap();
        Fixture { s, user, g1, g2 }
    }

    #[test]
    fn managed_members_get_the_union_of_their_groups_roles() {
        let f = fixture(OrgRole::Managed);
        let a = f.s.effective_access(&f.user, t0()).unwrap();
        assert!(a.custom_roles_apply);
        assert!(a.capabilities["chat"]);
        assert!(a.capabilities["cowork"]);
        assert!(!a.capabilities["claude_code"]);
        assert!(!a.capabilities["computer_use"]);
        let gh = a
            .connectors
            .iter()
            .find(|c| c.connector_id == "mcpsrv_github")
            .unwrap();
        assert_eq!(
            gh.tools["search_code"],
            ToolMode::AlwaysAllow,
            "most permissive wins"
        );
        assert_eq!(gh.tools["create_issue"], ToolMode::Deny);
        assert_eq!(gh.tools["create_pull_request"], ToolMode::NeedsApproval);
        let jira = a
            .connectors
            .iter()
            .find(|c| c.connector_id == "mcpsrv_jira")
            .unwrap();
        assert!(jira.tools.values().all(|m| *m == ToolMode::Deny));
        assert!(a.pending_until.is_some(), "changes take up to a minute");
        assert!(f
            .s
            .effective_access(&f.user, t0() + Duration::minutes(2))
            .unwrap()
            .pending_until
            .is_none());
    }

    #[test]
    fn built_in_roles_ignore_custom_roles_and_org_switches_win() {
        let mut f = fixture(OrgRole::User);
        let a = f.s.effective_access(&f.user, t0()).unwrap();
        assert!(!a.custom_roles_apply);
        assert!(a.roles.is_empty());
        assert!(a.notes.iter().any(|n| n.starts_with("role_not_managed")));
        assert!(a.capabilities["claude_code"]);
        f.s.patch_org(&json!({"settings": {"claude_code_enabled": false, "connector_tools_default_always_allow": false}}), t0())
            .unwrap();
        let a = f.s.effective_access(&f.user, t0()).unwrap();
        assert!(!a.capabilities["claude_code"]);
        let gh = a
            .connectors
            .iter()
            .find(|c| c.connector_id == "mcpsrv_github")
            .unwrap();
        assert_eq!(
            gh.tools["search_code"],
            ToolMode::NeedsApproval,
            "org cap applies"
        );
    }

    #[test]
    fn plugins_and_spend_take_the_most_permissive_group_value_with_a_warning() {
        let mut f = fixture(OrgRole::Managed);
        let overrides = PluginPolicyUpdate {
            org_preference: None,
            group_overrides: vec![
                GroupOverride {
                    rbac_group_id: f.g1.clone(),
                    preference: Preference::Required,
                },
                GroupOverride {
                    rbac_group_id: f.g2.clone(),
                    preference: Preference::NotAvailable,
                },
            ],
        };
        f.s.put_plugin_policy("finance-close", &overrides, t0())
            .unwrap();
        for (g, amount) in [(&f.g1, "5000"), (&f.g2, "9000")] {
            let req = SpendLimitRequest {
                scope: SpendScope::RbacGroup {
                    rbac_group_id: g.clone(),
                },
                period: None,
                amount: Some(amount.into()),
                currency: None,
            };
            f.s.upsert_spend_limit(&req, true, t0()).unwrap();
        }
        let a = f.s.effective_access(&f.user, t0()).unwrap();
        let fc = a
            .plugins
            .iter()
            .find(|p| p.plugin_id == "finance-close")
            .unwrap();
        assert_eq!(fc.preference, Preference::Required);
        assert!(fc.conflicting);
        let bk = a
            .plugins
            .iter()
            .find(|p| p.plugin_id == "brand-kit")
            .unwrap();
        assert_eq!(
            (bk.preference, bk.source.as_str()),
            (Preference::Available, "org")
        );
        let spend = a.spend.unwrap();
        assert_eq!(spend.amount.as_deref(), Some("9000"));
        assert!(a
            .notes
            .iter()
            .any(|n| n.starts_with("multi_group_spend_conflict")));
        let own = SpendLimitRequest {
            scope: SpendScope::User {
                user_id: f.user.clone(),
            },
            period: None,
            amount: Some("100".into()),
            currency: None,
        };
        f.s.upsert_spend_limit(&own, false, t0()).unwrap();
        let a = f.s.effective_access(&f.user, t0()).unwrap();
        assert_eq!(
            a.spend.unwrap().amount.as_deref(),
            Some("100"),
            "a user override wins"
        );
    }
}
