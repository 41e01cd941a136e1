//! Tier B plugin policies (E16): a plugin's org preference and per-group overrides.

use super::*;

/// Tier B: a plugin's org preference and per-group overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "plugin_policy")]
pub struct PluginPolicy {
    /// Plugin id.
    pub plugin_id: String,
    /// Marketplace id.
    pub marketplace_id: String,
    /// Org-wide preference.
    pub org_preference: Preference,
    /// Per-group overrides.
    #[serde(default)]
    pub group_overrides: Vec<GroupOverride>,
}

/// Tier B: one group's override of a plugin preference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupOverride {
    /// The group.
    pub rbac_group_id: String,
    /// Its preference.
    pub preference: Preference,
}

/// Tier B: `PUT /plugin_policies/{plugin_id}` body; replaces all overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginPolicyUpdate {
    /// New org preference (unchanged when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_preference: Option<Preference>,
    /// The complete override list.
    #[serde(default)]
    pub group_overrides: Vec<GroupOverride>,
}
