//! Phase: plugin policies. For each plugin the rules mention, the overrides of the
//! daemon's groups are set as a whole (extended mode), keeping other groups'
//! overrides verbatim; real mode reports each difference with its console step.
//! Full plans only.

use std::collections::{BTreeMap, BTreeSet};

use super::action::{ActionKind, Op, PluginOverride};
use super::convert::{pref_name, preference, CONSOLE};
use super::findings::Findings;
use super::groups::BoundGroups;
use super::index::Ctx;
use super::model::DriftKind;
use crate::cowork::{GroupOverride, Preference};

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
