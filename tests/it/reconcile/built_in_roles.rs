//! Built-in roles (`source.type: "built_in"`, listed beside custom roles) are never
//! ours (docs/reconcile.md §4): a rule-file role with a built-in role's name is not
//! matched to it in either mode, so the built-in role is never updated, attached,
//! deleted or recorded as owned; in extended mode our own custom role is created
//! beside it, in real mode the rule-file role is reported as missing.

use super::*;

/// The fixture's rules with the pilot role named like the simulator's built-in "User".
fn rules_naming_a_built_in_role() -> String {
    let rules = RULES.replace(r#"name = "Cowork pilot""#, r#"name = "User""#);
    assert!(rules.contains("[roles.cowork-pilot]\nname = \"User\""));
    rules
}

/// The rules without any role: every role the daemon made is no longer wanted.
fn rules_without_roles() -> String {
    let rules = RULES
        .replace(
            "[roles.cowork-pilot]\nname = \"Cowork pilot\"\ncapabilities = { cowork = true, chat = true }\nconnectors = { mcpsrv_github = \"needs_approval\" }\n",
            "",
        )
        .replace("roles = [\"cowork-pilot\"]\n", "");
    assert!(
        !rules.contains("[roles.") && !rules.contains("roles = "),
        "{rules}"
    );
    rules
}

fn built_in_user(h: &SimHandle) -> RbacRole {
    h.state()
        .roles()
        .iter()
        .find(|r| r.is_built_in() && r.name == "User")
        .cloned()
        .expect("the simulator seeds a built-in role \"User\"")
}

/// Nothing in a run's plan or outcome touches the built-in role.
fn assert_untouched(h: &SimHandle, env: &Env, before: &RbacRole, report: &RunReport, mode: Mode) {
    let rendered = render_run(report);
    let json = serde_json::to_string(&report.plan).unwrap();
    assert!(
        !json.contains(&before.id),
        "{mode:?}: the plan names the built-in role: {rendered}"
    );
    assert_eq!(report.failed, 0, "{mode:?}: {rendered}");
    assert!(report.errors.is_empty(), "{mode:?}: {rendered}");
    assert_eq!(
        &built_in_user(h),
        before,
        "{mode:?}: the built-in role changed"
    );
    for g in h.state().groups().iter() {
        assert!(
            !g.roles.iter().flatten().any(|id| id == &before.id),
            "{mode:?}: built-in role attached to {}",
            g.name
        );
    }
    let owned = ownership::load_all(env.store.as_ref()).unwrap();
    assert!(
        owned.roles.values().all(|r| r.id != before.id),
        "{mode:?}: the built-in role is recorded as ours: {:?}",
        owned.roles
    );
}

#[tokio::test]
async fn a_built_in_role_is_never_updated_attached_deleted_or_adopted_in_either_mode() {
    for (extended, mode) in [(true, Mode::Extended), (false, Mode::Real)] {
        let f = fixture(extended).await;
        f.env.rules(&rules_naming_a_built_in_role());
        let before = built_in_user(&f.h);
        let r = f.env.reconciler(client(&f.h, mode), 1.0);

        let report = r.run(full()).await.unwrap();
        assert_eq!(
            report.outcome,
            RunOutcome::Ok,
            "{mode:?}: {}",
            render_run(&report)
        );
        assert_untouched(&f.h, &f.env, &before, &report, mode);
        match mode {
            Mode::Extended => {
                // Our own custom role, beside the built-in one, attached to our groups.
                let ours: Vec<RbacRole> =
                    f.h.state()
                        .roles()
                        .iter()
                        .filter(|r| r.external_id.as_deref() == Some("cowork-pilot"))
                        .cloned()
                        .collect();
                assert_eq!(ours.len(), 1, "{}", render_run(&report));
                assert!(!ours[0].is_built_in());
                assert_eq!(ours[0].name, "User");
                let pilot = group_by_ext(&f.h, "cowork-pilot");
                assert_eq!(pilot.roles.as_deref(), Some(&[ours[0].id.clone()][..]));
            }
            Mode::Real => {
                // Not matched by name either: the rules' role is missing downstream.
                assert!(
                    report
                        .plan
                        .drift
                        .iter()
                        .any(|d| d.target == "role:cowork-pilot"
                            && d.detail.contains("does not exist downstream")),
                    "{}",
                    render_run(&report)
                );
                assert!(report
                    .plan
                    .actions
                    .iter()
                    .all(|a| !matches!(a.kind, ActionKind::CreateRole | ActionKind::UpdateRole)));
            }
        }

        // The next run changes nothing about it, and neither does a rule file that
        // no longer names any role (groups lose their attachments).
        let again = r.run(full()).await.unwrap();
        assert_untouched(&f.h, &f.env, &before, &again, mode);
        f.env.rules(&rules_without_roles());
        let retired = r.run(full()).await.unwrap();
        assert_eq!(
            retired.outcome,
            RunOutcome::Ok,
            "{mode:?}: {}",
            render_run(&retired)
        );
        assert_untouched(&f.h, &f.env, &before, &retired, mode);
        f.h.stop().await.unwrap();
    }
}
