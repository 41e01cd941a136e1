//! Reconcile figures (design §7): planning cost at scale with no drift, downstream
//! calls per full run, downstream writes per difference, and the event path's
//! latency for a membership change and for an offboarding (a deactivation).
//!
//! ```sh
//! cargo run --release --example reconcile_bench            # defaults below
//! cargo run --release --example reconcile_bench -- 100000 100 10000 20000
//! ```
//! Arguments: planner users, planner groups, members per group, and the user count
//! of the end-to-end part (a full `Reconciler` over the in-memory simulator and the
//! in-memory store). CPU time is read from `/proc/self/stat` (Linux; 10 ms ticks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use chrono::DateTime;
use cowork_sync::clock::{ManualClock, SharedClock};
use cowork_sync::config::UnknownMembers;
use cowork_sync::cowork::{Mode, OrgRole};
use cowork_sync::directory::{Caller, Directory, Precondition};
use cowork_sync::metrics::Metrics;
use cowork_sync::reconcile::ownership::Ownership;
use cowork_sync::reconcile::plan::{plan, ActualState, DirectoryView, PlanInput, PlanOptions};
use cowork_sync::reconcile::{ReconcileOptions, Reconciler, RunOptions, RunOutcome};
use cowork_sync::rules::{load_rule_file, resolve, synthetic_snapshot, DesiredState};
use cowork_sync::ruleset;
use cowork_sync::scim::{ResourceKind, SchemaRegistry};
use cowork_sync::sim::{NewMember, SimApi};
use cowork_sync::status::Status;
use cowork_sync::store::memory::MemoryStore;
use cowork_sync::store::Store;
use serde_json::json;

/// Process CPU seconds (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the file are utime and stime; `after` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

struct Measure {
    wall: Instant,
    cpu: f64,
}

impl Measure {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_seconds(),
        }
    }
    fn done(&self) -> (f64, f64) {
        (self.wall.elapsed().as_secs_f64(), cpu_seconds() - self.cpu)
    }
}

/// The downstream exactly as desired, owned and believed (extended mode).
fn mirror(desired: &DesiredState) -> (ActualState, Ownership, DirectoryView) {
    let t0 = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    let m = cowork_sync::reconcile::mirror::mirror(desired, Mode::Extended, t0);
    (m.actual, m.ownership, m.directory)
}

fn planner(users: usize, groups: usize, members: usize) {
    println!("== planner: {users} users, {groups} groups of {members} members, no drift");
    let m = Measure::start();
    let (table, snapshot) = synthetic_snapshot(users, groups, members).unwrap();
    let desired = resolve(&table, &snapshot);
    let (wall, cpu) = m.done();
    let memberships: usize = desired.groups.values().map(|g| g.members.len()).sum();
    println!(
        "   resolve: {} downstream groups, {memberships} memberships, {} governed users: {wall:.2} s wall, {cpu:.2} s CPU",
        desired.groups.len(),
        desired.managed_users.len()
    );
    let (actual, ownership, directory) = mirror(&desired);
    let options = PlanOptions {
        mode: Mode::Extended,
        ..PlanOptions::default()
    };
    let m = Measure::start();
    let p = plan(PlanInput {
        desired: &desired,
        directory: &directory,
        actual: &actual,
        ownership: &ownership,
        options: &options,
        now: DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
        caps: &Default::default(),
    });
    let (wall, cpu) = m.done();
    assert!(p.actions.is_empty(), "{} actions", p.actions.len());
    assert!(p.sync.is_empty(), "{} ownership changes", p.sync.len());
    println!(
        "   plan: {} actions, {} drift, {} ownership changes: {wall:.2} s wall, {cpu:.2} s CPU (target: under 2 s CPU)",
        p.actions.len(),
        p.drift.len(),
        p.sync.len()
    );
    // Pages a full read of this downstream takes (1,000 per page).
    let pages = |n: usize| n.div_ceil(1000).max(1);
    let member_pages: usize = desired
        .groups
        .values()
        .map(|g| pages(g.members.len()))
        .sum();
    let reads = 1 + pages(desired.managed_users.len() + 1) + 1 + 1 + 1 + member_pages + 1 + 1;
    println!(
        "   a full read of this downstream: about {reads} read calls ({member_pages} of them member pages); at 90 requests a minute that is {:.1} min",
        reads as f64 / 90.0
    );
}

const RULES: &str = r#"
[org]
plan = "enterprise"
billing_currency = "USD"
connectors = ["mcpsrv_github"]
plugins = ["finance-close", "brand-kit"]

[roles.member]
name = "Member"
capabilities = { cowork = true, chat = true }
"#;

async fn end_to_end(users: usize, groups: usize) {
    println!(
        "== end to end: Reconciler over the in-memory simulator, {users} users, {groups} groups"
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock: SharedClock = Arc::new(ManualClock::at_epoch_2026());
    let directory = Arc::new(Directory::new(
        store.clone(),
        Arc::new(SchemaRegistry::builtin().unwrap()),
        clock.clone(),
        UnknownMembers::Skip,
    ));
    let caller = Caller {
        subject: "bench",
        request_id: None,
    };
    let fake = SimApi::new(Mode::Extended).unwrap();
    let m = Measure::start();
    let mut ids = Vec::with_capacity(users);
    {
        let now = fake.sim().clock().now();
        let mut state = fake.sim().state();
        for i in 0..users {
            let email = format!("user{i}@example.com");
            state
                .sim_add_member(
                    &NewMember {
                        email,
                        name: None,
                        role: Some(OrgRole::Managed),
                        seat_tier: None,
                    },
                    now,
                )
                .unwrap();
        }
    }
    for i in 0..users {
        let email = format!("user{i}@example.com");
        ids.push(
            directory
                .create(
                    caller,
                    ResourceKind::User,
                    json!({"userName": email, "emails": [{"value": email, "primary": true}]}),
                )
                .unwrap()
                .id,
        );
    }
    let mut rules = RULES.to_string();
    let per = users / groups;
    for g in 0..groups {
        let members: Vec<serde_json::Value> = ids[g * per..(g + 1) * per]
            .iter()
            .map(|id| json!({ "value": id }))
            .collect();
        directory
            .create(
                caller,
                ResourceKind::Group,
                json!({"displayName": format!("Team {g}"), "members": members}),
            )
            .unwrap();
        rules.push_str(&format!(
            "\n[[rules]]\nid = \"team-{g}\"\nmatch = {{ group = \"Team {g}\" }}\ngroup = {{ key = \"team-{g}\", name = \"Team {g}\" }}\nroles = [\"member\"]\nspend = {{ monthly = {} }}\n",
            10_000 * (1 + g % 3)
        ));
    }
    ruleset::apply(
        store.as_ref(),
        load_rule_file(&rules).unwrap(),
        "bench",
        None,
        clock.as_ref(),
    )
    .unwrap();
    let (wall, _) = m.done();
    println!("   setup: {wall:.1} s");
    let status = Arc::new(Status::new(
        store.clone(),
        directory.clone(),
        Arc::new(Metrics::new()),
        clock.clone(),
        3,
    ));
    let r = Reconciler::new(
        store.clone(),
        directory.clone(),
        fake,
        clock.clone(),
        status,
        ReconcileOptions {
            max_removal_ratio: 1.0,
            progress_every: 0,
            ..ReconcileOptions::default()
        },
    );
    let m = Measure::start();
    let first = r.run(RunOptions::default()).await.unwrap();
    let (wall, cpu) = m.done();
    assert_eq!(
        first.outcome,
        RunOutcome::Ok,
        "{:?}",
        &first.errors[..first.errors.len().min(5)]
    );
    println!(
        "   first run (empty downstream): {} actions, {} writes, {} reads: {wall:.1} s wall, {cpu:.1} s CPU; writes per difference {:.2}",
        first.plan.actions.len(),
        first.calls.writes,
        first.calls.reads,
        first.calls.writes as f64 / first.plan.actions.len().max(1) as f64
    );
    let m = Measure::start();
    let second = r.run(RunOptions::default()).await.unwrap();
    let (wall, cpu) = m.done();
    assert!(second.plan.actions.is_empty());
    println!(
        "   no-drift run: {} actions, {} write calls, {} read calls: {wall:.2} s wall, {cpu:.2} s CPU (directory snapshot, read, plan)",
        second.plan.actions.len(),
        second.calls.writes,
        second.calls.reads
    );
    // Drift by hand: remove 50 memberships, add 50 strangers from other teams, rename
    // 5 groups; then move 20 users between teams in the IdP.
    {
        let now = r.client().sim().clock().now();
        let mut s = r.client().sim().state();
        let gids: Vec<(String, Option<String>)> = s
            .groups()
            .iter()
            .filter(|g| !g.is_scim())
            .map(|g| (g.id.clone(), g.external_id.clone()))
            .collect();
        for (n, (gid, _)) in gids.iter().take(50).enumerate() {
            let member = s.member_ids(gid)[0].clone();
            s.remove_member(gid, &member, now).unwrap();
            let other = &gids[(n + 1) % gids.len()].0;
            let stranger = s.member_ids(other)[1].clone();
            s.add_member(gid, &stranger, now).unwrap();
        }
        for (gid, _) in gids.iter().take(5) {
            s.update_group(
                gid,
                &cowork_sync::cowork::GroupUpdate {
                    name: Some("renamed by hand".into()),
                    description: None,
                },
                None,
                now,
            )
            .unwrap();
        }
    }
    let team0 = {
        let snapshot = directory.snapshot(&|_| json!({}), false).unwrap();
        snapshot
            .groups
            .into_iter()
            .find(|g| g.display_name == "Team 0")
            .unwrap()
    };
    for u in team0.member_users.iter().rev().take(20) {
        directory
            .patch(
                caller,
                ResourceKind::Group,
                &team0.id,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "remove", "path": format!("members[value eq \"{u}\"]")}]}),
                &Precondition::default(),
            )
            .unwrap();
    }
    // 50 removed (re-add), 50 strangers (remove), 5 renames, 20 left the IdP group.
    let differences = 50 + 50 + 5 + 20;
    let m = Measure::start();
    let third = r.run(RunOptions::default()).await.unwrap();
    let (wall, cpu) = m.done();
    assert_eq!(third.outcome, RunOutcome::Ok);
    println!(
        "   drift run: {differences} differences made, {} actions planned, {} write calls: ratio {:.2} ({wall:.2} s wall, {cpu:.2} s CPU)",
        third.plan.actions.len(),
        third.calls.writes,
        third.calls.writes as f64 / differences as f64
    );
    let fourth = r.run(RunOptions::default()).await.unwrap();
    println!(
        "   next run: {} actions, {} write calls",
        fourth.plan.actions.len(),
        fourth.calls.writes
    );
    // The event path: one IdP membership change at a time, from the SCIM write to
    // the downstream write (the worker's wake-up itself is a Notify, not measured).
    let mut latencies = Vec::new();
    let mut writes = 0;
    for u in team0.member_users.iter().rev().take(20) {
        let start = Instant::now();
        directory
            .patch(
                caller,
                ResourceKind::Group,
                &team0.id,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "add", "path": "members", "value": [{"value": u}]}]}),
                &Precondition::default(),
            )
            .unwrap();
        let drained = r.drain_outbox().await.unwrap();
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        writes += drained.calls.writes;
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "   event path: 20 single-member changes, {writes} write calls (ratio {:.2}); SCIM write to downstream write p50 {:.1} ms, max {:.1} ms (target: under 2 s)",
        writes as f64 / 20.0,
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );

    // Offboarding: one IdP deactivation at a time, from the SCIM write to the
    // downstream removals (every group the daemon owns, then the organization).
    let mut latencies = Vec::new();
    let (mut writes, mut held) = (0, 0);
    for u in team0.member_users.iter().take(20) {
        let start = Instant::now();
        directory
            .patch(
                caller,
                ResourceKind::User,
                u,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "active", "value": false}]}),
                &Precondition::default(),
            )
            .unwrap();
        let drained = r.drain_outbox().await.unwrap();
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        writes += drained.calls.writes;
        held += drained.held;
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "   offboarding: 20 deactivations, {writes} write calls (group and organization removals), {held} held; SCIM write to last downstream removal p50 {:.1} ms, max {:.1} ms (target: p50 under 2 s)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    planner(arg(0, 100_000), arg(1, 100), arg(2, 10_000));
    let e2e = arg(3, 20_000);
    if e2e > 0 {
        // 99: the simulator's seed holds one SCIM group, and an org has at most 100.
        end_to_end(e2e, 99).await;
    }
}
