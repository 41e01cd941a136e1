//! Runs and their surroundings: invites for users missing downstream, one run at a
//! time, previews of a candidate rule table, the in-process fake, and the scheduler.

use super::*;

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
