//! Wire types of the beta Plugins API (`anthropic-beta: ce-plugins-2026-09-01`,
//! reference §1.10): org-owned plugins and their installation settings, org-wide and
//! per RBAC group. Tier A: writable against the real API. Imports nothing of ours but
//! the tier-B [`Preference`] it converts to and from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::types::Preference;

/// A plugin of the organization (`GET /v1/organizations/plugins`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "plugin")]
pub struct Plugin {
    /// `plugin_01...`.
    pub id: String,
    /// The plugin's name, as rule files name it (e.g. `finance-close`).
    pub name: String,
    /// `organization` or `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<String>,
    /// The marketplace it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketplace_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of the plugin itself (a setting change does not move it).
    pub updated_at: DateTime<Utc>,
}

/// An installation preference as the Plugins API spells it: the product's
/// "installed by default" is `auto_install` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationPreference {
    /// Hidden.
    NotAvailable,
    /// Members may install it.
    Available,
    /// Pre-installed; members may remove it ("installed by default").
    AutoInstall,
    /// Always installed.
    Required,
}

impl From<Preference> for InstallationPreference {
    fn from(p: Preference) -> Self {
        match p {
            Preference::NotAvailable => Self::NotAvailable,
            Preference::Available => Self::Available,
            Preference::InstalledByDefault => Self::AutoInstall,
            Preference::Required => Self::Required,
        }
    }
}

impl From<InstallationPreference> for Preference {
    fn from(p: InstallationPreference) -> Self {
        match p {
            InstallationPreference::NotAvailable => Self::NotAvailable,
            InstallationPreference::Available => Self::Available,
            InstallationPreference::AutoInstall => Self::InstalledByDefault,
            InstallationPreference::Required => Self::Required,
        }
    }
}

/// What an installation setting applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PluginTarget {
    /// The whole organization.
    Organization,
    /// The members of one group (replaces the org value for them).
    RbacGroup {
        /// The group.
        rbac_group_id: String,
    },
}

impl PluginTarget {
    /// The `{target}` path segment: the literal `organization` or the group id.
    pub fn segment(&self) -> &str {
        match self {
            PluginTarget::Organization => "organization",
            PluginTarget::RbacGroup { rbac_group_id } => rbac_group_id,
        }
    }

    /// The target a path segment names.
    pub fn from_segment(segment: &str) -> Self {
        if segment == "organization" {
            PluginTarget::Organization
        } else {
            PluginTarget::RbacGroup {
                rbac_group_id: segment.to_owned(),
            }
        }
    }

    /// `organization` or `rbac_group`, as the `target_type` filter spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            PluginTarget::Organization => "organization",
            PluginTarget::RbacGroup { .. } => "rbac_group",
        }
    }
}

/// One installation setting of a plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "plugin_installation_setting")]
pub struct PluginSetting {
    /// The plugin.
    pub plugin_id: String,
    /// Org-wide or one group.
    pub target: PluginTarget,
    /// The preference.
    pub installation_preference: InstallationPreference,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// `POST /plugins/{plugin_id}/installation_settings/{target}` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSettingUpdate {
    /// The preference to set.
    pub installation_preference: InstallationPreference,
}

/// `DELETE /plugins/{plugin_id}/installation_settings/{target}` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "plugin_installation_setting_deleted")]
pub struct PluginSettingDeleted {
    /// The plugin.
    pub plugin_id: String,
    /// What the setting applied to.
    pub target: PluginTarget,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn installed_by_default_is_auto_install_on_the_wire() {
        let wire = InstallationPreference::from(Preference::InstalledByDefault);
        assert_eq!(serde_json::to_value(wire).unwrap(), json!("auto_install"));
        assert_eq!(Preference::from(wire), Preference::InstalledByDefault);
        let s: PluginSetting = serde_json::from_value(json!({
            "type": "plugin_installation_setting", "plugin_id": "plugin_01",
            "target": {"type": "rbac_group", "rbac_group_id": "rbac_group_01"},
            "installation_preference": "required",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(s.target.segment(), "rbac_group_01");
        assert_eq!(
            PluginTarget::from_segment("organization"),
            PluginTarget::Organization
        );
    }
}
