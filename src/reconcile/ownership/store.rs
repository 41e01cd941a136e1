//! The persistence of the ownership records in `Table::Downstream`, and the
//! [`Ledger`]: the records a pass works with, changed only by committing.
//!
//! Keys: `g/<key>` groups, `r/<key>` roles, `u/<scim id>` user links (and
//! `l/<member id>` → SCIM id, the reverse index of links that name a member, which
//! also counts governed members without a scan), `m/<scim id>/<group key>`
//! memberships, `s/<scim id>` spend overrides, `p/<key>` group creates in flight,
//! `o/<scim id>` offboarding, `h/<id>` held removals, `w/<millis>/<n>` the removal
//! window, `c/<canonical email>/<scim id>` identity claims (parts separated by a zero
//! byte). Imports the store trait, the audit trail and the clock.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use serde::Serialize;

use super::{
    Change, Claim, HeldRemoval, Membership, Offboarding, OwnedGroup, OwnedRole, OwnedSpend,
    Ownership, PendingGroup, RemovalEvent, UserLink,
};
use crate::audit::{self, AuditDraft};
use crate::clock::SharedClock;
use crate::reconcile::ReconcileError;
use crate::store::codec::{from_bytes, to_bytes};
use crate::store::{transaction, Store, StoreError, Table, TxError, Txn};

const GROUP: &str = "g";
const ROLE: &str = "r";
const LINK: &str = "u";
const MEMBERSHIP: &str = "m";
const SPEND: &str = "s";
const PENDING_GROUP: &str = "p";
const MEMBER_LINK: &str = "l";
const OFFBOARDING: &str = "o";
const HELD: &str = "h";
const WINDOW: &str = "w";
const CLAIM: &str = "c";

fn window_key(at: chrono::DateTime<chrono::Utc>, n: u64) -> Vec<u8> {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    key(&[WINDOW, &format!("{millis:020}"), &format!("{n:020}")])
}

/// Keeps `l/<member id>` in step with the link of `scim_id` becoming `new`.
fn reindex_link(txn: &mut dyn Txn, scim_id: &str, new: Option<&str>) -> Result<(), TxError> {
    let old: Option<UserLink> = match txn.get(Table::Downstream, &key(&[LINK, scim_id]))? {
        Some(bytes) => Some(from_bytes(&bytes, Table::Downstream)?),
        None => None,
    };
    let old = old.and_then(|l| l.user_id);
    if old.as_deref() == new {
        return Ok(());
    }
    if let Some(id) = &old {
        txn.remove(Table::Downstream, &key(&[MEMBER_LINK, id]))?;
    }
    if let Some(id) = new {
        txn.insert(
            Table::Downstream,
            &key(&[MEMBER_LINK, id]),
            scim_id.as_bytes(),
        )?;
    }
    Ok(())
}

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
            Change::PutLink(l) => {
                reindex_link(txn, &l.scim_id, l.user_id.as_deref())?;
                put(txn, &key(&[LINK, &l.scim_id]), l)?
            }
            Change::ForgetLink { scim_id } => {
                reindex_link(txn, scim_id, None)?;
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
            Change::PutOffboarding(o) => put(txn, &key(&[OFFBOARDING, &o.scim_id]), o)?,
            Change::ForgetOffboarding { scim_id } => {
                txn.remove(Table::Downstream, &key(&[OFFBOARDING, scim_id]))?
            }
            Change::PutHeld(h) => put(txn, &key(&[HELD, &h.id]), h)?,
            Change::ForgetHeld { fingerprint } => txn.remove(
                Table::Downstream,
                &key(&[HELD, &HeldRemoval::id_of(fingerprint)]),
            )?,
            Change::PutRemovals(e) => put(txn, &window_key(e.at, e.n), e)?,
            Change::ForgetRemovals { at, n } => {
                txn.remove(Table::Downstream, &window_key(*at, *n))?
            }
            Change::PutClaim(c) => put(txn, &key(&[CLAIM, &c.email, &c.scim_id]), c)?,
            Change::ForgetClaim(c) => {
                txn.remove(Table::Downstream, &key(&[CLAIM, &c.email, &c.scim_id]))?
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
    })?;
    scan_into(store, &prefix(&[HELD]), |h: HeldRemoval| {
        out.held.insert(h.fingerprint.clone(), h);
    })?;
    scan_into(store, &prefix(&[WINDOW]), |e: RemovalEvent| {
        out.removals.push(e);
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
    scan_into(store, &prefix(&[OFFBOARDING]), |o: Offboarding| {
        out.offboarding.insert(o.scim_id.clone(), o);
    })?;
    scan_into(store, &prefix(&[CLAIM]), |c: Claim| {
        out.claims.insert(c);
    })?;
    out.membership_count = out.memberships.len();
    out.member_count = out.links.values().filter(|l| l.user_id.is_some()).count();
    Ok(out)
}

/// Groups, roles, and what concerns `users` (the event path), plus the total
/// number of recorded memberships (for the safety valve).
pub fn load_for(store: &dyn Store, users: &BTreeSet<String>) -> Result<Ownership, StoreError> {
    let mut out = Ownership::default();
    load_groups_and_roles(store, &mut out)?;
    for scim_id in users {
        load_user_into(store, scim_id, &mut out)?;
    }
    out.membership_count = count_memberships(store)?;
    out.member_count = count_keys(store, &prefix(&[MEMBER_LINK]))?;
    Ok(out)
}

/// Groups, roles, held removals, and one user's records (for `explain`): no counts.
pub fn load_user(store: &dyn Store, scim_id: &str) -> Result<Ownership, StoreError> {
    let mut out = Ownership::default();
    load_groups_and_roles(store, &mut out)?;
    load_user_into(store, scim_id, &mut out)?;
    Ok(out)
}

/// One user's link, memberships, spend override and offboarding record.
fn load_user_into(store: &dyn Store, scim_id: &str, out: &mut Ownership) -> Result<(), StoreError> {
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
    if let Some(bytes) = store.get(Table::Downstream, &key(&[OFFBOARDING, scim_id]))? {
        let o: Offboarding = from_bytes(&bytes, Table::Downstream)?;
        out.offboarding.insert(o.scim_id.clone(), o);
    }
    Ok(())
}

/// The identity claims on these canonical emails (the event path's view).
pub fn claims_for(store: &dyn Store, emails: &BTreeSet<String>) -> Result<Vec<Claim>, StoreError> {
    let mut out = Vec::new();
    for email in emails {
        scan_into(store, &prefix(&[CLAIM, email]), |c: Claim| out.push(c))?;
    }
    Ok(out)
}

/// Every identity claim: the claimants of each email several users map to.
pub fn claims(store: &dyn Store) -> Result<Vec<Claim>, StoreError> {
    let mut out = Vec::new();
    scan_into(store, &prefix(&[CLAIM]), |c: Claim| out.push(c))?;
    Ok(out)
}

/// The directory user whose link names this downstream member, if any.
pub fn linked_to(store: &dyn Store, member_id: &str) -> Result<Option<String>, StoreError> {
    Ok(store
        .get(Table::Downstream, &key(&[MEMBER_LINK, member_id]))?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Users whose offboarding is recorded (a short list: people leaving right now).
pub fn offboarding(store: &dyn Store) -> Result<Vec<Offboarding>, StoreError> {
    let mut out = Vec::new();
    scan_into(store, &prefix(&[OFFBOARDING]), |o: Offboarding| out.push(o))?;
    Ok(out)
}

/// Every held removal.
pub fn held(store: &dyn Store) -> Result<Vec<HeldRemoval>, StoreError> {
    let mut out = Vec::new();
    scan_into(store, &prefix(&[HELD]), |h: HeldRemoval| out.push(h))?;
    Ok(out)
}

/// The changes that build the reverse link index of records written before it
/// existed (a migration; empty when every link is indexed).
pub fn missing_member_links(store: &dyn Store) -> Result<Vec<(String, String)>, StoreError> {
    let mut links = Vec::new();
    scan_into(store, &prefix(&[LINK]), |l: UserLink| {
        if let Some(id) = l.user_id {
            links.push((id, l.scim_id));
        }
    })?;
    let mut missing = Vec::new();
    for (id, scim) in links {
        if store
            .get(Table::Downstream, &key(&[MEMBER_LINK, &id]))?
            .is_none()
        {
            missing.push((id, scim));
        }
    }
    Ok(missing)
}

/// Writes reverse link index entries (inside the caller's audited transaction).
pub fn index_member_links(txn: &mut dyn Txn, links: &[(String, String)]) -> Result<(), TxError> {
    for (id, scim) in links {
        txn.insert(Table::Downstream, &key(&[MEMBER_LINK, id]), scim.as_bytes())?;
    }
    Ok(())
}

fn count_keys(store: &dyn Store, pfx: &[u8]) -> Result<usize, StoreError> {
    let mut n = 0usize;
    store.scan(Table::Downstream, pfx, None, &mut |_, _| {
        n += 1;
        ControlFlow::Continue(())
    })?;
    Ok(n)
}

/// How many memberships are recorded.
pub fn count_memberships(store: &dyn Store) -> Result<usize, StoreError> {
    count_keys(store, &prefix(&[MEMBERSHIP]))
}

/// The ownership records a pass works with, and the only way to change them: each
/// [`Ledger::commit`] writes the changes and their audit entry in one transaction,
/// flushes, and only then applies them to the in-memory copy.
pub struct Ledger {
    store: Arc<dyn Store>,
    clock: SharedClock,
    ownership: Ownership,
}

impl Ledger {
    /// A ledger over records loaded from `store` (all of them, or the event path's part).
    pub fn new(store: Arc<dyn Store>, clock: SharedClock, ownership: Ownership) -> Self {
        Self {
            store,
            clock,
            ownership,
        }
    }

    /// The records as committed so far.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// The records, for a caller that is done committing.
    pub fn into_ownership(self) -> Ownership {
        self.ownership
    }

    /// Commits `changes` with the audit entry `draft` explains them with (an entry
    /// alone when there are none), flushed, then applies them in memory.
    pub async fn commit(
        &mut self,
        draft: AuditDraft,
        changes: Vec<Change>,
    ) -> Result<(), ReconcileError> {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let written = changes.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let now = clock.now();
            transaction::<_, StoreError>(store.as_ref(), |txn| {
                write(txn, &written)?;
                audit::append(txn, draft.clone(), now)?;
                Ok(())
            })?;
            store.sync()
        })
        .await??;
        self.ownership.apply(&changes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{self, AuditDraft};
    use crate::clock::{Clock, ManualClock};
    use crate::reconcile::ownership::OrgRole;
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
