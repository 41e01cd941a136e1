//! What changed between two rule tables: org fields, roles and rules added, removed or
//! changed (with the changed fields), for the audit trail and for
//! `PUT /admin/v1/rules?dry_run=true`. Rules and roles are compared by id and key, so
//! reordering a file is not a change. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::model::{RoleSpec, RuleSpec};
use super::validate::ValidRuleTable;

/// A summary of the differences between two rule tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleTableDiff {
    /// `[org]` keys whose value changed.
    pub org_changed: Vec<String>,
    /// Role keys only in the new table.
    pub roles_added: Vec<String>,
    /// Role keys only in the old table.
    pub roles_removed: Vec<String>,
    /// Role key to the fields that changed.
    pub roles_changed: BTreeMap<String, Vec<String>>,
    /// Rule ids only in the new table.
    pub rules_added: Vec<String>,
    /// Rule ids only in the old table.
    pub rules_removed: Vec<String>,
    /// Rule id to the fields that changed.
    pub rules_changed: BTreeMap<String, Vec<String>>,
}

impl RuleTableDiff {
    /// Whether the tables are equivalent.
    pub fn is_empty(&self) -> bool {
        self.org_changed.is_empty()
            && self.roles_added.is_empty()
            && self.roles_removed.is_empty()
            && self.roles_changed.is_empty()
            && self.rules_added.is_empty()
            && self.rules_removed.is_empty()
            && self.rules_changed.is_empty()
    }
}

impl fmt::Display for RuleTableDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no changes");
        }
        let mut parts = Vec::new();
        if !self.org_changed.is_empty() {
            parts.push(format!("org changed ({})", self.org_changed.join(", ")));
        }
        let changed = |m: &BTreeMap<String, Vec<String>>| {
            m.iter()
                .map(|(k, fields)| format!("{k} ({})", fields.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (what, added, removed, changes) in [
            (
                "role",
                &self.roles_added,
                &self.roles_removed,
                &self.roles_changed,
            ),
            (
                "rule",
                &self.rules_added,
                &self.rules_removed,
                &self.rules_changed,
            ),
        ] {
            if !added.is_empty() {
                parts.push(format!("{what}s added: {}", added.join(", ")));
            }
            if !removed.is_empty() {
                parts.push(format!("{what}s removed: {}", removed.join(", ")));
            }
            if !changes.is_empty() {
                parts.push(format!("{what}s changed: {}", changed(changes)));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// The top-level fields whose serialized value differs.
fn changed_fields<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let as_map = |v: &T| match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (a, b) = (as_map(old), as_map(new));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

fn diff_maps<T: Serialize>(
    old: &BTreeMap<&str, &T>,
    new: &BTreeMap<&str, &T>,
) -> (Vec<String>, Vec<String>, BTreeMap<String, Vec<String>>) {
    let added = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| k.to_string())
        .collect();
    let changed = old
        .iter()
        .filter_map(|(k, o)| {
            let n = new.get(k)?;
            let fields = changed_fields(*o, *n);
            (!fields.is_empty()).then(|| (k.to_string(), fields))
        })
        .collect();
    (added, removed, changed)
}

/// What changed from `old` to `new`.
pub fn diff(old: &ValidRuleTable, new: &ValidRuleTable) -> RuleTableDiff {
    fn roles(t: &ValidRuleTable) -> BTreeMap<&str, &RoleSpec> {
        t.roles().iter().map(|(k, r)| (k.as_str(), r)).collect()
    }
    fn rules(t: &ValidRuleTable) -> BTreeMap<&str, &RuleSpec> {
        t.file().rules.iter().map(|r| (r.id.as_str(), r)).collect()
    }
    let (roles_added, roles_removed, roles_changed) = diff_maps(&roles(old), &roles(new));
    let (rules_added, rules_removed, rules_changed) = diff_maps(&rules(old), &rules(new));
    RuleTableDiff {
        org_changed: changed_fields(old.org(), new.org()),
        roles_added,
        roles_removed,
        roles_changed,
        rules_added,
        rules_removed,
        rules_changed,
    }
}
