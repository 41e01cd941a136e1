//! Versioned rule tables in the store.
//!
//! Each apply of a different table is a new version recording who applied it, when,
//! and a summary of the difference; earlier versions stay readable. The version, its
//! audit entry and an outbox entry (a rule change may affect everyone) are written in
//! one transaction. Applying a table equal to the current one changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, timestamp, AuditDraft};
use crate::clock::Clock;
use crate::outbox::{self, Touched};
use crate::rules::{diff, RuleTableDiff, ValidRuleTable};
use crate::store::codec::{collect_json, from_bytes, seq_key, tx_put_json};
use crate::store::{transaction, Store, StoreError, Table, TxFail};

/// One stored version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleVersion {
    /// 1, 2, 3, …
    pub version: u64,
    /// When it was applied.
    pub at: String,
    /// Who applied it (token subject).
    pub actor: String,
    /// What changed against the previous version.
    pub summary: String,
    /// The table (re-validated when read back).
    pub table: ValidRuleTable,
}

/// A version without its table, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct RuleVersionInfo {
    /// Version number.
    pub version: u64,
    /// When.
    pub at: String,
    /// Who.
    pub actor: String,
    /// What changed.
    pub summary: String,
    /// How many rules it has.
    pub rules: usize,
    /// How many custom roles it has.
    pub roles: usize,
}

impl From<&RuleVersion> for RuleVersionInfo {
    fn from(v: &RuleVersion) -> Self {
        Self {
            version: v.version,
            at: v.at.clone(),
            actor: v.actor.clone(),
            summary: v.summary.clone(),
            rules: v.table.rules().len(),
            roles: v.table.roles().len(),
        }
    }
}

/// The outcome of an apply.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The current version after the apply.
    pub version: u64,
    /// Whether a new version was written.
    pub changed: bool,
    /// The difference against the previous version.
    pub diff: RuleTableDiff,
}

/// The current version, if any table was ever applied.
pub fn current(store: &dyn Store) -> Result<Option<RuleVersion>, StoreError> {
    match store.last(Table::Rules, b"")? {
        Some((_, bytes)) => Ok(Some(from_bytes(&bytes, Table::Rules)?)),
        None => Ok(None),
    }
}

/// One version.
pub fn get(store: &dyn Store, version: u64) -> Result<Option<RuleVersion>, StoreError> {
    match store.get(Table::Rules, &seq_key(version))? {
        Some(bytes) => Ok(Some(from_bytes(&bytes, Table::Rules)?)),
        None => Ok(None),
    }
}

/// Every version, oldest first, without the tables.
pub fn list(store: &dyn Store) -> Result<Vec<RuleVersionInfo>, StoreError> {
    Ok(
        collect_json::<RuleVersion>(store, Table::Rules, b"", None, usize::MAX)?
            .iter()
            .map(|(_, v)| RuleVersionInfo::from(v))
            .collect(),
    )
}

/// The difference `table` would make against the current version.
pub fn preview(store: &dyn Store, table: &ValidRuleTable) -> Result<RuleTableDiff, StoreError> {
    Ok(match current(store)? {
        Some(cur) => diff(&cur.table, table),
        None => diff_from_nothing(table),
    })
}

fn diff_from_nothing(table: &ValidRuleTable) -> RuleTableDiff {
    RuleTableDiff {
        // Summarized as "org changed (initial)": the whole org section is new.
        org_changed: vec!["initial".into()],
        roles_added: table.roles().keys().cloned().collect(),
        rules_added: table.rules().iter().map(|r| r.id.clone()).collect(),
        ..RuleTableDiff::default()
    }
}

/// Makes `table` the current version (unless it equals the current one), with its
/// audit entry and an outbox entry in the same transaction, durably.
pub fn apply(
    store: &dyn Store,
    table: ValidRuleTable,
    actor: &str,
    request_id: Option<&str>,
    clock: &dyn Clock,
) -> Result<Applied, StoreError> {
    let previous = current(store)?;
    let (version, difference) = match &previous {
        Some(cur) => (cur.version + 1, diff(&cur.table, &table)),
        None => (1, diff_from_nothing(&table)),
    };
    if previous.is_some() && difference.is_empty() {
        return Ok(Applied {
            version: version - 1,
            changed: false,
            diff: difference,
        });
    }
    let now = clock.now();
    let record = RuleVersion {
        version,
        at: timestamp(now),
        actor: actor.to_string(),
        summary: difference.to_string(),
        table,
    };
    let details = json!({
        "version": version,
        "diff": difference,
        "request_id": request_id,
    });
    transaction::<_, StoreError>(store, |txn| {
        // Another apply may have won the race since `current` was read.
        if txn.get(Table::Rules, &seq_key(version))?.is_some() {
            return Err(TxFail::Domain(StoreError::Corrupt {
                table: Table::Rules.name(),
                detail: format!("version {version} was written concurrently; apply again"),
            }));
        }
        tx_put_json(txn, Table::Rules, &seq_key(version), &record)?;
        audit::append(
            txn,
            AuditDraft::new(actor, "rules.apply", Some(&format!("v{version}")))
                .with(details.clone()),
            now,
        )?;
        outbox::append(txn, "rules.apply", Touched::everything(), now)?;
        Ok(())
    })?;
    store.sync()?;
    Ok(Applied {
        version,
        changed: true,
        diff: difference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::rules::load_rule_file;
    use crate::store::memory::MemoryStore;

    const V1: &str = r#"
[org]
plan = "enterprise"
billing_currency = "USD"
features = { cowork = true, chat = true }

[roles.pilot]
name = "Cowork pilot"
capabilities = { cowork = true }

[[rules]]
id = "pilot"
match = { group = "Cowork Pilot" }
group = { key = "cowork-pilot", name = "Cowork pilot" }
roles = ["pilot"]
"#;

    #[test]
    fn applying_writes_versions_with_audit_and_outbox_entries() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        let t1 = load_rule_file(V1).unwrap();
        let a = apply(&store, t1.clone(), "operator", Some("r1"), &clock).unwrap();
        assert_eq!((a.version, a.changed), (1, true));
        // The same table again is no new version.
        let again = apply(&store, t1, "operator", None, &clock).unwrap();
        assert_eq!((again.version, again.changed), (1, false));
        let t2 =
            load_rule_file(&V1.replace("Cowork pilot\"\ncapabilities", "Pilot\"\ncapabilities"))
                .unwrap();
        let b = apply(&store, t2, "alice-admin", None, &clock).unwrap();
        assert_eq!(b.version, 2);
        assert_eq!(b.diff.roles_changed.len(), 1);
        let versions = list(&store).unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[1].actor, "alice-admin");
        assert_eq!(
            get(&store, 1).unwrap().unwrap().table.roles()["pilot"].name,
            "Cowork pilot"
        );
        assert_eq!(current(&store).unwrap().unwrap().version, 2);
        let entries = audit::list(&store, None, 0, 10).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].action, "rules.apply");
        assert_eq!(entries[1].target.as_deref(), Some("v2"));
        let queued = outbox::pending(&store, 10).unwrap();
        assert_eq!(queued.len(), 2);
        assert!(queued[0].touched.everything);
    }
}
