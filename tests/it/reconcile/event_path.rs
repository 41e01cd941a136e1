//! The event path: SCIM changes delivered through the outbox (woken, not polled),
//! a rule change running a full reconcile, and mass removals held across batches,
//! windows and restarts.

use super::*;

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

/// A burst of changes drains together: after a wake-up the worker lets the burst
/// gather (here the window is an hour, so only a full batch of three can end it:
/// the timing itself is tested with a paused clock in `outbox_worker`) and its
/// first drain delivers all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_worker_lets_a_burst_gather_and_drains_it_in_one_pass() {
    let f = fixture(true).await;
    let options = ReconcileOptions {
        outbox_batch: 3,
        drain_settle: Duration::from_secs(3600),
        ..ReconcileOptions::default()
    };
    let r = f.env.reconciler_with(client(&f.h, Mode::Extended), options);
    assert_eq!(r.run(full()).await.unwrap().outcome, RunOutcome::Ok);
    assert_eq!(f.env.pending_outbox(), 0);
    let finance = group_by_ext(&f.h, "finance");
    let mut drained = r.drained();
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(outbox_worker(r.clone(), wake.clone(), stop_rx));
    // The drain at start, of nothing.
    drained.changed().await.unwrap();

    // erin gets a Cowork account; finance holds bob and dave.
    sim_user(&f.h, "erin");
    for name in ["alice", "carol", "erin"] {
        f.env.patch(
            ResourceKind::Group,
            &f.finance,
            json!([{"op": "add", "path": "members", "value": [{"value": f.users[name]}]}]),
        );
        wake.notify_one();
    }
    let next = tokio::time::timeout(Duration::from_secs(60), drained.changed()).await;
    assert!(next.is_ok(), "the worker never drained the burst");
    assert_eq!(
        member_emails(&f.h, &finance.id),
        emails(&["alice", "bob", "carol", "dave", "erin"]),
        "one drain delivered the whole burst"
    );
    assert_eq!(f.env.pending_outbox(), 0);
    stop_tx.send(true).unwrap();
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
