//! Tier B effective access (E17): a member's resolved connectors, plugins and spend.

use super::*;

/// Tier B (E17): a member's resolved access (§3.5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "effective_access")]
pub struct EffectiveAccess {
    /// The member.
    pub user_id: String,
    /// Org role.
    pub role: OrgRole,
    /// Whether custom roles govern this member (`role == managed`).
    pub custom_roles_apply: bool,
    /// The member's groups.
    pub groups: Vec<String>,
    /// The roles that apply (empty unless `custom_roles_apply`).
    pub roles: Vec<String>,
    /// Feature → granted.
    pub capabilities: BTreeMap<String, bool>,
    /// Per connector, per tool mode.
    pub connectors: Vec<EffectiveConnector>,
    /// Per plugin, the resolved preference.
    pub plugins: Vec<EffectivePlugin>,
    /// The monthly spend limit that applies, if any.
    #[serde(default)]
    pub spend: Option<EffectiveSpend>,
    /// Explanations and warnings (`role_not_managed`, `multi_group_spend_conflict`, ...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Until when recent changes may not have reached the member yet.
    #[serde(default)]
    pub pending_until: Option<DateTime<Utc>>,
}

/// Tier B: one connector in an [`EffectiveAccess`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveConnector {
    /// `mcpsrv_...`.
    pub connector_id: String,
    /// Tool name → mode.
    pub tools: BTreeMap<String, ToolMode>,
}

/// Tier B: one plugin in an [`EffectiveAccess`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivePlugin {
    /// Plugin id.
    pub plugin_id: String,
    /// Resolved preference.
    pub preference: Preference,
    /// `org` or the group id whose override won.
    pub source: String,
    /// The member's groups disagree on this plugin.
    #[serde(default)]
    pub conflicting: bool,
}

/// Tier B: the spend part of an [`EffectiveAccess`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveSpend {
    /// Minor units; `null` = unlimited.
    pub amount: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Period.
    pub period: Period,
    /// Where the limit comes from.
    pub source: SpendScope,
}
