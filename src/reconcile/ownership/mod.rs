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
//! - **Offboarding in progress** (`o/<scim id>`): a governed user the IdP deactivated
//!   or deleted, since when, and why; the organization removal is due after the
//!   configured grace. Gone when they are removed from the organization, or return.
//! - **Held removals** (`h/<id>`): removals the safety valve holds, until an operator
//!   approves them or they are no longer needed.
//! - **The removal window** (`w/<time>/<n>`): how many removals each pass applied and
//!   when, so the valve counts a trickle of removals across passes and restarts.
//! - **Identity claims** (`c/<canonical email>/<scim id>`): directory users whose
//!   emails name one downstream member, so the event path sees every claimant.
//!
//! This module is the pure model: the records, [`Ownership`] (all of them, or the part
//! the event path loaded) and [`Change`], the only way either copy changes.
//! [`store`] is their persistence and [`Ledger`], the one place that changes both:
//! it commits a change with the audit entry that explains it (the store refuses
//! ownership writes without one) and then applies it to the in-memory copy, so the
//! two never drift apart.

pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::cowork::OrgRole;
use crate::reconcile::plan::ActionKind;

pub use store::{count_memberships, load_all, load_for, write, Ledger};

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

/// Why a governed user is being offboarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardReason {
    /// The IdP set `active: false`.
    Deactivated,
    /// The IdP deleted the user.
    Deleted,
}

impl OffboardReason {
    /// `deactivated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            OffboardReason::Deactivated => "deactivated",
            OffboardReason::Deleted => "deleted",
        }
    }
}

/// A governed user the IdP deactivated or deleted, whose organization removal may
/// still be due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offboarding {
    /// SCIM id.
    pub scim_id: String,
    /// The downstream member, when they were one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Deactivated or deleted.
    pub reason: OffboardReason,
    /// When the daemon first saw it (its clock): the grace counts from here.
    pub since: chrono::DateTime<chrono::Utc>,
    /// The IdP change that caused it, when known (`scim.user.patch`, outbox 42).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A removal the safety valve holds until an operator approves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRemoval {
    /// Short stable id (from the fingerprint), what `approve` takes.
    pub id: String,
    /// The action's fingerprint: the same removal planned again is the same record.
    pub fingerprint: String,
    /// What kind of removal.
    pub kind: ActionKind,
    /// `group:<key>` or `user:<scim id>`.
    pub target: String,
    /// The action's sentence (ids and group names, never emails).
    pub description: String,
    /// The directory user it concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_id: Option<String>,
    /// Why it is held.
    pub reason: String,
    /// When it was first held.
    pub held_at: chrono::DateTime<chrono::Utc>,
    /// Who approved it (the token subject), once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// When it was approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl HeldRemoval {
    /// The id of the held removal with this fingerprint.
    pub fn id_of(fingerprint: &str) -> String {
        let key = crate::cowork::IdempotencyKey::derive(&["held", fingerprint]);
        let hex = key.as_str().trim_start_matches("cs_");
        format!("h_{}", hex.get(..12).unwrap_or(hex))
    }
}

/// Removals one pass applied on its own (not approved, not forced), for the valve's
/// sliding window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalEvent {
    /// When (daemon clock).
    pub at: chrono::DateTime<chrono::Utc>,
    /// A number that keeps events of the same instant apart.
    pub n: u64,
    /// Memberships removed (deleted groups count each governed member).
    pub memberships: usize,
    /// Members removed from the organization (and invites withdrawn).
    pub org: usize,
}

/// A directory user whose email names the same downstream member as another's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Claim {
    /// The canonical email (lowercased, `+tag` dropped).
    pub email: String,
    /// SCIM id.
    pub scim_id: String,
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
    /// Offboarding in progress, by SCIM id.
    pub offboarding: BTreeMap<String, Offboarding>,
    /// Held removals, by fingerprint (always loaded whole).
    pub held: BTreeMap<String, HeldRemoval>,
    /// The removal window's events (always loaded whole).
    pub removals: Vec<RemovalEvent>,
    /// Identity claims of the users in view.
    pub claims: BTreeSet<Claim>,
    /// How many memberships are recorded in all (also when only part was loaded).
    pub membership_count: usize,
    /// How many links name a downstream member in all (also when only part was loaded).
    pub member_count: usize,
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
                    let had = self
                        .links
                        .insert(l.scim_id.clone(), l.clone())
                        .is_some_and(|old| old.user_id.is_some());
                    match (had, l.user_id.is_some()) {
                        (false, true) => self.member_count += 1,
                        (true, false) => self.member_count = self.member_count.saturating_sub(1),
                        _ => {}
                    }
                }
                Change::ForgetLink { scim_id } => {
                    if self
                        .links
                        .remove(scim_id)
                        .is_some_and(|old| old.user_id.is_some())
                    {
                        self.member_count = self.member_count.saturating_sub(1);
                    }
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
                Change::PutOffboarding(o) => {
                    self.offboarding.insert(o.scim_id.clone(), o.clone());
                }
                Change::ForgetOffboarding { scim_id } => {
                    self.offboarding.remove(scim_id);
                }
                Change::PutHeld(h) => {
                    self.held.insert(h.fingerprint.clone(), h.clone());
                }
                Change::ForgetHeld { fingerprint } => {
                    self.held.remove(fingerprint);
                }
                Change::PutRemovals(e) => self.removals.push(e.clone()),
                Change::ForgetRemovals { at, n } => {
                    self.removals.retain(|e| !(e.at == *at && e.n == *n));
                }
                Change::PutClaim(c) => {
                    self.claims.insert(c.clone());
                }
                Change::ForgetClaim(c) => {
                    self.claims.remove(c);
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
    /// Records that a governed user is being offboarded.
    PutOffboarding(Offboarding),
    /// Ends an offboarding (done, or the user returned).
    ForgetOffboarding {
        /// SCIM id.
        scim_id: String,
    },
    /// Records a held removal (new, or approved).
    PutHeld(HeldRemoval),
    /// Forgets a held removal (applied, or no longer needed).
    ForgetHeld {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// Records removals a pass applied on its own.
    PutRemovals(RemovalEvent),
    /// Forgets a removal event that left the window.
    ForgetRemovals {
        /// Its time.
        at: chrono::DateTime<chrono::Utc>,
        /// Its number.
        n: u64,
    },
    /// Records an identity claim.
    PutClaim(Claim),
    /// Forgets an identity claim.
    ForgetClaim(Claim),
}
