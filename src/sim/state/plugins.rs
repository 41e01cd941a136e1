//! Plugin policies: the org preference and group overrides of each marketplace
//! plugin (tier B `/plugin_policies`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::*;

impl SimState {
    // ---------------------------------------------------------------- plugins

    fn plugin_policy(&self, plugin: &OrgPlugin) -> PluginPolicy {
        PluginPolicy {
            plugin_id: plugin.id.clone(),
            marketplace_id: plugin.marketplace_id.clone(),
            org_preference: plugin.org_preference,
            group_overrides: self
                .plugin_overrides
                .get(&plugin.id)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Tier B `GET /plugin_policies` (cursor pagination).
    pub fn list_plugin_policies(&self, q: &CursorQuery) -> ApiResult<CursorPage<PluginPolicy>> {
        let start = q.start()?;
        let from = start.after.map_or(0, |a| a.saturating_add(1));
        let items = self
            .org
            .settings
            .plugins
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64, self.plugin_policy(p)))
            .skip(usize::try_from(from).unwrap_or(usize::MAX));
        Ok(q.finish(start, items))
    }

    /// Tier B `PUT /plugin_policies/{plugin_id}`: replaces the overrides.
    pub fn put_plugin_policy(
        &mut self,
        plugin_id: &str,
        update: &PluginPolicyUpdate,
        now: DateTime<Utc>,
    ) -> ApiResult<PluginPolicy> {
        let settings = &self.org.settings;
        if !(settings.cowork_enabled && settings.skills_enabled) {
            return Err(ApiError::invalid(
                Some("feature_disabled_at_org"),
                "the plugin marketplace needs Cowork and Skills turned on",
            ));
        }
        let index = settings
            .plugins
            .iter()
            .position(|p| p.id == plugin_id)
            .ok_or_else(|| ApiError::not_found("no plugin with this id in the marketplace"))?;
        if !update.group_overrides.is_empty() {
            self.require_enterprise()?;
        }
        let mut seen = BTreeSet::new();
        for (i, o) in update.group_overrides.iter().enumerate() {
            if !self.groups.contains(&o.rbac_group_id) {
                return Err(ApiError::not_found("no group with this id"));
            }
            if !seen.insert(&o.rbac_group_id) {
                return Err(ApiError::invalid(
                    None,
                    &format!("group_overrides[{i}] repeats a group"),
                ));
            }
        }
        if let Some(pref) = update.org_preference {
            if let Some(p) = self.org.settings.plugins.get_mut(index) {
                p.org_preference = pref;
            }
        }
        if update.group_overrides.is_empty() {
            self.plugin_overrides.remove(plugin_id);
        } else {
            self.plugin_overrides
                .insert(plugin_id.to_owned(), update.group_overrides.clone());
        }
        self.touch_access(now);
        let plugin = self
            .org
            .settings
            .plugins
            .get(index)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no plugin with this id in the marketplace"))?;
        Ok(self.plugin_policy(&plugin))
    }

    /// Overrides of a plugin.
    pub fn plugin_overrides(&self, plugin_id: &str) -> &[GroupOverride] {
        self.plugin_overrides
            .get(plugin_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}
