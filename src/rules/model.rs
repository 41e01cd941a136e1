//! The rule file as written: `[org]`, `[roles.<key>]` and `[[rules]]` (design §6).
//!
//! These types mirror the TOML one to one (unknown keys are refused) and carry no
//! validation beyond shape: [`super::validate`] turns a [`RuleFile`] into a
//! [`super::ValidRuleTable`]. They serialize back to the same keys, so a stored table
//! can be exported as TOML again. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The Claude plan of the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// Claude Enterprise: groups, custom roles, group spend limits, plugin overrides.
    Enterprise,
    /// Claude Team: none of the above (R1).
    Team,
}

impl Plan {
    /// The value as written in the rule file.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Enterprise => "enterprise",
            Plan::Team => "team",
        }
    }
}

/// How users reach the Cowork org (the org's `sso_provisioning_mode`, plus `manual`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ProvisioningMode {
    /// Invite only (the product's default).
    #[default]
    Manual,
    /// Existing members sign in with SSO; no automatic provisioning.
    LoginOnly,
    /// Just-in-time provisioning at first sign-in.
    JitPermissive,
    /// JIT with IdP group mappings owning org roles.
    JitAdvanced,
    /// SCIM directory sync.
    ScimPermissive,
    /// SCIM with IdP group mappings owning org roles.
    ScimAdvanced,
}

impl ProvisioningMode {
    /// The value as written in the rule file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningMode::Manual => "manual",
            ProvisioningMode::LoginOnly => "login_only",
            ProvisioningMode::JitPermissive => "jit_permissive",
            ProvisioningMode::JitAdvanced => "jit_advanced",
            ProvisioningMode::ScimPermissive => "scim_permissive",
            ProvisioningMode::ScimAdvanced => "scim_advanced",
        }
    }

    /// Whether the IdP provisions membership over SCIM, so the admin API refuses to
    /// remove members (R15).
    pub fn scim_manages_membership(self) -> bool {
        matches!(
            self,
            ProvisioningMode::ScimPermissive | ProvisioningMode::ScimAdvanced
        )
    }

    /// Whether the admin API accepts invites in this mode (R15: not under JIT or SCIM).
    pub fn allows_invites(self) -> bool {
        matches!(self, ProvisioningMode::Manual | ProvisioningMode::LoginOnly)
    }

    /// Whether IdP group mappings own org roles, so the API cannot set `managed` (R3).
    pub fn is_advanced(self) -> bool {
        matches!(
            self,
            ProvisioningMode::JitAdvanced | ProvisioningMode::ScimAdvanced
        )
    }

    /// Whether the mode is SCIM provisioning (Enterprise only, R1).
    pub fn is_scim(self) -> bool {
        matches!(
            self,
            ProvisioningMode::ScimPermissive | ProvisioningMode::ScimAdvanced
        )
    }
}

/// A connector tool's approval mode. Ordered from least to most permissive.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorMode {
    /// The tool cannot be used.
    #[default]
    Deny,
    /// Each call asks the user.
    NeedsApproval,
    /// Calls run without asking.
    AlwaysAllow,
}

impl ConnectorMode {
    /// The value as written in the rule file.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorMode::Deny => "deny",
            ConnectorMode::NeedsApproval => "needs_approval",
            ConnectorMode::AlwaysAllow => "always_allow",
        }
    }
}

/// A plugin preference. Ordered from least to most permissive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginPreference {
    /// Hidden.
    NotAvailable,
    /// In the marketplace; users install it themselves.
    Available,
    /// Installed for users, who may remove it. `auto_install` (the Plugins API's
    /// wire name) is accepted as a synonym.
    #[serde(alias = "auto_install")]
    InstalledByDefault,
    /// Installed and cannot be removed.
    Required,
}

impl PluginPreference {
    /// The value as written in the rule file.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginPreference::NotAvailable => "not_available",
            PluginPreference::Available => "available",
            PluginPreference::InstalledByDefault => "installed_by_default",
            PluginPreference::Required => "required",
        }
    }
}

/// An admin-panel permission level. Ordered from least to most permissive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminLevel {
    /// No access.
    None,
    /// Can view.
    View,
    /// Can manage.
    Manage,
}

impl AdminLevel {
    /// The value as written in the rule file.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminLevel::None => "none",
            AdminLevel::View => "view",
            AdminLevel::Manage => "manage",
        }
    }
}

/// A blanket capability grant (`capability_access_all[_ga]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blanket {
    /// Every product feature.
    All,
    /// Every generally available product feature.
    AllGa,
}

impl Blanket {
    /// The value as written in the rule file.
    pub fn as_str(self) -> &'static str {
        match self {
            Blanket::All => "all",
            Blanket::AllGa => "all_ga",
        }
    }
}

/// `[org]`: the organization's settings as the rules expect them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    /// `enterprise` or `team`.
    pub plan: Plan,
    /// ISO 4217 code of the billing currency; spend amounts are in its minor units.
    pub billing_currency: String,
    /// Org-level switches (`cowork`, `chat`, `skills`, ...). A feature not listed is not
    /// restricted at org level; `false` turns it off for everyone, whatever roles say.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, bool>,
    /// Connectors enabled at org level; roles may only grant these (R9).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub connectors: BTreeSet<String>,
    /// Plugins in the org marketplace with their org preference. Written as a list
    /// (each `available`) or as a table `{ plugin = "preference" }`.
    #[serde(default, skip_serializing_if = "OrgPlugins::is_empty")]
    pub plugins: OrgPlugins,
    /// How users are provisioned; decides whether invites are possible.
    #[serde(default)]
    pub provisioning_mode: ProvisioningMode,
    /// Whether usage credits are on (spend limits need them, R19).
    #[serde(default = "yes")]
    pub usage_credits: bool,
    /// When `false`, connector tools are capped at `needs_approval` for everyone.
    #[serde(default)]
    pub connector_tools_default_always_allow: bool,
}

fn yes() -> bool {
    true
}

fn is_true(v: &bool) -> bool {
    *v
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The org's plugins and their org preference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgPlugins(pub BTreeMap<String, PluginPreference>);

impl OrgPlugins {
    /// Whether no plugin is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for OrgPlugins {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for OrgPlugins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrgPlugins;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of plugin ids or a table of plugin id to preference")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OrgPlugins, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(id) = seq.next_element::<String>()? {
                    out.insert(id, PluginPreference::Available);
                }
                Ok(OrgPlugins(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OrgPlugins, A::Error> {
                BTreeMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(OrgPlugins)
            }
        }
        d.deserialize_any(V)
    }
}

/// A role's feature capabilities: `{ cowork = true, chat = true, all = "all_ga" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The blanket grant, if any (`all = "all" | "all_ga"`; `all = false` is none).
    pub all: Option<Blanket>,
    /// Feature name to grant.
    pub features: BTreeMap<String, bool>,
}

impl Capabilities {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.features.is_empty()
    }
}

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.features.len() + 1))?;
        if let Some(all) = self.all {
            map.serialize_entry("all", all.as_str())?;
        }
        for (k, v) in &self.features {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Capabilities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum AllValue {
            Flag(bool),
            Named(String),
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Capabilities;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of feature name to true/false, with an optional all = \"all\" | \"all_ga\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Capabilities, A::Error> {
                let mut out = Capabilities::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "all" {
                        out.all = match map.next_value::<AllValue>()? {
                            AllValue::Flag(false) => None,
                            AllValue::Named(s) if s == "all" => Some(Blanket::All),
                            AllValue::Named(s) if s == "all_ga" => Some(Blanket::AllGa),
                            _ => {
                                return Err(de::Error::custom(
                                    "`all` must be \"all\", \"all_ga\" or false",
                                ))
                            }
                        };
                    } else {
                        let v = map.next_value::<bool>()?;
                        out.features.insert(key, v);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// A role's permission on one connector: a mode for every tool (`"needs_approval"`), or
/// a table with a default and per-tool modes
/// (`{ default = "needs_approval", tools = { create_issue = "always_allow" } }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorSpec {
    /// One mode for every tool of the connector.
    Mode(ConnectorMode),
    /// A default mode plus per-tool modes.
    Tools(ConnectorTools),
}

/// The table form of [`ConnectorSpec`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorTools {
    /// The mode of tools not listed in `tools` (default `deny`: only listed tools).
    #[serde(default)]
    pub default: ConnectorMode,
    /// Per-tool modes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ConnectorMode>,
}

impl ConnectorSpec {
    /// The mode of a tool the spec does not list.
    pub fn default_mode(&self) -> ConnectorMode {
        match self {
            ConnectorSpec::Mode(m) => *m,
            ConnectorSpec::Tools(t) => t.default,
        }
    }

    /// The mode of one tool.
    pub fn tool_mode(&self, tool: &str) -> ConnectorMode {
        match self {
            ConnectorSpec::Mode(m) => *m,
            ConnectorSpec::Tools(t) => t.tools.get(tool).copied().unwrap_or(t.default),
        }
    }

    /// The tools given their own mode.
    pub fn tools(&self) -> impl Iterator<Item = (&String, ConnectorMode)> {
        let tools = match self {
            ConnectorSpec::Mode(_) => None,
            ConnectorSpec::Tools(t) => Some(t.tools.iter().map(|(k, v)| (k, *v))),
        };
        tools.into_iter().flatten()
    }
}

impl Serialize for ConnectorSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ConnectorSpec::Mode(m) => m.serialize(s),
            ConnectorSpec::Tools(t) => t.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ConnectorSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConnectorSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "\"deny\", \"needs_approval\", \"always_allow\" or a table { default, tools }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConnectorSpec, E> {
                ConnectorMode::deserialize(de::value::StrDeserializer::<E>::new(v))
                    .map(ConnectorSpec::Mode)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ConnectorSpec, A::Error> {
                ConnectorTools::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ConnectorSpec::Tools)
            }
        }
        d.deserialize_any(V)
    }
}

/// `[roles.<key>]`: a custom role. The table key is the role's stable key (its
/// `external_id` downstream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Display name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Feature capabilities.
    #[serde(default, skip_serializing_if = "Capabilities::is_empty")]
    pub capabilities: Capabilities,
    /// Connector id to permission.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connectors: BTreeMap<String, ConnectorSpec>,
    /// Plugin preferences for every group the role is attached to (a rule's own
    /// `plugins` entry for the same plugin wins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, PluginPreference>,
    /// Admin-panel area to level.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub admin_permissions: BTreeMap<String, AdminLevel>,
    /// Default model for members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
}

/// `match`: which IdP users a rule selects. Exactly one of the two keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// An IdP group's displayName, externalId or id; members of nested groups count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A SCIM filter on users (RFC 7644 §3.4.2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// `group`: the downstream Cowork group a rule fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Stable key: the group's `external_id` downstream.
    pub key: String,
    /// Display name (1–255 characters, not unique downstream).
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A spend amount as written: whole minor units, or `"unlimited"`. Anything else is
/// kept so validation can say what is wrong with it (R12).
#[derive(Debug, Clone, PartialEq)]
pub enum SpendAmount {
    /// An integer.
    Minor(i64),
    /// A number with a fraction (invalid).
    Fractional(f64),
    /// A string: `"unlimited"` is valid.
    Text(String),
}

impl Serialize for SpendAmount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SpendAmount::Minor(n) => s.serialize_i64(*n),
            SpendAmount::Fractional(x) => s.serialize_f64(*x),
            SpendAmount::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for SpendAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SpendAmount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number of minor currency units or \"unlimited\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SpendAmount, E> {
                Ok(SpendAmount::Minor(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SpendAmount, E> {
                i64::try_from(v)
                    .map(SpendAmount::Minor)
                    .map_err(|_| E::custom("amount is too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SpendAmount, E> {
                Ok(SpendAmount::Fractional(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SpendAmount, E> {
                Ok(SpendAmount::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `spend`: the group's per-member budget. Only `monthly` (and a `currency` equal to the
/// billing currency) is valid; the other keys exist so validation can name them (R12).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendSpec {
    /// Monthly limit per member in minor units of the billing currency, or `"unlimited"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<SpendAmount>,
    /// Must equal `org.billing_currency` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Refused: only monthly budgets exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<SpendAmount>,
    /// Refused: only monthly budgets exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<SpendAmount>,
    /// Refused: budgets are money, not tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<SpendAmount>,
}

/// `pool`: a budget for the whole group per month, on top of the per-member limit
/// (design §6.1). Validated like `spend` (monthly, minor units of the billing
/// currency, usage credits on) plus `0 < warn_at < 1`; the other keys exist so
/// validation can name them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTable {
    /// The group's monthly budget in minor units of the billing currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<SpendAmount>,
    /// The share of `monthly` at which the daemon warns (default 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_at: Option<f64>,
    /// Must equal `org.billing_currency` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Refused: only monthly budgets exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<SpendAmount>,
    /// Refused: only monthly budgets exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<SpendAmount>,
    /// Refused: budgets are money, not tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<SpendAmount>,
}

/// One `[[rules]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique id.
    pub id: String,
    /// Higher first; breaks ties in single-valued outcomes the product leaves open.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i64,
    /// A disabled rule is validated but matches nobody.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Which users.
    #[serde(rename = "match")]
    pub matcher: MatchSpec,
    /// Which downstream group.
    pub group: GroupSpec,
    /// Role keys attached to the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The group's per-member spend limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<SpendSpec>,
    /// The group's pooled monthly budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolTable>,
    /// The group's plugin overrides.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, PluginPreference>,
}

/// A whole rule file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// `[org]`.
    pub org: OrgSpec,
    /// `[roles.<key>]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, RoleSpec>,
    /// `[[rules]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_specs_parse_as_mode_or_table() {
        let role: RoleSpec = toml::from_str(
            r#"
            name = "r"
            connectors = { a = "needs_approval", b = { default = "deny", tools = { x = "always_allow" } } }
            "#,
        )
        .unwrap();
        assert_eq!(
            role.connectors["a"],
            ConnectorSpec::Mode(ConnectorMode::NeedsApproval)
        );
        assert_eq!(
            role.connectors["b"].tool_mode("x"),
            ConnectorMode::AlwaysAllow
        );
        assert_eq!(role.connectors["b"].tool_mode("y"), ConnectorMode::Deny);
    }

    #[test]
    fn capabilities_take_a_blanket_beside_feature_flags() {
        let role: RoleSpec = toml::from_str(
            r#"name = "r"
capabilities = { all = "all_ga", chat = false }"#,
        )
        .unwrap();
        assert_eq!(role.capabilities.all, Some(Blanket::AllGa));
        assert!(!role.capabilities.features["chat"]);
        let err = toml::from_str::<RoleSpec>(
            r#"name = "r"
capabilities = { all = "everything" }"#,
        )
        .unwrap_err();
        assert!(err.message().contains("`all` must be"));
    }

    #[test]
    fn org_plugins_accept_a_list_or_a_table() {
        let org: OrgSpec = toml::from_str(
            r#"plan = "enterprise"
billing_currency = "USD"
plugins = ["a", "b"]"#,
        )
        .unwrap();
        assert_eq!(org.plugins.0["a"], PluginPreference::Available);
        let org: OrgSpec = toml::from_str(
            r#"plan = "enterprise"
billing_currency = "USD"
plugins = { a = "required" }"#,
        )
        .unwrap();
        assert_eq!(org.plugins.0["a"], PluginPreference::Required);
        let synonym: OrgSpec = toml::from_str(
            r#"plan = "enterprise"
billing_currency = "USD"
plugins = { a = "auto_install", b = "installed_by_default" }"#,
        )
        .unwrap();
        assert_eq!(synonym.plugins.0["a"], PluginPreference::InstalledByDefault);
        assert_eq!(synonym.plugins.0["b"], PluginPreference::InstalledByDefault);
        assert!(org.usage_credits);
        assert!(!org.connector_tools_default_always_allow);
        assert_eq!(org.provisioning_mode, ProvisioningMode::Manual);
    }

    #[test]
    fn preferences_and_modes_order_from_least_to_most_permissive() {
        assert!(PluginPreference::Required > PluginPreference::InstalledByDefault);
        assert!(PluginPreference::InstalledByDefault > PluginPreference::Available);
        assert!(PluginPreference::Available > PluginPreference::NotAvailable);
        assert!(ConnectorMode::AlwaysAllow > ConnectorMode::NeedsApproval);
        assert!(ConnectorMode::NeedsApproval > ConnectorMode::Deny);
        assert!(AdminLevel::Manage > AdminLevel::View);
    }
}
