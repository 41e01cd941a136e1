//! Serialization and diff: round trips through JSON and TOML, and what a diff names.

use super::*;

// ------------------------------------------------------------ serialization and diff

#[test]
fn a_table_round_trips_through_json_and_revalidates() {
    let t = load(include_str!("../../../deploy/rules.example.toml"));
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
    let t = load(include_str!("../../../deploy/rules.example.toml"));
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
