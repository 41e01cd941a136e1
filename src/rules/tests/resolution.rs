//! Resolution: one test per semantic (matching, nesting, unions, caps, spend, plugins, filters), explain and synthetic snapshots.

use super::*;

// ------------------------------------------------------------ resolution

const SEMANTICS: &str = r#"
[org]
plan = "enterprise"
billing_currency = "USD"
features = { cowork = true, chat = true, web_search = false, skills = true }
connectors = ["mcpsrv_github", "mcpsrv_jira"]
plugins = { brand-kit = "available", finance-close = "not_available", security = "not_available" }
connector_tools_default_always_allow = false

[roles.chat]
name = "Chat"
capabilities = { chat = true, web_search = true }
connectors = { mcpsrv_github = "needs_approval" }
admin_permissions = { billing = "view" }

[roles.cowork]
name = "Cowork"
capabilities = { cowork = true }
connectors = { mcpsrv_github = { default = "deny", tools = { create_issue = "always_allow" } } }
admin_permissions = { billing = "manage" }
plugins = { security = "installed_by_default" }
default_model = "claude-sonnet"

[roles.blanket]
name = "Everything GA"
capabilities = { all = "all_ga" }

[[rules]]
id = "chat"
priority = 10
match = { group = "Chat Users" }
group = { key = "chat", name = "Chat" }
roles = ["chat"]
spend = { monthly = 10000 }
plugins = { brand-kit = "required" }

[[rules]]
id = "cowork"
priority = 20
match = { group = "ext-gcw" }
group = { key = "cowork", name = "Cowork" }
roles = ["cowork"]
spend = { monthly = 50000 }
plugins = { brand-kit = "not_available", security = "available" }

[[rules]]
id = "unlimited"
match = { group = "gun" }
group = { key = "unlimited", name = "Unlimited" }
roles = ["blanket"]
spend = { monthly = "unlimited" }

[[rules]]
id = "finance"
match = { filter = 'department eq "Finance"' }
group = { key = "finance", name = "Finance" }
plugins = { finance-close = "required" }

[[rules]]
id = "off"
enabled = false
match = { group = "Chat Users" }
group = { key = "off", name = "Off" }
roles = ["blanket"]
"#;

fn semantics() -> (ValidRuleTable, Snapshot) {
    let t = load(SEMANTICS);
    let mut fin = user("fin");
    fin.attributes = json!({ "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Finance" } });
    let mut gone = user("gone");
    gone.active = false;
    let mut noemail = user("noemail");
    noemail.email = None;
    let snap = Snapshot {
        users: vec![
            user("alice"),
            user("bob"),
            user("carol"),
            user("dave"),
            fin,
            gone,
            noemail,
            user("loner"),
        ],
        groups: vec![
            group(
                "gch",
                "chat users",
                &["alice", "bob", "gone", "noemail"],
                &[],
            ),
            group("gcw", "Cowork", &["bob"], &["gnest"]),
            group("gnest", "Nested", &["carol"], &["gcycle"]),
            group("gcycle", "Cycle", &["dave"], &["gcw"]),
            group("gun", "Unlimited", &["carol"], &[]),
        ],
    };
    (t, snap)
}

fn access(t: &ValidRuleTable, s: &Snapshot, id: &str) -> EffectiveAccess {
    effective_access(t, s, id).unwrap()
}

#[test]
fn groups_match_by_display_name_external_id_or_id_and_nesting_is_flattened() {
    let (t, s) = semantics();
    let d = resolve(&t, &s);
    let members = |k: &str| d.groups[k].members.iter().cloned().collect::<Vec<_>>();
    assert_eq!(members("chat"), vec!["alice", "bob", "noemail"]);
    assert_eq!(members("cowork"), vec!["bob", "carol", "dave"]);
    assert_eq!(members("unlimited"), vec!["carol"]);
    assert_eq!(members("finance"), vec!["fin"]);
    assert!(
        !d.groups.contains_key("off"),
        "disabled rules define no group"
    );
    assert!(!d.managed_users.contains_key("loner"));
    assert_eq!(
        d.groups_of("bob").collect::<Vec<_>>(),
        vec!["chat", "cowork"]
    );
    assert_eq!(
        d.managed_users["bob"].email.as_deref(),
        Some("bob@example.com")
    );
}

#[test]
fn inactive_users_get_nothing_and_are_in_no_group() {
    let (t, s) = semantics();
    let d = resolve(&t, &s);
    assert!(d.groups.values().all(|g| !g.members.contains("gone")));
    assert!(!d.managed_users.contains_key("gone"));
    let a = access(&t, &s, "gone");
    assert!(!a.active && !a.governed && a.groups.is_empty());
    assert!(a.capabilities.values().all(|v| !v));
    assert!(a.plugins.is_empty());
    assert!(a
        .connectors
        .values()
        .all(|c| c.default == ConnectorMode::Deny));
}

#[test]
fn capabilities_are_the_union_over_roles_and_the_org_switch_wins() {
    let (t, s) = semantics();
    let bob = access(&t, &s, "bob");
    assert!(bob.capabilities["chat"], "from role chat");
    assert!(bob.capabilities["cowork"], "from role cowork");
    assert!(
        !bob.capabilities["web_search"],
        "off at org level wins over role chat"
    );
    assert!(!bob.capabilities["claude_code"]);
    let alice = access(&t, &s, "alice");
    assert!(alice.capabilities["chat"] && !alice.capabilities["cowork"]);
}

#[test]
fn blanket_all_ga_covers_ga_features_but_not_previews_or_org_switches() {
    let (t, s) = semantics();
    let carol = access(&t, &s, "carol");
    assert!(carol.capabilities["claude_code"]);
    assert!(carol.capabilities["code_execution"]);
    assert!(!carol.capabilities["fast_mode"], "not GA");
    assert!(!carol.capabilities["web_search"], "org switch off wins");
    assert!(!carol.capabilities.contains_key("skills"));
}

#[test]
fn connector_modes_take_the_most_permissive_role_capped_by_the_org() {
    let (t, s) = semantics();
    let bob = access(&t, &s, "bob");
    let gh = &bob.connectors["mcpsrv_github"];
    assert_eq!(
        gh.default,
        ConnectorMode::NeedsApproval,
        "chat role's default"
    );
    assert_eq!(
        gh.tools["create_issue"],
        ConnectorMode::NeedsApproval,
        "always_allow capped by connector_tools_default_always_allow = false"
    );
    assert_eq!(bob.connectors["mcpsrv_jira"].default, ConnectorMode::Deny);

    let uncapped = load(&SEMANTICS.replace(
        "connector_tools_default_always_allow = false",
        "connector_tools_default_always_allow = true",
    ));
    let bob = access(&uncapped, &s, "bob");
    assert_eq!(
        bob.connectors["mcpsrv_github"].tools["create_issue"],
        ConnectorMode::AlwaysAllow
    );
    let dave = access(&uncapped, &s, "dave");
    assert_eq!(
        dave.connectors["mcpsrv_github"].default,
        ConnectorMode::Deny,
        "cowork role lists only create_issue"
    );
}

#[test]
fn plugins_take_the_most_permissive_group_override_else_the_org_preference() {
    let (t, s) = semantics();
    let bob = access(&t, &s, "bob");
    assert_eq!(bob.plugins["brand-kit"], PluginPreference::Required);
    assert_eq!(
        bob.plugins["security"],
        PluginPreference::Available,
        "the rule's own setting beats its role's"
    );
    assert_eq!(bob.plugins["finance-close"], PluginPreference::NotAvailable);
    let loner = access(&t, &s, "loner");
    assert_eq!(loner.plugins["brand-kit"], PluginPreference::Available);
    let d = resolve(&t, &s);
    let w = d
        .warnings
        .iter()
        .find(|w| w.code == ResolutionWarningCode::PluginPreferenceConflict)
        .unwrap();
    assert!(w.user_ids.contains(&"bob".to_string()));
    assert!(w.message.contains("bob"));
    assert!(!w.message.contains("@example.com"), "no emails in warnings");
}

#[test]
fn spend_takes_the_most_permissive_limit_and_warns_when_groups_differ() {
    let (t, s) = semantics();
    assert_eq!(
        access(&t, &s, "bob").monthly_spend,
        Some(SpendLimit::Amount(50000)),
        "larger beats smaller"
    );
    assert_eq!(
        access(&t, &s, "carol").monthly_spend,
        Some(SpendLimit::Unlimited),
        "unlimited beats any amount"
    );
    assert_eq!(access(&t, &s, "fin").monthly_spend, None, "no group limit");
    let d = resolve(&t, &s);
    let spend: Vec<_> = d
        .warnings
        .iter()
        .filter(|w| w.code == ResolutionWarningCode::MultiGroupSpendConflict)
        .collect();
    assert_eq!(spend.len(), 2, "{spend:?}");
    assert!(spend.iter().any(|w| w.user_ids == vec!["bob"]));
    assert!(spend.iter().any(|w| w.user_ids == vec!["carol"]));
    assert!(spend.iter().all(|w| !w.message.contains("@")));
    let bob = spend.iter().find(|w| w.user_ids == vec!["bob"]).unwrap();
    assert!(
        bob.message
            .contains("the most permissive ($500.00) applies"),
        "money, not minor units: {}",
        bob.message
    );
    let text = explain(&t, &s, "bob").unwrap().to_string();
    assert!(
        text.contains("monthly spend: $500.00: the user's groups set different limits"),
        "{text}"
    );
    let json = serde_json::to_value(explain(&t, &s, "bob").unwrap()).unwrap();
    assert_eq!(
        json["access"]["monthly_spend"], 50000,
        "JSON keeps minor units"
    );
    assert_eq!(json["currency"], "USD");
}

#[test]
fn admin_permissions_and_default_models_come_from_the_roles() {
    let (t, s) = semantics();
    let bob = access(&t, &s, "bob");
    assert_eq!(bob.admin_permissions["billing"], AdminLevel::Manage);
    assert_eq!(
        bob.default_models,
        ["claude-sonnet".to_string()].into_iter().collect()
    );
}

#[test]
fn filter_rules_match_on_the_projected_enterprise_department() {
    let (t, s) = semantics();
    let fin = access(&t, &s, "fin");
    assert_eq!(
        fin.groups,
        ["finance".to_string()].into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(fin.plugins["finance-close"], PluginPreference::Required);
    let full = json!({
        "userName": "fin@example.com",
        "displayName": "Fin",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Finance", "costCenter": "1" }
    });
    let projected = t.project_user(&full);
    assert_eq!(
        projected,
        json!({ "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Finance" } })
    );
}

#[test]
fn filter_attributes_list_what_the_filters_read_and_the_projection_keeps_only_those() {
    let t = load(&file(
        r#"
[[rules]]
id = "a"
match = { filter = 'name.givenName sw "A" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq "7"' }
group = { key = "a", name = "A" }

[[rules]]
id = "b"
match = { filter = 'groups.display eq "Finance" or userName eq "b@example.com"' }
group = { key = "b", name = "B" }
"#,
    ));
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let want: BTreeSet<String> = [
        "groups".to_string(),
        "name".to_string(),
        "userName".to_string(),
        format!("{ent}:costCenter"),
    ]
    .into_iter()
    .collect();
    assert_eq!(t.filter_attributes(), &want);
    assert!(t
        .warnings()
        .iter()
        .any(|w| w.code == WarningCode::FilterOnGroups && w.subject == rule("b")));
    let full = json!({
        "id": "1", "userName": "b@example.com", "displayName": "B",
        "name": { "givenName": "Ann", "familyName": "B" },
        "emails": [{ "value": "b@example.com" }],
        ent: { "costCenter": "7", "department": "Sales" }
    });
    assert_eq!(
        t.project_user(&full),
        json!({
            "userName": "b@example.com",
            "name": { "givenName": "Ann", "familyName": "B" },
            ent: { "costCenter": "7" }
        })
    );
    let via_resource = crate::scim::resource::project(
        &crate::scim::SchemaRegistry::builtin().unwrap(),
        crate::scim::ResourceKind::User,
        &full,
        &t.projection(),
    );
    assert_eq!(via_resource["name"], full["name"]);
    assert_eq!(via_resource[ent], json!({ "costCenter": "7" }));
    let none = load(&file(""));
    assert!(none.filter_attributes().is_empty());
    assert_eq!(none.project_user(&full), json!({}));
}

#[test]
fn resolution_warns_about_unknown_groups_empty_rules_and_missing_emails() {
    let (t, s) = semantics();
    let mut s2 = s.clone();
    s2.groups.retain(|g| g.id != "gun");
    let d = resolve(&t, &s2);
    let codes: BTreeSet<_> = d.warnings.iter().map(|w| w.code).collect();
    assert!(codes.contains(&ResolutionWarningCode::RuleGroupNotFound));
    assert!(codes.contains(&ResolutionWarningCode::RuleMatchedNobody));
    let w = d
        .warnings
        .iter()
        .find(|w| w.code == ResolutionWarningCode::UserWithoutEmail)
        .unwrap();
    assert_eq!(w.user_ids, vec!["noemail"]);
}

#[test]
fn desired_state_carries_org_expectations_and_roles() {
    let (t, s) = semantics();
    let d = resolve(&t, &s);
    assert_eq!(d.roles.len(), 3);
    assert!(d.org.invites_allowed && d.org.org_roles_writable);
    assert_eq!(
        d.groups["chat"].monthly_spend,
        Some(SpendLimit::Amount(10000))
    );
    assert_eq!(
        d.groups["cowork"].plugins["security"],
        PluginPreference::Available
    );
    assert_eq!(d.org.plugins["brand-kit"], PluginPreference::Available);
}

#[test]
fn explain_names_the_rules_the_idp_group_chain_and_the_sources() {
    let (t, s) = semantics();
    let e = explain(&t, &s, "dave").unwrap();
    assert_eq!(e.matches.len(), 1);
    let m = &e.matches[0];
    assert_eq!(m.rule, "cowork");
    match &m.via {
        MatchVia::IdpGroup { matched, path } => {
            assert_eq!(matched, "ext-gcw");
            let ids: Vec<_> = path.iter().map(|g| g.id.as_str()).collect();
            assert_eq!(ids, vec!["gcw", "gnest", "gcycle"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let cowork = &e.capabilities["cowork"];
    assert_eq!(cowork.sources.len(), 1);
    assert_eq!(cowork.sources[0].group, "cowork");
    assert_eq!(cowork.sources[0].role.as_deref(), Some("cowork"));
    assert_eq!(cowork.sources[0].rules, vec!["cowork"]);
    assert!(e.capabilities["web_search"]
        .summary
        .contains("off at org level"));

    let e = explain(&t, &s, "fin").unwrap();
    assert!(matches!(&e.matches[0].via, MatchVia::Filter { filter } if filter.contains("Finance")));
    let text = explain(&t, &s, "bob").unwrap().to_string();
    assert!(text.contains("chat (priority 10) -> group chat"), "{text}");
    assert!(text.contains("most permissive"), "{text}");
    assert!(!text.contains("@example.com"), "{text}");
    assert!(explain(&t, &s, "nobody").is_none());
}

#[test]
fn users_in_no_rule_are_not_governed() {
    let (t, s) = semantics();
    let a = access(&t, &s, "loner");
    assert!(a.active && !a.governed);
    assert!(a.capabilities.values().all(|v| !v));
    assert!(a.notes[0].contains("no enabled rule"));
}

#[test]
fn synthetic_snapshots_resolve() {
    let (t, s) = synthetic_snapshot(2_000, 20, 200).unwrap();
    let d = resolve(&t, &s);
    assert_eq!(d.groups.len(), 25);
    assert!(d.managed_users.len() > 1_000);
    assert!(d
        .warnings
        .iter()
        .any(|w| w.code == ResolutionWarningCode::MultiGroupSpendConflict));
}
