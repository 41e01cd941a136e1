//! The beta Plugins API (tier A, reference §1.10): org-owned plugins listed with
//! their ids, and their installation settings org-wide and per group. It shares its
//! data with the tier-B plugin policies: a group setting is a group override, the
//! organization setting is the plugin's org preference (unless deleted, when the
//! marketplace default, `not_available`, applies).
//!
//! Behaviour as documented: setting the same value is a no-op, a repeated DELETE is
//! 404, a deleted group takes its settings with it (see `groups`). The beta header,
//! the 100-per-page cap, the 300/60 limits and the 503 to concurrent writes on one
//! plugin are the HTTP layer's.

use chrono::{DateTime, Utc};

use super::*;

/// When the seeded plugins were made (the simulator has no upload flow).
fn plugin_epoch() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

/// The Plugins API id of a marketplace plugin: stable, derived from its name.
pub fn plugin_api_id(name: &str) -> String {
    format!(
        "plugin_01{}",
        crate::cowork::hash_hex(&[b"plugin", name.as_bytes()], 12)
    )
}

impl SimState {
    /// Adds org-owned plugins of these names that are not there yet (`sim --plugins`);
    /// their org setting starts as `available`.
    pub fn seed_plugins(&mut self, names: &[String]) {
        for name in names {
            let name = name.trim();
            if name.is_empty() || self.org.settings.plugins.iter().any(|p| p.id == name) {
                continue;
            }
            self.org.settings.plugins.push(OrgPlugin {
                id: name.to_owned(),
                marketplace_id: "mkt_org_default".into(),
                name: name.to_owned(),
                org_preference: Preference::Available,
            });
        }
    }

    fn api_plugin(&self, api_id: &str) -> ApiResult<&OrgPlugin> {
        self.require_enterprise()?;
        self.org
            .settings
            .plugins
            .iter()
            .find(|p| plugin_api_id(&p.id) == api_id)
            .ok_or_else(|| ApiError::not_found("no plugin with this id"))
    }

    fn plugin_entry(p: &OrgPlugin) -> Plugin {
        Plugin {
            id: plugin_api_id(&p.id),
            name: p.id.clone(),
            owner_type: Some("organization".into()),
            marketplace_id: Some(p.marketplace_id.clone()),
            created_at: plugin_epoch(),
            updated_at: plugin_epoch(),
        }
    }

    /// `GET /plugins` (cursor pagination; `owner_type` and `marketplace_id` filters).
    pub fn list_plugins(
        &self,
        q: &CursorQuery,
        owner_type: Option<&str>,
        marketplace_id: Option<&str>,
    ) -> ApiResult<CursorPage<Plugin>> {
        self.require_enterprise()?;
        let start = q.start()?;
        let from = start.after.map_or(0, |a| a.saturating_add(1));
        let items = self
            .org
            .settings
            .plugins
            .iter()
            .enumerate()
            .filter(|_| owner_type.is_none_or(|o| o == "organization"))
            .filter(|(_, p)| marketplace_id.is_none_or(|m| p.marketplace_id == m))
            .map(|(i, p)| (i as u64, Self::plugin_entry(p)))
            .skip_while(|(i, _)| *i < from);
        Ok(q.finish(start, items))
    }

    /// `GET /plugins/{id}`.
    pub fn get_plugin(&self, api_id: &str) -> ApiResult<Plugin> {
        self.api_plugin(api_id).map(Self::plugin_entry)
    }

    /// Every installation setting of a plugin: the org one first, then the groups'.
    fn settings_of(&self, plugin: &OrgPlugin) -> Vec<PluginSetting> {
        let api_id = plugin_api_id(&plugin.id);
        let row = |target: PluginTarget, pref: Preference| PluginSetting {
            plugin_id: api_id.clone(),
            target,
            installation_preference: pref.into(),
            created_at: plugin_epoch(),
            updated_at: plugin_epoch(),
        };
        let mut rows = Vec::new();
        if !self.plugin_org_unset.contains(&plugin.id) {
            rows.push(row(PluginTarget::Organization, plugin.org_preference));
        }
        for o in self.plugin_overrides(&plugin.id) {
            rows.push(row(
                PluginTarget::RbacGroup {
                    rbac_group_id: o.rbac_group_id.clone(),
                },
                o.preference,
            ));
        }
        rows
    }

    /// `GET /plugins/{id}/installation_settings` (cursor pagination; `target_type`).
    pub fn list_plugin_settings(
        &self,
        api_id: &str,
        target_type: Option<&str>,
        q: &CursorQuery,
    ) -> ApiResult<CursorPage<PluginSetting>> {
        let plugin = self.api_plugin(api_id)?;
        if let Some(t) = target_type {
            if t != "organization" && t != "rbac_group" {
                return Err(ApiError::invalid(
                    None,
                    "target_type must be organization or rbac_group",
                ));
            }
        }
        let start = q.start()?;
        let from = start.after.map_or(0, |a| a.saturating_add(1));
        let items = self
            .settings_of(plugin)
            .into_iter()
            .filter(|s| target_type.is_none_or(|t| s.target.type_name() == t))
            .enumerate()
            .map(|(i, s)| (i as u64, s))
            .skip_while(|(i, _)| *i < from);
        Ok(q.finish(start, items))
    }

    fn check_marketplace(&self) -> ApiResult<()> {
        let settings = &self.org.settings;
        if !(settings.cowork_enabled && settings.skills_enabled) {
            return Err(ApiError::invalid(
                Some("feature_disabled_at_org"),
                "the plugin marketplace needs Cowork and Skills turned on",
            ));
        }
        Ok(())
    }

    /// `POST /plugins/{id}/installation_settings/{target}`: sets one setting (the same
    /// value again changes nothing).
    pub fn set_plugin_setting(
        &mut self,
        api_id: &str,
        target: &PluginTarget,
        preference: InstallationPreference,
        now: DateTime<Utc>,
    ) -> ApiResult<PluginSetting> {
        let slug = self.api_plugin(api_id)?.id.clone();
        self.check_marketplace()?;
        let pref = Preference::from(preference);
        let mut changed = false;
        match target {
            PluginTarget::Organization => {
                changed |= self.plugin_org_unset.remove(&slug);
                if let Some(p) = self.org.settings.plugins.iter_mut().find(|p| p.id == slug) {
                    changed |= p.org_preference != pref;
                    p.org_preference = pref;
                }
            }
            PluginTarget::RbacGroup { rbac_group_id } => {
                if !self.groups.contains(rbac_group_id) {
                    return Err(ApiError::not_found("no group with this id"));
                }
                let list = self.plugin_overrides.entry(slug.clone()).or_default();
                match list.iter_mut().find(|o| o.rbac_group_id == *rbac_group_id) {
                    Some(o) => {
                        changed |= o.preference != pref;
                        o.preference = pref;
                    }
                    None => {
                        changed = true;
                        list.push(GroupOverride {
                            rbac_group_id: rbac_group_id.clone(),
                            preference: pref,
                        });
                        list.sort();
                    }
                }
            }
        }
        if changed {
            self.touch_access(now);
        }
        Ok(PluginSetting {
            plugin_id: api_id.to_owned(),
            target: target.clone(),
            installation_preference: preference,
            created_at: plugin_epoch(),
            updated_at: now,
        })
    }

    /// `DELETE /plugins/{id}/installation_settings/{target}`: 404 when there is no
    /// such setting (a repeated delete).
    pub fn delete_plugin_setting(
        &mut self,
        api_id: &str,
        target: &PluginTarget,
        now: DateTime<Utc>,
    ) -> ApiResult<PluginSettingDeleted> {
        let slug = self.api_plugin(api_id)?.id.clone();
        let gone = match target {
            PluginTarget::Organization => self.plugin_org_unset.insert(slug),
            PluginTarget::RbacGroup { rbac_group_id } => {
                let list = self.plugin_overrides.entry(slug.clone()).or_default();
                let before = list.len();
                list.retain(|o| o.rbac_group_id != *rbac_group_id);
                let removed = list.len() != before;
                if list.is_empty() {
                    self.plugin_overrides.remove(&slug);
                }
                removed
            }
        };
        if !gone {
            return Err(ApiError::not_found(
                "this plugin has no installation setting for this target",
            ));
        }
        self.touch_access(now);
        Ok(PluginSettingDeleted {
            plugin_id: api_id.to_owned(),
            target: target.clone(),
        })
    }

    /// `GET /plugin_marketplaces`: the marketplaces the plugins come from (default
    /// installation preference `not_available`).
    pub fn list_marketplaces(&self) -> ApiResult<serde_json::Value> {
        self.require_enterprise()?;
        let ids: BTreeSet<&str> = self
            .org
            .settings
            .plugins
            .iter()
            .map(|p| p.marketplace_id.as_str())
            .collect();
        let data: Vec<Value> = ids
            .into_iter()
            .map(|id| {
                json!({
                    "type": "plugin_marketplace", "id": id,
                    "default_installation_preference": "not_available"
                })
            })
            .collect();
        Ok(json!({ "data": data, "has_more": false, "next_page": null }))
    }
}
