//! Tests of the rule layer: one failing file per validation rule, one test per
//! resolution semantic, explain, diff, serialization, and property tests for
//! determinism and revocation. This module holds the shared fixtures; each child
//! holds one family of tests.

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

mod properties;
mod resolution;
mod serialization;
mod validation;
