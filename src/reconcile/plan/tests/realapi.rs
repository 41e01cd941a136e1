//! Today's Admin API in the planner: plugin settings written as tier-A actions in real
//! mode through the Plugins API (names mapped to ids, one action per plugin and
//! group, only the daemon's groups touched); built-in roles never matched, so never
//! updated, attached or deleted.

use super::*;
use crate::cowork::RoleSource;

fn with_plugin_settings(w: &mut World, groups: &[(&str, Preference)]) {
    let plugin = ActualPlugin {
        id: "plugin_01fin".into(),
        org: Some(Preference::Available),
        groups: groups
            .iter()
            .map(|(gid, p)| ((*gid).to_owned(), *p))
            .collect(),
    };
    w.actual.plugin_settings = Some(BTreeMap::from([("finance-close".to_owned(), plugin)]));
}

#[test]
fn real_mode_writes_plugin_settings_per_group_through_the_plugins_api() {
    let mut w = mirror(two_groups(), Mode::Real);
    // Group a lacks its setting; group b (the daemon's) has one the rules dropped; a
    // group that is not the daemon's keeps its own.
    with_plugin_settings(
        &mut w,
        &[
            (&group_id("b"), Preference::Required),
            ("rbac_group_theirs", Preference::NotAvailable),
        ],
    );
    let p = w.plan(&options(Mode::Real));
    let settings: Vec<&Action> = p
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::SetPluginSetting)
        .collect();
    assert_eq!(settings.len(), 2, "{:#?}", p.actions);
    assert!(settings.iter().all(|a| !a.kind.is_tier_b()));
    let ops: Vec<(String, String, Option<Preference>)> = settings
        .iter()
        .map(|a| match &a.op {
            Op::SetPluginSetting {
                plugin_id,
                group,
                preference,
                plugin,
            } => {
                assert_eq!(plugin, "finance-close");
                (plugin_id.clone(), group.key.clone(), *preference)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            (
                "plugin_01fin".to_owned(),
                "a".to_owned(),
                Some(Preference::InstalledByDefault)
            ),
            ("plugin_01fin".to_owned(), "b".to_owned(), None),
        ]
    );
    assert!(
        !p.drift.iter().any(|d| d.target.starts_with("plugin:")),
        "written, not reported: {:#?}",
        p.drift
    );

    // Once applied, nothing is left to do.
    with_plugin_settings(&mut w, &[(&group_id("a"), Preference::InstalledByDefault)]);
    let p = w.plan(&options(Mode::Real));
    assert!(
        !p.actions
            .iter()
            .any(|a| a.kind == ActionKind::SetPluginSetting),
        "{:#?}",
        p.actions
    );
}

#[test]
fn a_plugin_the_org_does_not_have_is_drift_and_an_unavailable_api_is_a_note() {
    let mut w = mirror(two_groups(), Mode::Real);
    w.actual.plugin_settings = Some(BTreeMap::new());
    let p = w.plan(&options(Mode::Real));
    assert!(p.drift.iter().any(|d| d.target == "plugin:finance-close"
        && d.console_step
            .as_deref()
            .is_some_and(|s| s.contains("add finance-close"))));
    assert!(!p
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::SetPluginSetting));
    w.actual.plugin_settings = None;
    let p = w.plan(&options(Mode::Real));
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("Plugins API is not available")));
}

fn built_in(name: &str) -> cowork::RbacRole {
    cowork::RbacRole {
        id: "rbac_role_builtin".into(),
        name: name.into(),
        source: Some(RoleSource::built_in()),
        created_at: t0(),
        updated_at: t0(),
        description: None,
        external_id: Some("pilot".into()),
        version: None,
        default_model: None,
        capabilities: Some(cowork::Capabilities::default()),
        connectors: None,
        admin_permissions: None,
    }
}

#[test]
fn a_built_in_role_is_never_updated_attached_or_deleted() {
    for mode in [Mode::Extended, Mode::Real] {
        let mut w = mirror(two_groups(), mode);
        // The rules' role is gone; a built-in role has its name (and even its key).
        w.actual.roles.clear();
        w.ownership.roles.clear();
        let b = built_in("Pilot");
        w.actual.roles.insert(b.id.clone(), b);
        let p = w.plan(&options(mode));
        let json = serde_json::to_string(&p.actions).unwrap();
        assert!(!json.contains("rbac_role_builtin"), "{mode}: {json}");
        assert!(!p.actions.iter().any(|a| a.kind == ActionKind::UpdateRole));
        match mode {
            Mode::Extended => assert!(p.actions.iter().any(|a| a.kind == ActionKind::CreateRole)),
            Mode::Real => assert!(p
                .drift
                .iter()
                .any(|d| d.target == "role:pilot" && d.detail.contains("does not exist"))),
        }
        assert!(!p.sync.iter().any(|c| matches!(c, Change::PutRole(_))));
    }
}

#[test]
fn real_mode_sets_the_org_wide_setting_of_each_plugin_the_org_lists() {
    let mut w = mirror(two_groups(), Mode::Real);
    with_plugin_settings(&mut w, &[(&group_id("a"), Preference::InstalledByDefault)]);
    let org_settings = |p: &Plan| -> Vec<(String, String, Preference)> {
        p.actions
            .iter()
            .filter(|a| a.kind == ActionKind::SetOrgPluginSetting)
            .map(|a| match &a.op {
                Op::SetOrgPluginSetting {
                    plugin,
                    plugin_id,
                    preference,
                } => (plugin.clone(), plugin_id.clone(), *preference),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    // In state: nothing to do.
    assert!(org_settings(&w.plan(&options(Mode::Real))).is_empty());
    // Changed by hand, or unset (the marketplace default applies): set it back.
    for org in [Some(Preference::Required), None] {
        if let Some(s) = w.actual.plugin_settings.as_mut() {
            s.get_mut("finance-close").unwrap().org = org;
        }
        let p = w.plan(&options(Mode::Real));
        assert_eq!(
            org_settings(&p),
            vec![(
                "finance-close".to_owned(),
                "plugin_01fin".to_owned(),
                Preference::Available
            )],
            "{:#?}",
            p.actions
        );
        let a = p
            .actions
            .iter()
            .find(|a| a.kind == ActionKind::SetOrgPluginSetting)
            .unwrap();
        assert!(!a.kind.is_tier_b());
        assert!(
            a.description.contains("whole organization"),
            "{}",
            a.description
        );
        assert!(!p.drift.iter().any(|d| d.target.starts_with("plugin:")));
    }
    // A plugin [org] plugins does not list keeps its org-wide setting.
    if let Some(s) = w.actual.plugin_settings.as_mut() {
        s.get_mut("finance-close").unwrap().org = Some(Preference::Available);
        s.insert(
            "theirs".into(),
            ActualPlugin {
                id: "plugin_01theirs".into(),
                org: Some(Preference::Required),
                groups: BTreeMap::new(),
            },
        );
    }
    let p = w.plan(&options(Mode::Real));
    assert!(org_settings(&p).is_empty(), "{:#?}", p.actions);
    // Extended mode does not use the Plugins API for it.
    let mut x = mirror(two_groups(), Mode::Extended);
    x.actual.plugin_settings = w.actual.plugin_settings.clone();
    assert!(org_settings(&x.plan(&options(Mode::Extended))).is_empty());
}
