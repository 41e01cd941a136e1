//! Offline validation: rule file text or [`RuleFile`] → [`ValidRuleTable`], or every
//! problem found (not just the first), each naming the org, role or rule and the field.
//!
//! Checked here (Cowork admin reference §1.9): R1 (Team plan), R3 (warning), R6, R7,
//! R8 (warning: the org switch wins at resolution), R9, R10, R11, R12, R16, R19, plus
//! the file's own structure (unknown keys, unknown roles, duplicate rule ids, `match`
//! shape, SCIM filter syntax). R2, R4, R5, R13–R15, R17 and R18 depend on the
//! downstream org's state and are checked at apply time by the reconciler.
//!
//! Pure: imports `scim` (filters, schema) and nothing that does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{ErrorCode, RuleError, RuleErrors, RuleWarning, Subject, WarningCode};
use super::model::{
    Blanket, ConnectorMode, OrgSpec, Plan, PluginPreference, PoolTable, RoleSpec, RuleFile,
    RuleSpec, SpendAmount, SpendSpec,
};
use crate::scim::filter::{Filter, ValidFilter};
use crate::scim::resource::Projection;
use crate::scim::schema::{AttrPath, ResourceKind, SchemaRegistry};

mod build;
mod check;
mod parse;
mod pool;
use build::*;
pub use check::blanket_covers;
use check::*;
use parse::*;
use pool::check_pool;
pub(crate) use pool::pool_spec;
pub use pool::PoolSpec;

/// At most this many groups per organization (R6).
pub const MAX_GROUPS: usize = 100;
/// Group names are 1–255 characters (R7).
pub const MAX_NAME_LEN: usize = 255;
const MAX_ID_LEN: usize = 255;
const MAX_DESCRIPTION_LEN: usize = 1000;

/// Features generally available; `all = "all_ga"` covers these.
pub const GA_FEATURES: &[&str] = &[
    "chat",
    "claude_code",
    "claude_code_desktop",
    "claude_code_web",
    "code_execution",
    "cowork",
    "web_search",
];
/// Known features that are not (yet) GA; `all = "all"` covers these too.
pub const PREVIEW_FEATURES: &[&str] = &["fast_mode"];
/// Skills posture: org-level settings only, never per role or group (R10).
pub const SKILL_SETTINGS: &[&str] = &[
    "org_wide_skill_sharing",
    "skill_sharing",
    "skills",
    "user_skill_creation",
];
/// Computer Use: not available on Team or Enterprise (R11).
pub const COMPUTER_USE: &str = "computer_use";

fn is_known_feature(name: &str) -> bool {
    GA_FEATURES.contains(&name)
        || PREVIEW_FEATURES.contains(&name)
        || SKILL_SETTINGS.contains(&name)
        || name == COMPUTER_USE
}

/// A monthly per-member spend limit, in minor units of the billing currency.
/// Ordered from least to most permissive: any amount < a larger amount < unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpendLimit {
    /// A limit in minor units (`0` = included usage only).
    Amount(u64),
    /// No limit.
    Unlimited,
}

impl Serialize for SpendLimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SpendLimit::Amount(n) => s.serialize_u64(*n),
            SpendLimit::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

impl SpendLimit {
    /// As money in `currency` (`$500.00`), or `unlimited`.
    pub fn money(&self, currency: &str) -> String {
        match self {
            SpendLimit::Amount(n) => crate::money::format_minor(*n, currency),
            SpendLimit::Unlimited => "unlimited".into(),
        }
    }
}

impl std::fmt::Display for SpendLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpendLimit::Amount(n) => write!(f, "{n}"),
            SpendLimit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// Where a downstream group's plugin override comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
pub enum PluginOrigin {
    /// The rule's own `plugins` table.
    Rule,
    /// A role attached to the group (the most permissive of its roles).
    Role(String),
}

/// A downstream group as the enabled rules define it (all rules targeting one key agree,
/// R7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroup {
    /// `external_id` downstream.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Role keys attached.
    pub roles: BTreeSet<String>,
    /// Per-member monthly spend limit; `None` = the group sets none.
    pub monthly_spend: Option<SpendLimit>,
    /// The group's pooled monthly budget, if its rules set one.
    pub pool: Option<PoolSpec>,
    /// Plugin overrides: the rule's own preference, else the most permissive of its roles'.
    pub plugins: BTreeMap<String, (PluginPreference, PluginOrigin)>,
    /// Ids of the enabled rules that fill this group.
    pub rules: BTreeSet<String>,
}

/// How an enabled or disabled rule selects users, compiled.
#[derive(Clone)]
pub enum RuleMatcher {
    /// An IdP group by displayName, externalId or id (nested groups flattened).
    Group(String),
    /// A validated SCIM filter on users.
    Filter {
        /// The filter as written.
        text: String,
        /// The compiled filter.
        filter: Arc<ValidFilter>,
    },
}

impl std::fmt::Debug for RuleMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleMatcher::Group(g) => f.debug_tuple("Group").field(g).finish(),
            RuleMatcher::Filter { text, .. } => f.debug_tuple("Filter").field(text).finish(),
        }
    }
}

/// A rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// Rule id.
    pub id: String,
    /// Priority (higher first).
    pub priority: i64,
    /// Whether the rule takes part in resolution.
    pub enabled: bool,
    /// How it selects users.
    pub matcher: RuleMatcher,
    /// The downstream group key it fills.
    pub group_key: String,
}

/// A rule file that passed validation. Serializes as its [`RuleFile`] and deserializes by
/// validating again, so a stored table can never be invalid when loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "RuleFile", try_from = "RuleFile")]
pub struct ValidRuleTable {
    file: RuleFile,
    rules: Vec<CompiledRule>,
    groups: BTreeMap<String, TargetGroup>,
    filter_attributes: BTreeSet<String>,
    /// The top-level attributes the filters read (`attr` empty: a whole extension).
    projection: Vec<AttrPath>,
    warnings: Vec<RuleWarning>,
}

impl PartialEq for ValidRuleTable {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file
    }
}

impl From<ValidRuleTable> for RuleFile {
    fn from(t: ValidRuleTable) -> RuleFile {
        t.file
    }
}

impl TryFrom<RuleFile> for ValidRuleTable {
    type Error = RuleErrors;
    fn try_from(file: RuleFile) -> Result<Self, RuleErrors> {
        validate(file).map_err(RuleErrors)
    }
}

impl ValidRuleTable {
    /// The rule file as validated.
    pub fn file(&self) -> &RuleFile {
        &self.file
    }

    /// `[org]`.
    pub fn org(&self) -> &OrgSpec {
        &self.file.org
    }

    /// The custom roles by key.
    pub fn roles(&self) -> &BTreeMap<String, RoleSpec> {
        &self.file.roles
    }

    /// All rules (enabled or not), highest priority first, then by id.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// A rule as written, by id.
    pub fn rule_spec(&self, id: &str) -> Option<&RuleSpec> {
        self.file.rules.iter().find(|r| r.id == id)
    }

    /// The downstream groups the enabled rules define, by key.
    pub fn groups(&self) -> &BTreeMap<String, TargetGroup> {
        &self.groups
    }

    /// Non-fatal findings.
    pub fn warnings(&self) -> &[RuleWarning] {
        &self.warnings
    }

    /// The user attribute paths the rule filters read (`userName`, `name.givenName`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`), so the
    /// directory loads only those into [`super::SnapshotUser::attributes`].
    pub fn filter_attributes(&self) -> &BTreeSet<String> {
        &self.filter_attributes
    }

    /// Projects a rendered SCIM user onto the attributes the rule filters read: the
    /// value to store in [`super::SnapshotUser::attributes`]. Whole top-level attributes
    /// are kept (extension attributes under their schema URN); everything else is
    /// dropped, including `id` and `schemas`, which the snapshot carries already (this is
    /// why it is not [`crate::scim::resource::project`]: a million users each keeping a
    /// `schemas` array would cost memory for nothing).
    pub fn project_user(&self, user: &Value) -> Value {
        let mut out = Map::new();
        for p in &self.projection {
            match &p.urn {
                None => {
                    if let Some(v) = user.get(&p.attr) {
                        out.insert(p.attr.clone(), v.clone());
                    }
                }
                Some(urn) if p.attr.is_empty() => {
                    if let Some(v) = user.get(urn) {
                        out.insert(urn.clone(), v.clone());
                    }
                }
                Some(urn) => {
                    if let Some(v) = user.get(urn).and_then(|ext| ext.get(&p.attr)) {
                        let ext = out
                            .entry(urn.clone())
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(ext) = ext {
                            ext.insert(p.attr.clone(), v.clone());
                        }
                    }
                }
            }
        }
        Value::Object(out)
    }

    /// The same projection for [`crate::scim::resource::project`] (which also keeps
    /// `id` and `schemas`), for a caller that renders users through it.
    pub fn projection(&self) -> Projection {
        Projection {
            attributes: self.projection.clone(),
            excluded: Vec::new(),
        }
    }

    /// The file as TOML again (for `rules export`).
    pub fn to_toml(&self) -> Result<String, RuleError> {
        toml::to_string(&self.file).map_err(|e| {
            RuleError::new(
                Subject::File,
                "",
                ErrorCode::Internal,
                format!("cannot render as TOML: {e}"),
            )
        })
    }
}

/// Parses and validates a rule file (for `cowork-sync rules validate FILE` and
/// `PUT /admin/v1/rules`). On failure, returns every error found.
pub fn load_rule_file(text: &str) -> Result<ValidRuleTable, Vec<RuleError>> {
    let parsed = parse(text);
    let draft = Draft {
        org: parsed.org.as_ref(),
        roles: &parsed.roles,
        broken_roles: &parsed.broken_roles,
        rules: parsed.rules.iter().map(|(pos, r)| (*pos, r)).collect(),
    };
    let checked = check(&draft);
    let mut errors = parsed.errors;
    errors.extend(checked.errors);
    match parsed.org {
        Some(org) if errors.is_empty() => {
            let file = RuleFile {
                org,
                roles: parsed.roles,
                rules: parsed.rules.into_iter().map(|(_, r)| r).collect(),
            };
            Ok(build(file, checked.filters, checked.warnings))
        }
        _ => Err(errors),
    }
}

/// Validates an already parsed rule file (e.g. a JSON body or a stored table).
pub fn validate(file: RuleFile) -> Result<ValidRuleTable, Vec<RuleError>> {
    let broken = BTreeSet::new();
    let draft = Draft {
        org: Some(&file.org),
        roles: &file.roles,
        broken_roles: &broken,
        rules: file
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect(),
    };
    let checked = check(&draft);
    if !checked.errors.is_empty() {
        return Err(checked.errors);
    }
    Ok(build(file, checked.filters, checked.warnings))
}
