//! Tests of the rule layer: one failing file per validation rule, one test per
//! resolution semantic, explain, diff, serialization, and property tests for
//! determinism and revocation.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::json;

use super::*;

const ORG: &str = r#"
[org]
plan = "enterprise"
billing_currency = "USD"
features = { cowork = true, chat = true, skills = true }
connectors = ["mcpsrv_github", "mcpsrv_jira"]
plugins = ["finance-close", "brand-kit"]
"#;

const ROLE: &str = r#"
[roles.pilot]
name = "Pilot"
capabilities = { cowork = true }
"#;

fn file(rest: &str) -> String {
    format!("{ORG}{ROLE}{rest}")
}

fn errors(text: &str) -> Vec<RuleError> {
    match load_rule_file(text) {
        Ok(_) => panic!("expected the rule file to be rejected:\n{text}"),
        Err(e) => e,
    }
}

fn load(text: &str) -> ValidRuleTable {
    match load_rule_file(text) {
        Ok(t) => t,
        Err(e) => panic!(
            "expected a valid rule file, got:\n{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

#[track_caller]
fn assert_error(errs: &[RuleError], subject: Subject, field: &str, code: ErrorCode) {
    assert!(
        errs.iter()
            .any(|e| e.subject == subject && e.field == field && e.code == code),
        "no {code:?} error on {subject} field {field:?} in:\n{}",
        errs.iter()
            .map(|e| format!("{e} [{:?}]", e.code))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn rule(id: &str) -> Subject {
    Subject::Rule(id.into())
}

fn role(key: &str) -> Subject {
    Subject::Role(key.into())
}

// ------------------------------------------------------------ validation: product rules

#[test]
fn r1_team_plan_rejects_roles_rules_and_scim() {
    let text = r#"
[org]
plan = "team"
billing_currency = "USD"
provisioning_mode = "scim_permissive"
plugins = ["brand-kit"]

[roles.pilot]
name = "Pilot"

[[rules]]
id = "pilot"
match = { group = "Pilot" }
group = { key = "pilot", name = "Pilot" }
roles = ["pilot"]
spend = { monthly = 100 }
plugins = { brand-kit = "required" }
"#;
    let errs = errors(text);
    assert_error(&errs, role("pilot"), "", ErrorCode::PlanNotSupported);
    assert_error(&errs, rule("pilot"), "group", ErrorCode::PlanNotSupported);
    assert_error(
        &errs,
        Subject::Org,
        "provisioning_mode",
        ErrorCode::PlanNotSupported,
    );
}

#[test]
fn r1_team_plan_with_org_settings_only_is_valid_and_resolves_to_nothing() {
    let t = load(
        r#"
[org]
plan = "team"
billing_currency = "EUR"
plugins = ["brand-kit"]
"#,
    );
    let snap = Snapshot {
        users: vec![user("u1")],
        groups: vec![group("g1", "Pilot", &["u1"], &[])],
    };
    let d = resolve(&t, &snap);
    assert!(d.roles.is_empty() && d.groups.is_empty() && d.managed_users.is_empty());
}

#[test]
fn r3_advanced_provisioning_is_a_warning() {
    let text = file(
        r#"
[[rules]]
id = "pilot"
match = { group = "Pilot" }
group = { key = "pilot", name = "Pilot" }
roles = ["pilot"]
"#,
    )
    .replace(
        "plan = \"enterprise\"",
        "plan = \"enterprise\"\nprovisioning_mode = \"scim_advanced\"",
    );
    let t = load(&text);
    assert!(t
        .warnings()
        .iter()
        .any(|w| w.code == WarningCode::AdvancedProvisioning && w.subject == Subject::Org));
    let d = resolve(&t, &Snapshot::default());
    assert!(!d.org.org_roles_writable);
    assert!(!d.org.invites_allowed);
}

fn rules_with_groups(n: usize) -> String {
    let mut text = file("");
    for i in 0..n {
        text.push_str(&format!(
            "[[rules]]\nid = \"r{i}\"\nmatch = {{ group = \"G{i}\" }}\ngroup = {{ key = \"k{i}\", name = \"Group {i}\" }}\nroles = [\"pilot\"]\n"
        ));
    }
    text
}

#[test]
fn r6_more_than_100_groups_is_rejected_at_the_101st() {
    load(&rules_with_groups(100));
    let errs = errors(&rules_with_groups(101));
    assert_error(
        &errs,
        rule("r100"),
        "group.key",
        ErrorCode::GroupLimitExceeded,
    );
    assert_eq!(errs.len(), 1);
}

#[test]
fn r6_rules_sharing_a_group_count_once() {
    let mut text = rules_with_groups(100);
    text.push_str(
        "[[rules]]\nid = \"again\"\nmatch = { group = \"X\" }\ngroup = { key = \"k0\", name = \"Group 0\" }\nroles = [\"pilot\"]\n",
    );
    let t = load(&text);
    assert_eq!(t.groups().len(), 100);
    assert_eq!(
        t.groups()["k0"].rules,
        ["again", "r0"].iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn r7_group_names_must_be_1_to_255_characters() {
    let long = "x".repeat(256);
    let errs = errors(&file(&format!(
        r#"
[[rules]]
id = "empty"
match = {{ group = "A" }}
group = {{ key = "a", name = "" }}

[[rules]]
id = "long"
match = {{ group = "B" }}
group = {{ key = "b", name = "{long}" }}
"#
    )));
    assert_error(
        &errs,
        rule("empty"),
        "group.name",
        ErrorCode::InvalidGroupName,
    );
    assert_error(
        &errs,
        rule("long"),
        "group.name",
        ErrorCode::InvalidGroupName,
    );
    assert_eq!(ErrorCode::InvalidGroupName.product_rule(), Some("R7"));
}

#[test]
fn r7_one_group_key_with_different_settings_is_rejected() {
    let errs = errors(&file(
        r#"
[[rules]]
id = "a"
match = { group = "A" }
group = { key = "shared", name = "Shared" }
roles = ["pilot"]
spend = { monthly = 100 }

[[rules]]
id = "b"
match = { group = "B" }
group = { key = "shared", name = "Other name" }
spend = { monthly = 200 }
plugins = { brand-kit = "available" }
"#,
    ));
    assert_error(&errs, rule("b"), "group.name", ErrorCode::GroupConflict);
    assert_error(&errs, rule("b"), "roles", ErrorCode::GroupConflict);
    assert_error(&errs, rule("b"), "spend", ErrorCode::GroupConflict);
    assert_error(&errs, rule("b"), "plugins", ErrorCode::GroupConflict);
}

#[test]
fn r7_two_keys_with_one_name_is_a_warning() {
    let t = load(&file(
        r#"
[[rules]]
id = "a"
match = { group = "A" }
group = { key = "a", name = "Same" }

[[rules]]
id = "b"
match = { group = "B" }
group = { key = "b", name = "Same" }
"#,
    ));
    assert!(t
        .warnings()
        .iter()
        .any(|w| w.code == WarningCode::DuplicateGroupName && w.subject == rule("b")));
}

#[test]
fn r8_role_granting_a_feature_off_at_org_is_a_warning_and_the_org_wins() {
    let text = file(
        r#"
[[rules]]
id = "pilot"
match = { group = "Pilot" }
group = { key = "pilot", name = "Pilot" }
roles = ["pilot"]
"#,
    )
    .replace("cowork = true, chat", "cowork = false, chat")
    .replace("plugins = [\"finance-close\", \"brand-kit\"]", "");
    let t = load(&text);
    let w = t
        .warnings()
        .iter()
        .find(|w| w.code == WarningCode::FeatureDisabledAtOrg)
        .unwrap();
    assert_eq!(w.subject, role("pilot"));
    assert_eq!(w.field, "capabilities.cowork");
    let snap = Snapshot {
        users: vec![user("u1")],
        groups: vec![group("g1", "Pilot", &["u1"], &[])],
    };
    let a = effective_access(&t, &snap, "u1").unwrap();
    assert!(a.governed);
    assert!(!a.capabilities["cowork"]);
}

#[test]
fn r9_connector_not_enabled_at_org_is_rejected() {
    let errs = errors(&file(
        r#"
[roles.eng]
name = "Eng"
connectors = { mcpsrv_github = "needs_approval", mcpsrv_slack = "always_allow" }
"#,
    ));
    assert_error(
        &errs,
        role("eng"),
        "connectors.mcpsrv_slack",
        ErrorCode::ConnectorNotInOrg,
    );
    assert_eq!(errs.len(), 1);
}

#[test]
fn r9_connector_permissions_on_a_rule_are_rejected() {
    let errs = errors(&file(
        r#"
[[rules]]
id = "pilot"
match = { group = "Pilot" }
group = { key = "pilot", name = "Pilot" }
connectors = { mcpsrv_github = "always_allow" }
"#,
    ));
    assert_error(
        &errs,
        rule("pilot"),
        "connectors",
        ErrorCode::ConnectorScopeRequiresRole,
    );
}

#[test]
fn r10_skills_settings_on_a_role_or_rule_are_rejected() {
    let errs = errors(&file(
        r#"
[roles.eng]
name = "Eng"
capabilities = { skills = true, skill_sharing = false }

[[rules]]
id = "pilot"
match = { group = "Pilot" }
group = { key = "pilot", name = "Pilot" }
skills = true
"#,
    ));
    assert_error(
        &errs,
        role("eng"),
        "capabilities.skills",
        ErrorCode::OrgLevelSetting,
    );
    assert_error(
        &errs,
        role("eng"),
        "capabilities.skill_sharing",
        ErrorCode::OrgLevelSetting,
    );
    assert_error(&errs, rule("pilot"), "skills", ErrorCode::OrgLevelSetting);
}

#[test]
fn r11_computer_use_is_rejected_at_org_and_on_roles() {
    let errs = errors(
        &file(
            r#"
[roles.eng]
name = "Eng"
capabilities = { computer_use = true }
"#,
        )
        .replace("skills = true", "skills = true, computer_use = true"),
    );
    assert_error(
        &errs,
        Subject::Org,
        "features.computer_use",
        ErrorCode::ComputerUseNotAvailable,
    );
    assert_error(
        &errs,
        role("eng"),
        "capabilities.computer_use",
        ErrorCode::ComputerUseNotAvailable,
    );
}

#[test]
fn r11_computer_use_false_is_fine() {
    load(&file("").replace("skills = true", "skills = true, computer_use = false"));
}

fn spend_rule(spend: &str) -> String {
    file(&format!(
        r#"
[[rules]]
id = "pilot"
match = {{ group = "Pilot" }}
group = {{ key = "pilot", name = "Pilot" }}
spend = {spend}
"#
    ))
}

#[test]
fn r12_non_monthly_periods_tokens_and_bad_amounts_are_rejected() {
    let cases: &[(&str, &str, ErrorCode)] = &[
        (
            "{ weekly = 100 }",
            "spend.weekly",
            ErrorCode::UnsupportedPeriod,
        ),
        (
            "{ daily = 100 }",
            "spend.daily",
            ErrorCode::UnsupportedPeriod,
        ),
        (
            "{ tokens = 100000 }",
            "spend.tokens",
            ErrorCode::UnsupportedUnit,
        ),
        (
            "{ monthly = 12.5 }",
            "spend.monthly",
            ErrorCode::InvalidAmount,
        ),
        (
            "{ monthly = -1 }",
            "spend.monthly",
            ErrorCode::InvalidAmount,
        ),
        (
            "{ monthly = \"500\" }",
            "spend.monthly",
            ErrorCode::InvalidAmount,
        ),
        (
            "{ monthly = 100, currency = \"EUR\" }",
            "spend.currency",
            ErrorCode::CurrencyMismatch,
        ),
        (
            "{ currency = \"USD\" }",
            "spend.monthly",
            ErrorCode::MissingField,
        ),
        (
            "{ monthly = true }",
            "spend.monthly",
            ErrorCode::InvalidValue,
        ),
        (
            "{ monthly = 1, yearly = 5 }",
            "spend.yearly",
            ErrorCode::UnknownField,
        ),
    ];
    for (spend, field, code) in cases {
        let errs = errors(&spend_rule(spend));
        assert_error(&errs, rule("pilot"), field, *code);
    }
    let e = &errors(&spend_rule("{ monthly = 12.5 }"))[0];
    assert_eq!(
        e.to_string(),
        r#"rule "pilot": field "spend.monthly": must be a whole number of minor currency units"#
    );
    assert_eq!(e.code.product_rule(), Some("R12"));
}

#[test]
fn r12_whole_amounts_zero_and_unlimited_are_accepted() {
    for spend in [
        "{ monthly = 50000 }",
        "{ monthly = 0 }",
        "{ monthly = \"unlimited\" }",
        "{ monthly = 1, currency = \"USD\" }",
    ] {
        load(&spend_rule(spend));
    }
}

#[test]
fn r16_plugin_settings_need_cowork_and_skills_on() {
    let text = file(
        r#"
[roles.eng]
name = "Eng"
plugins = { brand-kit = "available" }

[[rules]]
id = "pilot"
match = { group = "Pilot" }
group = { key = "pilot", name = "Pilot" }
roles = ["eng"]
plugins = { brand-kit = "required" }
"#,
    )
    .replace("skills = true", "skills = false");
    let errs = errors(&text);
    assert_error(
        &errs,
        Subject::Org,
        "plugins",
        ErrorCode::FeatureDisabledAtOrg,
    );
    assert_error(
        &errs,
        role("eng"),
        "plugins",
        ErrorCode::FeatureDisabledAtOrg,
    );
    assert_error(
        &errs,
        rule("pilot"),
        "plugins",
        ErrorCode::FeatureDisabledAtOrg,
    );
}

#[test]
fn r16_plugins_not_in_the_org_are_rejected() {
    let errs = errors(&file(
        r#"
[roles.eng]
name = "Eng"
plugins = { nope = "available" }

[[rules]]
id = "pilot"
match = { group = "Pilot" }
group = { key = "pilot", name = "Pilot" }
plugins = { other = "required" }
"#,
    ));
    assert_error(
        &errs,
        role("eng"),
        "plugins.nope",
        ErrorCode::PluginNotInOrg,
    );
    assert_error(
        &errs,
        rule("pilot"),
        "plugins.other",
        ErrorCode::PluginNotInOrg,
    );
}

#[test]
fn r19_spend_with_usage_credits_off_is_rejected() {
    let text = spend_rule("{ monthly = 100 }").replace(
        "billing_currency = \"USD\"",
        "billing_currency = \"USD\"\nusage_credits = false",
    );
    let errs = errors(&text);
    assert_error(&errs, rule("pilot"), "spend", ErrorCode::UsageCreditsOff);
    assert_eq!(ErrorCode::UsageCreditsOff.product_rule(), Some("R19"));
}

// ------------------------------------------------------------ validation: structure

#[test]
fn unknown_roles_and_duplicate_rule_ids_are_rejected() {
    let errs = errors(&file(
        r#"
[[rules]]
id = "a"
match = { group = "A" }
group = { key = "a", name = "A" }
roles = ["pilot", "ghost"]

[[rules]]
id = "a"
match = { group = "B" }
group = { key = "b", name = "B" }
"#,
    ));
    assert_error(&errs, rule("a"), "roles", ErrorCode::UnknownRole);
    assert_error(&errs, rule("a"), "id", ErrorCode::DuplicateRuleId);
}

#[test]
fn match_needs_exactly_one_of_group_and_filter() {
    let errs = errors(&file(
        r#"
[[rules]]
id = "both"
match = { group = "A", filter = 'userName eq "a@example.com"' }
group = { key = "a", name = "A" }

[[rules]]
id = "neither"
match = {}
group = { key = "b", name = "B" }
"#,
    ));
    assert_error(&errs, rule("both"), "match", ErrorCode::InvalidMatch);
    assert_error(&errs, rule("neither"), "match", ErrorCode::InvalidMatch);
}

#[test]
fn invalid_scim_filters_are_rejected() {
    let errs = errors(&file(
        r#"
[[rules]]
id = "bad-op"
match = { filter = 'department zz "Finance"' }
group = { key = "a", name = "A" }

[[rules]]
id = "bad-attr"
match = { filter = 'nosuchattribute eq "x"' }
group = { key = "b", name = "B" }
"#,
    ));
    assert_error(
        &errs,
        rule("bad-op"),
        "match.filter",
        ErrorCode::InvalidFilter,
    );
    assert_error(
        &errs,
        rule("bad-attr"),
        "match.filter",
        ErrorCode::InvalidFilter,
    );
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let errs = errors(&file(
        r#"
[[rules]]
id = "a"
prio = 3
match = { group = "A" }
group = { key = "a", name = "A" }

[[rules]]
id = "b"
match = { grp = "B" }
group = { key = "b", name = "B" }

[roles.eng]
name = "Eng"
connectors = { mcpsrv_github = { default = "deny", tool = {} } }

[extra]
x = 1
"#,
    ));
    assert_error(&errs, rule("a"), "prio", ErrorCode::UnknownField);
    assert_error(&errs, rule("b"), "match.grp", ErrorCode::UnknownField);
    assert_error(
        &errs,
        role("eng"),
        "connectors.mcpsrv_github.tool",
        ErrorCode::UnknownField,
    );
    assert_error(&errs, Subject::File, "extra", ErrorCode::UnknownField);
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    let errs = errors(&file(
        r#"
[[rules]]
id = "a"
match = { group = "A" }
group = { key = "a" }

[[rules]]
match = { group = "B" }
group = { key = "b", name = "B" }

[[rules]]
id = "c"
priority = "high"
match = { group = "C" }
group = { key = "c", name = "C" }
"#,
    ));
    assert_error(&errs, rule("a"), "group.name", ErrorCode::MissingField);
    assert_error(&errs, Subject::RuleAt(2), "id", ErrorCode::MissingField);
    assert_error(&errs, rule("c"), "priority", ErrorCode::InvalidValue);
}

#[test]
fn all_errors_are_collected_not_just_the_first() {
    let errs = errors(&file(
        r#"
[roles.eng]
name = ""
capabilities = { skills = true }

[[rules]]
id = "a"
match = { group = "A" }
group = { key = "a", name = "" }
spend = { weekly = 1 }

[[rules]]
id = "b"
match = { group = "B" }
group = { key = "b", name = "B" }
roles = ["ghost"]
"#,
    ));
    assert!(errs.len() >= 5, "{errs:?}");
    assert_error(&errs, role("eng"), "name", ErrorCode::InvalidValue);
    assert_error(
        &errs,
        rule("a"),
        "spend.weekly",
        ErrorCode::UnsupportedPeriod,
    );
    assert_error(&errs, rule("b"), "roles", ErrorCode::UnknownRole);
}

#[test]
fn a_role_that_fails_to_parse_is_not_also_reported_unknown() {
    let errs = errors(&file(
        r#"
[roles.eng]
name = "Eng"
colour = "blue"

[[rules]]
id = "a"
match = { group = "A" }
group = { key = "a", name = "A" }
roles = ["eng"]
"#,
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_error(&errs, role("eng"), "colour", ErrorCode::UnknownField);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let errs = errors("[org]\nplan = \n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].code, ErrorCode::Syntax);
    assert!(errs[0].message.contains("line 2"), "{}", errs[0]);
}

#[test]
fn a_missing_org_table_is_reported() {
    let errs = errors("[roles.x]\nname = \"X\"\n");
    assert_error(&errs, Subject::File, "org", ErrorCode::MissingField);
}

#[test]
fn billing_currency_must_be_an_iso_code() {
    let errs = errors(&file("").replace("\"USD\"", "\"dollars\""));
    assert_error(
        &errs,
        Subject::Org,
        "billing_currency",
        ErrorCode::InvalidCurrency,
    );
}

#[test]
fn unknown_features_and_unused_roles_are_warnings() {
    let t = load(&file(
        r#"
[roles.eng]
name = "Eng"
capabilities = { cowrk = true }
"#,
    ));
    assert!(t
        .warnings()
        .iter()
        .any(|w| w.code == WarningCode::UnknownFeature && w.field == "capabilities.cowrk"));
    assert!(t
        .warnings()
        .iter()
        .any(|w| w.code == WarningCode::UnusedRole && w.subject == role("eng")));
}

#[test]
fn always_allow_under_the_org_cap_is_a_warning() {
    let t = load(&file(
        r#"
[roles.eng]
name = "Eng"
connectors = { mcpsrv_github = "always_allow" }
"#,
    ));
    assert!(t
        .warnings()
        .iter()
        .any(|w| w.code == WarningCode::ConnectorModeCapped));
}

#[test]
fn the_example_rule_file_is_valid() {
    let text = include_str!("../../deploy/rules.example.toml");
    let t = load(text);
    assert_eq!(t.groups().len(), 3, "the disabled rule defines no group");
    assert_eq!(t.roles().len(), 3);
    assert!(t
        .filter_attributes()
        .iter()
        .any(|a| a.ends_with("department")));
}

// ------------------------------------------------------------ serialization and diff

#[test]
fn a_table_round_trips_through_json_and_revalidates() {
    let t = load(include_str!("../../deploy/rules.example.toml"));
    let json = serde_json::to_string(&t).unwrap();
    let back: ValidRuleTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    assert_eq!(back.groups(), t.groups());

    let mut bad: serde_json::Value = serde_json::from_str(&json).unwrap();
    bad["org"]["features"]["computer_use"] = json!(true);
    let err = serde_json::from_value::<ValidRuleTable>(bad).unwrap_err();
    assert!(err.to_string().contains("Computer Use"), "{err}");
}

#[test]
fn a_table_round_trips_through_toml() {
    let t = load(include_str!("../../deploy/rules.example.toml"));
    let text = t.to_toml().unwrap();
    assert_eq!(load(&text), t);
    assert!(diff(&t, &load(&text)).is_empty());
}

#[test]
fn diff_names_added_removed_and_changed_rules_roles_and_org_fields() {
    let old = load(&file(
        r#"
[[rules]]
id = "a"
match = { group = "A" }
group = { key = "a", name = "A" }
roles = ["pilot"]

[[rules]]
id = "b"
match = { group = "B" }
group = { key = "b", name = "B" }
"#,
    ));
    let new = load(
        &file(
            r#"
[roles.eng]
name = "Eng"

[[rules]]
id = "c"
match = { group = "C" }
group = { key = "c", name = "C" }
roles = ["eng"]

[[rules]]
id = "a"
match = { group = "A" }
group = { key = "a", name = "A" }
roles = ["pilot"]
spend = { monthly = 100 }
"#,
        )
        .replace("billing_currency = \"USD\"", "billing_currency = \"EUR\""),
    );
    let d = diff(&old, &new);
    assert_eq!(d.org_changed, vec!["billing_currency"]);
    assert_eq!(d.roles_added, vec!["eng"]);
    assert_eq!(d.rules_added, vec!["c"]);
    assert_eq!(d.rules_removed, vec!["b"]);
    assert_eq!(d.rules_changed["a"], vec!["spend"]);
    assert!(d.to_string().contains("rules changed: a (spend)"));
    assert!(diff(&old, &old).is_empty());
}

// ------------------------------------------------------------ resolution

fn user(id: &str) -> SnapshotUser {
    SnapshotUser {
        id: id.into(),
        user_name: format!("{id}@example.com"),
        active: true,
        email: Some(format!("{id}@example.com")),
        attributes: json!({}),
    }
}

fn group(id: &str, name: &str, users: &[&str], nested: &[&str]) -> SnapshotGroup {
    SnapshotGroup {
        id: id.into(),
        external_id: Some(format!("ext-{id}")),
        display_name: name.into(),
        member_users: users.iter().map(|s| s.to_string()).collect(),
        member_groups: nested.iter().map(|s| s.to_string()).collect(),
    }
}

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

// ------------------------------------------------------------ properties

/// Users (active, department), groups (member users, nested groups), rules (target, preference, role).
type World = (
    Vec<(bool, u8)>,
    Vec<(Vec<usize>, Vec<usize>)>,
    Vec<(u8, u8, u8)>,
);

/// A random directory of up to 12 users and 6 groups (nesting with cycles allowed) and a
/// table whose rules match groups by display name, id or externalId, or a department.
fn arb_world() -> impl Strategy<Value = World> {
    (
        prop::collection::vec((any::<bool>(), 0u8..3), 1..12),
        prop::collection::vec(
            (
                prop::collection::vec(0usize..12, 0..6),
                prop::collection::vec(0usize..6, 0..3),
            ),
            1..6,
        ),
        prop::collection::vec((0u8..8, 0u8..4, 0u8..3), 1..7),
    )
}

fn world_table(rules: &[(u8, u8, u8)]) -> String {
    let mut text = String::from(
        r#"
[org]
plan = "enterprise"
billing_currency = "USD"
features = { cowork = true, skills = true }
connectors = ["mcpsrv_github"]
plugins = ["p"]
connector_tools_default_always_allow = true

[roles.r0]
name = "R0"
capabilities = { chat = true }
connectors = { mcpsrv_github = "needs_approval" }
[roles.r1]
name = "R1"
capabilities = { cowork = true }
connectors = { mcpsrv_github = "always_allow" }
[roles.r2]
name = "R2"
capabilities = { all = "all" }
"#,
    );
    let prefs = [
        "not_available",
        "available",
        "installed_by_default",
        "required",
    ];
    for (i, (target, pref, rl)) in rules.iter().enumerate() {
        let matcher = match target % 8 {
            6 => format!("filter = 'department eq \"D{}\"'", rl),
            7 => format!("group = \"ext-g{}\"", rl),
            n => format!("group = \"GROUP {n}\""),
        };
        // One downstream group per rule, so shared keys never conflict (R7).
        text.push_str(&format!(
            "[[rules]]\nid = \"rule{i}\"\npriority = {}\nmatch = {{ {matcher} }}\ngroup = {{ key = \"k{i}\", name = \"K{i}\" }}\nroles = [\"r{rl}\"]\nspend = {{ monthly = {} }}\nplugins = {{ p = \"{}\" }}\n",
            i % 3,
            1000 * (*pref as u64 + 1),
            prefs[*pref as usize]
        ));
    }
    text
}

fn world(users: &[(bool, u8)], groups: &[(Vec<usize>, Vec<usize>)]) -> Snapshot {
    Snapshot {
        users: users
            .iter()
            .enumerate()
            .map(|(i, (active, dept))| SnapshotUser {
                id: format!("u{i}"),
                user_name: format!("u{i}@example.com"),
                active: *active,
                email: Some(format!("u{i}@example.com")),
                attributes: json!({ "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": format!("D{dept}") } }),
            })
            .collect(),
        groups: groups
            .iter()
            .enumerate()
            .map(|(j, (members, nested))| SnapshotGroup {
                id: format!("g{j}"),
                external_id: Some(format!("ext-g{j}")),
                display_name: format!("Group {j}"),
                member_users: members
                    .iter()
                    .filter(|m| **m < users.len())
                    .map(|m| format!("u{m}"))
                    .collect(),
                member_groups: nested
                    .iter()
                    .filter(|n| **n < groups.len())
                    .map(|n| format!("g{n}"))
                    .collect(),
            })
            .collect(),
    }
}

fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn resolution_is_independent_of_input_order((users, groups, rules) in arb_world(), seed in any::<u64>()) {
        let table = load(&world_table(&rules));
        let snap = world(&users, &groups);
        let expected = resolve(&table, &snap);

        let mut file = table.file().clone();
        file.rules = shuffled(&file.rules, seed);
        let table2 = validate(file).unwrap();
        let mut snap2 = snap.clone();
        snap2.users = shuffled(&snap2.users, seed.rotate_left(7));
        snap2.groups = shuffled(&snap2.groups, seed.rotate_left(13));
        for (i, g) in snap2.groups.iter_mut().enumerate() {
            g.member_users = shuffled(&g.member_users, seed ^ i as u64);
            g.member_groups = shuffled(&g.member_groups, seed.rotate_right(3) ^ i as u64);
        }
        let again = resolve(&table2, &snap2);
        prop_assert_eq!(&again, &expected);
        for u in &snap.users {
            prop_assert_eq!(explain(&table2, &snap2, &u.id), explain(&table, &snap, &u.id));
        }
    }

    #[test]
    fn explain_agrees_with_resolution((users, groups, rules) in arb_world()) {
        let table = load(&world_table(&rules));
        let snap = world(&users, &groups);
        let desired = resolve(&table, &snap);
        for u in &snap.users {
            let a = effective_access(&table, &snap, &u.id).unwrap();
            let in_groups: BTreeSet<String> = desired
                .groups
                .values()
                .filter(|g| g.members.contains(&u.id))
                .map(|g| g.key.clone())
                .collect();
            prop_assert_eq!(&a.groups, &in_groups);
            prop_assert_eq!(a.governed, desired.managed_users.contains_key(&u.id));
            if !u.active {
                prop_assert!(!a.governed);
            }
        }
    }

    #[test]
    fn removing_a_user_from_every_matching_idp_group_removes_every_grant(
        (users, groups, rules) in arb_world(),
        pick in any::<prop::sample::Index>(),
    ) {
        // Group rules only: filters match on attributes, not on IdP groups.
        let rules: Vec<_> = rules.into_iter().filter(|r| r.0 % 8 != 6).collect();
        prop_assume!(!rules.is_empty());
        let table = load(&world_table(&rules));
        let mut snap = world(&users, &groups);
        let victim = snap.users[pick.index(snap.users.len())].id.clone();
        for g in &mut snap.groups {
            g.member_users.retain(|m| *m != victim);
        }
        let desired = resolve(&table, &snap);
        prop_assert!(desired.groups.values().all(|g| !g.members.contains(&victim)));
        prop_assert!(!desired.managed_users.contains_key(&victim));
        let a = effective_access(&table, &snap, &victim).unwrap();
        prop_assert!(!a.governed);
        prop_assert!(a.roles.is_empty());
        prop_assert!(a.capabilities.values().all(|v| !v));
        prop_assert!(a.connectors.values().all(|c| c.default == ConnectorMode::Deny && c.tools.is_empty()));
        prop_assert_eq!(a.monthly_spend, None);
        prop_assert!(a.admin_permissions.is_empty());
    }

    #[test]
    fn a_team_plan_table_never_yields_roles(with_role in any::<bool>(), with_rule in any::<bool>(), (users, groups, _) in arb_world()) {
        let mut text = String::from("[org]\nplan = \"team\"\nbilling_currency = \"USD\"\n");
        if with_role {
            text.push_str("[roles.r]\nname = \"R\"\n");
        }
        if with_rule {
            text.push_str("[[rules]]\nid = \"a\"\nmatch = { group = \"Group 0\" }\ngroup = { key = \"a\", name = \"A\" }\n");
        }
        match load_rule_file(&text) {
            Ok(table) => {
                prop_assert!(!with_role && !with_rule);
                let d = resolve(&table, &world(&users, &groups));
                prop_assert!(d.roles.is_empty());
                prop_assert!(d.groups.is_empty());
                prop_assert!(d.managed_users.is_empty());
            }
            Err(errs) => {
                prop_assert!(with_role || with_rule);
                prop_assert!(errs.iter().all(|e| e.code == ErrorCode::PlanNotSupported));
            }
        }
    }
}
