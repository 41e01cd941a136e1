//! Full runs in extended mode: the downstream built from the rules and the next
//! run a no-op, drift made by hand found and repaired, and the valve holding a mass
//! removal until approved or forced.

use super::*;

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
    // Reading the downstream and applying carry their totals from their first
    // event on (only the local directory read before them has none), so the CLI
    // can show done/total and an estimate of the time left.
    for p in events.lock().iter() {
        match p.phase {
            Phase::Reading if p.message == "reading the directory and the rules" => {}
            Phase::Reading | Phase::Applying => {
                assert!(p.total > 0 && p.done <= p.total, "{p:?}")
            }
            _ => {}
        }
    }
    let reads: Vec<(usize, usize)> = events
        .lock()
        .iter()
        .filter(|p| p.phase == Phase::Reading && p.total > 0)
        .map(|p| (p.done, p.total))
        .collect();
    assert_eq!(reads.last().map(|(d, t)| d == t), Some(true), "{reads:?}");
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
