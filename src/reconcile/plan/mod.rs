//! The planner: desired state (from the rules), what is downstream (read, or
//! believed), and what the daemon owns → an ordered list of actions, the drift it
//! cannot write, the objects it must not touch, the users still pending, and the
//! safety valve's verdict.
//!
//! Pure and deterministic: no I/O, no clock; inputs are ordered maps, the output is
//! sorted by action kind, then target, then id. Nothing in this folder imports
//! actix_web, sled or reqwest (CI greps for it).
//!
//! # Layout
//! [`plan`] runs the phases in order; each takes the read-only context (the inputs
//! and the people indexes of `index`) and what earlier phases decided, and returns
//! its own findings (actions, drift, foreign objects, pending users, notes, record
//! changes); nothing is shared and mutable. `model` and `action` hold the types;
//! `identity` decides who is who (emails compared as the Admin API compares them,
//! one rule for collisions); the phases are `org`, `roles`, `groups` (binding and
//! deletions), `group_settings`, `members`, `plugins`, `lifecycle` (offboarding),
//! `users`, and `finish` (order, the safety valve of `valve`, identity claims).
//!
//! # What the daemon governs (design §5)
//! - **Groups** are keyed by rule key: the `external_id` (extended mode) or the id
//!   recorded in ownership (real mode, which has no `external_id`). Never by name.
//!   A `source_type: scim` group is never touched, even when it carries a rule key.
//! - **In a group the daemon owns**, a member who is a directory user (matched by
//!   email, or linked earlier) is governed: a directory user the rules do not put
//!   there is removed, including one added by hand. A member who is not a directory
//!   user, or who holds an admin role (owner, primary owner, membership admin), is
//!   **foreign**: never removed, only reported.
//! - **Groups the daemon does not own** are never touched (no members added or
//!   removed, no rename, no roles).
//! - **Users**: governed users with org role `user` are set to `managed` (never from
//!   an admin role, never when the IdP owns org roles). Users missing downstream are
//!   invited with their groups where invites are allowed, otherwise reported pending;
//!   a pending invite is not repeated.
//!
//! # Exactly one write per difference
//! Memberships are diffed member by member (add/remove), never replaced wholesale, so
//! the number of write calls equals the number of differences, and `plan(x, x)` is
//! empty.
//!
//! # Real mode
//! Tier-B differences (role definitions, role attachment, group spend limits, plugin
//! overrides) are not actions: each is a [`Drift`] entry naming the console step
//! that fixes it. With `materialize_group_spend`, a group's spend limit becomes a
//! per-user override (tier A) for each member, recorded as owned so it is deleted
//! when the member leaves the group.

mod action;
mod convert;
mod findings;
mod finish;
mod group_settings;
mod groups;
mod identity;
mod index;
mod lifecycle;
mod members;
mod model;
mod org;
mod plugins;
mod roles;
mod users;
mod valve;

pub use action::{Action, ActionKind, Because, GroupRef, Op, PluginOverride, RoleRef};
pub use convert::{preference, role_spec, spend_limit_of};
pub use identity::canonical_email;
pub use model::{
    ActualInvite, ActualPlugin, ActualSpend, ActualState, ActualUser, Collision, DirectoryUser,
    DirectoryView, Drift, DriftKind, Foreign, ForeignKind, Held, Offboard, OffboardState,
    OnDeactivate, Pending, PendingReason, Plan, PlanInput, PlanOptions, PoolCap, Scope, Valve,
};

use findings::Findings;
use index::Ctx;

/// Plans. See the module documentation for the rules it follows.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let ctx = Ctx::new(input);
    let full = ctx.scope.is_full();
    let mut found = Findings::default();
    let roles = if full {
        found.extend(org::check(&ctx));
        let (roles, f) = roles::plan(&ctx);
        found.extend(f);
        roles
    } else {
        roles::known(&ctx)
    };
    let (bound, blocked, f) = groups::bind(&ctx);
    found.extend(f);
    found.extend(group_settings::plan(&ctx, &bound, &roles));
    let (members, f) = members::plan(&ctx, &bound);
    found.extend(f);
    let deletions = if full {
        found.extend(plugins::plan(&ctx, &bound));
        let (deletions, f) = groups::deletions(&ctx);
        found.extend(f);
        deletions
    } else {
        groups::Deletions::default()
    };
    let (handled, f) = lifecycle::plan(&ctx);
    found.extend(f);
    let f = users::plan(&ctx, &bound, &blocked, &found.actions, &handled);
    found.extend(f);
    found.extend(members::forget_stale_beliefs(
        &ctx,
        &bound,
        &members,
        &deletions.keys,
    ));
    let managed = members.managed + deletions.governed_memberships;
    finish::finish(&ctx, found, managed, deletions)
}

#[cfg(test)]
mod tests;
