//! Phase: plugin settings. Extended mode: for each plugin the rules mention, the
//! overrides of the daemon's groups are set as a whole (tier B `plugin_policies`),
//! keeping other groups' overrides verbatim. Real mode: the beta Plugins API makes
//! them tier A, so each bound group's installation setting is set or deleted on its
//! own, and the org-wide setting of each plugin in `[org] plugins` is set to the
//! rules' org preference (names mapped to plugin ids through `GET /plugins`), one
//! action per plugin and target, applied one at a time; where that API is not
//! available, each difference is reported with its console step. Full plans only.

use std::collections::{BTreeMap, BTreeSet};

use super::action::{ActionKind, Op, PluginOverride};
use super::convert::{pref_name, preference, CONSOLE};
use super::findings::Findings;
use super::groups::BoundGroups;
use super::index::Ctx;
use super::model::{ActualPlugin, DriftKind};
use crate::cowork::{GroupOverride, Preference};
use crate::rules::PluginPreference;

/// Plugin overrides of the bound groups.
pub(super) fn plan(ctx: &Ctx<'_>, bound: &BoundGroups<'_>) -> Findings {
    let mut out = Findings::default();
    let bound_ids: BTreeSet<String> = bound.values().filter_map(|b| b.gref.id.clone()).collect();
    // Overrides of the daemon's other groups (no longer in the rules) go with
    // the group when it is deleted: neither kept nor compared.
    let owned_ids: BTreeSet<&str> = ctx
        .input
        .ownership
        .groups
        .values()
        .map(|g| g.id.as_str())
        .chain(bound_ids.iter().map(String::as_str))
        .collect();
    let mut wanted: BTreeMap<&str, Vec<PluginOverride>> = BTreeMap::new();
    for b in bound.values() {
        for (plugin, pref) in &b.desired.plugins {
            wanted
                .entry(plugin.as_str())
                .or_default()
                .push(PluginOverride {
                    group: b.gref.clone(),
                    preference: preference(*pref),
                });
        }
    }
    if !ctx.extended() {
        if let Some(settings) = &ctx.input.actual.plugin_settings {
            out.extend(settings_api(
                bound,
                &wanted,
                &ctx.input.desired.org.plugins,
                settings,
            ));
            return out;
        }
        if !wanted.is_empty() || !ctx.input.desired.org.plugins.is_empty() {
            out.notes.push(
                "the Plugins API is not available to this organization (or not reachable): plugin settings are reported, not written"
                    .into(),
            );
        }
    }
    let Some(policies) = &ctx.input.actual.plugins else {
        if !wanted.is_empty() {
            out.notes.push(
                "plugin policies cannot be read from this API; group plugin overrides not checked"
                    .into(),
            );
        }
        return out;
    };
    for plugin in wanted.keys() {
        if !policies.contains_key(*plugin) {
            out.drift(
                DriftKind::OrgSetting,
                format!("plugin:{plugin}"),
                format!("plugin {plugin} is not in the organization's marketplace"),
                Some(format!(
                    "{CONSOLE} › Plugins: add {plugin} to the marketplace"
                )),
            );
        }
    }
    for (plugin_id, policy) in policies {
        let mine: Vec<PluginOverride> = wanted.get(plugin_id.as_str()).cloned().unwrap_or_default();
        let keep: Vec<GroupOverride> = policy
            .group_overrides
            .iter()
            .filter(|o| !owned_ids.contains(o.rbac_group_id.as_str()))
            .cloned()
            .collect();
        let have: BTreeSet<(String, Preference)> = policy
            .group_overrides
            .iter()
            .filter(|o| bound_ids.contains(&o.rbac_group_id))
            .map(|o| (o.rbac_group_id.clone(), o.preference))
            .collect();
        let mine_known: BTreeSet<(String, Preference)> = mine
            .iter()
            .filter_map(|o| Some((o.group.id.clone()?, o.preference)))
            .collect();
        let any_new = mine.iter().any(|o| o.group.id.is_none());
        if !any_new && mine_known == have {
            continue;
        }
        let target = format!("plugin:{plugin_id}");
        if ctx.extended() {
            let desc: Vec<String> = mine
                .iter()
                .map(|o| format!("{}={}", o.group.key, pref_name(o.preference)))
                .collect();
            out.push(
                    ActionKind::SetPluginPolicy,
                    target,
                    format!(
                        "set the group overrides of plugin {plugin_id} to [{}] (keeping {} override(s) of other groups)",
                        desc.join(", "),
                        keep.len()
                    ),
                    Op::SetPluginPolicy {
                        plugin_id: plugin_id.clone(),
                        overrides: mine,
                        keep,
                    },
                );
        } else {
            for o in &mine {
                let ok = o
                    .group
                    .id
                    .as_ref()
                    .is_some_and(|id| have.contains(&(id.clone(), o.preference)));
                if !ok {
                    out.drift(
                            DriftKind::TierB,
                            target.clone(),
                            format!(
                                "group {:?} should override plugin {plugin_id} with {}",
                                o.group.name,
                                pref_name(o.preference)
                            ),
                            Some(format!(
                                "{CONSOLE} › Plugins › {plugin_id}: set the override of group {:?} to {}",
                                o.group.name,
                                pref_name(o.preference)
                            )),
                        );
                }
            }
            for (gid, pref) in &have {
                if !mine_known.contains(&(gid.clone(), *pref))
                    && !mine.iter().any(|o| o.group.id.as_deref() == Some(gid))
                {
                    let name = ctx
                        .input
                        .actual
                        .groups
                        .get(gid)
                        .map(|g| g.name.clone())
                        .unwrap_or_else(|| gid.clone());
                    out.drift(
                            DriftKind::TierB,
                            target.clone(),
                            format!("group {name:?} overrides plugin {plugin_id} but the rules do not"),
                            Some(format!(
                                "{CONSOLE} › Plugins › {plugin_id}: remove the override of group {name:?}"
                            )),
                        );
                }
            }
        }
    }
    out
}

/// Real mode with the Plugins API: one tier-A action per (plugin, target) whose
/// setting differs. The org-wide setting of each plugin in `[org] plugins` is set to
/// its org preference; each bound group's setting is set to what the rules want, or
/// deleted when they no longer want one. Other groups' settings, and the org-wide
/// setting of a plugin `[org] plugins` does not list, are never touched.
fn settings_api(
    bound: &BoundGroups<'_>,
    wanted: &BTreeMap<&str, Vec<PluginOverride>>,
    org: &BTreeMap<String, PluginPreference>,
    settings: &BTreeMap<String, ActualPlugin>,
) -> Findings {
    let mut out = Findings::default();
    let named: BTreeSet<&str> = wanted
        .keys()
        .copied()
        .chain(org.keys().map(String::as_str))
        .collect();
    for plugin in named.iter().filter(|p| !settings.contains_key(**p)) {
        out.drift(
            DriftKind::OrgSetting,
            format!("plugin:{plugin}"),
            format!("plugin {plugin} is not among the organization's plugins"),
            Some(format!(
                "{CONSOLE} › Plugins: add {plugin} to the marketplace"
            )),
        );
    }
    for (plugin, pref) in org {
        let Some(actual) = settings.get(plugin) else {
            continue;
        };
        let want = preference(*pref);
        if actual.org == Some(want) {
            continue;
        }
        out.push(
            ActionKind::SetOrgPluginSetting,
            format!("plugin:{plugin}"),
            format!(
                "set plugin {plugin} to {} for the whole organization (now {})",
                pref_name(want),
                actual.org.map_or("unset", pref_name)
            ),
            Op::SetOrgPluginSetting {
                plugin: plugin.clone(),
                plugin_id: actual.id.clone(),
                preference: want,
            },
        );
    }
    for (plugin, mine) in wanted {
        let Some(actual) = settings.get(*plugin) else {
            continue;
        };
        for o in mine {
            let have = o.group.id.as_ref().and_then(|id| actual.groups.get(id));
            if have == Some(&o.preference) {
                continue;
            }
            out.push(
                ActionKind::SetPluginSetting,
                format!("plugin:{plugin}"),
                format!(
                    "set plugin {plugin} to {} for group {:?} (key {})",
                    pref_name(o.preference),
                    o.group.name,
                    o.group.key
                ),
                Op::SetPluginSetting {
                    plugin: (*plugin).to_owned(),
                    plugin_id: actual.id.clone(),
                    group: o.group.clone(),
                    preference: Some(o.preference),
                },
            );
        }
    }
    // Settings of the bound groups for plugins the rules no longer give them.
    for (name, actual) in settings {
        let mine = wanted.get(name.as_str());
        for b in bound.values() {
            let Some(gid) = &b.gref.id else { continue };
            if !actual.groups.contains_key(gid) {
                continue;
            }
            let still = mine.is_some_and(|m| m.iter().any(|o| o.group.key == b.gref.key));
            if still {
                continue;
            }
            out.push(
                ActionKind::SetPluginSetting,
                format!("plugin:{name}"),
                format!(
                    "delete the setting of plugin {name} for group {:?} (key {}): the rules no longer set it",
                    b.gref.name, b.gref.key
                ),
                Op::SetPluginSetting {
                    plugin: name.clone(),
                    plugin_id: actual.id.clone(),
                    group: b.gref.clone(),
                    preference: None,
                },
            );
        }
    }
    out
}
