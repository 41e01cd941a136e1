//! What the daemon owns downstream, and what it believes is there, in
//! `Table::Downstream`.
//!
//! - **Groups** it created or adopted, by rule key (`g/<key>` → id). In real mode the
//!   API has no `external_id`, so this record is the only link between a rule key and
//!   a downstream group; it is never looked up by name.
//! - **Roles** it created, by role key (`r/<key>` → id).
//! - **User links**: a directory user (SCIM id) → the downstream member id it was
//!   matched to by email, the member's org role when last seen, and a pending invite
//!   the daemon sent (`u/<scim id>`).
//! - **Memberships** it believes exist in its groups for directory users
//!   (`m/<scim id>/<group key>`). The event path plans against these beliefs without
//!   reading the whole downstream; a wrong belief is harmless (adds and removes
//!   converge on "already a member" / "not a member") and the full reconcile
//!   rewrites beliefs from what it reads.
//! - **Per-user spend overrides** it created when materializing group spend limits in
//!   real mode (`s/<scim id>`), so they are deleted when the user leaves the group.
//! - **Group creations in flight** in real mode (`p/<key>`): written before the
//!   create request is sent and removed with the group's record, so a create whose
//!   answer was lost (a timeout, a crash) is found again instead of repeated; the real
//!   API has no idempotency key and no `external_id` to make a retried create safe.
//!
//! Changes are [`Change`] values applied inside the caller's transaction, together
//! with the audit entry of the action that caused them (the store refuses otherwise).
//! Imports the store trait only.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use crate::cowork::OrgRole;
use crate::store::codec::{from_bytes, to_bytes};
use crate::store::{Store, StoreError, Table, TxError, Txn};

const GROUP: &str = "g";
const ROLE: &str = "r";
const LINK: &str = "u";
const MEMBERSHIP: &str = "m";
const SPEND: &str = "s";
const PENDING_GROUP: &str = "p";

fn key(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(p.as_bytes());
    }
    out
}

fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

/// A downstream group the daemon created or adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedGroup {
    /// Rule key (`external_id` in extended mode).
    pub key: String,
    /// Downstream id.
    pub id: String,
    /// The name it was last given or seen with.
    pub name: String,
    /// `true` when the daemon created it; `false` when it adopted a group that already
    /// carried its key as `external_id`.
    pub created: bool,
}

/// A group create the daemon sent (or is about to send) without knowing yet whether
/// the server applied it (real mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingGroup {
    /// Rule key.
    pub key: String,
    /// The name the group is created with.
    pub name: String,
    /// When the first create request for it was about to be sent (daemon clock).
    pub requested_at: chrono::DateTime<chrono::Utc>,
    /// When the latest create request for it was about to be sent.
    pub last_sent_at: chrono::DateTime<chrono::Utc>,
}

/// A custom role the daemon created or adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedRole {
    /// Role key (`external_id`).
    pub key: String,
    /// Downstream id.
    pub id: String,
}

/// A directory user linked to a downstream member (or invited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLink {
    /// SCIM id.
    pub scim_id: String,
    /// The email the link was made by, lowercased.
    pub email: String,
    /// Downstream member id, once the user is a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The member's org role when last seen or set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OrgRole>,
    /// A pending invite the daemon sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_id: Option<String>,
}

/// A membership the daemon believes exists in one of its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// SCIM id of the directory user.
    pub scim_id: String,
    /// Rule key of the group.
    pub group_key: String,
    /// Downstream group id.
    pub group_id: String,
    /// Downstream member id.
    pub user_id: String,
}

/// A per-user spend override the daemon created (materialized group spend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedSpend {
    /// SCIM id.
    pub scim_id: String,
    /// Downstream member id.
    pub user_id: String,
    /// The spend-limit row.
    pub spend_limit_id: String,
    /// Minor units; `None` = unlimited.
    pub amount: Option<u64>,
}

/// Everything recorded (or the part of it the event path loaded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Groups by rule key.
    pub groups: BTreeMap<String, OwnedGroup>,
    /// Roles by role key.
    pub roles: BTreeMap<String, OwnedRole>,
    /// User links by SCIM id.
    pub links: BTreeMap<String, UserLink>,
    /// Memberships by (SCIM id, group key).
    pub memberships: BTreeMap<(String, String), Membership>,
    /// Spend overrides by SCIM id.
    pub spend: BTreeMap<String, OwnedSpend>,
    /// Group creates in flight (real mode), by rule key.
    pub pending_groups: BTreeMap<String, PendingGroup>,
    /// How many memberships are recorded in all (also when only part was loaded).
    pub membership_count: usize,
}

impl Ownership {
    /// The group key an owned downstream group id belongs to.
    pub fn key_of_group(&self, id: &str) -> Option<&str> {
        self.groups
            .values()
            .find(|g| g.id == id)
            .map(|g| g.key.as_str())
    }

    /// Applies changes to the in-memory copy (what the store will hold after the
    /// same changes commit).
    pub fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::PutGroup(g) => {
                    self.groups.insert(g.key.clone(), g.clone());
                }
                Change::ForgetGroup { key } => {
                    self.groups.remove(key);
                }
                Change::PutRole(r) => {
                    self.roles.insert(r.key.clone(), r.clone());
                }
                Change::ForgetRole { key } => {
                    self.roles.remove(key);
                }
                Change::PutLink(l) => {
                    self.links.insert(l.scim_id.clone(), l.clone());
                }
                Change::ForgetLink { scim_id } => {
                    self.links.remove(scim_id);
                }
                Change::PutMembership(m) => {
                    let k = (m.scim_id.clone(), m.group_key.clone());
                    if self.memberships.insert(k, m.clone()).is_none() {
                        self.membership_count += 1;
                    }
                }
                Change::ForgetMembership { scim_id, group_key } => {
                    if self
                        .memberships
                        .remove(&(scim_id.clone(), group_key.clone()))
                        .is_some()
                    {
                        self.membership_count = self.membership_count.saturating_sub(1);
                    }
                }
                Change::PutSpend(s) => {
                    self.spend.insert(s.scim_id.clone(), s.clone());
                }
                Change::ForgetSpend { scim_id } => {
                    self.spend.remove(scim_id);
                }
                Change::PutPendingGroup(p) => {
                    self.pending_groups.insert(p.key.clone(), p.clone());
                }
                Change::ForgetPendingGroup { key } => {
                    self.pending_groups.remove(key);
                }
            }
        }
    }

    /// The memberships believed for one user.
    pub fn memberships_of<'a>(&'a self, scim_id: &'a str) -> impl Iterator<Item = &'a Membership> {
        self.memberships
            .range((scim_id.to_string(), String::new())..)
            .take_while(move |((s, _), _)| s == scim_id)
            .map(|(_, m)| m)
    }
}

/// One change to the ownership records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Records a group.
    PutGroup(OwnedGroup),
    /// Forgets a group (deleted, or gone downstream).
    ForgetGroup {
        /// Rule key.
        key: String,
    },
    /// Records a role.
    PutRole(OwnedRole),
    /// Forgets a role.
    ForgetRole {
        /// Role key.
        key: String,
    },
    /// Records a user link.
    PutLink(UserLink),
    /// Forgets a user link.
    ForgetLink {
        /// SCIM id.
        scim_id: String,
    },
    /// Records a membership.
    PutMembership(Membership),
    /// Forgets a membership.
    ForgetMembership {
        /// SCIM id.
        scim_id: String,
        /// Group key.
        group_key: String,
    },
    /// Records a spend override.
    PutSpend(OwnedSpend),
    /// Forgets a spend override.
    ForgetSpend {
        /// SCIM id.
        scim_id: String,
    },
    /// Records a group create about to be sent (real mode).
    PutPendingGroup(PendingGroup),
    /// Forgets a group create in flight (the group is recorded, or found).
    ForgetPendingGroup {
        /// Rule key.
        key: String,
    },
}

fn put<T: Serialize>(txn: &mut dyn Txn, k: &[u8], v: &T) -> Result<(), TxError> {
    let bytes = to_bytes(v, Table::Downstream)?;
    txn.insert(Table::Downstream, k, &bytes)
}

/// Writes changes inside the caller's transaction (which must also append the audit
/// entry that explains them).
pub fn write(txn: &mut dyn Txn, changes: &[Change]) -> Result<(), TxError> {
    for c in changes {
        match c {
            Change::PutGroup(g) => put(txn, &key(&[GROUP, &g.key]), g)?,
            Change::ForgetGroup { key: k } => txn.remove(Table::Downstream, &key(&[GROUP, k]))?,
            Change::PutRole(r) => put(txn, &key(&[ROLE, &r.key]), r)?,
            Change::ForgetRole { key: k } => txn.remove(Table::Downstream, &key(&[ROLE, k]))?,
            Change::PutLink(l) => put(txn, &key(&[LINK, &l.scim_id]), l)?,
            Change::ForgetLink { scim_id } => {
                txn.remove(Table::Downstream, &key(&[LINK, scim_id]))?
            }
            Change::PutMembership(m) => put(txn, &key(&[MEMBERSHIP, &m.scim_id, &m.group_key]), m)?,
            Change::ForgetMembership { scim_id, group_key } => {
                txn.remove(Table::Downstream, &key(&[MEMBERSHIP, scim_id, group_key]))?
            }
            Change::PutSpend(s) => put(txn, &key(&[SPEND, &s.scim_id]), s)?,
            Change::ForgetSpend { scim_id } => {
                txn.remove(Table::Downstream, &key(&[SPEND, scim_id]))?
            }
            Change::PutPendingGroup(p) => put(txn, &key(&[PENDING_GROUP, &p.key]), p)?,
            Change::ForgetPendingGroup { key: k } => {
                txn.remove(Table::Downstream, &key(&[PENDING_GROUP, k]))?
            }
        }
    }
    Ok(())
}

fn scan_into<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    pfx: &[u8],
    mut f: impl FnMut(T),
) -> Result<(), StoreError> {
    let mut err = None;
    store.scan(
        Table::Downstream,
        pfx,
        None,
        &mut |_, v| match from_bytes::<T>(v, Table::Downstream) {
            Ok(t) => {
                f(t);
                ControlFlow::Continue(())
            }
            Err(e) => {
                err = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn load_groups_and_roles(store: &dyn Store, out: &mut Ownership) -> Result<(), StoreError> {
    scan_into(store, &prefix(&[GROUP]), |g: OwnedGroup| {
        out.groups.insert(g.key.clone(), g);
    })?;
    scan_into(store, &prefix(&[ROLE]), |r: OwnedRole| {
        out.roles.insert(r.key.clone(), r);
    })?;
    scan_into(store, &prefix(&[PENDING_GROUP]), |p: PendingGroup| {
        out.pending_groups.insert(p.key.clone(), p);
    })
}

/// Everything recorded (a full reconcile).
pub fn load_all(store: &dyn Store) -> Result<Ownership, StoreError> {
    let mut out = Ownership::default();
    load_groups_and_roles(store, &mut out)?;
    scan_into(store, &prefix(&[LINK]), |l: UserLink| {
        out.links.insert(l.scim_id.clone(), l);
    })?;
    scan_into(store, &prefix(&[MEMBERSHIP]), |m: Membership| {
        out.memberships
            .insert((m.scim_id.clone(), m.group_key.clone()), m);
    })?;
    scan_into(store, &prefix(&[SPEND]), |s: OwnedSpend| {
        out.spend.insert(s.scim_id.clone(), s);
    })?;
    out.membership_count = out.memberships.len();
    Ok(out)
}

/// Groups, roles, and what concerns `users` (the event path), plus the total
/// number of recorded memberships (for the safety valve).
pub fn load_for(store: &dyn Store, users: &BTreeSet<String>) -> Result<Ownership, StoreError> {
    let mut out = Ownership::default();
    load_groups_and_roles(store, &mut out)?;
    for scim_id in users {
        if let Some(bytes) = store.get(Table::Downstream, &key(&[LINK, scim_id]))? {
            let l: UserLink = from_bytes(&bytes, Table::Downstream)?;
            out.links.insert(l.scim_id.clone(), l);
        }
        scan_into(store, &prefix(&[MEMBERSHIP, scim_id]), |m: Membership| {
            out.memberships
                .insert((m.scim_id.clone(), m.group_key.clone()), m);
        })?;
        if let Some(bytes) = store.get(Table::Downstream, &key(&[SPEND, scim_id]))? {
            let s: OwnedSpend = from_bytes(&bytes, Table::Downstream)?;
            out.spend.insert(s.scim_id.clone(), s);
        }
    }
    out.membership_count = count_memberships(store)?;
    Ok(out)
}

/// How many memberships are recorded.
pub fn count_memberships(store: &dyn Store) -> Result<usize, StoreError> {
    let mut n = 0usize;
    store.scan(
        Table::Downstream,
        &prefix(&[MEMBERSHIP]),
        None,
        &mut |_, _| {
            n += 1;
            ControlFlow::Continue(())
        },
    )?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{self, AuditDraft};
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;
    use crate::store::{transaction, TxFail};

    fn membership(scim: &str, key: &str) -> Membership {
        Membership {
            scim_id: scim.into(),
            group_key: key.into(),
            group_id: format!("rbac_group_{key}"),
            user_id: format!("user_{scim}"),
        }
    }

    fn commit(store: &MemoryStore, changes: Vec<Change>) -> Result<(), StoreError> {
        let clock = ManualClock::at_epoch_2026();
        transaction::<_, StoreError>(store, |txn| {
            write(txn, &changes)?;
            audit::append(txn, AuditDraft::new("test", "test", None), clock.now())
                .map_err(TxFail::Store)?;
            Ok(())
        })
    }

    #[test]
    fn changes_round_trip_and_load_for_reads_only_the_named_users() {
        let store = MemoryStore::new();
        commit(
            &store,
            vec![
                Change::PutGroup(OwnedGroup {
                    key: "pilot".into(),
                    id: "rbac_group_pilot".into(),
                    name: "Pilot".into(),
                    created: true,
                }),
                Change::PutMembership(membership("u1", "pilot")),
                Change::PutMembership(membership("u2", "pilot")),
                Change::PutMembership(membership("u1", "zeta")),
                Change::PutLink(UserLink {
                    scim_id: "u1".into(),
                    email: "a@example.com".into(),
                    user_id: Some("user_u1".into()),
                    role: Some(OrgRole::Managed),
                    invite_id: None,
                }),
            ],
        )
        .unwrap();
        let all = load_all(&store).unwrap();
        assert_eq!(all.groups.len(), 1);
        assert_eq!(all.membership_count, 3);
        let some = load_for(&store, &BTreeSet::from(["u1".to_string()])).unwrap();
        assert_eq!(some.memberships.len(), 2);
        assert_eq!(some.membership_count, 3);
        assert_eq!(some.memberships_of("u1").count(), 2);
        assert_eq!(some.links["u1"].user_id.as_deref(), Some("user_u1"));
        assert_eq!(all.key_of_group("rbac_group_pilot"), Some("pilot"));

        commit(
            &store,
            vec![Change::ForgetMembership {
                scim_id: "u1".into(),
                group_key: "zeta".into(),
            }],
        )
        .unwrap();
        let mut mem = all.clone();
        mem.apply(&[Change::ForgetMembership {
            scim_id: "u1".into(),
            group_key: "zeta".into(),
        }]);
        assert_eq!(load_all(&store).unwrap(), mem);
    }

    #[test]
    fn ownership_writes_without_an_audit_entry_are_refused() {
        let store = MemoryStore::new();
        let err = transaction::<_, StoreError>(&store, |txn| {
            write(txn, &[Change::PutMembership(membership("u1", "g"))])?;
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, StoreError::Unaudited { .. }));
    }
}
