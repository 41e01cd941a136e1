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

mod built_in_roles;
mod event_path;
mod faults;
mod full_runs;
mod real_mode;
mod runs;
