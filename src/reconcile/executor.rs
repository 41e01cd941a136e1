//! The executor: applies a plan's actions in order through the [`CoworkApi`].
//!
//! For each action it derives the idempotency key from the caller's prefix (the run
//! number, or the outbox sequence number) and the action's fingerprint, so a retry,
//! or a replay after a crash, sends the same key and the server answers with its
//! first answer instead of applying twice; adds and removes also converge on
//! "already a member" / "not a member". Once the server answered, the action's
//! ownership changes and its `downstream.<kind>` audit entry commit in ONE store
//! transaction through the [`Ledger`], flushed before the next action: the record of
//! an action and its audit entry never part, and the in-memory records follow.
//!
//! In real mode a group create cannot be made idempotent (no key, no `external_id`,
//! names not unique), so its intent is recorded before the request goes out; a later
//! attempt under a recorded intent first looks for the group that lost create made
//! (see [`find_lost_create`]) and adopts it instead of creating a second one.
//!
//! A group or role created earlier in the plan gets its id here; an action whose
//! group could not be created is skipped. A refused key (401/403) stops the run; a
//! transient failure stops it when the caller asks (the event path keeps order).
//! Imports the client trait, the store trait, audit and ownership; never a framework.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::error::ReconcileError;
use super::ownership::{
    Change, Ledger, Membership, OwnedGroup, OwnedRole, OwnedSpend, Ownership, PendingGroup,
    UserLink,
};
use super::plan::{Action, ActionKind, Because, GroupRef, Op};
use super::report::{ActionError, Phase, Progress, ProgressFn};
use crate::audit::AuditDraft;
use crate::clock::SharedClock;
use crate::cowork::{
    CoworkApi, CoworkError, Created, GroupOverride, GroupUpdate, IdempotencyKey, InviteRequest,
    Mode, NewGroup, Outcome, PluginPolicyUpdate, RbacGroup, SourceType,
};
use crate::rules::SpendLimit;

/// How to apply.
pub struct Executor<'a, C> {
    /// The downstream client.
    pub client: &'a C,
    /// The daemon's clock (the time a real-mode create is requested).
    pub clock: SharedClock,
    /// Audit actor: `reconciler` or `outbox`.
    pub actor: &'static str,
    /// Idempotency key prefix: `run:<n>` or `outbox:<seq>`.
    pub key_prefix: String,
    /// Facts added to every audit entry (`{"run": n}` or `{"outbox_seq": n}`).
    pub context: Value,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Log and report progress every this many actions.
    pub progress_every: usize,
    /// Stop at the first transient failure (the event path).
    pub stop_on_transient: bool,
}

/// What applying did.
#[derive(Debug, Clone, Default)]
pub struct Executed {
    /// The server changed something.
    pub applied: usize,
    /// Already in state.
    pub already_in_state: usize,
    /// Failed.
    pub failed: usize,
    /// Not attempted.
    pub skipped: usize,
    /// Applied or converged, by kind.
    pub done_by_kind: BTreeMap<ActionKind, usize>,
    /// Failures.
    pub errors: Vec<ActionError>,
    /// Stopped early on a transient failure.
    pub stopped_transient: bool,
    /// Memberships removed that count in the valve's window (not approved ones).
    pub removals: usize,
    /// Organization removals and withdrawn invites that count in the window.
    pub org_removals: usize,
    /// Directory users an applied (or converged) action concerned.
    pub done_users: std::collections::BTreeSet<String>,
}

struct Done {
    outcome: Outcome,
    changes: Vec<Change>,
}

enum Step {
    Done(Done),
    Skip(String),
}

/// How far the downstream's clock may run behind ours when a lost create is looked
/// for: a group created earlier than this before the first request is not its work.
pub const CREATE_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(2);

/// How long after the last request a server could still have applied it (far above
/// the client's timeouts, plus the clock skew).
pub const CREATE_HORIZON: chrono::Duration = chrono::Duration::hours(1);

/// The group a lost create made, if the downstream shows one: a `direct` group with
/// the intended name, created between the first request (less [`CREATE_CLOCK_SKEW`])
/// and [`CREATE_HORIZON`] after the last one, with no roles yet, and not recorded
/// under any key. The earliest such group wins (a create applied twice leaves the
/// later group to an operator).
pub fn find_lost_create<'g>(
    groups: &'g [RbacGroup],
    pending: &PendingGroup,
    ownership: &Ownership,
) -> Option<&'g RbacGroup> {
    let since = pending.requested_at - CREATE_CLOCK_SKEW;
    let until = pending.last_sent_at + CREATE_HORIZON;
    groups
        .iter()
        .filter(|g| g.source_type == SourceType::Direct)
        .filter(|g| g.name == pending.name)
        .filter(|g| g.created_at >= since && g.created_at <= until)
        .filter(|g| g.roles.as_ref().is_none_or(Vec::is_empty))
        .filter(|g| ownership.key_of_group(&g.id).is_none())
        .min_by_key(|g| (g.created_at, g.id.clone()))
}

/// Records a group under its rule key and ends any create in flight for that key.
fn owned_group(key: &str, name: &str, id: &str, created: bool) -> Vec<Change> {
    vec![
        Change::PutGroup(OwnedGroup {
            key: key.to_string(),
            id: id.to_string(),
            name: name.to_string(),
            created,
        }),
        Change::ForgetPendingGroup {
            key: key.to_string(),
        },
    ]
}

/// Memberships an action removes (for the valve's window).
fn removal_units(action: &Action) -> usize {
    match &action.op {
        Op::RemoveMember { .. } => 1,
        Op::DeleteGroup {
            governed_members, ..
        } => *governed_members,
        _ => 0,
    }
}

/// What ends downstream with an organization removal or a withdrawn invite: the
/// offboarding record, the user's believed memberships and owned override, and the
/// link (a deleted user's goes; a deactivated user's keeps the email, naming nothing).
fn offboarded(ownership: &Ownership, scim_id: &str, deleted: bool) -> Vec<Change> {
    let mut changes = vec![Change::ForgetOffboarding {
        scim_id: scim_id.to_string(),
    }];
    changes.extend(
        ownership
            .memberships_of(scim_id)
            .map(|m| Change::ForgetMembership {
                scim_id: m.scim_id.clone(),
                group_key: m.group_key.clone(),
            }),
    );
    if ownership.spend.contains_key(scim_id) {
        changes.push(Change::ForgetSpend {
            scim_id: scim_id.to_string(),
        });
    }
    match (deleted, ownership.links.get(scim_id)) {
        (true, _) => changes.push(Change::ForgetLink {
            scim_id: scim_id.to_string(),
        }),
        (false, Some(l)) => changes.push(Change::PutLink(UserLink {
            user_id: None,
            role: None,
            invite_id: None,
            ..l.clone()
        })),
        (false, None) => {}
    }
    changes
}

fn amount(limit: SpendLimit) -> Option<u64> {
    match limit {
        SpendLimit::Amount(n) => Some(n),
        SpendLimit::Unlimited => None,
    }
}

impl<C: CoworkApi> Executor<'_, C> {
    fn group_id(&self, g: &GroupRef, ownership: &Ownership) -> Option<String> {
        g.id.clone()
            .or_else(|| ownership.groups.get(&g.key).map(|o| o.id.clone()))
    }

    /// Applies `actions` in order, committing each outcome through `ledger`.
    pub async fn run(
        &self,
        actions: &[Action],
        ledger: &mut Ledger,
    ) -> Result<Executed, ReconcileError> {
        let mut out = Executed::default();
        let total = actions.len();
        for (i, action) in actions.iter().enumerate() {
            let key = IdempotencyKey::derive(&[self.key_prefix.as_str(), &action.fingerprint()]);
            // Forget a request id left over from a call outside this action.
            drop(self.client.take_write_request_id());
            let step = match self.begin_create(action, ledger).await? {
                Err(e) => Err(e),
                Ok(Some(found)) => Ok(found),
                Ok(None) => self.apply(action, &key, ledger.ownership()).await,
            };
            match step {
                Ok(Step::Done(mut done)) => {
                    let outcome = match done.outcome {
                        Outcome::Applied => "applied",
                        Outcome::AlreadyInState => "already_in_state",
                    };
                    let request_id = self.client.take_write_request_id();
                    // An approved removal: its held record ends with it, and the entry
                    // names who approved it.
                    let fingerprint = action.fingerprint();
                    let approval = match ledger.ownership().held.get(&fingerprint) {
                        Some(h) => Some(json!({ "held_id": h.id, "approved_by": h.approved_by })),
                        None if action.kind.is_org_removal() => {
                            out.org_removals += 1;
                            None
                        }
                        None => {
                            out.removals += removal_units(action);
                            None
                        }
                    };
                    if approval.is_some() {
                        done.changes.push(Change::ForgetHeld { fingerprint });
                    }
                    let draft = self.audit_draft(action, outcome, request_id, approval);
                    ledger.commit(draft, done.changes).await?;
                    match done.outcome {
                        Outcome::Applied => out.applied += 1,
                        Outcome::AlreadyInState => out.already_in_state += 1,
                    }
                    *out.done_by_kind.entry(action.kind).or_insert(0) += 1;
                    if let Some(scim) = action.scim_id() {
                        out.done_users.insert(scim.to_string());
                    }
                }
                Ok(Step::Skip(reason)) => {
                    out.skipped += 1;
                    out.errors.push(ActionError {
                        kind: action.kind,
                        target: action.target.clone(),
                        scim_id: action.scim_id().map(str::to_string),
                        error: reason,
                        request_id: None,
                        transient: false,
                    });
                }
                Err(e) => {
                    out.failed += 1;
                    let transient = e.is_retryable();
                    tracing::warn!(
                        kind = action.kind.as_str(),
                        target = %action.target,
                        request_id = e.request_id().unwrap_or(""),
                        transient,
                        "downstream action failed"
                    );
                    out.errors.push(ActionError {
                        kind: action.kind,
                        target: action.target.clone(),
                        scim_id: action.scim_id().map(str::to_string),
                        error: e.to_string(),
                        request_id: e.request_id().map(str::to_string),
                        transient,
                    });
                    let refused_key = matches!(e, CoworkError::Unauthorized { .. });
                    if refused_key || (transient && self.stop_on_transient) {
                        out.stopped_transient = transient;
                        out.skipped += total - i - 1;
                        break;
                    }
                }
            }
            let done = i + 1;
            if self.progress_every > 0 && (done % self.progress_every == 0 || done == total) {
                tracing::info!(
                    done,
                    total,
                    actor = self.actor,
                    "applying downstream actions"
                );
                if let Some(p) = &self.progress {
                    p(&Progress {
                        phase: Phase::Applying,
                        done,
                        total,
                        message: format!("{done} of {total} actions"),
                    });
                }
            }
        }
        Ok(out)
    }

    /// The `downstream.<kind>` audit entry of an action with its outcome and, when
    /// the server named it, the request that made the change.
    fn audit_draft(
        &self,
        action: &Action,
        outcome: &str,
        request_id: Option<String>,
        approval: Option<Value>,
    ) -> AuditDraft {
        let mut details = json!({
            "outcome": outcome,
            "context": self.context,
            "action": action.op,
        });
        if let Some(map) = details.as_object_mut() {
            if let Some(id) = request_id {
                map.insert("request_id".into(), Value::String(id));
            }
            if let Some(a) = approval {
                map.insert("approval".into(), a);
            }
        }
        AuditDraft::new(
            self.actor,
            &format!("downstream.{}", action.kind),
            Some(&action.target),
        )
        .with(details)
    }

    /// Real mode, before a group create: under an intent an earlier attempt recorded,
    /// looks for the group that attempt may have made and answers with it; otherwise
    /// records that a request is about to be sent (a new intent, or the intent's
    /// `last_sent_at`), with its audit entry, and answers `None`: send it.
    async fn begin_create(
        &self,
        action: &Action,
        ledger: &mut Ledger,
    ) -> Result<Result<Option<Step>, CoworkError>, ReconcileError> {
        let Op::CreateGroup {
            group_key, name, ..
        } = &action.op
        else {
            return Ok(Ok(None));
        };
        if self.client.mode() != Mode::Real {
            return Ok(Ok(None));
        }
        let now = self.clock.now();
        let ownership = ledger.ownership();
        let intent = match ownership.pending_groups.get(group_key) {
            Some(pending) => {
                let groups = match self.client.list_groups().await {
                    Ok(groups) => groups,
                    Err(e) => return Ok(Err(e)),
                };
                if let Some(found) = find_lost_create(&groups, pending, ownership) {
                    tracing::info!(
                        group = %group_key,
                        id = %found.id,
                        "found the group an earlier create made; adopting it"
                    );
                    let changes = owned_group(group_key, name, &found.id, true);
                    return Ok(Ok(Some(Step::Done(Done {
                        outcome: Outcome::AlreadyInState,
                        changes,
                    }))));
                }
                PendingGroup {
                    last_sent_at: now,
                    ..pending.clone()
                }
            }
            None => PendingGroup {
                key: group_key.clone(),
                name: name.clone(),
                requested_at: now,
                last_sent_at: now,
            },
        };
        let draft = self.audit_draft(action, "requested", None, None);
        ledger
            .commit(draft, vec![Change::PutPendingGroup(intent)])
            .await?;
        Ok(Ok(None))
    }

    async fn apply(
        &self,
        action: &Action,
        key: &IdempotencyKey,
        ownership: &Ownership,
    ) -> Result<Step, CoworkError> {
        let c = self.client;
        let missing = |g: &GroupRef| {
            Step::Skip(format!(
                "group {} does not exist downstream yet (its creation did not succeed)",
                g.key
            ))
        };
        let done = |outcome: Outcome, changes: Vec<Change>| Step::Done(Done { outcome, changes });
        Ok(match &action.op {
            Op::CreateRole { role_key, spec } => {
                let created = c.create_role(spec, key).await?;
                let outcome = match created {
                    Created::New(_) => Outcome::Applied,
                    Created::Existing { .. } => Outcome::AlreadyInState,
                };
                done(
                    outcome,
                    vec![Change::PutRole(OwnedRole {
                        key: role_key.clone(),
                        id: created.id().to_string(),
                    })],
                )
            }
            Op::UpdateRole {
                role_key,
                role_id,
                spec,
            } => {
                c.update_role(role_id, spec, key).await?;
                done(
                    Outcome::Applied,
                    vec![Change::PutRole(OwnedRole {
                        key: role_key.clone(),
                        id: role_id.clone(),
                    })],
                )
            }
            Op::CreateGroup {
                group_key,
                name,
                description,
            } => {
                let new = NewGroup {
                    name: name.clone(),
                    description: description.clone(),
                    external_id: Some(group_key.clone()),
                    managed_by: Some("cowork-sync".into()),
                };
                let created = c.create_group(&new, key).await?;
                let (outcome, fresh) = match &created {
                    Created::New(_) => (Outcome::Applied, true),
                    Created::Existing { .. } => (Outcome::AlreadyInState, false),
                };
                done(outcome, owned_group(group_key, name, created.id(), fresh))
            }
            Op::UpdateGroup {
                group,
                rename_to,
                description,
            } => {
                let Some(id) = self.group_id(group, ownership) else {
                    return Ok(missing(group));
                };
                let update = GroupUpdate {
                    name: rename_to.clone(),
                    description: description.clone(),
                };
                let g = c.update_group(&id, &update, key).await?;
                let created = ownership.groups.get(&group.key).is_some_and(|o| o.created);
                done(
                    Outcome::Applied,
                    vec![Change::PutGroup(OwnedGroup {
                        key: group.key.clone(),
                        id,
                        name: g.name,
                        created,
                    })],
                )
            }
            Op::SetGroupRoles { group, roles } => {
                let Some(id) = self.group_id(group, ownership) else {
                    return Ok(missing(group));
                };
                let mut ids = Vec::new();
                for r in roles {
                    match r
                        .id
                        .clone()
                        .or_else(|| ownership.roles.get(&r.key).map(|o| o.id.clone()))
                    {
                        Some(rid) => ids.push(rid),
                        None => {
                            return Ok(Step::Skip(format!(
                                "role {} does not exist downstream yet",
                                r.key
                            )))
                        }
                    }
                }
                c.set_group_roles(&id, &ids, key).await?;
                done(Outcome::Applied, Vec::new())
            }
            Op::SetGroupSpend {
                group,
                limit,
                currency,
            } => {
                let Some(id) = self.group_id(group, ownership) else {
                    return Ok(missing(group));
                };
                c.upsert_group_spend_limit(&id, amount(*limit), currency, key)
                    .await?;
                done(Outcome::Applied, Vec::new())
            }
            Op::ClearGroupSpend { spend_limit_id, .. } => {
                let outcome = c.delete_spend_limit(spend_limit_id, key).await?;
                done(outcome, Vec::new())
            }
            Op::SetPluginPolicy {
                plugin_id,
                overrides,
                keep,
            } => {
                let mut list: Vec<GroupOverride> = keep.clone();
                for o in overrides {
                    let Some(id) = self.group_id(&o.group, ownership) else {
                        return Ok(missing(&o.group));
                    };
                    list.push(GroupOverride {
                        rbac_group_id: id,
                        preference: o.preference,
                    });
                }
                list.sort();
                let update = PluginPolicyUpdate {
                    org_preference: None,
                    group_overrides: list,
                };
                c.put_plugin_policy(plugin_id, &update, key).await?;
                done(Outcome::Applied, Vec::new())
            }
            Op::SetOrgPluginSetting {
                plugin_id,
                preference,
                ..
            } => {
                let target = crate::cowork::PluginTarget::Organization;
                c.set_plugin_setting(plugin_id, &target, (*preference).into(), key)
                    .await?;
                done(Outcome::Applied, Vec::new())
            }
            Op::SetPluginSetting {
                plugin_id,
                group,
                preference,
                ..
            } => {
                let Some(id) = self.group_id(group, ownership) else {
                    return Ok(missing(group));
                };
                let target = crate::cowork::PluginTarget::RbacGroup { rbac_group_id: id };
                let outcome = match preference {
                    Some(p) => {
                        c.set_plugin_setting(plugin_id, &target, (*p).into(), key)
                            .await?;
                        Outcome::Applied
                    }
                    None => c.delete_plugin_setting(plugin_id, &target, key).await?,
                };
                done(outcome, Vec::new())
            }
            Op::SetUserRole {
                scim_id,
                user_id,
                to,
                ..
            } => {
                c.set_user_role(user_id, to.clone(), key).await?;
                let changes = ownership
                    .links
                    .get(scim_id)
                    .map(|l| {
                        vec![Change::PutLink(UserLink {
                            role: Some(to.clone()),
                            ..l.clone()
                        })]
                    })
                    .unwrap_or_default();
                done(Outcome::Applied, changes)
            }
            Op::InviteUser {
                scim_id,
                email,
                role,
                groups,
            } => {
                let mut ids = Vec::new();
                for g in groups {
                    match self.group_id(g, ownership) {
                        Some(id) => ids.push(id),
                        None => return Ok(missing(g)),
                    }
                }
                let request = InviteRequest {
                    email: email.clone(),
                    role: role.clone(),
                    rbac_group_ids: ids,
                };
                match c.create_invite(&request, key).await {
                    Ok(invite) => done(
                        Outcome::Applied,
                        vec![Change::PutLink(UserLink {
                            scim_id: scim_id.clone(),
                            email: email.to_lowercase(),
                            user_id: None,
                            role: None,
                            invite_id: Some(invite.id),
                        })],
                    ),
                    // A pending invite or a member with this email appeared since the
                    // state was read: nothing to do now; the next read links them.
                    Err(e) if matches!(e.code(), Some("invite_exists") | Some("member_exists")) => {
                        done(Outcome::AlreadyInState, Vec::new())
                    }
                    Err(e) => return Err(e),
                }
            }
            Op::AddMember {
                group,
                scim_id,
                user_id,
            } => {
                let Some(id) = self.group_id(group, ownership) else {
                    return Ok(missing(group));
                };
                let outcome = c.add_group_member(&id, user_id, key).await?;
                done(
                    outcome,
                    vec![Change::PutMembership(Membership {
                        scim_id: scim_id.clone(),
                        group_key: group.key.clone(),
                        group_id: id,
                        user_id: user_id.clone(),
                    })],
                )
            }
            Op::RemoveMember {
                group,
                scim_id,
                user_id,
                ..
            } => {
                let Some(id) = self.group_id(group, ownership) else {
                    return Ok(missing(group));
                };
                let outcome = c.remove_group_member(&id, user_id, key).await?;
                let changes = scim_id
                    .iter()
                    .map(|s| Change::ForgetMembership {
                        scim_id: s.clone(),
                        group_key: group.key.clone(),
                    })
                    .collect();
                done(outcome, changes)
            }
            Op::SetUserSpend {
                scim_id,
                user_id,
                limit,
                currency,
            } => {
                let row = c
                    .upsert_user_spend_limit(user_id, amount(*limit), currency, key)
                    .await?;
                done(
                    Outcome::Applied,
                    vec![Change::PutSpend(OwnedSpend {
                        scim_id: scim_id.clone(),
                        user_id: user_id.clone(),
                        spend_limit_id: row.id,
                        amount: amount(*limit),
                    })],
                )
            }
            Op::DeleteUserSpend {
                scim_id,
                spend_limit_id,
                ..
            } => {
                let outcome = c.delete_spend_limit(spend_limit_id, key).await?;
                done(
                    outcome,
                    vec![Change::ForgetSpend {
                        scim_id: scim_id.clone(),
                    }],
                )
            }
            Op::RemoveFromOrg {
                scim_id,
                user_id,
                because,
            } => {
                let outcome = c.remove_user(user_id, key).await?;
                let deleted = matches!(because, Because::Deleted);
                done(outcome, offboarded(ownership, scim_id, deleted))
            }
            Op::WithdrawInvite {
                scim_id,
                invite_id,
                because,
            } => {
                let outcome = c.withdraw_invite(invite_id, key).await?;
                let deleted = matches!(because, Because::Deleted);
                done(outcome, offboarded(ownership, scim_id, deleted))
            }
            Op::DeleteGroup { group, .. } => {
                let Some(id) = self.group_id(group, ownership) else {
                    return Ok(missing(group));
                };
                let outcome = c.delete_group(&id, key).await?;
                let mut changes = vec![Change::ForgetGroup {
                    key: group.key.clone(),
                }];
                changes.extend(
                    ownership
                        .memberships
                        .values()
                        .filter(|m| m.group_key == group.key)
                        .map(|m| Change::ForgetMembership {
                            scim_id: m.scim_id.clone(),
                            group_key: m.group_key.clone(),
                        }),
                );
                done(outcome, changes)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default()
            + Duration::minutes(minutes)
    }

    fn group(id: &str, name: &str, created: i64) -> RbacGroup {
        RbacGroup {
            id: id.into(),
            name: name.into(),
            source_type: SourceType::Direct,
            roles: Some(Vec::new()),
            created_at: at(created),
            updated_at: at(created),
            description: None,
            external_id: None,
            managed_by: None,
            version: None,
        }
    }

    fn pending() -> PendingGroup {
        PendingGroup {
            key: "pilot".into(),
            name: "Pilot".into(),
            requested_at: at(0),
            last_sent_at: at(10),
        }
    }

    fn found(groups: &[RbacGroup], ownership: &Ownership) -> Option<String> {
        find_lost_create(groups, &pending(), ownership).map(|g| g.id.clone())
    }

    #[test]
    fn a_lost_create_is_the_earliest_unowned_roleless_direct_group_of_that_name_since_the_intent() {
        let none = Ownership::default();
        let mut scim = group("scim", "Pilot", 1);
        scim.source_type = SourceType::Scim;
        let mut with_roles = group("roles", "Pilot", 1);
        with_roles.roles = Some(vec!["rbac_role_1".into()]);
        let unknown_roles = RbacGroup {
            roles: None,
            ..group("unknown_roles", "Pilot", 3)
        };
        let candidates = [
            group("before", "Pilot", -30),
            group("other_name", "Pilot 2", 1),
            scim,
            with_roles,
            group("second", "Pilot", 2),
            group("first", "Pilot", 1),
            unknown_roles,
        ];
        assert_eq!(found(&candidates, &none).as_deref(), Some("first"));
        // Within the allowed clock skew, a group "created" just before counts.
        assert_eq!(
            found(&[group("skewed", "Pilot", -1)], &none).as_deref(),
            Some("skewed")
        );
        // A group already recorded under some key is never taken.
        let mut owned = Ownership::default();
        owned.apply(&[Change::PutGroup(OwnedGroup {
            key: "other".into(),
            id: "first".into(),
            name: "Pilot".into(),
            created: true,
        })]);
        assert_eq!(found(&candidates, &owned).as_deref(), Some("second"));
        assert_eq!(found(&candidates[..4], &none), None);
        // Nor one made long after the last request could have been applied.
        assert_eq!(found(&[group("later", "Pilot", 10 + 61)], &none), None);
    }
}
