//! `cowork-sync doctor`'s scope probes per mode: real mode needs the tier-A scopes
//! and the betas' (`read:plugins`, `write:plugins`, spend-limit reads), and
//! `write:spend_limits` only when it materializes group spend; extended mode needs
//! the tier-B scopes too. A key missing exactly one scope (the mock answers 403 on
//! that endpoint only) fails with that scope named; a 403 on an endpoint the mode
//! does not use is not reported; an unavailable spend-limit reads beta is a warning.

use cowork_sync::cowork::Mode;
use cowork_sync::doctor::{self, Needs, Verdict};
use cowork_sync::sim::SimOptions;
use serde_json::json;

use crate::cowork_client::{error_json, mock, start_sim, Reply, KEY};

const ORG: &str = "/v1/organizations";

/// Every scope a mode can need, with the endpoint doctor probes it on.
const ENDPOINTS: [(&str, &str, &str); 12] = [
    ("read:members", "GET", "/users"),
    ("write:members", "POST", "/users/user_doctor_probe"),
    ("read:rbac_groups", "GET", "/rbac_groups"),
    (
        "write:rbac_groups",
        "DELETE",
        "/rbac_groups/rbac_group_doctor_probe",
    ),
    ("read:spend_limits", "GET", "/spend_limits"),
    (
        "write:spend_limits",
        "DELETE",
        "/spend_limits/spl_doctor_probe",
    ),
    ("read:plugins", "GET", "/plugins"),
    (
        "write:plugins",
        "DELETE",
        "/plugins/plugin_doctor_probe/installation_settings/organization",
    ),
    (
        "write:rbac_roles",
        "DELETE",
        "/rbac_roles/rbac_role_doctor_probe",
    ),
    ("read:plugin_policies", "GET", "/plugin_policies"),
    (
        "write:plugin_policies",
        "PUT",
        "/plugin_policies/plugin_doctor_probe",
    ),
    // Real mode also reads the effective limits (same scope as the list);
    // extended mode does not call it.
    ("read:spend_limits", "GET", "/spend_limits/effective"),
];

fn real() -> Needs {
    Needs {
        mode: Mode::Real,
        user_spend_writes: false,
    }
}

fn real_materializing() -> Needs {
    Needs {
        mode: Mode::Real,
        user_spend_writes: true,
    }
}

fn extended() -> Needs {
    Needs {
        mode: Mode::Extended,
        user_spend_writes: false,
    }
}

/// The downstream checks against a mock that refuses (403) `method path` only and
/// answers every other read with an empty page and every other write with 404.
async fn checks_refusing(
    needs: Needs,
    method: &'static str,
    path: &'static str,
) -> Vec<doctor::Check> {
    let m = mock(move |seen, _| {
        if seen.method == method && seen.path == format!("{ORG}{path}") {
            Reply::Json(
                403,
                error_json("permission_error", "the key lacks a scope"),
                vec![],
            )
        } else if seen.method == "GET" {
            Reply::Json(
                200,
                json!({"data": [], "has_more": false, "next_page": null}),
                vec![],
            )
        } else {
            Reply::Json(404, error_json("not_found_error", "no such id"), vec![])
        }
    })
    .await;
    doctor::downstream(&m.url, KEY, needs, cowork_sync::clock::system().now()).await
}

fn scopes_check(checks: &[doctor::Check]) -> &doctor::Check {
    checks
        .iter()
        .find(|c| c.name == "downstream scopes")
        .expect("a downstream scopes line")
}

#[test]
fn each_mode_needs_its_own_scopes() {
    assert_eq!(
        doctor::required_scopes(real()),
        [
            "read:members",
            "write:members",
            "read:rbac_groups",
            "write:rbac_groups",
            "read:spend_limits",
            "read:plugins",
            "write:plugins"
        ]
    );
    let materializing = doctor::required_scopes(real_materializing());
    assert!(materializing.contains(&"write:spend_limits"));
    assert_eq!(materializing.len(), 8);
    assert_eq!(
        doctor::required_scopes(extended()),
        [
            "read:members",
            "write:members",
            "read:rbac_groups",
            "write:rbac_groups",
            "read:spend_limits",
            "write:spend_limits",
            "write:rbac_roles",
            "read:plugin_policies",
            "write:plugin_policies"
        ]
    );
}

#[tokio::test]
async fn a_key_missing_one_scope_fails_naming_it_and_only_it() {
    for needs in [real(), real_materializing(), extended()] {
        let required = doctor::required_scopes(needs);
        for (scope, method, path) in ENDPOINTS {
            let checks = checks_refusing(needs, method, path).await;
            let line = scopes_check(&checks);
            let rendered: Vec<String> = checks.iter().map(|c| c.render()).collect();
            let probed = required.contains(&scope)
                && !(path == "/spend_limits/effective" && needs.mode == Mode::Extended);
            if probed {
                assert_eq!(
                    line.verdict,
                    Verdict::Fail,
                    "{needs:?} {scope}: {rendered:#?}"
                );
                assert_eq!(
                    line.detail,
                    format!("the key lacks {scope}"),
                    "{needs:?} {method} {path}"
                );
                assert!(
                    line.fix.as_deref().unwrap_or("").contains(scope),
                    "{needs:?}: {rendered:#?}"
                );
                assert!(doctor::failed(&checks));
            } else {
                // An endpoint this mode never calls: not probed, not reported.
                assert_eq!(
                    line.verdict,
                    Verdict::Pass,
                    "{needs:?} {scope}: {rendered:#?}"
                );
                assert!(!doctor::failed(&checks), "{needs:?} {scope}: {rendered:#?}");
            }
            assert!(rendered.iter().all(|l| !l.contains(KEY)));
        }
    }
}

#[tokio::test]
async fn unavailable_spend_limit_reads_are_a_warning_and_do_not_hide_the_effective_read() {
    let m = mock(|seen, _| match seen.path.as_str() {
        p if p == format!("{ORG}/spend_limits") => {
            Reply::Json(404, error_json("not_found_error", "Not found"), vec![])
        }
        p if p == format!("{ORG}/spend_limits/effective") => Reply::Json(
            403,
            error_json("permission_error", "the key lacks a scope"),
            vec![],
        ),
        _ if seen.method == "GET" => Reply::Json(
            200,
            json!({"data": [], "has_more": false, "next_page": null}),
            vec![],
        ),
        _ => Reply::Json(404, error_json("not_found_error", "no such id"), vec![]),
    })
    .await;
    let checks = doctor::downstream(&m.url, KEY, real(), cowork_sync::clock::system().now()).await;
    let spend = checks
        .iter()
        .find(|c| c.name == "spend-limit reads")
        .expect("a spend-limit reads line");
    assert_eq!(spend.verdict, Verdict::Warn);
    assert_eq!(
        scopes_check(&checks).detail,
        "the key lacks read:spend_limits"
    );
    let beta_probe = m
        .seen()
        .into_iter()
        .find(|s| s.path == format!("{ORG}/spend_limits"))
        .unwrap();
    assert_eq!(
        beta_probe.headers["anthropic-beta"],
        "spend-limit-reads-2026-09-26"
    );
    assert!(beta_probe.query.contains("scope_type%5B%5D=rbac_group"));
}

#[tokio::test]
async fn against_the_extended_simulator_every_scope_passes_and_nothing_is_written() {
    let h = start_sim(SimOptions {
        extended: true,
        ..SimOptions::for_tests()
    })
    .await;
    let checks = doctor::downstream(
        &h.base_url(),
        KEY,
        extended(),
        cowork_sync::clock::system().now(),
    )
    .await;
    let text: Vec<String> = checks.iter().map(|c| c.render()).collect();
    assert!(!doctor::failed(&checks), "{text:#?}");
    assert!(
        checks.iter().all(|c| c.verdict == Verdict::Pass),
        "{text:#?}"
    );
    assert!(scopes_check(&checks)
        .detail
        .contains("write:plugin_policies"));
    assert_eq!(h.metrics().writes_applied, 0);
    h.stop().await.unwrap();
}
