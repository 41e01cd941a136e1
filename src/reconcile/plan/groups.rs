//! Phase: the downstream group each rule key stands for. Groups are bound by the
//! `external_id` (extended mode) or the id recorded in ownership (real mode), never
//! by name; a `source_type: scim` group carrying a rule key is a conflict, left
//! alone. A group missing downstream is created; a group the daemon owns whose key
//! left the rules is deleted (full plans only).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::action::{ActionKind, GroupRef, Op};
use super::findings::Findings;
use super::index::Ctx;
use super::model::{DriftKind, Foreign, ForeignKind};
use crate::cowork::RbacGroup;
use crate::reconcile::ownership::{Change, OwnedGroup};
use crate::rules::DesiredGroup;

/// A desired group bound to what is (or will be) downstream.
pub(super) struct Bound<'a> {
    pub(super) desired: &'a DesiredGroup,
    /// Existing downstream group, when there is one.
    pub(super) actual: Option<&'a RbacGroup>,
    /// The reference actions use.
    pub(super) gref: GroupRef,
    /// Created by this plan.
    pub(super) created: bool,
}

/// The desired groups in scope, by key, bound to the downstream.
pub(super) type BoundGroups<'a> = BTreeMap<&'a str, Bound<'a>>;

/// Rule keys held by objects the daemon must not touch.
pub(super) type Blocked<'a> = BTreeSet<&'a str>;

/// Binds the desired groups in scope; creates the missing ones.
pub(super) fn bind<'a>(ctx: &Ctx<'a>) -> (BoundGroups<'a>, Blocked<'a>, Findings) {
    let mut bound = BoundGroups::new();
    let mut blocked = Blocked::new();
    let mut out = Findings::default();
    let actual = ctx.input.actual;
    let by_ext: HashMap<&str, &RbacGroup> = actual
        .groups
        .values()
        .filter_map(|g| Some((g.external_id.as_deref()?, g)))
        .collect();
    for (key, desired) in &ctx.input.desired.groups {
        if !ctx.in_scope(desired) {
            continue;
        }
        let owned = ctx.input.ownership.groups.get(key);
        let mut found: Option<&RbacGroup> = None;
        if actual.complete {
            found = owned
                .and_then(|o| actual.groups.get(&o.id))
                .filter(|g| !g.is_scim());
            if found.is_none() && ctx.extended() {
                if let Some(g) = by_ext.get(key.as_str()) {
                    if g.is_scim() {
                        blocked.insert(key);
                        out.foreign.push(Foreign {
                            kind: ForeignKind::ScimGroup,
                            target: format!("group:{key}"),
                            id: g.id.clone(),
                        });
                        out.drift(
                                DriftKind::Conflict,
                                format!("group:{key}"),
                                format!(
                                    "the SCIM group {} carries the rule key {key}; it is never modified, so the rule's group is not managed",
                                    g.id
                                ),
                                None,
                            );
                        continue;
                    }
                    found = Some(g);
                }
            }
            if let Some(g) = found {
                if owned.map(|o| o.id.as_str()) != Some(g.id.as_str()) {
                    out.sync.push(Change::PutGroup(OwnedGroup {
                        key: key.clone(),
                        id: g.id.clone(),
                        name: g.name.clone(),
                        created: owned.is_some_and(|o| o.created),
                    }));
                }
            } else if owned.is_some() {
                out.notes.push(format!(
                    "group {key} was deleted downstream; it is created again"
                ));
            }
        }
        let gref = match (found, owned, actual.complete) {
            (Some(g), _, _) => GroupRef {
                key: key.clone(),
                id: Some(g.id.clone()),
                name: desired.name.clone(),
            },
            (None, Some(o), false) => GroupRef {
                key: key.clone(),
                id: Some(o.id.clone()),
                name: desired.name.clone(),
            },
            _ => GroupRef {
                key: key.clone(),
                id: None,
                name: desired.name.clone(),
            },
        };
        let created = gref.id.is_none();
        if created {
            out.push(
                ActionKind::CreateGroup,
                format!("group:{key}"),
                format!("create group {:?} (key {key})", desired.name),
                Op::CreateGroup {
                    group_key: key.clone(),
                    name: desired.name.clone(),
                    description: if ctx.extended() {
                        desired.description.clone()
                    } else {
                        None
                    },
                },
            );
        }
        bound.insert(
            key,
            Bound {
                desired,
                actual: found,
                gref,
                created,
            },
        );
    }
    (bound, blocked, out)
}

/// The groups a full plan deletes.
#[derive(Debug, Default)]
pub(super) struct Deletions<'a> {
    /// Their keys.
    pub(super) keys: BTreeSet<&'a str>,
    /// Memberships of directory users that end with them (each counts as a removal).
    pub(super) governed_memberships: usize,
    /// Keys of those that still have members.
    pub(super) non_empty: Vec<String>,
}

/// Groups the daemon owns whose key left the rules: deleted (full plans only).
pub(super) fn deletions<'a>(ctx: &Ctx<'a>) -> (Deletions<'a>, Findings) {
    let mut gone = Deletions::default();
    let mut out = Findings::default();
    let actual = ctx.input.actual;
    for (key, owned) in &ctx.input.ownership.groups {
        if ctx.input.desired.groups.contains_key(key) {
            continue;
        }
        let Some(g) = actual.groups.get(&owned.id).filter(|g| !g.is_scim()) else {
            out.sync.push(Change::ForgetGroup { key: key.clone() });
            continue;
        };
        let Some(members) = actual.members.get(&g.id) else {
            out.notes.push(format!(
                    "members of group {key} (no longer in the rules) were not read; it is not deleted this run"
                ));
            continue;
        };
        // Deleting the group ends every membership in it: one write, and each
        // governed membership counts as a removal for the valve.
        let (mut governed, mut foreign) = (0usize, 0usize);
        for user_id in members {
            match ctx.classify_member(key, user_id) {
                Ok(_) => governed += 1,
                Err(f) => {
                    out.foreign.push(f);
                    foreign += 1;
                }
            }
        }
        gone.governed_memberships += governed;
        if governed + foreign > 0 {
            gone.non_empty.push(key.clone());
        }
        gone.keys.insert(key.as_str());
        out.push(
            ActionKind::DeleteGroup,
            format!("group:{key}"),
            format!(
                "delete group {:?} (key {key}), which is no longer in the rules{}",
                g.name,
                if governed + foreign > 0 {
                    format!("; {governed} directory user(s) and {foreign} other member(s) lose it")
                } else {
                    " (it is empty)".to_string()
                }
            ),
            Op::DeleteGroup {
                group: GroupRef {
                    key: key.clone(),
                    id: Some(g.id.clone()),
                    name: g.name.clone(),
                },
                governed_members: governed,
                foreign_members: foreign,
            },
        );
    }
    (gone, out)
}
