//! Phase: custom roles. Full plans compare each rule-file role with the downstream
//! role that carries its key (extended mode) or its recorded id, and create or
//! update it (extended) or report the difference (real mode: roles are console
//! only). The event path reads no roles: it knows their ids from the records.
//! Built-in roles (`source.type: "built_in"`, listed beside custom roles) are never
//! ours: never matched to a rule-file role, so never updated, attached or deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::action::{ActionKind, Op, RoleRef};
use super::convert::{role_spec, CONSOLE};
use super::findings::Findings;
use super::index::Ctx;
use super::model::DriftKind;
use crate::cowork::RbacRole;
use crate::reconcile::ownership::{Change, OwnedRole};

/// The role each rule-file key stands for downstream.
#[derive(Debug, Default)]
pub(super) struct Roles {
    /// By role key, with the downstream id when one exists.
    pub(super) refs: BTreeMap<String, RoleRef>,
    /// Keys of the roles this plan creates.
    pub(super) created: BTreeSet<String>,
}

/// Role ids known without reading (the event path): ownership records.
pub(super) fn known(ctx: &Ctx<'_>) -> Roles {
    let mut refs = Roles::default();
    for key in ctx.input.desired.roles.keys() {
        let id = ctx
            .input
            .ownership
            .roles
            .get(key)
            .map(|r| r.id.clone())
            .or_else(|| {
                ctx.input
                    .actual
                    .roles
                    .values()
                    .filter(|r| !r.is_built_in())
                    .find(|r| r.external_id.as_deref() == Some(key))
                    .map(|r| r.id.clone())
            });
        refs.refs.insert(
            key.clone(),
            RoleRef {
                key: key.clone(),
                id,
            },
        );
    }
    refs
}

/// Compares the rule-file roles with the downstream roles (full plans).
pub(super) fn plan(ctx: &Ctx<'_>) -> (Roles, Findings) {
    let mut refs = Roles::default();
    let mut out = Findings::default();
    // Built-in roles are the product's: never matched, so never written.
    let actual: BTreeMap<&String, &RbacRole> = ctx
        .input
        .actual
        .roles
        .iter()
        .filter(|(_, r)| !r.is_built_in())
        .collect();
    let by_ext: HashMap<&str, &RbacRole> = actual
        .values()
        .filter_map(|r| Some((r.external_id.as_deref()?, *r)))
        .collect();
    for (key, role) in &ctx.input.desired.roles {
        let want = role_spec(key, role);
        let found = by_ext.get(key.as_str()).copied().or_else(|| {
            ctx.input
                .ownership
                .roles
                .get(key)
                .and_then(|o| actual.get(&o.id).copied())
        });
        // Real mode has no external_id: a console-made role is recognised by its
        // name, for reporting only (nothing is written to roles in real mode).
        let found = match (found, ctx.extended()) {
            (None, false) => actual.values().copied().find(|r| r.name == role.name),
            (f, _) => f,
        };
        let target = format!("role:{key}");
        match found {
            Some(r) => {
                refs.refs.insert(
                    key.clone(),
                    RoleRef {
                        key: key.clone(),
                        id: Some(r.id.clone()),
                    },
                );
                if r.external_id.as_deref() == Some(key.as_str())
                    && ctx.input.ownership.roles.get(key).map(|o| o.id.as_str())
                        != Some(r.id.as_str())
                {
                    out.sync.push(Change::PutRole(OwnedRole {
                        key: key.clone(),
                        id: r.id.clone(),
                    }));
                }
                // Real mode reads no external_id: compare the definition only.
                let have = r.spec().map(|mut h| {
                    if !ctx.extended() {
                        h.external_id = want.external_id.clone();
                    }
                    h
                });
                match have {
                        None => {}
                        Some(have) if have == want => {}
                        Some(_) if ctx.extended() => out.push(
                            ActionKind::UpdateRole,
                            target,
                            format!("update custom role {:?} (key {key}) to match the rules", role.name),
                            Op::UpdateRole {
                                role_key: key.clone(),
                                role_id: r.id.clone(),
                                spec: want,
                            },
                        ),
                        Some(_) => out.drift(
                            DriftKind::TierB,
                            target,
                            format!("custom role {:?} differs from the rules", role.name),
                            Some(format!(
                                "{CONSOLE} › Roles › {}: edit its permissions to match role {key} of the rules",
                                r.name
                            )),
                        ),
                    }
            }
            None => {
                refs.refs.insert(
                    key.clone(),
                    RoleRef {
                        key: key.clone(),
                        id: None,
                    },
                );
                if ctx.extended() {
                    refs.created.insert(key.clone());
                    out.push(
                        ActionKind::CreateRole,
                        target,
                        format!("create custom role {:?} (key {key})", role.name),
                        Op::CreateRole {
                            role_key: key.clone(),
                            spec: want,
                        },
                    );
                } else {
                    out.drift(
                            DriftKind::TierB,
                            target,
                            format!("custom role {:?} does not exist downstream", role.name),
                            Some(format!(
                                "{CONSOLE} › Roles: create role {:?} as role {key} of the rules defines it",
                                role.name
                            )),
                        );
                }
            }
        }
    }
    (refs, out)
}
