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

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::actual::{self, ReadPlan};
use super::error::ReconcileError;
use super::executor::{Executed, Executor};
use super::ownership::{self, Change, Ledger, Ownership};
use super::plan::{self, ActualState, Plan, PlanOptions, Scope};
use super::report::{Phase, PlanReport, Progress, ProgressFn};
use super::Reconciler;
use crate::audit::AuditDraft;
use crate::cowork::{CallCounts, CoworkApi, CoworkError, Mode};
use crate::outbox::OutboxEntry;
use crate::rules::{resolve, DesiredState, Snapshot, ValidRuleTable};
use crate::ruleset;

/// Most ownership changes written in one transaction when records are refreshed.
const SYNC_CHUNK: usize = 5_000;

/// What a pass plans against.
pub(super) struct Prepared {
    /// What the rules ask for.
    pub(super) desired: DesiredState,
    /// Directory users in view by lowercased email → SCIM id.
    pub(super) directory: HashMap<String, String>,
    /// The rule table version (`None`: a candidate table, not applied).
    pub(super) rule_version: Option<u64>,
    /// The ownership records in view.
    pub(super) ownership: Ownership,
    /// The downstream, read or believed.
    pub(super) actual: ActualState,
    /// Which targets.
    pub(super) scope: Scope,
}

/// A plan with what it was made from.
pub(super) struct Planned {
    pub(super) plan: Plan,
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
    /// Audit actor: `reconciler` or `outbox`.
    pub(super) actor: &'static str,
    /// Idempotency key prefix: `run:<n>` or `outbox:<seq>`.
    pub(super) key_prefix: String,
    /// Facts added to every audit entry.
    pub(super) context: Value,
    /// Progress callback (full runs).
    pub(super) progress: Option<ProgressFn>,
    /// Stop at the first transient failure (the event path keeps order).
    pub(super) stop_on_transient: bool,
}

fn directory_index(snapshot: &Snapshot) -> HashMap<String, String> {
    snapshot
        .users
        .iter()
        .filter_map(|u| Some((u.email.as_ref()?.to_lowercase(), u.id.clone())))
        .collect()
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
            Ok(Some((
                desired,
                directory_index(&snapshot),
                version,
                ownership,
            )))
        })
        .await?;
        let Some((desired, directory, rule_version, ownership)) = resolved else {
            return Ok(None);
        };
        let what = ReadPlan {
            desired_keys: desired.groups.keys().cloned().collect(),
            user_spend: (self.mode() == Mode::Real && self.options.materialize_group_spend)
                || !ownership.spend.is_empty(),
        };
        let actual = actual::read_full(&self.client, &ownership, &what, progress_fn).await?;
        Ok(Some(Prepared {
            desired,
            directory,
            rule_version,
            ownership,
            actual,
            scope: Scope::Full,
        }))
    }

    /// Prepares an event pass: the users the entries touched (and the members of the
    /// groups they touched) against the applied rules, their records, and what the
    /// records say is downstream.
    pub(super) async fn prepare_events(
        &self,
        entries: &[OutboxEntry],
    ) -> Result<EventsPrepared, ReconcileError> {
        let store = self.store.clone();
        let directory = self.directory.clone();
        let touched = entries.to_vec();
        let prepared = blocking(move || {
            let mut users: BTreeSet<String> = BTreeSet::new();
            for e in &touched {
                users.extend(e.touched.users.iter().cloned());
                for g in &e.touched.groups {
                    users.extend(directory.transitive_users(g)?);
                }
            }
            let Some(version) = ruleset::current(store.as_ref())? else {
                return Ok(None);
            };
            let table = version.table;
            let project = |u: &serde_json::Value| table.project_user(u);
            let snapshot = directory.snapshot_for(&users, &project, needs_groups(&table))?;
            let desired = resolve(&table, &snapshot);
            let ownership = ownership::load_for(store.as_ref(), &users)?;
            Ok(Some((
                users,
                desired,
                directory_index(&snapshot),
                version.version,
                ownership,
            )))
        })
        .await?;
        let Some((users, desired, directory, version, ownership)) = prepared else {
            return Ok(EventsPrepared::NoRules);
        };
        let mut actual = actual::believed(&ownership);
        // Governed users the daemon has not matched to a member yet: read the people
        // lists once (a new hire may already be in Cowork, or an invite accepted).
        let unlinked = desired.managed_users.keys().any(|s| {
            users.contains(s) && ownership.links.get(s).is_none_or(|l| l.user_id.is_none())
        });
        if unlinked {
            let read = async {
                let u = self.client.list_users().await?;
                let i = self.client.list_invites().await?;
                Ok::<_, CoworkError>((u, i))
            }
            .await;
            match read {
                Ok((u, i)) => {
                    let (u, i) = actual::people(u, i);
                    actual.users.extend(u);
                    actual.invites.extend(i);
                }
                Err(e) if e.is_retryable() => return Ok(EventsPrepared::Blocked(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(EventsPrepared::Ready(Box::new(Prepared {
            desired,
            directory,
            rule_version: Some(version),
            ownership,
            actual,
            scope: Scope::Users(users),
        })))
    }

    /// Plans a prepared pass (off the async threads).
    pub(super) async fn plan_prepared(
        &self,
        prepared: Prepared,
        force: bool,
        progress_fn: Option<&ProgressFn>,
    ) -> Result<Planned, ReconcileError> {
        progress(progress_fn, Phase::Planning, "planning");
        let options = PlanOptions {
            mode: self.mode(),
            scope: prepared.scope.clone(),
            max_removal_ratio: self.options.max_removal_ratio,
            force,
            materialize_group_spend: self.options.materialize_group_spend,
        };
        blocking(move || {
            let plan = plan::plan(plan::PlanInput {
                desired: &prepared.desired,
                directory: &prepared.directory,
                actual: &prepared.actual,
                ownership: &prepared.ownership,
                options: &options,
            });
            Ok(Planned {
                plan,
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
    /// with an audit entry), then its actions.
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
        let sync: Vec<Change> = std::mem::take(&mut planned.plan.sync);
        for chunk in sync.chunks(SYNC_CHUNK) {
            let draft =
                AuditDraft::new(who.actor, "reconcile.ownership", None).with(serde_json::json!({
                    "context": who.context,
                    "changes": chunk.len(),
                }));
            ledger.commit(draft, chunk.to_vec()).await?;
        }
        let executor = Executor {
            client: &self.client,
            clock: self.clock.clone(),
            actor: who.actor,
            key_prefix: who.key_prefix,
            context: who.context,
            progress: who.progress,
            progress_every: self.options.progress_every,
            stop_on_transient: who.stop_on_transient,
        };
        let executed = executor.run(&planned.plan.actions, &mut ledger).await?;
        planned.ownership = ledger.into_ownership();
        Ok(executed)
    }
}
