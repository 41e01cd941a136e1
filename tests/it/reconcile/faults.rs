//! Failures and crashes: injected faults converge with no lost or duplicated write,
//! a daemon killed mid-drain delivers everything once, real mode adopts the group a
//! lost create made, and a run that cannot read the downstream fails and is recorded.

use super::*;

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
