//! The database: opening sled under the data directory (created private to the
//! daemon's user) and bringing it to this binary's schema version.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::store::sled_store::{SledOptions, SledStore};
use crate::store::{transaction, Store, StoreError, Table, TxFail};

/// The database schema version this binary writes.
pub const SCHEMA_VERSION: u64 = 3;
const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// Brings an opened store to [`SCHEMA_VERSION`], refusing a newer one.
pub fn migrate(store: &dyn Store, clock: &dyn crate::clock::Clock) -> Result<u64, StoreError> {
    let found = match store.get(Table::Meta, SCHEMA_VERSION_KEY)? {
        Some(b) => crate::store::codec::seq_from_key(&b, Table::Meta)?,
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        // 0 → 1: an empty database, nothing to convert. 1 → 2: the reverse index of
        // user links by downstream member. 2 → 3: see below. Each migration commits with the version it
        // reaches, in order; none runs twice.
        let links = if found >= 1 {
            crate::reconcile::ownership::store::missing_member_links(store)?
        } else {
            Vec::new()
        };
        let now = clock.now();
        // 2 → 3: users' externalId index becomes a multi-index (chunked, resumable).
        if found >= 1 {
            crate::directory::migrate::external_id_multi_index(store, now)?;
        }
        transaction::<_, StoreError>(store, |txn| {
            if !links.is_empty() {
                crate::reconcile::ownership::store::index_member_links(txn, &links)?;
                crate::audit::append(
                    txn,
                    crate::audit::AuditDraft::new("cowork-sync", "store.migrated", None).with(
                        serde_json::json!({
                            "from": found,
                            "to": SCHEMA_VERSION,
                            "member_links_indexed": links.len(),
                        }),
                    ),
                    now,
                )?;
            }
            txn.insert(
                Table::Meta,
                SCHEMA_VERSION_KEY,
                &SCHEMA_VERSION.to_be_bytes(),
            )
            .map_err(TxFail::Store)
        })?;
    }
    Ok(SCHEMA_VERSION)
}

/// Creates the data directory readable by the daemon's user only (it holds the
/// signing key and the directory).
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Opens the sled database under the configured data directory.
pub fn open_store(
    config: &Config,
    clock: &dyn crate::clock::Clock,
) -> anyhow::Result<Arc<SledStore>> {
    private_dir(&config.storage.data_dir)?;
    let store = SledStore::open(
        &config.db_dir(),
        &SledOptions {
            cache_bytes: config.storage.cache_bytes,
        },
    )
    .with_context(|| format!("opening the database in {}", config.db_dir().display()))?;
    migrate(&store, clock).context("migrating the database")?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;

    /// A database at schema `version` holding `rows` and one audit entry.
    fn old_database(
        store: &MemoryStore,
        clock: &ManualClock,
        version: u64,
        rows: &[(Table, &[u8], &[u8])],
    ) {
        transaction::<_, StoreError>(store, |txn| {
            txn.insert(Table::Meta, SCHEMA_VERSION_KEY, &version.to_be_bytes())
                .map_err(TxFail::Store)?;
            for (table, key, value) in rows {
                txn.insert(*table, key, value).map_err(TxFail::Store)?;
            }
            crate::audit::append(
                txn,
                crate::audit::AuditDraft::new("test", "test", None),
                clock.now(),
            )?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_version_1_database_gets_the_member_link_index_once_and_audited() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        // A version-1 database: a user link written before the reverse index existed.
        let link =
            serde_json::json!({"scim_id": "u1", "email": "a@example.com", "user_id": "user_1"});
        let link = link.to_string();
        old_database(
            &store,
            &clock,
            1,
            &[(Table::Downstream, b"u\x00u1", link.as_bytes())],
        );
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        assert_eq!(
            crate::reconcile::ownership::store::linked_to(&store, "user_1").unwrap(),
            Some("u1".to_string())
        );
        let entries = crate::audit::list(&store, None, 0, 10).unwrap();
        assert_eq!(entries.last().unwrap().action, "store.migrated");
        // Again: nothing to do.
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        assert_eq!(crate::audit::list(&store, None, 0, 10).unwrap().len(), 2);
    }

    #[test]
    fn a_version_2_database_gets_a_multi_valued_external_id_index_once() {
        let store = MemoryStore::new();
        let clock = ManualClock::at_epoch_2026();
        // A version-2 database: externalId → id, the old unique form.
        old_database(
            &store,
            &clock,
            2,
            &[
                (Table::UserExternalIdIdx, b"ext-1", b"u1"),
                (Table::UserExternalIdIdx, b"ext-2", b"u2"),
            ],
        );
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        let entries =
            crate::store::collect_prefix(&store, Table::UserExternalIdIdx, b"", 10).unwrap();
        assert_eq!(
            entries,
            vec![
                (b"ext-1\x00u1".to_vec(), Vec::new()),
                (b"ext-2\x00u2".to_vec(), Vec::new())
            ]
        );
        assert_eq!(
            crate::directory::users_by_external_id(&store, "ext-2").unwrap(),
            vec!["u2".to_string()]
        );
        let audited = crate::audit::list(&store, None, 0, 10).unwrap();
        assert_eq!(audited.last().unwrap().action, "store.migrated");
        assert_eq!(migrate(&store, &clock).unwrap(), SCHEMA_VERSION);
        assert_eq!(crate::audit::list(&store, None, 0, 10).unwrap().len(), 2);
    }
}
