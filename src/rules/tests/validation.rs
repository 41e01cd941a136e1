//! Validation: one failing rule file per rule of the product (R1-R19), and the file-level errors and warnings.

use super::*;

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
    let text = include_str!("../../../deploy/rules.example.toml");
    let t = load(text);
    assert_eq!(t.groups().len(), 3, "the disabled rule defines no group");
    assert_eq!(t.roles().len(), 3);
    assert!(t
        .filter_attributes()
        .iter()
        .any(|a| a.ends_with("department")));
}
