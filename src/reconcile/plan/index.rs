//! The planner's read-only context: the inputs, and the indexes every phase looks
//! people up in, built once. Directory users get dense indices (`u32`), so member
//! diffs cost one hash lookup per membership on each side; hashing uses Fx.

use std::collections::HashMap;

use super::action::Because;
use super::identity::{canonical_email, Identity};
use super::model::{ActualUser, Collision, Foreign, ForeignKind, PlanInput, Scope};
use crate::cowork::Mode;
use crate::rules::DesiredGroup;

/// The Fx hash (as in rustc): the planner hashes millions of short ids; SipHash's
/// flooding resistance buys nothing here and costs a third of the planning time.
#[derive(Default, Clone, Copy)]
pub(super) struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits (the bucket index) weak; mix them
        // (MurmurHash3's finalizer) so similar ids do not collide.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

pub(super) type FxBuild = std::hash::BuildHasherDefault<Fx>;
pub(super) type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// A set of directory user indices.
pub(super) struct Bits(Vec<u64>);

impl Bits {
    pub(super) fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    pub(super) fn get(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// Sets a bit; `true` if it was clear.
    pub(super) fn set(&mut self, i: u32) -> bool {
        let i = i as usize;
        match self.0.get_mut(i / 64) {
            Some(w) => {
                let was = *w & (1 << (i % 64)) != 0;
                *w |= 1 << (i % 64);
                !was
            }
            None => false,
        }
    }
}

/// A downstream member: whether they hold an admin role, and the directory user
/// behind them (by email, or by an earlier link).
#[derive(Clone, Copy)]
pub(super) struct MemberInfo {
    pub(super) admin: bool,
    pub(super) person: Option<u32>,
}

/// What every phase reads: the inputs and the people indexes.
pub(super) struct Ctx<'a> {
    pub(super) input: PlanInput<'a>,
    pub(super) mode: Mode,
    pub(super) scope: &'a Scope,
    /// Every directory user the plan deals with, by dense index.
    pub(super) scim_ix: FxMap<&'a str, u32>,
    /// SCIM ids by index.
    pub(super) scims: Vec<&'a str>,
    /// Downstream members by id.
    pub(super) member: FxMap<&'a str, MemberInfo>,
    /// Downstream member id → the directory user linked to it.
    pub(super) linked: FxMap<&'a str, u32>,
    /// Governed users found downstream, by SCIM id.
    downstream_of: FxMap<&'a str, &'a ActualUser>,
    /// Believed members (directory user indices) by group key.
    pub(super) believed: FxMap<&'a str, Vec<u32>>,
    /// Desired group keys by SCIM id (built only when materializing spend).
    groups_by_user: Option<FxMap<&'a str, Vec<&'a str>>>,
    /// Directory users not matched → the user matched instead.
    loser_of: FxMap<&'a str, &'a str>,
    /// Emails several directory users claim, with the member they name.
    pub(super) collisions: Vec<Collision>,
    /// The same, by canonical email (the identity claims to record).
    pub(super) claimed: Vec<(String, Collision)>,
}

/// Where a directory user stands in the IdP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UserStatus {
    /// Present and active.
    Active,
    /// Present with `active: false`.
    Inactive,
    /// Not in the directory (deleted), for a user in scope.
    Deleted,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(input: PlanInput<'a>) -> Self {
        let actual = input.actual;
        let identity = Identity::new(&input);
        let mut scim_ix: FxMap<&str, u32> = FxMap::default();
        let mut scims: Vec<&str> = Vec::new();
        let mut index = |s: &'a str, scim_ix: &mut FxMap<&'a str, u32>| -> u32 {
            *scim_ix.entry(s).or_insert_with(|| {
                scims.push(s);
                u32::try_from(scims.len() - 1).unwrap_or(u32::MAX)
            })
        };
        for scim in input.desired.managed_users.keys() {
            index(scim, &mut scim_ix);
        }
        let mut linked: FxMap<&str, u32> = FxMap::default();
        for l in input.ownership.links.values() {
            if let Some(uid) = l.user_id.as_deref() {
                linked.insert(uid, index(&l.scim_id, &mut scim_ix));
            }
        }
        // Downstream members by canonical email: where two share one (they should
        // not), the one whose email has no tag, then the smallest id.
        let mut users_by_email: HashMap<String, &ActualUser> = HashMap::new();
        for u in actual.users.values() {
            let canonical = canonical_email(&u.email);
            let rank = |x: &ActualUser| (!x.email.eq_ignore_ascii_case(&canonical), x.id.clone());
            match users_by_email.get(&canonical) {
                Some(have) if rank(have) <= rank(u) => {}
                _ => {
                    users_by_email.insert(canonical.clone(), u);
                }
            }
        }
        let mut member: FxMap<&str, MemberInfo> = FxMap::default();
        for u in actual.users.values() {
            let person = match identity.matched.get(&canonical_email(&u.email)) {
                Some(s) => Some(index(s, &mut scim_ix)),
                None => linked.get(u.id.as_str()).copied(),
            };
            member.insert(
                u.id.as_str(),
                MemberInfo {
                    admin: u.role.is_admin(),
                    person,
                },
            );
        }
        let mut believed: FxMap<&str, Vec<u32>> = FxMap::default();
        let mut last: Option<(&str, u32)> = None;
        for (scim, key) in input.ownership.memberships.keys() {
            let ix = match last {
                Some((s, i)) if s == scim => i,
                _ => index(scim, &mut scim_ix),
            };
            last = Some((scim.as_str(), ix));
            believed.entry(key.as_str()).or_default().push(ix);
        }
        let mut downstream_of: FxMap<&str, &ActualUser> = FxMap::default();
        for (scim, m) in &input.desired.managed_users {
            let Some(email) = m.email.as_deref() else {
                continue;
            };
            if identity.loser_of.contains_key(scim.as_str()) {
                continue; // another directory user holds this member
            }
            // By email; else the member the user was linked to before (their email
            // changed in the IdP, the account stays the same).
            let found = users_by_email
                .get(&canonical_email(email))
                .copied()
                .or_else(|| {
                    let uid = input.ownership.links.get(scim)?.user_id.as_ref()?;
                    actual.users.get(uid)
                });
            if let Some(u) = found {
                downstream_of.insert(scim.as_str(), u);
            }
        }
        let collisions = identity
            .collisions
            .iter()
            .map(|(email, c)| Collision {
                member_id: users_by_email.get(email).map(|u| u.id.clone()),
                ..c.clone()
            })
            .collect();
        let groups_by_user = (input.options.mode == Mode::Real
            && input.options.materialize_group_spend)
            .then(|| {
                let mut map: FxMap<&str, Vec<&str>> = FxMap::default();
                for g in input.desired.groups.values() {
                    for m in &g.members {
                        map.entry(m.as_str()).or_default().push(g.key.as_str());
                    }
                }
                map
            });
        Ctx {
            input,
            mode: input.options.mode,
            scope: &input.options.scope,
            scim_ix,
            scims,
            member,
            linked,
            downstream_of,
            believed,
            groups_by_user,
            loser_of: identity.loser_of,
            collisions,
            claimed: identity.collisions,
        }
    }

    /// Where a directory user in scope stands in the IdP.
    pub(super) fn status(&self, scim: &str) -> UserStatus {
        match self.input.directory.users.get(scim) {
            Some(u) if u.active => UserStatus::Active,
            Some(_) => UserStatus::Inactive,
            None => UserStatus::Deleted,
        }
    }

    /// The directory user matched instead of `scim`, when another claims its member.
    pub(super) fn matched_instead(&self, scim: &str) -> Option<&'a str> {
        self.loser_of.get(scim).copied()
    }

    /// Why a directory user in scope is removed from a group of the daemon's:
    /// `group` is the group's desired state when the rules still have it, `believed`
    /// whether the daemon made the membership.
    pub(super) fn because(
        &self,
        scim: &str,
        group: Option<&DesiredGroup>,
        believed: bool,
    ) -> Because {
        match self.status(scim) {
            UserStatus::Inactive => Because::Deactivated,
            UserStatus::Deleted => Because::Deleted,
            UserStatus::Active => match (self.matched_instead(scim), group) {
                (Some(other), _) => Because::IdentityCollision {
                    matched: other.to_string(),
                },
                (None, Some(g)) if believed && !g.rules.is_empty() => Because::NoLongerMatched {
                    rules: g.rules.iter().cloned().collect(),
                },
                _ => Because::NotInRules,
            },
        }
    }

    /// The directory user a downstream member stands for, if any.
    pub(super) fn person_of(&self, user_id: &str) -> Option<&'a str> {
        self.member
            .get(user_id)
            .and_then(|m| m.person)
            .or_else(|| self.linked.get(user_id).copied())
            .map(|p| self.scim(p))
    }

    pub(super) fn extended(&self) -> bool {
        self.mode == Mode::Extended
    }

    /// Real mode writing group spend limits as per-user overrides.
    pub(super) fn materializing(&self) -> bool {
        !self.extended() && self.input.options.materialize_group_spend
    }

    /// The downstream member a governed user was matched to (by email).
    pub(super) fn downstream(&self, scim: &str) -> Option<&'a ActualUser> {
        self.downstream_of.get(scim).copied()
    }

    pub(super) fn scim(&self, person: u32) -> &'a str {
        self.scims.get(person as usize).copied().unwrap_or("")
    }

    /// A downstream member of one of the daemon's groups: `Ok(person)` when governed,
    /// `Err(foreign)` when not (an admin, or not a directory user).
    pub(super) fn classify_member(&self, key: &str, user_id: &str) -> Result<u32, Foreign> {
        let governed = match self.member.get(user_id) {
            // An admin is never managed, whoever they are in the directory.
            Some(m) if m.admin => {
                return Err(Foreign {
                    kind: ForeignKind::AdminMember,
                    target: format!("group:{key}"),
                    id: user_id.to_string(),
                })
            }
            // A directory user by email, or one the daemon linked earlier.
            Some(m) => m.person,
            // Not in the member list (another org of the enterprise, or removed
            // meanwhile): a directory user only if the daemon linked it.
            None => self.linked.get(user_id).copied(),
        };
        governed.ok_or_else(|| Foreign {
            kind: ForeignKind::NonDirectoryMember,
            target: format!("group:{key}"),
            id: user_id.to_string(),
        })
    }

    /// Whether the event path's scope touches a desired group.
    pub(super) fn in_scope(&self, g: &DesiredGroup) -> bool {
        match self.scope {
            Scope::Full => true,
            Scope::Users(users) => g.members.iter().any(|m| users.contains(m)),
        }
    }

    /// Keys of the desired groups a user belongs to.
    pub(super) fn groups_of(&self, scim_id: &str) -> Vec<&'a str> {
        match &self.groups_by_user {
            Some(map) => map.get(scim_id).cloned().unwrap_or_default(),
            None => self
                .input
                .desired
                .groups
                .values()
                .filter(|g| g.members.contains(scim_id))
                .map(|g| g.key.as_str())
                .collect(),
        }
    }

    /// A role's display name (its key when the rules do not name it).
    pub(super) fn role_name(&self, key: &str) -> String {
        self.input
            .desired
            .roles
            .get(key)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| key.to_string())
    }
}
