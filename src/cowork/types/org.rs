//! Tier A and B objects of the organization itself (E1): the organization, its
//! advertised capabilities and settings, org connectors and marketplace plugins.

use super::*;

/// `GET /v1/organizations/me`. Anthropic documents `{id, name, type}`; the rest is
/// tier B and absent against the real API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "organization")]
pub struct Organization {
    /// Organization UUID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Tier B: the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Tier B: the provisioning mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_mode: Option<ProvisioningMode>,
    /// Tier B: the org-level settings the daemon validates against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<OrgSettings>,
    /// Tier B: what this server can do; all `false` against the real API.
    #[serde(default)]
    pub capabilities: ApiCapabilities,
}

/// Tier B: which extension endpoints the server offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCapabilities {
    /// Role writes, role attachment, group member replacement, effective access.
    #[serde(default)]
    pub extended_api: bool,
    /// `GET/PUT /plugin_policies`.
    #[serde(default)]
    pub plugin_policies: bool,
    /// `POST /spend_limits` with `scope.type: "rbac_group"`.
    #[serde(default)]
    pub group_spend_limits_writable: bool,
}

/// Tier B: the organization's settings (read-only to the daemon).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgSettings {
    /// Cowork on at org level.
    pub cowork_enabled: bool,
    /// Claude Code on at org level.
    pub claude_code_enabled: bool,
    /// Chat on at org level.
    pub chat_enabled: bool,
    /// Web search on at org level.
    pub web_search_enabled: bool,
    /// Code execution on at org level.
    pub code_execution_enabled: bool,
    /// Skills on at org level.
    pub skills_enabled: bool,
    /// Members may create skills.
    pub user_skill_creation_enabled: bool,
    /// Members may share skills.
    pub skill_sharing_enabled: bool,
    /// Skills may be shared org-wide.
    pub org_wide_skill_sharing_enabled: bool,
    /// Connector tools default to "always allow" (otherwise capped at "needs approval").
    pub connector_tools_default_always_allow: bool,
    /// Usage credits on (prerequisite of spend limits, R19).
    pub usage_credits_enabled: bool,
    /// Always false on Team and Enterprise (R11).
    pub computer_use_available: bool,
    /// ISO 4217 code; spend amounts are minor units of it.
    pub billing_currency: String,
    /// Connectors added at org level.
    #[serde(default)]
    pub connectors: Vec<OrgConnector>,
    /// Plugins in the org marketplace.
    #[serde(default)]
    pub plugins: Vec<OrgPlugin>,
}

impl OrgSettings {
    /// The org-level switch for a product feature, if the org controls it. A feature
    /// without a switch is "not controllable by this organization's administrators",
    /// which is not the same as off.
    pub fn feature_switch(&self, feature: &str) -> Option<bool> {
        match feature {
            "cowork" => Some(self.cowork_enabled),
            "claude_code" => Some(self.claude_code_enabled),
            "chat" => Some(self.chat_enabled),
            "web_search" => Some(self.web_search_enabled),
            "code_execution" => Some(self.code_execution_enabled),
            "computer_use" => Some(self.computer_use_available),
            _ => None,
        }
    }

    /// The connector with this id, if added at org level.
    pub fn connector(&self, id: &str) -> Option<&OrgConnector> {
        self.connectors.iter().find(|c| c.id == id)
    }
}

/// Tier B: a connector added at org level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgConnector {
    /// `mcpsrv_...`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Enabled at org level.
    pub enabled: bool,
    /// Published tool names.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// Tier B: a plugin in the org marketplace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgPlugin {
    /// Plugin id, e.g. `finance-close`.
    pub id: String,
    /// The marketplace it comes from.
    pub marketplace_id: String,
    /// Display name.
    pub name: String,
    /// The org-wide preference.
    pub org_preference: Preference,
}
