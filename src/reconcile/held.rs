//! Removals the safety valve holds: listing them, and approving them. Approving
//! records who approved (audited with the token's subject), then applies the
//! approved removals at once: an event pass over the users they concern (or a full
//! run, when a group deletion is approved). A removal that is no longer needed (the
//! user came back, the rule returned) is dropped instead of applied.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use super::error::ReconcileError;
use super::ownership::{self, Change, HeldRemoval, Ledger};
use super::pass::{blocking, Applier};
use super::report::{with_user_name, ActionError, DrainReport, UserNames};
use super::runs::Trigger;
use super::{Reconciler, RunOptions};
use crate::audit::AuditDraft;
use crate::cowork::CoworkApi;

/// Which held removals to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Every one held now.
    All,
    /// These ids (`h_…`).
    Ids(Vec<String>),
}

/// What an approval did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApproveReport {
    /// The ids approved.
    pub approved: Vec<String>,
    /// Ids that name no held removal.
    pub unknown: Vec<String>,
    /// Actions applied or converged by the pass that followed.
    pub applied: usize,
    /// Actions that failed.
    pub failed: usize,
    /// The failures.
    pub errors: Vec<ActionError>,
    /// Removals still held afterwards.
    pub still_held: usize,
    /// The pass stopped on a transient failure; the approval stands and the next
    /// pass applies it.
    pub blocked: bool,
}

impl<C: CoworkApi + 'static> Reconciler<C> {
    /// The removals the valve holds, oldest first.
    pub async fn held(&self) -> Result<Vec<HeldRemoval>, ReconcileError> {
        let store = self.store.clone();
        let mut held = blocking(move || Ok(ownership::store::held(store.as_ref())?)).await?;
        held.sort_by(|a, b| (a.held_at, &a.id).cmp(&(b.held_at, &b.id)));
        Ok(held)
    }

    /// The userNames of these directory users, by SCIM id (users without one, or
    /// gone, are left out). For answers to an operator only.
    pub async fn user_names(&self, ids: BTreeSet<String>) -> Result<UserNames, ReconcileError> {
        let directory = self.directory.clone();
        blocking(move || {
            let mut names = UserNames::new();
            for id in ids {
                let record = directory.record(crate::scim::ResourceKind::User, &id)?;
                if let Some(name) = record.as_ref().and_then(|r| r.str_attr("userName")) {
                    names.insert(id, name.to_string());
                }
            }
            Ok(names)
        })
        .await
    }

    /// Approves held removals as `actor` and applies them now.
    pub async fn approve(
        &self,
        which: Approval,
        actor: &str,
    ) -> Result<ApproveReport, ReconcileError> {
        let _apply = self.apply.lock().await;
        let held = self.held().await?;
        let (chosen, unknown): (Vec<HeldRemoval>, Vec<String>) = match &which {
            Approval::All => (held, Vec::new()),
            Approval::Ids(ids) => {
                let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
                let found: BTreeSet<&str> = held.iter().map(|h| h.id.as_str()).collect();
                (
                    held.iter()
                        .filter(|h| wanted.contains(h.id.as_str()))
                        .cloned()
                        .collect(),
                    wanted.difference(&found).map(|s| s.to_string()).collect(),
                )
            }
        };
        let mut report = ApproveReport {
            unknown,
            ..ApproveReport::default()
        };
        if chosen.is_empty() {
            report.still_held = self.held().await?.len();
            return Ok(report);
        }
        let now = self.clock.now();
        let changes: Vec<Change> = chosen
            .iter()
            .map(|h| {
                Change::PutHeld(HeldRemoval {
                    approved_by: Some(actor.to_string()),
                    approved_at: Some(now),
                    ..h.clone()
                })
            })
            .collect();
        report.approved = chosen.iter().map(|h| h.id.clone()).collect();
        let draft = AuditDraft::new(actor, "reconcile.approved", None).with(json!({
            "ids": report.approved,
            "targets": chosen.iter().map(|h| h.target.as_str()).collect::<Vec<_>>(),
        }));
        Ledger::new(
            self.store.clone(),
            self.clock.clone(),
            ownership::Ownership::default(),
        )
        .commit(draft, changes)
        .await?;
        tracing::info!(
            approved = report.approved.len(),
            "held removals approved; applying them"
        );
        let users: BTreeSet<String> = chosen.iter().filter_map(|h| h.scim_id.clone()).collect();
        let pass = if users.len() == chosen.len() {
            let who = Applier {
                actor: "reconciler",
                cause: format!("approved by {actor}"),
                forced: false,
                key_prefix: format!("approve:{}", report.approved.join(",")),
                context: json!({ "approved_by": actor }),
                progress: None,
                stop_on_transient: true,
            };
            self.users_pass(users, who).await?
        } else {
            // A group deletion was approved: only a full pass plans deletions.
            if !self.status.begin_reconcile() {
                return Err(ReconcileError::AlreadyRunning);
            }
            let options = RunOptions {
                trigger: Trigger::Manual,
                requested_by: Some(actor.to_string()),
                ..RunOptions::default()
            };
            let result = self.run_locked(&options).await;
            self.end_run(&result);
            let run = result?;
            DrainReport {
                applied: run.applied + run.already_in_state,
                failed: run.failed,
                errors: run.errors,
                ..DrainReport::default()
            }
        };
        report.applied = pass.applied;
        report.failed = pass.failed;
        report.errors = pass.errors;
        report.blocked = pass.blocked;
        report.still_held = self.held().await?.len();
        Ok(report)
    }
}

/// How long ago `then` was, as a person reads it (`3m`, `2h 5m`, `4d 1h`).
pub fn age(then: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The held removals as a table: id, target, age, what, why.
pub fn render_held(held: &[HeldRemoval], now: chrono::DateTime<chrono::Utc>) -> String {
    render_held_named(held, now, &UserNames::new())
}

/// [`render_held`], naming users by userName where `names` has them.
pub fn render_held_named(
    held: &[HeldRemoval],
    now: chrono::DateTime<chrono::Utc>,
    names: &UserNames,
) -> String {
    use std::fmt::Write as _;
    if held.is_empty() {
        return "No removals are held.\n".to_string();
    }
    let mut out = format!(
        "{} removal(s) held by the safety valve (apply with `cowork-sync approve ID...` or `--all`):\n",
        held.len()
    );
    for h in held {
        let approved = match &h.approved_by {
            Some(by) => format!("  [approved by {by}, applying]"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\n{}  {}  held {}{approved}\n  {}\n  reason: {}",
            h.id,
            h.target,
            age(h.held_at, now),
            with_user_name(&h.description, h.scim_id.as_deref(), names),
            h.reason
        );
    }
    out
}

/// What an approval did, as a person reads it.
pub fn render_approval(report: &ApproveReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if report.approved.is_empty() {
        out.push_str("Nothing approved");
        out.push_str(if report.unknown.is_empty() {
            ": no removals are held.\n"
        } else {
            ".\n"
        });
    } else {
        let _ = writeln!(
            out,
            "Approved {} held removal(s): {} applied, {} failed.",
            report.approved.len(),
            report.applied,
            report.failed
        );
    }
    if !report.unknown.is_empty() {
        let _ = writeln!(
            out,
            "No held removal has the id(s): {} (see `cowork-sync held`).",
            report.unknown.join(", ")
        );
    }
    for e in &report.errors {
        let _ = writeln!(
            out,
            "  failed: {} {}: {}",
            e.kind.as_str(),
            e.target,
            e.error
        );
    }
    if report.blocked {
        out.push_str(
            "The downstream was unavailable: the approval stands and the next pass applies it.\n",
        );
    }
    if report.still_held > 0 {
        let _ = writeln!(out, "{} removal(s) still held.", report.still_held);
    }
    out
}
