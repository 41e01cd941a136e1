//! Synthetic directories and rule tables for benchmarks and scale tests (`bench/` calls
//! [`synthetic_snapshot`]). Fake data only (example.com). Pure.

use std::collections::BTreeMap;

use serde_json::json;

use super::error::RuleError;
use super::model::{
    Capabilities, ConnectorMode, ConnectorSpec, GroupSpec, MatchSpec, OrgPlugins, OrgSpec, Plan,
    PluginPreference, ProvisioningMode, RoleSpec, RuleFile, RuleSpec, SpendAmount, SpendSpec,
};
use super::resolve::{Snapshot, SnapshotGroup, SnapshotUser};
use super::validate::{validate, ValidRuleTable, MAX_GROUPS};
use crate::scim::schema::ENTERPRISE_USER_SCHEMA;

const FILTER_RULES: usize = 5;
const DEPARTMENTS: usize = 20;
const ROLES: usize = 5;

/// A directory of `users` users (2% inactive, each in one of 20 departments) and
/// `groups` IdP groups of `members_per_group` consecutive users each (every tenth group
/// nests the next one), with a rule table of up to 95 group rules (one per IdP group),
/// 5 department filter rules, 5 roles, spend limits and plugin overrides that conflict
/// for users in several groups.
#[doc(hidden)]
pub fn synthetic_snapshot(
    users: usize,
    groups: usize,
    members_per_group: usize,
) -> Result<(ValidRuleTable, Snapshot), Vec<RuleError>> {
    let snapshot_users = (0..users)
        .map(|i| SnapshotUser {
            id: format!("u{i:08}"),
            user_name: format!("user{i}@example.com"),
            active: i % 50 != 49,
            email: Some(format!("user{i}@example.com")),
            attributes: json!({ ENTERPRISE_USER_SCHEMA: { "department": format!("Dept{}", i % DEPARTMENTS) } }),
        })
        .collect();
    let stride = if groups == 0 {
        0
    } else {
        users / groups.max(1)
    };
    let snapshot_groups = (0..groups)
        .map(|j| SnapshotGroup {
            id: format!("g{j:06}"),
            external_id: Some(format!("ext-{j}")),
            display_name: format!("Group {j}"),
            member_users: (0..members_per_group.min(users))
                .map(|k| format!("u{:08}", (j * stride + k) % users.max(1)))
                .collect(),
            member_groups: if j % 10 == 0 && j + 1 < groups {
                vec![format!("g{:06}", j + 1)]
            } else {
                Vec::new()
            },
        })
        .collect();

    let roles = (0..ROLES)
        .map(|r| {
            let mut features = BTreeMap::new();
            features.insert("chat".to_string(), true);
            features.insert("cowork".to_string(), r % 2 == 0);
            features.insert("claude_code".to_string(), r % 3 == 0);
            let mut connectors = BTreeMap::new();
            connectors.insert(
                "mcpsrv_github".to_string(),
                ConnectorSpec::Mode(if r % 2 == 0 {
                    ConnectorMode::NeedsApproval
                } else {
                    ConnectorMode::AlwaysAllow
                }),
            );
            (
                format!("role-{r}"),
                RoleSpec {
                    name: format!("Role {r}"),
                    description: None,
                    capabilities: Capabilities {
                        all: None,
                        features,
                    },
                    connectors,
                    plugins: BTreeMap::new(),
                    admin_permissions: BTreeMap::new(),
                    default_model: None,
                },
            )
        })
        .collect();
    let rule = |id: String, matcher: MatchSpec, i: usize| RuleSpec {
        id: id.clone(),
        priority: (i % 7) as i64,
        enabled: true,
        matcher,
        group: GroupSpec {
            key: id.clone(),
            name: id,
            description: None,
        },
        roles: vec![format!("role-{}", i % ROLES)],
        pool: None,
        spend: Some(SpendSpec {
            monthly: Some(if i % 4 == 3 {
                SpendAmount::Text("unlimited".into())
            } else {
                SpendAmount::Minor(10_000 * (1 + (i % 3) as i64))
            }),
            ..SpendSpec::default()
        }),
        plugins: [(
            "brand-kit".to_string(),
            if i % 2 == 0 {
                PluginPreference::Available
            } else {
                PluginPreference::Required
            },
        )]
        .into_iter()
        .collect(),
    };
    let group_rules = groups.min(MAX_GROUPS - FILTER_RULES);
    let mut rules: Vec<RuleSpec> = (0..group_rules)
        .map(|i| {
            let matcher = MatchSpec {
                group: Some(format!("Group {i}")),
                filter: None,
            };
            rule(format!("grp-{i}"), matcher, i)
        })
        .collect();
    rules.extend((0..FILTER_RULES).map(|k| {
        let matcher = MatchSpec {
            group: None,
            filter: Some(format!("department eq \"Dept{k}\"")),
        };
        rule(format!("dept-{k}"), matcher, k)
    }));
    let file = RuleFile {
        org: OrgSpec {
            plan: Plan::Enterprise,
            billing_currency: "USD".into(),
            features: [("cowork".to_string(), true), ("skills".to_string(), true)]
                .into_iter()
                .collect(),
            connectors: ["mcpsrv_github".to_string()].into_iter().collect(),
            plugins: OrgPlugins(
                [("brand-kit".to_string(), PluginPreference::NotAvailable)]
                    .into_iter()
                    .collect(),
            ),
            provisioning_mode: ProvisioningMode::Manual,
            usage_credits: true,
            connector_tools_default_always_allow: true,
        },
        roles,
        rules,
    };
    let table = validate(file)?;
    Ok((
        table,
        Snapshot {
            users: snapshot_users,
            groups: snapshot_groups,
        },
    ))
}
