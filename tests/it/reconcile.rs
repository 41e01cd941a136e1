//! The reconciler against the simulator: full runs build and repair the downstream,
//! the next run is a no-op, the valve refuses mass removals, the event path delivers
//! SCIM changes, failures and crashes neither lose nor duplicate operations, users
//! missing downstream are invited or pending, and real mode writes tier A only.
//!
//! Tests that retry run with paused tokio time and a client without reqwest timeouts,
//! so backoff never really waits. Nothing sleeps.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cowork_sync::audit;
use cowork_sync::clock::{Clock, ManualClock, SharedClock};
use cowork_sync::config::UnknownMembers;
use cowork_sync::cowork::*;
use cowork_sync::directory::{Caller, Directory, Precondition};
use cowork_sync::metrics::Metrics;
use cowork_sync::outbox;
use cowork_sync::reconcile::{
    outbox_worker, ownership, render_plan, render_run, start_scheduler, ActionKind, Approval,
    Phase, Progress, ReconcileError, ReconcileOptions, Reconciler, RunOptions, RunOutcome,
    RunReport, Trigger,
};
use cowork_sync::rules::load_rule_file;
use cowork_sync::ruleset;
use cowork_sync::scim::{ResourceKind, SchemaRegistry};
use cowork_sync::sim::{self, FaultConfig, NewMember, SimApi, SimHandle, SimOptions};
use cowork_sync::status::Status;
use cowork_sync::store::memory::MemoryStore;
use cowork_sync::store::Store;
use serde_json::{json, Value};

const KEY: &str = "sk-ant-api01-test-key";

const RULES: &str = r#"
[org]
plan = "enterprise"
billing_currency = "USD"
connectors = ["mcpsrv_github"]
plugins = ["finance-close", "brand-kit"]

[roles.cowork-pilot]
name = "Cowork pilot"
capabilities = { cowork = true, chat = true }
connectors = { mcpsrv_github = "needs_approval" }

[[rules]]
id = "pilot"
match = { group = "Cowork Pilot" }
group = { key = "cowork-pilot", name = "Cowork pilot" }
roles = ["cowork-pilot"]
spend = { monthly = 50000 }
plugins = { finance-close = "installed_by_default" }

[[rules]]
id = "finance"
match = { group = "Finance" }
group = { key = "finance", name = "Finance" }
roles = ["cowork-pilot"]
"#;

struct Env {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    status: Arc<Status>,
    clock: Arc<ManualClock>,
}

fn env() -> Env {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at_epoch_2026());
    let shared: SharedClock = clock.clone();
    let directory = Arc::new(Directory::new(
        store.clone(),
        Arc::new(SchemaRegistry::builtin().unwrap()),
        shared.clone(),
        UnknownMembers::Skip,
    ));
    let status = Arc::new(Status::new(
        store.clone(),
        directory.clone(),
        Arc::new(Metrics::new()),
        shared,
        3,
    ));
    status.set_phase(cowork_sync::status::Phase::Serving);
    Env {
        store,
        directory,
        status,
        clock,
    }
}

fn caller() -> Caller<'static> {
    Caller {
        subject: "okta",
        request_id: None,
    }
}

impl Env {
    fn reconciler<C: CoworkApi + 'static>(&self, client: C, ratio: f64) -> Arc<Reconciler<C>> {
        self.reconciler_with(
            client,
            ReconcileOptions {
                max_removal_ratio: ratio,
                progress_every: 10,
                ..ReconcileOptions::default()
            },
        )
    }

    /// A reconciler whose valve holds from the first removal past the ratio (these
    /// fixtures are far smaller than the default floor).
    fn strict_reconciler<C: CoworkApi + 'static>(&self, client: C) -> Arc<Reconciler<C>> {
        self.reconciler_with(
            client,
            ReconcileOptions {
                max_removal_ratio: 0.2,
                removal_floor: 0,
                progress_every: 10,
                ..ReconcileOptions::default()
            },
        )
    }

    fn reconciler_with<C: CoworkApi + 'static>(
        &self,
        client: C,
        options: ReconcileOptions,
    ) -> Arc<Reconciler<C>> {
        Arc::new(Reconciler::new(
            self.store.clone(),
            self.directory.clone(),
            client,
            self.clock.clone(),
            self.status.clone(),
            options,
        ))
    }

    fn rules(&self, text: &str) {
        let table = load_rule_file(text).unwrap();
        ruleset::apply(
            self.store.as_ref(),
            table,
            "operator",
            None,
            self.clock.as_ref(),
        )
        .unwrap();
    }

    fn user(&self, name: &str) -> String {
        self.directory
            .create(
                caller(),
                ResourceKind::User,
                json!({"userName": format!("{name}@example.com"), "active": true,
                       "emails": [{"value": format!("{name}@example.com"), "primary": true}]}),
            )
            .unwrap()
            .id
    }

    fn group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
        self.directory
            .create(
                caller(),
                ResourceKind::Group,
                json!({"displayName": name, "members": members}),
            )
            .unwrap()
            .id
    }

    fn patch(&self, kind: ResourceKind, id: &str, ops: Value) {
        self.directory
            .patch(
                caller(),
                kind,
                id,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
                &Precondition::default(),
            )
            .unwrap();
    }

    fn deactivate(&self, id: &str) {
        self.patch(
            ResourceKind::User,
            id,
            json!([{"op": "replace", "path": "active", "value": false}]),
        );
    }

    fn pending_outbox(&self) -> usize {
        outbox::pending(self.store.as_ref(), usize::MAX)
            .unwrap()
            .len()
    }
}

async fn start_sim(extended: bool) -> SimHandle {
    sim::start(SimOptions {
        api_key: Some(KEY.into()),
        extended,
        ..SimOptions::for_tests()
    })
    .await
    .unwrap()
}

fn client(h: &SimHandle, mode: Mode) -> HttpCoworkClient {
    HttpCoworkClient::new(
        ClientConfig::new(h.base_url(), KEY)
            .with_mode(mode)
            .without_limits(),
    )
    .unwrap()
}

fn sim_user(h: &SimHandle, name: &str) -> String {
    let now = h.sim().clock().now();
    h.state()
        .sim_add_member(
            &NewMember {
                email: format!("{name}@example.com"),
                name: None,
                role: None,
                seat_tier: None,
            },
            now,
        )
        .unwrap()
        .id
}

fn group_by_ext(h: &SimHandle, key: &str) -> RbacGroup {
    h.state()
        .groups()
        .iter()
        .find(|g| g.external_id.as_deref() == Some(key))
        .cloned()
        .unwrap_or_else(|| panic!("no group with external_id {key}"))
}

fn member_emails(h: &SimHandle, group_id: &str) -> BTreeSet<String> {
    let s = h.state();
    s.member_ids(group_id)
        .iter()
        .map(|id| s.get_user(id).unwrap().email)
        .collect()
}

fn emails(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("{n}@example.com")).collect()
}

/// A directory with a pilot group (alice, bob, carol) and a finance group (bob,
/// dave); all four already members downstream with org role `user`.
struct Fixture {
    env: Env,
    h: SimHandle,
    users: std::collections::BTreeMap<&'static str, String>,
    pilot: String,
    finance: String,
}

async fn fixture(extended: bool) -> Fixture {
    let env = env();
    let h = start_sim(extended).await;
    fixture_on(env, h)
}

/// The fixture with a simulator in real mode that shares the daemon's manual clock,
/// so downstream timestamps are the daemon's.
async fn real_fixture_on_one_clock() -> Fixture {
    let env = env();
    let h = sim::start(SimOptions {
        api_key: Some(KEY.into()),
        extended: false,
        clock: env.clock.clone(),
        ..SimOptions::for_tests()
    })
    .await
    .unwrap();
    fixture_on(env, h)
}

fn fixture_on(env: Env, h: SimHandle) -> Fixture {
    let mut users = std::collections::BTreeMap::new();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        users.insert(name, env.user(name));
        if name != "erin" {
            sim_user(&h, name);
        }
    }
    let pilot = env.group(
        "Cowork Pilot",
        &[&users["alice"], &users["bob"], &users["carol"]],
    );
    let finance = env.group("Finance", &[&users["bob"], &users["dave"]]);
    env.rules(RULES);
    Fixture {
        env,
        h,
        users,
        pilot,
        finance,
    }
}

fn full() -> RunOptions {
    RunOptions::default()
}

// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_full_reconcile_builds_the_downstream_and_the_next_run_writes_nothing() {
    let f = fixture(true).await;
    // erin is in no rule's group: not governed.
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    let plan = r.plan().await.unwrap();
    let text = render_plan(&plan);
    assert!(text.contains("group:cowork-pilot"), "{text}");
    assert!(text.contains("create group \"Cowork pilot\""), "{text}");
    let json = serde_json::to_value(&plan).unwrap();
    assert!(json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["kind"].is_string() && a["target"].is_string() && a["description"].is_string()));
    assert!(
        !json.to_string().contains("@example.com"),
        "no emails in reports"
    );

    let events = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = events.clone();
    let report = r
        .run(RunOptions {
            progress: Some(Arc::new(move |p: &Progress| sink.lock().push(p.clone()))),
            ..full()
        })
        .await
        .unwrap();
    assert_eq!(report.outcome, RunOutcome::Ok, "{}", render_run(&report));
    assert_eq!(report.failed, 0);
    let phases: Vec<Phase> = events.lock().iter().map(|p| p.phase).collect();
    for phase in [
        Phase::Reading,
        Phase::Planning,
        Phase::Applying,
        Phase::Done,
    ] {
        assert!(phases.contains(&phase), "{phases:?}");
    }
    assert_eq!(report.calls.writes as usize, report.plan.actions.len());
    let counts = &report.plan.counts;
    assert_eq!(counts[&ActionKind::CreateRole], 1);
    assert_eq!(counts[&ActionKind::CreateGroup], 2);
    assert_eq!(counts[&ActionKind::SetGroupRoles], 2);
    assert_eq!(counts[&ActionKind::SetGroupSpend], 1);
    assert_eq!(counts[&ActionKind::SetPluginPolicy], 1);
    assert_eq!(counts[&ActionKind::SetUserRole], 4);
    assert_eq!(counts[&ActionKind::AddMember], 5);

    let pilot = group_by_ext(&f.h, "cowork-pilot");
    assert_eq!(pilot.name, "Cowork pilot");
    assert_eq!(
        member_emails(&f.h, &pilot.id),
        emails(&["alice", "bob", "carol"])
    );
    let finance = group_by_ext(&f.h, "finance");
    assert_eq!(member_emails(&f.h, &finance.id), emails(&["bob", "dave"]));
    assert_eq!(pilot.roles.as_ref().unwrap().len(), 1);
    {
        let s = f.h.state();
        let alice = s.user_by_email("alice@example.com").unwrap();
        assert_eq!(alice.role, OrgRole::Managed);
        let erin_there = s.user_by_email("erin@example.com").is_some();
        assert!(!erin_there, "erin is not governed and not invited");
        let limit = s
            .spend_limits()
            .iter()
            .find(|l| {
                l.scope
                    == SpendScope::RbacGroup {
                        rbac_group_id: pilot.id.clone(),
                    }
            })
            .unwrap()
            .amount
            .clone();
        assert_eq!(limit.as_deref(), Some("50000"));
        assert_eq!(
            s.plugin_overrides("finance-close"),
            &[GroupOverride {
                rbac_group_id: pilot.id.clone(),
                preference: Preference::InstalledByDefault
            }]
        );
    }

    // The next run is a no-op: zero write calls, nothing planned.
    let writes = f.h.metrics().writes;
    let again = r.run(full()).await.unwrap();
    assert_eq!(again.outcome, RunOutcome::Ok);
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    assert_eq!(again.calls.writes, 0);
    assert_eq!(f.h.metrics().writes, writes);
    // The rule change and the SCIM writes queued before the first run were acked.
    assert_eq!(f.env.pending_outbox(), 0);
    // History, audit chain, status.
    let runs = r.runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].run, again.run);
    assert_eq!(runs[1].planned["add_member"], 5);
    assert_eq!(runs[1].drift_found, report.plan.actions.len());
    assert!(runs[1].outbox_acked > 0);
    let v = audit::verify_store(f.env.store.as_ref()).unwrap();
    assert!(v.ok, "{v:?}");
    let entries = audit::list(f.env.store.as_ref(), None, 0, usize::MAX).unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("downstream."))
            .count(),
        report.plan.actions.len()
    );
    assert!(actions.contains(&"reconcile.run"));
    assert!(actions.contains(&"reconcile.drift"));
    // Each applied change names the server's request that made it.
    let downstream: Vec<_> = entries
        .iter()
        .filter(|e| e.action.starts_with("downstream.") && e.details["outcome"] == "applied")
        .collect();
    assert_eq!(downstream.len(), report.plan.actions.len());
    for e in &downstream {
        let id = e.details["request_id"].as_str().unwrap_or_default();
        assert!(id.starts_with("req_"), "{} has no request id", e.action);
    }
    let ids: BTreeSet<&str> = downstream
        .iter()
        .filter_map(|e| e.details["request_id"].as_str())
        .collect();
    assert_eq!(ids.len(), downstream.len(), "one request id per change");
    assert!(!serde_json::to_string(&entries)
        .unwrap()
        .contains("@example.com"));
    assert!(f.env.status.reconcile().last_success_at.is_some());
    let metrics = f.env.status.metrics().render();
    assert!(metrics.contains("cowork_sync_reconcile_last_success_timestamp_seconds"));
    assert!(metrics.contains("cowork_sync_downstream_calls_total{kind=\"write\"}"));
    assert!(metrics
        .contains("cowork_sync_reconcile_actions_total{kind=\"add_member\",result=\"done\"} 5"));
    let _ = (&f.pilot, &f.finance);
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn drift_made_by_hand_is_found_and_repaired_in_one_run() {
    let f = fixture(true).await;
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    let pilot = group_by_ext(&f.h, "cowork-pilot");
    let finance = group_by_ext(&f.h, "finance");
    {
        // An admin in the console: removes carol, adds erin (a directory user the
        // rules do not place there), detaches the role, renames, changes the limit;
        // also adds an outsider, who is not a directory user and must stay.
        let now = f.h.sim().clock().now();
        let mut s = f.h.state();
        let carol = s.user_by_email("carol@example.com").unwrap().id.clone();
        s.remove_member(&pilot.id, &carol, now).unwrap();
        let erin = s
            .sim_add_member(
                &NewMember {
                    email: "erin@example.com".into(),
                    name: None,
                    role: None,
                    seat_tier: None,
                },
                now,
            )
            .unwrap()
            .id;
        s.add_member(&finance.id, &erin, now).unwrap();
        let outsider = s
            .sim_add_member(
                &NewMember {
                    email: "contractor@example.com".into(),
                    name: None,
                    role: None,
                    seat_tier: None,
                },
                now,
            )
            .unwrap()
            .id;
        s.add_member(&finance.id, &outsider, now).unwrap();
        s.set_group_roles(&pilot.id, &[], now).unwrap();
        s.update_group(
            &pilot.id,
            &GroupUpdate {
                name: Some("Pilot (renamed by hand)".into()),
                description: None,
            },
            None,
            now,
        )
        .unwrap();
        s.upsert_spend_limit(
            &SpendLimitRequest {
                scope: SpendScope::RbacGroup {
                    rbac_group_id: pilot.id.clone(),
                },
                period: None,
                amount: Some("1".into()),
                currency: None,
            },
            true,
            now,
        )
        .unwrap();
    }
    let before = f.h.metrics();
    let report = r.run(full()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Ok, "{}", render_run(&report));
    let kinds: Vec<ActionKind> = report.plan.actions.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ActionKind::UpdateGroup,
            ActionKind::SetGroupRoles,
            ActionKind::SetGroupSpend,
            ActionKind::AddMember,
            ActionKind::RemoveMember,
        ]
    );
    assert_eq!(report.calls.writes, 5, "one write per difference");
    assert_eq!(f.h.metrics().writes_applied - before.writes_applied, 5);
    assert_eq!(report.plan.foreign.len(), 1, "the outsider is reported");
    let pilot_now = group_by_ext(&f.h, "cowork-pilot");
    assert_eq!(pilot_now.name, "Cowork pilot");
    assert_eq!(pilot_now.roles.as_ref().unwrap().len(), 1);
    assert_eq!(
        member_emails(&f.h, &pilot.id),
        emails(&["alice", "bob", "carol"])
    );
    let mut want = emails(&["bob", "dave"]);
    want.insert("contractor@example.com".into());
    assert_eq!(member_emails(&f.h, &finance.id), want);
    let again = r.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    assert_eq!(again.calls.writes, 0);
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn the_valve_holds_a_mass_removal_until_approved_or_forced_and_applies_the_rest() {
    let f = fixture(true).await;
    let r = f.env.strict_reconciler(client(&f.h, Mode::Extended));
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    let pilot = group_by_ext(&f.h, "cowork-pilot");
    // The IdP deactivates three of four people (an outage, say): 4 of 5 memberships,
    // and 3 of 4 governed members would leave the organization.
    for name in ["alice", "bob", "carol"] {
        f.env.deactivate(&f.users[name]);
    }
    let writes = f.h.metrics().writes;
    let held = r.run(full()).await.unwrap();
    assert_eq!(held.outcome, RunOutcome::Held, "{}", render_run(&held));
    assert!(held.plan.valve.holding);
    assert_eq!(held.plan.valve.removals, 4);
    assert_eq!(held.plan.valve.org_removals, 3);
    assert_eq!(held.plan.valve.managed_memberships, 5);
    assert_eq!(held.plan.held.len(), 7);
    assert!(render_run(&held).contains("HELD (7)"));
    assert_eq!(f.h.metrics().writes, writes, "nothing removed");
    assert_eq!(member_emails(&f.h, &pilot.id).len(), 3);
    assert_eq!(
        f.env.pending_outbox(),
        0,
        "a run that holds removals still covers the outbox"
    );
    assert!(
        f.env.status.reconcile().last_error.is_none(),
        "holding is not failing"
    );
    let audit = audit::list(f.env.store.as_ref(), None, 0, usize::MAX).unwrap();
    assert!(audit.iter().any(|e| e.action == "reconcile.held"));
    // Held again by the next runs, not duplicated; readiness stays green.
    for _ in 0..3 {
        assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Held);
    }
    let list = r.held().await.unwrap();
    assert_eq!(list.len(), 7);
    // Ready (SCIM writes are stored), but degraded, naming the held removals.
    let readiness = f.env.status.check();
    assert!(readiness.ready);
    assert_eq!(readiness.status, "degraded");
    assert_eq!(
        readiness.checks["held_removals"].status,
        cowork_sync::status::Verdict::Degraded
    );

    // An operator approves alice's pilot removal: applied at once, audited by name.
    let alice = list
        .iter()
        .find(|h| {
            h.kind == ActionKind::RemoveMember
                && h.scim_id.as_deref() == Some(f.users["alice"].as_str())
        })
        .unwrap();
    let approved = r
        .approve(
            Approval::Ids(vec![alice.id.clone(), "h_nope".into()]),
            "operator",
        )
        .await
        .unwrap();
    assert_eq!(approved.approved, vec![alice.id.clone()]);
    assert_eq!(approved.unknown, vec!["h_nope".to_string()]);
    assert_eq!(approved.still_held, 6);
    assert!(!member_emails(&f.h, &pilot.id).contains("alice@example.com"));
    let audit = audit::list(f.env.store.as_ref(), None, 0, usize::MAX).unwrap();
    let approval = audit
        .iter()
        .find(|e| e.action == "reconcile.approved")
        .unwrap();
    assert_eq!(approval.actor, "operator");
    assert!(audit.iter().any(|e| e.action == "downstream.remove_member"
        && e.details["approval"]["approved_by"] == "operator"));

    // A forced run applies the rest.
    let forced = r
        .run(RunOptions {
            force: true,
            requested_by: Some("operator".into()),
            ..full()
        })
        .await
        .unwrap();
    assert_eq!(forced.outcome, RunOutcome::Ok, "{}", render_run(&forced));
    assert!(forced.forced);
    assert!(render_run(&forced).contains("(manual, by operator)"));
    assert_eq!(
        r.runs(1).unwrap()[0].requested_by.as_deref(),
        Some("operator")
    );
    assert!(member_emails(&f.h, &pilot.id).is_empty());
    assert!(r.held().await.unwrap().is_empty());
    for name in ["alice", "bob", "carol"] {
        let email = format!("{name}@example.com");
        assert!(
            f.h.state().users().iter().all(|u| u.email != email),
            "{name} left the organization"
        );
    }
    assert!(f.env.status.check().ready);
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn the_event_path_delivers_scim_membership_changes() {
    let f = fixture(true).await;
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    let pilot = group_by_ext(&f.h, "cowork-pilot");
    // erin joins the pilot in the IdP (she already has a Cowork account), carol leaves.
    sim_user(&f.h, "erin");
    f.env.patch(
        ResourceKind::Group,
        &f.pilot,
        json!([{"op": "add", "path": "members", "value": [{"value": f.users["erin"]}]},
               {"op": "remove", "path": format!("members[value eq \"{}\"]", f.users["carol"])}]),
    );
    assert_eq!(f.env.pending_outbox(), 1);
    let reads = f.h.metrics().reads;
    let report = r.drain_outbox().await.unwrap();
    assert_eq!(report.acked, 1, "{report:?}");
    assert!(!report.blocked);
    assert_eq!(
        member_emails(&f.h, &pilot.id),
        emails(&["alice", "bob", "erin"])
    );
    // erin was unknown: the people lists were read once; no group was read.
    assert_eq!(f.h.metrics().reads - reads, 2);
    {
        let s = f.h.state();
        assert_eq!(
            s.user_by_email("erin@example.com").unwrap().role,
            OrgRole::Managed
        );
    }
    assert_eq!(f.env.pending_outbox(), 0);
    assert!(r.drain_outbox().await.unwrap().entries == 0);
    // The full reconcile agrees: nothing to do.
    let again = r.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    f.h.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_worker_delivers_a_scim_change_when_woken() {
    let f = fixture(true).await;
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    let finance = group_by_ext(&f.h, "finance");
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(outbox_worker(r.clone(), wake.clone(), stop_rx));

    // Wait on the worker's own progress, never on time: each finished drain wakes us.
    // The timeout only keeps a broken worker from hanging the test; the latency is
    // printed (and measured by the reconcile bench), not asserted.
    let mut drained = r.drained();
    let started = Instant::now();
    f.env.patch(
        ResourceKind::Group,
        &f.finance,
        json!([{"op": "add", "path": "members", "value": [{"value": f.users["alice"]}]}]),
    );
    wake.notify_one();
    let delivered = tokio::time::timeout(Duration::from_secs(60), async {
        while !member_emails(&f.h, &finance.id).contains("alice@example.com") {
            drained.changed().await.unwrap();
        }
    })
    .await;
    assert!(delivered.is_ok(), "the worker never delivered the change");
    eprintln!(
        "SCIM change reached the simulator in {:?}",
        started.elapsed()
    );
    stop_tx.send(true).unwrap();
    wake.notify_one();
    worker.await.unwrap();
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn a_rule_change_in_the_outbox_runs_a_full_reconcile() {
    let f = fixture(true).await;
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    // Everything queued so far includes the rule apply: the drain runs it in full.
    let report = r.drain_outbox().await.unwrap();
    assert_eq!(report.full_reconcile, Some(RunOutcome::Ok), "{report:?}");
    assert_eq!(f.env.pending_outbox(), 0);
    assert_eq!(r.runs(5).unwrap()[0].trigger, Trigger::Outbox);
    assert_eq!(
        member_emails(&f.h, &group_by_ext(&f.h, "finance").id).len(),
        2
    );
    f.h.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn thirty_percent_failures_converge_with_no_lost_or_duplicated_write() {
    let f = fixture(true).await;
    let mut config = ClientConfig::new(f.h.base_url(), KEY).without_limits();
    config.max_attempts = 2;
    let r = f
        .env
        .reconciler(HttpCoworkClient::new(config).unwrap(), 1.0);
    let differences = r.plan().await.unwrap().actions.len();
    f.h.sim().set_faults(FaultConfig {
        error_rate: 0.3,
        drop_rate: 0.1,
        seed: Some(11),
        ..FaultConfig::default()
    });
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 20, "no convergence");
        match r.run(full()).await {
            Ok(report) if report.outcome == RunOutcome::Ok && report.plan.actions.is_empty() => {
                break
            }
            Ok(_) | Err(_) => continue,
        }
    }
    let m = f.h.metrics();
    assert!(m.injected_errors > 0 && m.dropped > 0, "{m:?}");
    f.h.sim().set_faults(FaultConfig::default());
    assert_eq!(
        m.writes_applied as usize, differences,
        "each difference applied exactly once: {m:?} after {runs} runs"
    );
    assert_eq!(
        member_emails(&f.h, &group_by_ext(&f.h, "cowork-pilot").id),
        emails(&["alice", "bob", "carol"])
    );
    let direct = f.h.state().groups().iter().filter(|g| !g.is_scim()).count();
    assert_eq!(direct, 2, "no duplicate groups");
    f.h.stop().await.unwrap();
}

/// A client that stops after `budget` writes: the next write reaches the server but
/// its answer is lost, and every later call fails, as if the daemon died mid-drain.
struct Crashing<C> {
    inner: C,
    budget: AtomicI64,
}

impl<C> Crashing<C> {
    fn new(inner: C, writes: i64) -> Self {
        Self {
            inner,
            budget: AtomicI64::new(writes),
        }
    }

    fn dead() -> CoworkError {
        CoworkError::Transient {
            reason: "the daemon was killed".into(),
            status: None,
            request_id: None,
        }
    }

    fn alive(&self) -> bool {
        self.budget.load(Ordering::SeqCst) >= 0
    }

    /// Runs a write; the one that exhausts the budget is sent but its answer lost.
    async fn write<T>(
        &self,
        f: impl std::future::Future<Output = CoworkResult<T>>,
    ) -> CoworkResult<T> {
        if !self.alive() {
            return Err(Self::dead());
        }
        let left = self.budget.fetch_sub(1, Ordering::SeqCst);
        let result = f.await;
        if left <= 0 {
            return Err(Self::dead());
        }
        result
    }

    async fn read<T>(
        &self,
        f: impl std::future::Future<Output = CoworkResult<T>>,
    ) -> CoworkResult<T> {
        if !self.alive() {
            return Err(Self::dead());
        }
        f.await
    }
}

impl<C: CoworkApi> CoworkApi for Crashing<C> {
    fn mode(&self) -> Mode {
        self.inner.mode()
    }
    fn call_counts(&self) -> CallCounts {
        self.inner.call_counts()
    }
    fn take_write_request_id(&self) -> Option<String> {
        self.inner.take_write_request_id()
    }
    async fn get_me(&self) -> CoworkResult<Organization> {
        self.read(self.inner.get_me()).await
    }
    async fn list_users(&self) -> CoworkResult<Vec<User>> {
        self.read(self.inner.list_users()).await
    }
    async fn get_user(&self, id: &str) -> CoworkResult<User> {
        self.read(self.inner.get_user(id)).await
    }
    async fn set_user_role(
        &self,
        id: &str,
        role: OrgRole,
        k: &IdempotencyKey,
    ) -> CoworkResult<User> {
        self.write(self.inner.set_user_role(id, role, k)).await
    }
    async fn list_invites(&self) -> CoworkResult<Vec<Invite>> {
        self.read(self.inner.list_invites()).await
    }
    async fn create_invite(&self, i: &InviteRequest, k: &IdempotencyKey) -> CoworkResult<Invite> {
        self.write(self.inner.create_invite(i, k)).await
    }
    async fn list_groups(&self) -> CoworkResult<Vec<RbacGroup>> {
        self.read(self.inner.list_groups()).await
    }
    async fn get_group(&self, id: &str) -> CoworkResult<RbacGroup> {
        self.read(self.inner.get_group(id)).await
    }
    async fn create_group(
        &self,
        g: &NewGroup,
        k: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacGroup>> {
        self.write(self.inner.create_group(g, k)).await
    }
    async fn update_group(
        &self,
        id: &str,
        u: &GroupUpdate,
        k: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        self.write(self.inner.update_group(id, u, k)).await
    }
    async fn delete_group(&self, id: &str, k: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.write(self.inner.delete_group(id, k)).await
    }
    async fn list_group_members(&self, id: &str) -> CoworkResult<Vec<RbacGroupMember>> {
        self.read(self.inner.list_group_members(id)).await
    }
    async fn add_group_member(
        &self,
        g: &str,
        u: &str,
        k: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        self.write(self.inner.add_group_member(g, u, k)).await
    }
    async fn remove_group_member(
        &self,
        g: &str,
        u: &str,
        k: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        self.write(self.inner.remove_group_member(g, u, k)).await
    }
    async fn remove_user(&self, u: &str, k: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.write(self.inner.remove_user(u, k)).await
    }
    async fn withdraw_invite(&self, i: &str, k: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.write(self.inner.withdraw_invite(i, k)).await
    }
    async fn set_group_members(
        &self,
        g: &str,
        u: &[String],
        k: &IdempotencyKey,
    ) -> CoworkResult<SetMembersResult> {
        self.write(self.inner.set_group_members(g, u, k)).await
    }
    async fn list_roles(&self) -> CoworkResult<Vec<RbacRole>> {
        self.read(self.inner.list_roles()).await
    }
    async fn list_role_permissions(&self, id: &str) -> CoworkResult<Vec<RolePermission>> {
        self.read(self.inner.list_role_permissions(id)).await
    }
    async fn create_role(
        &self,
        s: &RoleSpec,
        k: &IdempotencyKey,
    ) -> CoworkResult<Created<RbacRole>> {
        self.write(self.inner.create_role(s, k)).await
    }
    async fn update_role(
        &self,
        id: &str,
        s: &RoleSpec,
        k: &IdempotencyKey,
    ) -> CoworkResult<RbacRole> {
        self.write(self.inner.update_role(id, s, k)).await
    }
    async fn delete_role(&self, id: &str, k: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.write(self.inner.delete_role(id, k)).await
    }
    async fn set_group_roles(
        &self,
        g: &str,
        r: &[String],
        k: &IdempotencyKey,
    ) -> CoworkResult<RbacGroup> {
        self.write(self.inner.set_group_roles(g, r, k)).await
    }
    async fn list_effective_spend(&self) -> CoworkResult<Vec<SpendSummary>> {
        self.read(self.inner.list_effective_spend()).await
    }
    async fn list_spend_limits(&self, f: &SpendLimitFilter) -> CoworkResult<Vec<SpendLimit>> {
        self.read(self.inner.list_spend_limits(f)).await
    }
    async fn upsert_user_spend_limit(
        &self,
        u: &str,
        a: Option<u64>,
        c: &str,
        k: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        self.write(self.inner.upsert_user_spend_limit(u, a, c, k))
            .await
    }
    async fn upsert_group_spend_limit(
        &self,
        g: &str,
        a: Option<u64>,
        c: &str,
        k: &IdempotencyKey,
    ) -> CoworkResult<SpendLimit> {
        self.write(self.inner.upsert_group_spend_limit(g, a, c, k))
            .await
    }
    async fn delete_spend_limit(&self, id: &str, k: &IdempotencyKey) -> CoworkResult<Outcome> {
        self.write(self.inner.delete_spend_limit(id, k)).await
    }
    async fn list_plugin_policies(&self) -> CoworkResult<Vec<PluginPolicy>> {
        self.read(self.inner.list_plugin_policies()).await
    }
    async fn put_plugin_policy(
        &self,
        p: &str,
        u: &PluginPolicyUpdate,
        k: &IdempotencyKey,
    ) -> CoworkResult<PluginPolicy> {
        self.write(self.inner.put_plugin_policy(p, u, k)).await
    }
    async fn get_effective_access(&self, id: &str) -> CoworkResult<EffectiveAccess> {
        self.read(self.inner.get_effective_access(id)).await
    }
}

#[tokio::test]
async fn a_daemon_killed_mid_drain_delivers_everything_exactly_once() {
    let f = fixture(true).await;
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    // Five people join the pilot at once; each already has a Cowork account.
    let mut new = Vec::new();
    for i in 0..5 {
        let name = format!("new{i}");
        sim_user(&f.h, &name);
        new.push(f.env.user(&name));
    }
    let values: Vec<Value> = new.iter().map(|id| json!({ "value": id })).collect();
    f.env.patch(
        ResourceKind::Group,
        &f.pilot,
        json!([{"op": "add", "path": "members", "value": values}]),
    );
    // 5 role changes + 5 adds = 10 differences. The daemon dies after 3 writes, with
    // the answer to the 4th lost.
    let before = f.h.metrics();
    let queued = f.env.pending_outbox();
    let crashing = f
        .env
        .reconciler(Crashing::new(client(&f.h, Mode::Extended), 3), 1.0);
    let first = crashing.drain_outbox().await.unwrap();
    assert!(first.blocked, "{first:?}");
    assert_eq!(f.env.pending_outbox(), queued, "no entry is lost");
    drop(crashing);
    // A fresh daemon over the same store.
    let restarted = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    let second = restarted.drain_outbox().await.unwrap();
    assert!(!second.blocked && second.acked == queued, "{second:?}");
    let after = f.h.metrics();
    assert_eq!(
        after.writes_applied - before.writes_applied,
        10,
        "{after:?}"
    );
    assert!(
        after.replays > before.replays,
        "the lost answer was replayed, not re-applied"
    );
    let pilot = group_by_ext(&f.h, "cowork-pilot");
    let members = member_emails(&f.h, &pilot.id);
    for i in 0..5 {
        assert!(members.contains(&format!("new{i}@example.com")));
    }
    assert_eq!(f.env.pending_outbox(), 0);
    let again = restarted.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    f.h.stop().await.unwrap();
}

/// Real mode: a group create is not idempotent downstream. The daemon dies with the
/// create's answer lost; the next run finds the group that create made and adopts
/// it, and never adopts a same-named group someone made by hand before.
#[tokio::test]
async fn real_mode_adopts_the_group_a_lost_create_made_instead_of_creating_it_twice() {
    let f = real_fixture_on_one_clock().await;
    let now = f.env.clock.now();
    let by_hand =
        f.h.state()
            .create_group(
                &NewGroup {
                    name: "Cowork pilot".into(),
                    ..NewGroup::default()
                },
                now - chrono::Duration::minutes(30),
            )
            .unwrap();
    let named = |h: &SimHandle, name: &str| -> Vec<String> {
        h.state()
            .groups()
            .iter()
            .filter(|g| !g.is_scim() && g.name == name)
            .map(|g| g.id.clone())
            .collect()
    };
    let plan = f
        .env
        .reconciler(client(&f.h, Mode::Real), 1.0)
        .plan()
        .await
        .unwrap();
    let first_create = plan
        .actions
        .iter()
        .position(|a| a.kind == ActionKind::CreateGroup)
        .unwrap();
    let crashing = f.env.reconciler(
        Crashing::new(client(&f.h, Mode::Real), first_create as i64),
        1.0,
    );
    let _ = crashing.run(full()).await;
    drop(crashing);
    let after_crash = named(&f.h, "Cowork pilot");
    assert_eq!(
        after_crash.len(),
        2,
        "the hand-made group and the lost create"
    );

    f.env.clock.advance(chrono::Duration::seconds(60));
    let r = f.env.reconciler(client(&f.h, Mode::Real), 1.0);
    let report = r.run(full()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Ok, "{}", render_run(&report));
    let pilots = named(&f.h, "Cowork pilot");
    assert_eq!(pilots, after_crash, "no second create");
    assert_eq!(named(&f.h, "Finance").len(), 1);
    let owned = ownership::load_all(f.env.store.as_ref()).unwrap();
    let adopted = &owned.groups["cowork-pilot"].id;
    assert_ne!(adopted, &by_hand.id, "the hand-made group is not taken");
    assert!(
        owned.pending_groups.is_empty(),
        "{:?}",
        owned.pending_groups
    );
    assert_eq!(
        member_emails(&f.h, adopted),
        emails(&["alice", "bob", "carol"])
    );
    assert!(member_emails(&f.h, &by_hand.id).is_empty(), "left alone");
    let entries = audit::list(f.env.store.as_ref(), None, 0, usize::MAX).unwrap();
    let creates: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "downstream.create_group")
        .filter(|e| e.target.as_deref() == Some("group:cowork-pilot"))
        .filter_map(|e| e.details["outcome"].as_str())
        .collect();
    assert_eq!(creates, ["requested", "already_in_state"]);
    let again = r.run(full()).await.unwrap();
    assert!(
        !again
            .plan
            .actions
            .iter()
            .any(|a| a.kind == ActionKind::CreateGroup),
        "{}",
        render_run(&again)
    );
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn users_missing_downstream_are_invited_once_or_reported_pending() {
    let f = fixture(true).await;
    // erin joins finance in the IdP but has no Cowork account.
    f.env.patch(
        ResourceKind::Group,
        &f.finance,
        json!([{"op": "add", "path": "members", "value": [{"value": f.users["erin"]}]}]),
    );
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    let report = r.run(full()).await.unwrap();
    assert_eq!(report.plan.counts[&ActionKind::InviteUser], 1);
    let finance = group_by_ext(&f.h, "finance");
    {
        let s = f.h.state();
        let now = f.h.sim().clock().now();
        let page = s
            .list_invites(&cowork_sync::sim::page::IdQuery::first(100), now)
            .unwrap();
        let invite = page
            .data
            .iter()
            .find(|i| i.email == "erin@example.com")
            .unwrap();
        assert_eq!(invite.role, OrgRole::Managed);
        assert_eq!(invite.rbac_group_ids, vec![finance.id.clone()]);
    }
    // Not invited twice: pending until accepted.
    let again = r.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    assert_eq!(again.plan.pending.len(), 1);
    assert_eq!(again.calls.writes, 0);

    // Where the org provisions by SCIM, nobody is invited: pending.
    let g = fixture(true).await;
    g.env.rules(&RULES.replace(
        "plugins = [\"finance-close\", \"brand-kit\"]",
        "plugins = [\"finance-close\", \"brand-kit\"]\nprovisioning_mode = \"scim_permissive\"",
    ));
    g.h.state().org_mut().provisioning_mode = cowork_sync::cowork::ProvisioningMode::ScimPermissive;
    g.env.patch(
        ResourceKind::Group,
        &g.finance,
        json!([{"op": "add", "path": "members", "value": [{"value": g.users["erin"]}]}]),
    );
    let r = g.env.reconciler(client(&g.h, Mode::Extended), 1.0);
    let report = r.run(full()).await.unwrap();
    assert!(!report.plan.counts.contains_key(&ActionKind::InviteUser));
    assert!(report
        .plan
        .pending
        .iter()
        .any(|p| p.scim_id == g.users["erin"]));
    f.h.stop().await.unwrap();
    g.h.stop().await.unwrap();
}

#[tokio::test]
async fn real_mode_reports_tier_b_differences_as_drift_and_writes_only_tier_a() {
    // A simulator without the extension tier behaves like Anthropic's Admin API.
    let f = fixture(false).await;
    let r = f.env.reconciler(client(&f.h, Mode::Real), 1.0);
    let report = r.run(full()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Ok, "{}", render_run(&report));
    assert!(report.plan.actions.iter().all(|a| !a.kind.is_tier_b()));
    let steps: Vec<&str> = report
        .plan
        .drift
        .iter()
        .filter_map(|d| d.console_step.as_deref())
        .collect();
    assert!(steps.iter().any(|s| s
        .starts_with("claude.ai › Organization settings › Roles: create role \"Cowork pilot\"")));
    assert!(steps.contains(
        &"claude.ai › Organization settings › Groups › Cowork pilot: attach role \"Cowork pilot\""
    ));
    assert!(render_run(&report).contains("fix: claude.ai › Organization settings"));
    {
        let s = f.h.state();
        let created: Vec<&RbacGroup> = s.groups().iter().filter(|g| !g.is_scim()).collect();
        assert_eq!(created.len(), 2);
        assert!(created.iter().all(|g| g.external_id.is_none()));
        assert_eq!(
            s.roles().iter().filter(|r| !r.is_built_in()).count(),
            2,
            "only the seeded console roles"
        );
        assert!(s.spend_limits().is_empty());
    }
    // Keyed by the recorded id: the next run writes nothing and reports the same drift.
    let again = r.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    assert_eq!(again.calls.writes, 0);
    assert_eq!(again.plan.drift, report.plan.drift);
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn real_mode_writes_plugin_settings_and_reports_group_spend_drift() {
    // The simulator as Anthropic's Admin API: the beta Plugins API writes plugin
    // settings per group (tier A); group spend limits are readable, not writable.
    let f = fixture(false).await;
    let r = f.env.reconciler(client(&f.h, Mode::Real), 1.0);
    let report = r.run(full()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Ok, "{}", render_run(&report));
    assert_eq!(
        report.plan.counts[&ActionKind::SetPluginSetting],
        1,
        "{}",
        render_run(&report)
    );
    let pilot_id = || {
        f.h.state()
            .groups()
            .iter()
            .find(|g| g.name == "Cowork pilot")
            .unwrap()
            .id
            .clone()
    };
    let gid = pilot_id();
    assert_eq!(
        f.h.state().plugin_overrides("finance-close"),
        &[GroupOverride {
            rbac_group_id: gid.clone(),
            preference: Preference::InstalledByDefault
        }]
    );
    let spend_drift = |report: &RunReport| {
        report
            .plan
            .drift
            .iter()
            .filter(|d| d.target == "group:cowork-pilot" && d.detail.contains("spend limit"))
            .filter_map(|d| d.console_step.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        spend_drift(&report),
        ["claude.ai › Organization settings › Groups › Cowork pilot: set the monthly spend limit to $500.00"],
        "{}",
        render_run(&report)
    );
    assert!(!report
        .plan
        .drift
        .iter()
        .any(|d| d.target.starts_with("plugin:")));

    // Someone sets the group limit in claude.ai: the drift is gone.
    let set_limit = |amount: &str| {
        let now = f.h.sim().clock().now();
        let req = SpendLimitRequest {
            scope: SpendScope::RbacGroup {
                rbac_group_id: gid.clone(),
            },
            period: Some(Period::Monthly),
            amount: Some(amount.into()),
            currency: None,
        };
        f.h.state().upsert_spend_limit(&req, true, now).unwrap();
    };
    set_limit("50000");
    let again = r.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    assert!(spend_drift(&again).is_empty(), "{}", render_run(&again));
    // A different limit is drift again; a setting changed by hand is repaired.
    set_limit("100");
    {
        let now = f.h.sim().clock().now();
        let plugin = sim::state::plugin_api_id("finance-close");
        let target = PluginTarget::RbacGroup {
            rbac_group_id: gid.clone(),
        };
        f.h.state()
            .set_plugin_setting(&plugin, &target, InstallationPreference::Required, now)
            .unwrap();
    }
    let third = r.run(full()).await.unwrap();
    assert_eq!(spend_drift(&third).len(), 1, "{}", render_run(&third));
    assert_eq!(third.plan.actions.len(), 1, "{}", render_run(&third));
    assert_eq!(third.calls.writes, 1);
    assert_eq!(
        f.h.state().plugin_overrides("finance-close")[0].preference,
        Preference::InstalledByDefault
    );
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn real_mode_writes_the_org_wide_plugin_settings_the_org_lists() {
    // [org] plugins = ["finance-close", "brand-kit"]: both `available` org-wide.
    let f = fixture(false).await;
    let r = f.env.reconciler(client(&f.h, Mode::Real), 1.0);
    let first = r.run(full()).await.unwrap();
    assert_eq!(first.outcome, RunOutcome::Ok, "{}", render_run(&first));
    assert!(
        !first
            .plan
            .counts
            .contains_key(&ActionKind::SetOrgPluginSetting),
        "the seeded org settings already match: {}",
        render_run(&first)
    );
    // Someone changes one org-wide setting in claude.ai and deletes the other.
    {
        let now = f.h.sim().clock().now();
        let mut s = f.h.state();
        s.set_plugin_setting(
            &sim::state::plugin_api_id("finance-close"),
            &PluginTarget::Organization,
            InstallationPreference::Required,
            now,
        )
        .unwrap();
        s.delete_plugin_setting(
            &sim::state::plugin_api_id("brand-kit"),
            &PluginTarget::Organization,
            now,
        )
        .unwrap();
    }
    let repair = r.run(full()).await.unwrap();
    assert_eq!(repair.outcome, RunOutcome::Ok, "{}", render_run(&repair));
    assert_eq!(
        repair.plan.counts[&ActionKind::SetOrgPluginSetting],
        2,
        "{}",
        render_run(&repair)
    );
    assert_eq!(repair.plan.actions.len(), 2, "{}", render_run(&repair));
    assert_eq!(repair.calls.writes, 2);
    let org_pref = |name: &str| {
        f.h.state()
            .org()
            .settings
            .plugins
            .iter()
            .find(|p| p.id == name)
            .map(|p| p.org_preference)
    };
    assert_eq!(org_pref("finance-close"), Some(Preference::Available));
    assert_eq!(org_pref("brand-kit"), Some(Preference::Available));
    // The group setting was not touched, and the next run has nothing to do.
    assert_eq!(
        f.h.state().plugin_overrides("finance-close")[0].preference,
        Preference::InstalledByDefault
    );
    let again = r.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty(), "{}", render_run(&again));
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn real_mode_materializes_group_spend_as_owned_user_overrides() {
    let f = fixture(false).await;
    let r = Arc::new(Reconciler::new(
        f.env.store.clone(),
        f.env.directory.clone(),
        client(&f.h, Mode::Real),
        f.env.clock.clone(),
        f.env.status.clone(),
        ReconcileOptions {
            max_removal_ratio: 1.0,
            materialize_group_spend: true,
            ..ReconcileOptions::default()
        },
    ));
    let report = r.run(full()).await.unwrap();
    assert_eq!(report.plan.counts[&ActionKind::SetUserSpend], 3);
    let user_rows = |h: &SimHandle| {
        h.state()
            .spend_limits()
            .iter()
            .filter(|l| matches!(l.scope, SpendScope::User { .. }))
            .count()
    };
    assert_eq!(user_rows(&f.h), 3);
    assert!(r.run(full()).await.unwrap().plan.actions.is_empty());
    // carol leaves the pilot: her override goes with her membership.
    f.env.patch(
        ResourceKind::Group,
        &f.pilot,
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", f.users["carol"])}]),
    );
    let drained = r.drain_outbox().await.unwrap();
    assert_eq!(drained.applied, 2, "{drained:?}");
    assert_eq!(user_rows(&f.h), 2);
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_run_while_one_is_running_is_refused() {
    let f = fixture(true).await;
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    assert!(f.env.status.begin_reconcile());
    assert!(matches!(
        r.run(full()).await,
        Err(ReconcileError::AlreadyRunning)
    ));
    f.env.status.end_reconcile(Ok(()));
    // A dry run applies and records nothing.
    let dry = r
        .run(RunOptions {
            dry_run: true,
            ..full()
        })
        .await
        .unwrap();
    assert_eq!(dry.outcome, RunOutcome::DryRun);
    assert!(!dry.plan.actions.is_empty());
    assert_eq!(f.h.metrics().writes, 0);
    assert!(r.runs(10).unwrap().is_empty());
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn plan_with_previews_a_candidate_rule_table() {
    let f = fixture(true).await;
    let r = f.env.reconciler(client(&f.h, Mode::Extended), 1.0);
    r.run(full()).await.unwrap();
    let candidate =
        load_rule_file(&RULES.replace("name = \"Finance\" }", "name = \"Finance team\" }"))
            .unwrap();
    let preview = r.plan_with(&candidate).await.unwrap();
    assert_eq!(preview.actions.len(), 1);
    assert_eq!(preview.actions[0].kind, ActionKind::UpdateGroup);
    assert_eq!(preview.rule_version, None);
    assert_eq!(group_by_ext(&f.h, "finance").name, "Finance");
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn the_fake_drives_the_same_reconciler_without_http() {
    let env = env();
    let fake = SimApi::new(Mode::Extended).unwrap();
    let alice = env.user("alice");
    {
        let now = fake.sim().clock().now();
        fake.sim()
            .state()
            .sim_add_member(
                &NewMember {
                    email: "alice@example.com".into(),
                    name: None,
                    role: None,
                    seat_tier: None,
                },
                now,
            )
            .unwrap();
    }
    env.group("Finance", &[&alice]);
    env.rules(RULES);
    let r = env.reconciler(fake, 1.0);
    let report = r.run(full()).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Ok, "{}", render_run(&report));
    let again = r.run(full()).await.unwrap();
    assert!(again.plan.actions.is_empty());
    assert_eq!(again.calls.writes, 0);
}

#[tokio::test]
async fn the_scheduler_accepts_the_six_field_schedule() {
    let env = env();
    let r = env.reconciler(SimApi::new(Mode::Extended).unwrap(), 0.2);
    let mut scheduler = start_scheduler(r.clone(), "0 */10 * * * *").await.unwrap();
    scheduler.shutdown().await.unwrap();
    assert!(start_scheduler(r, "not a schedule").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_run_that_cannot_read_the_downstream_fails_and_is_recorded() {
    let f = fixture(true).await;
    let mut config = ClientConfig::new(f.h.base_url(), KEY).without_limits();
    config.max_attempts = 1;
    let r = f
        .env
        .reconciler(HttpCoworkClient::new(config).unwrap(), 1.0);
    f.h.sim().set_faults(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    });
    let err = r.run(full()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let runs = r.runs(5).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, RunOutcome::Failed);
    assert_eq!(runs[0].errors.len(), 1);
    assert_eq!(f.env.status.reconcile().consecutive_failures, 1);
    assert!(f.env.status.downstream().last_error.is_some());
    // The event path keeps what it could not deliver, and says so.
    let queued = f.env.pending_outbox();
    let drained = r.drain_outbox().await.unwrap();
    assert!(drained.blocked, "{drained:?}");
    let entries = outbox::pending(f.env.store.as_ref(), usize::MAX).unwrap();
    assert_eq!(entries.len(), queued);
    assert!(entries.iter().all(|e| e.attempts == 1));
    f.h.sim().set_faults(FaultConfig::default());
    let drained = r.drain_outbox().await.unwrap();
    assert_eq!(drained.full_reconcile, Some(RunOutcome::Ok));
    assert_eq!(f.env.pending_outbox(), 0);
    f.h.stop().await.unwrap();
}

#[tokio::test]
async fn the_event_path_holds_mass_removals_applies_the_rest_and_approval_applies_them() {
    let f = fixture(true).await;
    let r = f.env.strict_reconciler(client(&f.h, Mode::Extended));
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    sim_user(&f.h, "erin");
    // One IdP push: erin joins finance; alice, bob and carol leave the pilot (3 of 5).
    f.env.patch(
        ResourceKind::Group,
        &f.finance,
        json!([{"op": "add", "path": "members", "value": [{"value": f.users["erin"]}]}]),
    );
    f.env.patch(
        ResourceKind::Group,
        &f.pilot,
        json!([{"op": "replace", "path": "members", "value": []}]),
    );
    let drained = r.drain_outbox().await.unwrap();
    assert_eq!(drained.held, 3, "{drained:?}");
    assert!(!drained.blocked);
    assert_eq!(f.env.pending_outbox(), 0, "nothing blocks the outbox");
    let finance = group_by_ext(&f.h, "finance");
    let pilot = group_by_ext(&f.h, "cowork-pilot");
    assert!(member_emails(&f.h, &finance.id).contains("erin@example.com"));
    assert_eq!(member_emails(&f.h, &pilot.id).len(), 3, "removals held");
    let audit = audit::list(f.env.store.as_ref(), None, 0, usize::MAX).unwrap();
    assert!(audit.iter().any(|e| e.action == "reconcile.held"));
    let held = r.held().await.unwrap();
    assert_eq!(held.len(), 3);
    assert!(held
        .iter()
        .all(|h| h.scim_id.is_some() && h.reason.contains("3 of 5")));
    // The full reconcile holds the same three (not new ones).
    let run = r.run(full()).await.unwrap();
    assert_eq!(run.outcome, RunOutcome::Held);
    assert_eq!(r.held().await.unwrap(), held);
    let approved = r.approve(Approval::All, "operator").await.unwrap();
    assert_eq!(approved.approved.len(), 3);
    assert_eq!(approved.applied, 3, "{approved:?}");
    assert!(member_emails(&f.h, &pilot.id).is_empty());
    assert!(r.held().await.unwrap().is_empty());
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    f.h.stop().await.unwrap();
}

/// A trickle of removals counts together across event batches, and the window is
/// kept in the store: a restarted daemon still counts the removals before it.
#[tokio::test]
async fn a_trickle_of_removals_counts_in_one_window_across_batches_and_restarts() {
    let f = fixture(true).await;
    let options = || ReconcileOptions {
        max_removal_ratio: 0.2,
        removal_floor: 1,
        removal_window: chrono::Duration::hours(1),
        progress_every: 10,
        ..ReconcileOptions::default()
    };
    let r = f
        .env
        .reconciler_with(client(&f.h, Mode::Extended), options());
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    let pilot = group_by_ext(&f.h, "cowork-pilot");
    let leave = |name: &str| {
        f.env.patch(
            ResourceKind::Group,
            &f.pilot,
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", f.users[name])}]),
        );
    };

    // One removal: within the floor, applied at once.
    leave("alice");
    assert_eq!(r.drain_outbox().await.unwrap().held, 0);
    assert!(!member_emails(&f.h, &pilot.id).contains("alice@example.com"));

    // A restart: a new reconciler over the same store. The next removal, in another
    // batch ten minutes later, counts with alice's: two in the window, held.
    drop(r);
    let r = f
        .env
        .reconciler_with(client(&f.h, Mode::Extended), options());
    f.env.clock.advance(chrono::Duration::minutes(10));
    leave("bob");
    let drained = r.drain_outbox().await.unwrap();
    assert_eq!(drained.held, 1, "{drained:?}");
    assert!(member_emails(&f.h, &pilot.id).contains("bob@example.com"));
    let held = r.held().await.unwrap();
    assert!(
        held[0].reason.contains("in the last 1h"),
        "{}",
        held[0].reason
    );

    // Once alice's removal has left the window, a single removal applies again; the
    // held one stays held until approved.
    f.env.clock.advance(chrono::Duration::minutes(55));
    leave("carol");
    assert_eq!(r.drain_outbox().await.unwrap().held, 0);
    assert!(!member_emails(&f.h, &pilot.id).contains("carol@example.com"));
    assert_eq!(r.held().await.unwrap().len(), 1);
    assert!(member_emails(&f.h, &pilot.id).contains("bob@example.com"));
    f.h.stop().await.unwrap();
}
