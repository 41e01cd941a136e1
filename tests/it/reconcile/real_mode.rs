//! Real mode against the simulator as Anthropic's Admin API: tier A written, tier B
//! reported as drift with its console step, plugin settings written per group and
//! org-wide, group spend drift, and group spend materialized as owned overrides.

use super::*;

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
