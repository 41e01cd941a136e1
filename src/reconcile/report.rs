//! What the reconciler hands back: [`PlanReport`] (what a full reconcile would do),
//! [`RunReport`] (what one did), [`DrainReport`] (what the event path did), progress
//! events, and their readable text ([`render_plan`], [`render_run`]).
//!
//! Reports name users by SCIM id and downstream id, groups and roles by key and
//! name; never emails. The renderings an operator reads (`*_named`) also name each
//! user by userName when the caller passes [`UserNames`]: answers to the admin API
//! only, never logs or the audit trail. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;

use super::plan::{
    Action, ActionKind, Collision, Drift, Foreign, ForeignKind, Held, Offboard, Pending, Plan,
    Valve,
};
use super::runs::{RunOutcome, Trigger};
use crate::cowork::{CallCounts, Mode};
use crate::rules::ResolutionWarning;

/// The phase of a run a progress event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading the directory and the downstream state.
    Reading,
    /// Planning.
    Planning,
    /// Applying actions.
    Applying,
    /// Finished.
    Done,
}

/// One progress event (for the CLI's progress display or logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Phase.
    pub phase: Phase,
    /// Steps done in this phase (actions applied, reads made).
    pub done: usize,
    /// Steps in this phase when known (0 = unknown).
    pub total: usize,
    /// A short readable message.
    pub message: String,
}

/// A progress callback. It must be cheap: it is called inline.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// The actions on one target, for the grouped view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetActions {
    /// `group:<key>`, `role:<key>`, `user:<scim id>`, `plugin:<id>`.
    pub target: String,
    /// Counts by kind on this target.
    pub counts: BTreeMap<ActionKind, usize>,
    /// The actions' descriptions, in plan order.
    pub actions: Vec<String>,
}

/// What a full reconcile would change now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    /// When the plan was made (RFC 3339).
    pub generated_at: String,
    /// The client's mode.
    pub mode: Mode,
    /// `full` or `users` (the event path).
    pub scope: String,
    /// The rule table version planned against (`None`: no table applied yet).
    pub rule_version: Option<u64>,
    /// Every action in order.
    pub actions: Vec<Action>,
    /// Actions by kind.
    pub counts: BTreeMap<ActionKind, usize>,
    /// Actions grouped by target, targets in order of their first action.
    pub by_target: Vec<TargetActions>,
    /// Differences reported, not written (real-mode tier B, org settings, ...).
    pub drift: Vec<Drift>,
    /// Objects left alone.
    pub foreign: Vec<Foreign>,
    /// Foreign objects by kind.
    pub foreign_counts: BTreeMap<ForeignKind, usize>,
    /// Governed users not downstream yet.
    pub pending: Vec<Pending>,
    /// What could not be compared.
    pub notes: Vec<String>,
    /// The safety valve.
    pub valve: Valve,
    /// Removals the valve holds (not in `actions`), each with why.
    pub held: Vec<Held>,
    /// Governed users being offboarded, and where each stands.
    pub offboarding: Vec<Offboard>,
    /// Directory users who claim one downstream member, and who was matched.
    pub collisions: Vec<Collision>,
    /// Resolution warnings of the rule table.
    pub warnings: Vec<ResolutionWarning>,
    /// Downstream calls made to read the state for this plan.
    pub calls: CallCounts,
}

impl PlanReport {
    /// A report of a plan.
    pub fn new(
        plan: &Plan,
        generated_at: String,
        mode: Mode,
        full: bool,
        rule_version: Option<u64>,
        warnings: Vec<ResolutionWarning>,
        calls: CallCounts,
    ) -> Self {
        let mut by_target: Vec<TargetActions> = Vec::new();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &plan.actions {
            let at = *index.entry(a.target.as_str()).or_insert_with(|| {
                by_target.push(TargetActions {
                    target: a.target.clone(),
                    counts: BTreeMap::new(),
                    actions: Vec::new(),
                });
                by_target.len() - 1
            });
            if let Some(t) = by_target.get_mut(at) {
                *t.counts.entry(a.kind).or_insert(0) += 1;
                t.actions.push(a.description.clone());
            }
        }
        let mut foreign_counts = BTreeMap::new();
        for f in &plan.foreign {
            *foreign_counts.entry(f.kind).or_insert(0) += 1;
        }
        PlanReport {
            generated_at,
            mode,
            scope: if full { "full" } else { "users" }.into(),
            rule_version,
            actions: plan.actions.clone(),
            counts: plan.counts(),
            by_target,
            drift: plan.drift.clone(),
            foreign: plan.foreign.clone(),
            foreign_counts,
            pending: plan.pending.clone(),
            notes: plan.notes.clone(),
            valve: plan.valve.clone(),
            held: plan.held.clone(),
            offboarding: plan.offboarding.clone(),
            collisions: plan.collisions.clone(),
            warnings,
            calls,
        }
    }

    /// A report that plans nothing (no rule table yet).
    pub fn empty(generated_at: String, mode: Mode, note: &str) -> Self {
        let plan = Plan {
            actions: Vec::new(),
            drift: Vec::new(),
            foreign: Vec::new(),
            pending: Vec::new(),
            notes: vec![note.to_string()],
            valve: Valve::default(),
            held: Vec::new(),
            offboarding: Vec::new(),
            collisions: Vec::new(),
            sync: Vec::new(),
        };
        Self::new(
            &plan,
            generated_at,
            mode,
            true,
            None,
            Vec::new(),
            CallCounts::default(),
        )
    }

    /// Differences found downstream: actions plus drift entries.
    pub fn differences(&self) -> usize {
        self.actions.len() + self.drift.len()
    }
}

/// One action that did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionError {
    /// Kind.
    pub kind: ActionKind,
    /// Target.
    pub target: String,
    /// The directory user it concerns, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scim_id: Option<String>,
    /// What went wrong (no personal data).
    pub error: String,
    /// The server's request id, when there was an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Whether a retry may succeed.
    pub transient: bool,
}

/// What one full reconcile did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// Run number (0 for a dry run, which is not recorded).
    pub run: u64,
    /// What started it.
    pub trigger: Trigger,
    /// Who asked, when an operator did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub ended_at: String,
    /// Wall-clock duration in milliseconds (by the daemon's clock).
    pub duration_ms: u64,
    /// Nothing was applied on purpose.
    pub dry_run: bool,
    /// The valve was overridden.
    pub forced: bool,
    /// The outcome.
    pub outcome: RunOutcome,
    /// The plan it made.
    pub plan: PlanReport,
    /// Actions applied (the server changed something).
    pub applied: usize,
    /// Actions the server found already done (converged).
    pub already_in_state: usize,
    /// Actions that failed.
    pub failed: usize,
    /// Actions not attempted (a dependency failed, or the run stopped).
    pub skipped: usize,
    /// Applied and converged actions by kind.
    pub done_by_kind: BTreeMap<ActionKind, usize>,
    /// The failures.
    pub errors: Vec<ActionError>,
    /// Downstream calls made by this run (reads and writes).
    pub calls: CallCounts,
    /// Outbox entries acknowledged (queued before the run; it planned them all).
    pub outbox_acked: usize,
    /// Why the run failed before applying (reading the state), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one drain of the outbox did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrainReport {
    /// Entries read.
    pub entries: usize,
    /// Entries acknowledged.
    pub acked: usize,
    /// Directory users planned.
    pub users: usize,
    /// Actions planned.
    pub planned: usize,
    /// Actions applied or converged.
    pub applied: usize,
    /// Actions that failed.
    pub failed: usize,
    /// Removals the valve holds for approval.
    pub held: usize,
    /// An entry asked for everything: the outcome of that full reconcile.
    pub full_reconcile: Option<RunOutcome>,
    /// A transient failure: entries stay queued; try again after a pause.
    pub blocked: bool,
    /// The failures.
    pub errors: Vec<ActionError>,
    /// Downstream calls made.
    pub calls: CallCounts,
}

fn sign(kind: ActionKind) -> char {
    match kind {
        ActionKind::CreateRole
        | ActionKind::CreateGroup
        | ActionKind::InviteUser
        | ActionKind::AddMember => '+',
        ActionKind::RemoveMember
        | ActionKind::DeleteGroup
        | ActionKind::DeleteUserSpend
        | ActionKind::ClearGroupSpend => '-',
        _ => '~',
    }
}

fn counts_line(counts: &BTreeMap<ActionKind, usize>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// userNames by SCIM id, for answers to an operator (never logs or the audit trail).
pub type UserNames = BTreeMap<String, String>;

/// Where `needle` occurs in `hay` not followed by an id character, so `user u1`
/// does not match inside `user u12`.
fn find_whole(hay: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let at = from + i;
        let end = at + needle.len();
        match hay[end..].chars().next() {
            Some(c) if c.is_alphanumeric() || c == '-' || c == '_' => from = end,
            _ => return Some(at),
        }
    }
    None
}

/// `description` with the user it concerns named by userName too:
/// `remove user u1 (user_1) from …` becomes `remove user ada@example.com (u1, user_1) from …`.
pub fn with_user_name(description: &str, scim_id: Option<&str>, names: &UserNames) -> String {
    let (Some(id), Some(name)) = (scim_id, scim_id.and_then(|id| names.get(id))) else {
        return description.to_string();
    };
    let paren = format!("user {id} (");
    if let Some(at) = description.find(&paren) {
        return format!(
            "{}user {name} ({id}, {}",
            &description[..at],
            &description[at + paren.len()..]
        );
    }
    let bare = format!("user {id}");
    if let Some(at) = find_whole(description, &bare) {
        return format!(
            "{}user {name} ({id}){}",
            &description[..at],
            &description[at + bare.len()..]
        );
    }
    format!("{description} [{name}]")
}

/// `name (id)` when the name is known, else the id.
fn person(scim_id: &str, names: &UserNames) -> String {
    match names.get(scim_id) {
        Some(name) => format!("{name} ({scim_id})"),
        None => scim_id.to_string(),
    }
}

/// The SCIM ids of every user a plan report mentions.
pub fn user_ids(report: &PlanReport) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = report
        .actions
        .iter()
        .chain(report.held.iter().map(|h| &h.action))
        .filter_map(|a| a.scim_id().map(str::to_string))
        .collect();
    ids.extend(report.pending.iter().map(|p| p.scim_id.clone()));
    ids.extend(report.offboarding.iter().map(|o| o.scim_id.clone()));
    ids
}

/// Adds `user_name` beside the ids in a plan report's JSON (`value` is the
/// report serialized): to each action, held removal, pending user and offboarding
/// whose user has one.
pub fn add_user_names(value: &mut serde_json::Value, report: &PlanReport, names: &UserNames) {
    let mut put = |list: &str, i: usize, id: Option<&str>| {
        if let (Some(name), Some(obj)) = (
            id.and_then(|id| names.get(id)),
            value
                .get_mut(list)
                .and_then(|l| l.get_mut(i))
                .and_then(serde_json::Value::as_object_mut),
        ) {
            obj.insert("user_name".into(), serde_json::Value::String(name.clone()));
        }
    };
    for (i, a) in report.actions.iter().enumerate() {
        put("actions", i, a.scim_id());
    }
    for (i, h) in report.held.iter().enumerate() {
        put("held", i, h.action.scim_id());
    }
    for (i, p) in report.pending.iter().enumerate() {
        put("pending", i, Some(&p.scim_id));
    }
    for (i, o) in report.offboarding.iter().enumerate() {
        put("offboarding", i, Some(&o.scim_id));
    }
}

/// Most actions shown per target in the text rendering (the JSON has all).
const SHOWN_PER_TARGET: usize = 25;

/// The plan as a person reads it: a summary line with counts, then the actions
/// grouped by target, then drift with its console steps, pending users, foreign
/// objects, notes, warnings and the valve's verdict.
pub fn render_plan(report: &PlanReport) -> String {
    render_plan_named(report, &UserNames::new())
}

/// [`render_plan`], naming users by userName where `names` has them.
pub fn render_plan_named(report: &PlanReport, names: &UserNames) -> String {
    let mut out = String::new();
    let version = report
        .rule_version
        .map(|v| format!(", rules v{v}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Plan ({} mode, {} scope{version}): {} action(s){}",
        report.mode,
        report.scope,
        report.actions.len(),
        if report.actions.is_empty() {
            " — downstream matches the rules".to_string()
        } else {
            format!(": {}", counts_line(&report.counts))
        }
    );
    for t in &report.by_target {
        let _ = writeln!(out, "\n{}  ({})", t.target, counts_line(&t.counts));
        let actions = report.actions.iter().filter(|a| a.target == t.target);
        for (i, a) in actions.enumerate() {
            if i == SHOWN_PER_TARGET {
                let _ = writeln!(
                    out,
                    "  … and {} more (see --json)",
                    t.actions.len() - SHOWN_PER_TARGET
                );
                break;
            }
            let d = with_user_name(&a.description, a.scim_id(), names);
            let _ = writeln!(out, "  {} {d}", sign(a.kind));
        }
    }
    if !report.drift.is_empty() {
        let _ = writeln!(out, "\nNot written ({}):", report.drift.len());
        for d in &report.drift {
            let _ = writeln!(out, "  ! {}: {}", d.target, d.detail);
            if let Some(step) = &d.console_step {
                let _ = writeln!(out, "      fix: {step}");
            }
        }
    }
    if !report.pending.is_empty() {
        let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in &report.pending {
            let reason = serde_json::to_value(p.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            by_reason
                .entry(reason)
                .or_default()
                .push(person(&p.scim_id, names));
        }
        let _ = writeln!(out, "\nPending users ({}):", report.pending.len());
        for (reason, ids) in by_reason {
            let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
            let more = if ids.len() > 10 {
                format!(" (+{} more)", ids.len() - 10)
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {reason}: {}{more}", shown.join(", "));
        }
    }
    if !report.foreign_counts.is_empty() {
        let parts: Vec<String> = report
            .foreign_counts
            .iter()
            .map(|(k, n)| {
                let name = serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                format!("{name} {n}")
            })
            .collect();
        let _ = writeln!(
            out,
            "\nLeft alone (not managed by cowork-sync): {}",
            parts.join(" · ")
        );
    }
    for n in &report.notes {
        let _ = writeln!(out, "note: {n}");
    }
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if !report.offboarding.is_empty() {
        let _ = writeln!(out, "\nOffboarding ({}):", report.offboarding.len());
        for o in &report.offboarding {
            let state = serde_json::to_value(o.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let due = o
                .due_at
                .map(|d| format!(", organization removal due {}", crate::audit::timestamp(d)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} ({}, since {}): {state}{due}",
                person(&o.scim_id, names),
                o.reason.as_str(),
                crate::audit::timestamp(o.since)
            );
        }
    }
    if !report.collisions.is_empty() {
        let _ = writeln!(
            out,
            "\nIdentity collisions ({}): directory users whose emails name one Cowork member",
            report.collisions.len()
        );
        for c in &report.collisions {
            let _ = writeln!(
                out,
                "  {} matched{}; not matched: {}",
                c.matched,
                c.member_id
                    .as_deref()
                    .map(|m| format!(" to {m}"))
                    .unwrap_or_default(),
                c.others.join(", ")
            );
        }
    }
    let v = &report.valve;
    let hours = v.window_seconds as f64 / 3600.0;
    let _ = writeln!(
        out,
        "\nSafety valve: this plan removes {} membership(s) and {} organization member(s); {} and {} earlier in the last {hours}h; of {} managed membership(s) and {} governed member(s) (floor {}, limit {:.1}%)",
        v.removals,
        v.org_removals,
        v.window_removals,
        v.window_org_removals,
        v.managed_memberships,
        v.governed_members,
        v.removal_floor,
        v.max_removal_ratio * 100.0
    );
    if !report.held.is_empty() {
        let _ = writeln!(
            out,
            "HELD ({}): these removals wait for approval (`cowork-sync held`, `cowork-sync approve`); everything else applies.",
            report.held.len()
        );
        for (i, h) in report.held.iter().enumerate() {
            if i == SHOWN_PER_TARGET {
                let _ = writeln!(
                    out,
                    "  … and {} more (see --json)",
                    report.held.len() - SHOWN_PER_TARGET
                );
                break;
            }
            let d = with_user_name(&h.action.description, h.action.scim_id(), names);
            let _ = writeln!(out, "  - {d} ({})", h.reason);
        }
    } else if v.forced {
        let _ = writeln!(
            out,
            "FORCED: {}.",
            v.reason.as_deref().unwrap_or("the valve was overridden")
        );
    }
    out
}

/// A run as a person reads it: outcome, counts, calls, failures, then the plan.
pub fn render_run(report: &RunReport) -> String {
    render_run_named(report, &UserNames::new())
}

/// [`render_run`], naming users by userName where `names` has them.
pub fn render_run_named(report: &RunReport, names: &UserNames) -> String {
    let mut out = String::new();
    let outcome = serde_json::to_value(report.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let by = report
        .requested_by
        .as_deref()
        .map(|s| format!(", by {s}"))
        .unwrap_or_default();
    let trigger = serde_json::to_value(report.trigger)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if report.dry_run {
        // A dry run is not recorded, so it has no run number.
        let _ = writeln!(
            out,
            "Dry run ({trigger}{by}): planned in {} ms, nothing applied",
            report.duration_ms
        );
        let _ = writeln!(out, "  actions: {} planned", report.plan.actions.len());
    } else {
        let _ = writeln!(
            out,
            "Reconcile run {} ({trigger}{by}): {outcome} in {} ms",
            report.run, report.duration_ms
        );
        let _ = writeln!(
            out,
            "  actions: {} planned, {} applied, {} already in state, {} failed, {} skipped",
            report.plan.actions.len(),
            report.applied,
            report.already_in_state,
            report.failed,
            report.skipped
        );
    }
    if !report.done_by_kind.is_empty() {
        let _ = writeln!(out, "  done: {}", counts_line(&report.done_by_kind));
    }
    let _ = writeln!(
        out,
        "  downstream calls: {} reads, {} writes ({} retries, {} rate limited)",
        report.calls.reads, report.calls.writes, report.calls.retries, report.calls.rate_limited
    );
    let _ = writeln!(
        out,
        "  differences found: {} · outbox entries acknowledged: {}",
        report.plan.differences(),
        report.outbox_acked
    );
    if let Some(e) = &report.error {
        let _ = writeln!(out, "  error: {e}");
    }
    for e in &report.errors {
        let rid = e
            .request_id
            .as_deref()
            .map(|r| format!(" (request {r})"))
            .unwrap_or_default();
        let _ = writeln!(out, "  failed {} {}: {}{rid}", e.kind, e.target, e.error);
    }
    out.push('\n');
    out.push_str(&render_plan_named(&report.plan, names));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::plan::{GroupRef, Op, Valve};

    fn add(key: &str, i: usize) -> Action {
        Action {
            kind: ActionKind::AddMember,
            target: format!("group:{key}"),
            description: format!("add user u{i} (user_{i}) to group {key:?} (key {key})"),
            op: Op::AddMember {
                group: GroupRef {
                    key: key.into(),
                    id: Some(format!("rbac_group_{key}")),
                    name: key.into(),
                },
                scim_id: format!("u{i}"),
                user_id: format!("user_{i}"),
            },
        }
    }

    fn remove(key: &str, i: usize) -> Action {
        Action {
            kind: ActionKind::RemoveMember,
            target: format!("group:{key}"),
            description: format!("remove user u{i} (user_{i}) from group {key:?} (key {key})"),
            op: Op::RemoveMember {
                group: GroupRef {
                    key: key.into(),
                    id: Some(format!("rbac_group_{key}")),
                    name: key.into(),
                },
                scim_id: Some(format!("u{i}")),
                user_id: format!("user_{i}"),
                because: None,
            },
        }
    }

    fn plan(actions: Vec<Action>, held: Vec<Action>) -> Plan {
        let holding = !held.is_empty();
        Plan {
            actions,
            drift: Vec::new(),
            foreign: Vec::new(),
            pending: Vec::new(),
            notes: Vec::new(),
            valve: Valve {
                managed_memberships: 10,
                removals: held.len(),
                ratio: held.len() as f64 / 10.0,
                max_removal_ratio: 0.2,
                holding,
                held: held.len(),
                reason: holding.then(|| "too many removals".to_string()),
                ..Valve::default()
            },
            held: held
                .into_iter()
                .map(|action| Held {
                    action,
                    reason: "too many removals".into(),
                    new: true,
                })
                .collect(),
            offboarding: Vec::new(),
            collisions: Vec::new(),
            sync: Vec::new(),
        }
    }

    #[test]
    fn the_text_groups_actions_by_target_with_counts_and_caps_long_lists() {
        let mut actions: Vec<Action> = (0..30).map(|i| add("a", i)).collect();
        actions.push(add("b", 99));
        let report = PlanReport::new(
            &plan(actions, Vec::new()),
            "2026-01-01T00:00:00.000Z".into(),
            Mode::Extended,
            true,
            Some(3),
            Vec::new(),
            CallCounts::default(),
        );
        assert_eq!(report.by_target.len(), 2);
        assert_eq!(report.by_target[0].counts[&ActionKind::AddMember], 30);
        let text = render_plan(&report);
        assert!(text.starts_with(
            "Plan (extended mode, full scope, rules v3): 31 action(s): add_member 31"
        ));
        assert!(text.contains("group:a  (add_member 30)"));
        assert!(text.contains("… and 5 more (see --json)"));
        assert!(text.contains("  + add user u99"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["counts"]["add_member"], 31);
        assert_eq!(json["actions"][0]["kind"], "add_member");
        assert_eq!(json["actions"][0]["details"]["group"]["key"], "a");
    }

    #[test]
    fn held_removals_are_listed_with_why_and_an_empty_plan_says_nothing_to_do() {
        let report = PlanReport::new(
            &plan(vec![add("a", 1)], (2..7).map(|i| remove("a", i)).collect()),
            "t".into(),
            Mode::Real,
            true,
            None,
            Vec::new(),
            CallCounts::default(),
        );
        assert_eq!(report.held.len(), 5);
        let text = render_plan(&report);
        assert!(
            text.contains("HELD (5): these removals wait for approval"),
            "{text}"
        );
        assert!(text
            .contains("  - remove user u2 (user_2) from group \"a\" (key a) (too many removals)"));
        assert!(
            text.contains("1 action(s): add_member 1"),
            "everything else applies"
        );
        let empty = PlanReport::empty("t".into(), Mode::Extended, "no rule table");
        let text = render_plan(&empty);
        assert!(text.contains("0 action(s) — downstream matches the rules"));
        assert!(text.contains("note: no rule table"));
    }

    #[test]
    fn operator_text_names_users_by_user_name_and_the_json_keeps_the_ids_beside_it() {
        let names: UserNames = [
            ("u1".to_string(), "ada@example.com".to_string()),
            ("u3".to_string(), "cy@example.com".to_string()),
        ]
        .into();
        let report = PlanReport::new(
            &plan(vec![add("a", 1), add("a", 12)], vec![remove("a", 3)]),
            "t".into(),
            Mode::Extended,
            true,
            None,
            Vec::new(),
            CallCounts::default(),
        );
        assert_eq!(
            user_ids(&report).into_iter().collect::<Vec<_>>(),
            ["u1", "u12", "u3"]
        );
        let text = render_plan_named(&report, &names);
        assert!(
            text.contains("  + add user ada@example.com (u1, user_1) to group"),
            "{text}"
        );
        assert!(
            text.contains("  + add user u12 (user_12)"),
            "no name, ids only: {text}"
        );
        assert!(
            text.contains("  - remove user cy@example.com (u3, user_3) from group"),
            "{text}"
        );
        assert!(
            !render_plan(&report).contains("@"),
            "no names unless passed"
        );
        let mut json = serde_json::to_value(&report).unwrap();
        add_user_names(&mut json, &report, &names);
        assert_eq!(json["actions"][0]["user_name"], "ada@example.com");
        assert_eq!(json["actions"][0]["details"]["scim_id"], "u1");
        assert!(json["actions"][1].get("user_name").is_none());
        assert_eq!(json["held"][0]["user_name"], "cy@example.com");
        assert_eq!(
            with_user_name(
                "withdraw the pending invite i1 of user u1: gone",
                Some("u1"),
                &names
            ),
            "withdraw the pending invite i1 of user ada@example.com (u1): gone"
        );
        assert_eq!(
            with_user_name("user u12 left", Some("u1"), &names),
            "user u12 left [ada@example.com]",
            "an id inside a longer id is not the user"
        );
    }
}
