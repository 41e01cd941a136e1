//! One pass of the reconciler, shared by the event path and full runs:
//! **prepare** (resolve the rules, load the ownership records, read or believe the
//! downstream) → **plan** (the pure planner, off the async threads) → **apply**
//! (refresh the records from what was read, then the executor) → **settle** (in
//! [`super::settle`]: the run record or the outbox acknowledgement).
//!
//! The two paths differ only in what they prepare: a full pass resolves the whole
//! directory and reads the whole downstream; an event pass resolves the users its
//! outbox entries touched and plans against the records, reading the people lists
//! only when a governed user is not linked yet.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::actual::{self, ReadPlan};
use super::error::ReconcileError;
use super::executor::{Executed, Executor};
use super::ownership::{self, Change, HeldRemoval, Ledger, Offboarding, Ownership, RemovalEvent};
use super::plan::{
    self, canonical_email, ActualState, DirectoryView, Plan, PlanOptions, PoolCap, Scope,
};
use super::report::{Phase, PlanReport, Progress, ProgressFn};
use super::Reconciler;
use crate::audit::AuditDraft;
use crate::cowork::{CallCounts, CoworkApi, CoworkError, Invite, Mode, User};
use crate::directory::Directory;
use crate::outbox::OutboxEntry;
use crate::rules::{resolve, DesiredState, Snapshot, ValidRuleTable};
use crate::ruleset;
use crate::store::Store;

/// Most ownership changes written in one transaction when records are refreshed.
const SYNC_CHUNK: usize = 5_000;

/// What a pass plans against.
pub(super) struct Prepared {
    /// What the rules ask for.
    pub(super) desired: DesiredState,
    /// The directory users in view.
    pub(super) directory: DirectoryView,
    /// The rule table version (`None`: a candidate table, not applied).
    pub(super) rule_version: Option<u64>,
    /// The ownership records in view.
    pub(super) ownership: Ownership,
    /// The downstream, read or believed.
    pub(super) actual: ActualState,
    /// Which targets.
    pub(super) scope: Scope,
    /// The caps of spent pools, by SCIM id.
    pub(super) caps: BTreeMap<String, PoolCap>,
}

/// A plan with what it was made from.
pub(super) struct Planned {
    pub(super) plan: Plan,
    pub(super) scope: Scope,
    pub(super) desired: DesiredState,
    pub(super) rule_version: Option<u64>,
    /// The records planned against (the apply lock keeps them current).
    pub(super) ownership: Ownership,
}

/// What an event pass found before planning.
pub(super) enum EventsPrepared {
    /// No rule table is applied: nothing to do.
    NoRules,
    /// The downstream could not be read and a retry may help.
    Blocked(CoworkError),
    /// Ready to plan.
    Ready(Box<Prepared>),
}

/// Who applies, for idempotency keys and the audit trail.
pub(super) struct Applier {
    /// Audit actor: `reconciler`, `outbox` or `operator`.
    pub(super) actor: &'static str,
    /// What caused the pass, in words (`scim.user.patch (outbox 42)`, `run 7`).
    pub(super) cause: String,
    /// The valve was overridden: what it applies does not count in the window.
    pub(super) forced: bool,
    /// Idempotency key prefix: `run:<n>` or `outbox:<seq>`.
    pub(super) key_prefix: String,
    /// Facts added to every audit entry.
    pub(super) context: Value,
    /// Progress callback (full runs).
    pub(super) progress: Option<ProgressFn>,
    /// Stop at the first transient failure (the event path keeps order).
    pub(super) stop_on_transient: bool,
}

fn directory_view(snapshot: &Snapshot) -> DirectoryView {
    let mut view = DirectoryView::default();
    view.users.reserve(snapshot.users.len());
    for u in &snapshot.users {
        view.insert(&u.id, u.email.as_deref(), u.active);
    }
    view
}

fn needs_groups(table: &ValidRuleTable) -> bool {
    table
        .filter_attributes()
        .iter()
        .any(|a| a == "groups" || a.starts_with("groups."))
}

/// The difference of two call counts.
pub(super) fn calls_since(before: CallCounts, after: CallCounts) -> CallCounts {
    CallCounts {
        reads: after.reads.saturating_sub(before.reads),
        writes: after.writes.saturating_sub(before.writes),
        retries: after.retries.saturating_sub(before.retries),
        rate_limited: after.rate_limited.saturating_sub(before.rate_limited),
    }
}

/// Runs store and CPU-heavy work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReconcileError> + Send + 'static,
) -> Result<T, ReconcileError> {
    tokio::task::spawn_blocking(f).await?
}

fn progress(p: Option<&ProgressFn>, phase: Phase, message: &str) {
    if let Some(p) = p {
        p(&Progress {
            phase,
            done: 0,
            total: 0,
            message: message.into(),
        });
    }
}

/// What the event path plans against for a set of users.
struct UsersView {
    users: BTreeSet<String>,
    desired: DesiredState,
    directory: DirectoryView,
    version: u64,
    ownership: Ownership,
    caps: BTreeMap<String, PoolCap>,
}

/// Resolves the applied rules for `users` and loads their records; users who share an
/// identity claim with one of them join the set. `None`: no rule table.
fn view_of(
    store: &dyn Store,
    directory: &Directory,
    mut users: BTreeSet<String>,
) -> Result<Option<UsersView>, ReconcileError> {
    let Some(version) = ruleset::current(store)? else {
        return Ok(None);
    };
    let table = version.table;
    let project = |u: &serde_json::Value| table.project_user(u);
    let groups = needs_groups(&table);
    let mut snapshot = directory.snapshot_for(&users, &project, groups)?;
    let mut ownership = ownership::load_for(store, &users)?;
    let emails: BTreeSet<String> = snapshot
        .users
        .iter()
        .filter_map(|u| u.email.as_deref())
        .chain(ownership.links.values().map(|l| l.email.as_str()))
        .map(canonical_email)
        .collect();
    let claims = ownership::store::claims_for(store, &emails)?;
    let partners: BTreeSet<String> = claims
        .iter()
        .map(|c| c.scim_id.clone())
        .filter(|s| !users.contains(s))
        .collect();
    if !partners.is_empty() {
        users.extend(partners);
        snapshot = directory.snapshot_for(&users, &project, groups)?;
        ownership = ownership::load_for(store, &users)?;
    }
    ownership.claims = claims.into_iter().collect();
    let desired = resolve(&table, &snapshot);
    Ok(Some(UsersView {
        users,
        desired,
        directory: directory_view(&snapshot),
        version: version.version,
        ownership,
        caps: crate::insights::pools::caps(store)?,
    }))
}

impl<C: CoworkApi + 'static> Reconciler<C> {
    /// Prepares a full pass: the whole directory against the rules (the applied
    /// table, or `table`), every record, the whole downstream. `None`: no rule table.
    pub(super) async fn prepare_full(
        &self,
        table: Option<ValidRuleTable>,
        progress_fn: Option<&ProgressFn>,
    ) -> Result<Option<Prepared>, ReconcileError> {
        progress(
            progress_fn,
            Phase::Reading,
            "reading the directory and the rules",
        );
        let store = self.store.clone();
        let directory = self.directory.clone();
        let resolved = blocking(move || {
            let (table, version) = match table {
                Some(t) => (t, None),
                None => match ruleset::current(store.as_ref())? {
                    Some(v) => (v.table, Some(v.version)),
                    None => return Ok(None),
                },
            };
            let project = |u: &serde_json::Value| table.project_user(u);
            let snapshot = directory.snapshot(&project, needs_groups(&table))?;
            let desired = resolve(&table, &snapshot);
            let ownership = ownership::load_all(store.as_ref())?;
            let caps = crate::insights::pools::caps(store.as_ref())?;
            Ok(Some((
                desired,
                directory_view(&snapshot),
                version,
                ownership,
                caps,
            )))
        })
        .await?;
        let Some((desired, directory, rule_version, ownership, caps)) = resolved else {
            return Ok(None);
        };
        let what = ReadPlan {
            desired_keys: desired.groups.keys().cloned().collect(),
            user_spend: (self.mode() == Mode::Real && self.options.materialize_group_spend)
                || !ownership.spend.is_empty()
                || !caps.is_empty(),
            plugin_names: desired
                .groups
                .values()
                .flat_map(|g| g.plugins.keys().cloned())
                .chain(desired.org.plugins.keys().cloned())
                .collect(),
        };
        let actual = actual::read_full(&self.client, &ownership, &what, progress_fn).await?;
        Ok(Some(Prepared {
            desired,
            directory,
            rule_version,
            ownership,
            actual,
            scope: Scope::Full,
            caps,
        }))
    }

    /// The users an event batch touched: its users, and the members of its groups.
    pub(super) async fn touched_users(
        &self,
        entries: &[OutboxEntry],
    ) -> Result<BTreeSet<String>, ReconcileError> {
        let directory = self.directory.clone();
        let touched = entries.to_vec();
        blocking(move || {
            let mut users = BTreeSet::new();
            for e in &touched {
                users.extend(e.touched.users.iter().cloned());
                for g in &e.touched.groups {
                    users.extend(directory.transitive_users(g)?);
                }
            }
            Ok(users)
        })
        .await
    }

    /// Prepares an event pass over `users`: the applied rules for them, their records,
    /// and what the records say is downstream. Directory users who claim the same
    /// downstream member as one of them (identity claims, or the member's link) join
    /// the scope, so the plan sees every claimant.
    pub(super) async fn prepare_users(
        &self,
        mut users: BTreeSet<String>,
    ) -> Result<EventsPrepared, ReconcileError> {
        let mut people: Option<(Vec<User>, Vec<Invite>)> = None;
        loop {
            let store = self.store.clone();
            let directory = self.directory.clone();
            let scope = users.clone();
            let Some(view) = blocking(move || view_of(store.as_ref(), &directory, scope)).await?
            else {
                return Ok(EventsPrepared::NoRules);
            };
            users = view.users.clone();
            let mut actual = actual::believed(&view.ownership);
            // Governed users the daemon has not matched to a member yet: read the
            // people lists once (a new hire may already be in Cowork, or an invite
            // accepted).
            let unlinked: Vec<&str> = view
                .desired
                .managed_users
                .keys()
                .filter(|s| {
                    users.contains(*s)
                        && view
                            .ownership
                            .links
                            .get(*s)
                            .is_none_or(|l| l.user_id.is_none())
                })
                .map(String::as_str)
                .collect();
            if !unlinked.is_empty() && people.is_none() {
                let read = async {
                    let u = self.client.list_users().await?;
                    let i = self.client.list_invites().await?;
                    Ok::<_, CoworkError>((u, i))
                }
                .await;
                match read {
                    Ok(lists) => people = Some(lists),
                    Err(e) if e.is_retryable() => return Ok(EventsPrepared::Blocked(e)),
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some((u, i)) = &people {
                // A member the unlinked users' emails name may be linked to someone
                // outside the scope: bring them in (once).
                let wanted: BTreeSet<String> = unlinked
                    .iter()
                    .filter_map(|s| view.directory.users.get(*s)?.email.as_deref())
                    .map(canonical_email)
                    .collect();
                let members: Vec<String> = u
                    .iter()
                    .filter(|m| wanted.contains(&canonical_email(&m.email)))
                    .map(|m| m.id.clone())
                    .collect();
                let store = self.store.clone();
                let extra = blocking(move || {
                    let mut extra = BTreeSet::new();
                    for id in members {
                        extra.extend(ownership::store::linked_to(store.as_ref(), &id)?);
                    }
                    Ok(extra)
                })
                .await?;
                if !extra.is_subset(&users) {
                    users.extend(extra);
                    continue;
                }
                let (u, i) = actual::people(u.clone(), i.clone());
                actual.users.extend(u);
                actual.invites.extend(i);
            }
            return Ok(EventsPrepared::Ready(Box::new(Prepared {
                desired: view.desired,
                directory: view.directory,
                rule_version: Some(view.version),
                ownership: view.ownership,
                actual,
                scope: Scope::Users(users),
                caps: view.caps,
            })));
        }
    }

    /// Plans a prepared pass (off the async threads).
    pub(super) async fn plan_prepared(
        &self,
        prepared: Prepared,
        force: bool,
        progress_fn: Option<&ProgressFn>,
    ) -> Result<Planned, ReconcileError> {
        progress(progress_fn, Phase::Planning, "planning");
        let o = &self.options;
        let options = PlanOptions {
            mode: self.mode(),
            scope: prepared.scope.clone(),
            max_removal_ratio: o.max_removal_ratio,
            removal_floor: o.removal_floor,
            removal_window: o.removal_window,
            force,
            materialize_group_spend: o.materialize_group_spend,
            on_deactivate: o.on_deactivate,
            remove_from_org_after: o.remove_from_org_after,
        };
        let now = self.clock.now();
        blocking(move || {
            let plan = plan::plan(plan::PlanInput {
                desired: &prepared.desired,
                directory: &prepared.directory,
                actual: &prepared.actual,
                ownership: &prepared.ownership,
                options: &options,
                now,
                caps: &prepared.caps,
            });
            Ok(Planned {
                plan,
                scope: prepared.scope,
                desired: prepared.desired,
                rule_version: prepared.rule_version,
                ownership: prepared.ownership,
            })
        })
        .await
    }

    /// The report of a plan.
    pub(super) fn report_of(&self, p: &Planned, full: bool, calls: CallCounts) -> PlanReport {
        PlanReport::new(
            &p.plan,
            self.now(),
            self.mode(),
            full,
            p.rule_version,
            p.desired.warnings.clone(),
            calls,
        )
    }

    /// Applies a plan: the records it refreshed from what was read (in chunks, each
    /// with an audit entry; offboarding and identity changes each with an entry of
    /// their own), the removals the valve holds, then its actions; and records the
    /// removals it applied on its own in the valve's window.
    pub(super) async fn apply(
        &self,
        planned: &mut Planned,
        who: Applier,
    ) -> Result<Executed, ReconcileError> {
        let mut ledger = Ledger::new(
            self.store.clone(),
            self.clock.clone(),
            std::mem::take(&mut planned.ownership),
        );
        let scope = HeldScope::from(&planned.scope);
        let plan = &mut planned.plan;
        let (lifecycle, sync): (Vec<Change>, Vec<Change>) =
            std::mem::take(&mut plan.sync).into_iter().partition(|c| {
                matches!(
                    c,
                    Change::PutOffboarding(_)
                        | Change::ForgetOffboarding { .. }
                        | Change::PutClaim(_)
                )
            });
        for chunk in sync.chunks(SYNC_CHUNK) {
            let draft = AuditDraft::new(who.actor, "reconcile.ownership", None).with(json!({
                "context": who.context,
                "changes": chunk.len(),
            }));
            ledger.commit(draft, chunk.to_vec()).await?;
        }
        for change in lifecycle {
            let (draft, change) = self.lifecycle_entry(&who, plan, change);
            ledger.commit(draft, vec![change]).await?;
        }
        self.hold(&who, plan, &scope, &mut ledger).await?;
        let executor = Executor {
            client: &self.client,
            clock: self.clock.clone(),
            actor: who.actor,
            key_prefix: who.key_prefix.clone(),
            context: who.context.clone(),
            progress: who.progress.clone(),
            progress_every: self.options.progress_every,
            stop_on_transient: who.stop_on_transient,
        };
        let executed = executor.run(&plan.actions, &mut ledger).await?;
        self.status.user_outcomes(
            executed.errors.iter().filter_map(|e| {
                e.scim_id.as_ref().map(|scim| {
                    (
                        scim.clone(),
                        crate::status::UserFailure {
                            kind: e.kind.as_str().to_string(),
                            target: e.target.clone(),
                            error: e.error.clone(),
                            at: crate::audit::timestamp(self.clock.now()),
                        },
                    )
                })
            }),
            &executed.done_users,
        );
        if !who.forced {
            self.record_removals(&who, &executed, &mut ledger).await?;
        }
        planned.ownership = ledger.into_ownership();
        Ok(executed)
    }

    /// The audit entry of one offboarding or identity record change.
    fn lifecycle_entry(&self, who: &Applier, plan: &Plan, change: Change) -> (AuditDraft, Change) {
        match change {
            Change::PutOffboarding(o) => {
                let o = Offboarding {
                    cause: Some(who.cause.clone()),
                    ..o
                };
                let state = plan.offboarding.iter().find(|f| f.scim_id == o.scim_id);
                let target = format!("user:{}", o.scim_id);
                let draft = AuditDraft::new(who.actor, "lifecycle.offboarding", Some(&target))
                    .with(json!({
                        "context": who.context,
                        "cause": who.cause,
                        "reason": o.reason,
                        "user_id": o.user_id,
                        "since": o.since,
                        "due_at": state.and_then(|s| s.due_at),
                        "on_deactivate": self.options.on_deactivate,
                    }));
                (draft, Change::PutOffboarding(o))
            }
            Change::ForgetOffboarding { scim_id } => {
                let target = format!("user:{scim_id}");
                let draft = AuditDraft::new(who.actor, "lifecycle.returned", Some(&target))
                    .with(json!({
                        "context": who.context,
                        "cause": who.cause,
                        "detail": "active again (or no longer a member) before the organization removal: it is cancelled",
                    }));
                (draft, Change::ForgetOffboarding { scim_id })
            }
            other => {
                let claim = match &other {
                    Change::PutClaim(c) => Some(c.scim_id.clone()),
                    _ => None,
                };
                let collision = plan.collisions.iter().find(|c| {
                    claim
                        .as_ref()
                        .is_some_and(|s| &c.matched == s || c.others.contains(s))
                });
                let draft = AuditDraft::new(
                    who.actor,
                    "reconcile.identity_collision",
                    claim.map(|s| format!("user:{s}")).as_deref(),
                )
                .with(json!({
                    "context": who.context,
                    "collision": collision,
                    "rule": "active, then governed by the rules, then already linked, then the smallest SCIM id",
                }));
                (draft, other)
            }
        }
    }

    /// Records the removals the valve holds, and forgets the held removals in scope
    /// that this plan no longer makes.
    async fn hold(
        &self,
        who: &Applier,
        plan: &Plan,
        scope: &HeldScope,
        ledger: &mut Ledger,
    ) -> Result<(), ReconcileError> {
        let now = self.clock.now();
        let held_before = &ledger.ownership().held;
        let planned: BTreeSet<String> = plan
            .actions
            .iter()
            .map(|a| a.fingerprint())
            .chain(plan.held.iter().map(|h| h.action.fingerprint()))
            .collect();
        let mut changes = Vec::new();
        let mut new_ids = Vec::new();
        for h in &plan.held {
            let fingerprint = h.action.fingerprint();
            if held_before.contains_key(&fingerprint) {
                continue;
            }
            let record = HeldRemoval {
                id: HeldRemoval::id_of(&fingerprint),
                fingerprint,
                kind: h.action.kind,
                target: h.action.target.clone(),
                description: h.action.description.clone(),
                scim_id: h.action.scim_id().map(str::to_string),
                reason: h.reason.clone(),
                held_at: now,
                approved_by: None,
                approved_at: None,
            };
            new_ids.push(record.id.clone());
            changes.push(Change::PutHeld(record));
        }
        let dropped: Vec<&HeldRemoval> = held_before
            .values()
            .filter(|h| scope.covers(h) && !planned.contains(&h.fingerprint))
            .collect();
        let dropped_ids: Vec<String> = dropped.iter().map(|h| h.id.clone()).collect();
        changes.extend(dropped.iter().map(|h| Change::ForgetHeld {
            fingerprint: h.fingerprint.clone(),
        }));
        if !new_ids.is_empty() {
            tracing::warn!(
                held = new_ids.len(),
                actor = who.actor,
                "safety valve: removals held until approved (cowork-sync held)"
            );
        }
        if !dropped_ids.is_empty() {
            let draft = AuditDraft::new(who.actor, "reconcile.held_dropped", None).with(json!({
                "context": who.context,
                "ids": dropped_ids,
                "detail": "no longer planned: the removal is not needed any more",
            }));
            let forget: Vec<Change> = changes
                .iter()
                .filter(|c| matches!(c, Change::ForgetHeld { .. }))
                .cloned()
                .collect();
            ledger.commit(draft, forget).await?;
            changes.retain(|c| !matches!(c, Change::ForgetHeld { .. }));
        }
        if !new_ids.is_empty() {
            let draft = AuditDraft::new(who.actor, "reconcile.held", None).with(json!({
                "context": who.context,
                "cause": who.cause,
                "ids": new_ids,
                "reason": plan.valve.reason,
                "valve": plan.valve,
            }));
            ledger.commit(draft, changes).await?;
        }
        Ok(())
    }

    /// Adds the removals a pass applied on its own to the valve's window, and forgets
    /// the events that left it.
    async fn record_removals(
        &self,
        who: &Applier,
        executed: &Executed,
        ledger: &mut Ledger,
    ) -> Result<(), ReconcileError> {
        let now = self.clock.now();
        let since = now - self.options.removal_window;
        let mut changes: Vec<Change> = ledger
            .ownership()
            .removals
            .iter()
            .filter(|e| e.at <= since)
            .map(|e| Change::ForgetRemovals { at: e.at, n: e.n })
            .collect();
        if executed.removals > 0 || executed.org_removals > 0 {
            let n = ledger
                .ownership()
                .removals
                .iter()
                .filter(|e| e.at == now)
                .map(|e| e.n + 1)
                .max()
                .unwrap_or(0);
            changes.push(Change::PutRemovals(RemovalEvent {
                at: now,
                n,
                memberships: executed.removals,
                org: executed.org_removals,
            }));
        }
        if changes.is_empty() {
            return Ok(());
        }
        let draft = AuditDraft::new(who.actor, "reconcile.removal_window", None).with(json!({
            "context": who.context,
            "memberships": executed.removals,
            "org": executed.org_removals,
        }));
        ledger.commit(draft, changes).await
    }
}

/// Which held removals a plan speaks for: all of them (full), or those of its users.
pub(super) enum HeldScope {
    All,
    Users(BTreeSet<String>),
}

impl HeldScope {
    fn covers(&self, h: &HeldRemoval) -> bool {
        match self {
            HeldScope::All => true,
            HeldScope::Users(users) => h.scim_id.as_ref().is_some_and(|s| users.contains(s)),
        }
    }
}

impl From<&Scope> for HeldScope {
    fn from(scope: &Scope) -> Self {
        match scope {
            Scope::Full => HeldScope::All,
            Scope::Users(users) => HeldScope::Users(users.clone()),
        }
    }
}
