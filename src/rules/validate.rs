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

mod pool;
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

// ---------------------------------------------------------------- parsing

struct Parsed {
    org: Option<OrgSpec>,
    roles: BTreeMap<String, RoleSpec>,
    broken_roles: BTreeSet<String>,
    rules: Vec<(usize, RuleSpec)>,
    errors: Vec<RuleError>,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed {
        org: None,
        roles: BTreeMap::new(),
        broken_roles: BTreeSet::new(),
        rules: Vec::new(),
        errors: Vec::new(),
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            p.errors.push(RuleError::new(
                Subject::File,
                "",
                ErrorCode::Syntax,
                syntax_message(text, &e),
            ));
            return p;
        }
    };
    for (key, value) in table {
        match key.as_str() {
            "org" => match section::<OrgSpec>(value, &Subject::Org, "") {
                Ok(org) => p.org = Some(org),
                Err(e) => p.errors.push(e),
            },
            "roles" => match value {
                toml::Value::Table(roles) => {
                    for (role_key, raw) in roles {
                        let subject = Subject::Role(role_key.clone());
                        let raw = strip_misplaced(raw, &subject, &mut p.errors);
                        match section::<RoleSpec>(raw, &subject, "") {
                            Ok(role) => {
                                p.roles.insert(role_key, role);
                            }
                            Err(e) => {
                                p.errors.push(e);
                                p.broken_roles.insert(role_key);
                            }
                        }
                    }
                }
                _ => p.errors.push(RuleError::new(
                    Subject::File,
                    "roles",
                    ErrorCode::InvalidValue,
                    "must be a table of [roles.<key>] tables",
                )),
            },
            "rules" => match value {
                toml::Value::Array(rules) => {
                    for (i, raw) in rules.into_iter().enumerate() {
                        let pos = i + 1;
                        let subject = match raw.get("id").and_then(toml::Value::as_str) {
                            Some(id) if !id.is_empty() => Subject::Rule(id.to_string()),
                            _ => Subject::RuleAt(pos),
                        };
                        let raw = strip_misplaced(raw, &subject, &mut p.errors);
                        match section::<RuleSpec>(raw, &subject, "") {
                            Ok(rule) => p.rules.push((pos, rule)),
                            Err(e) => p.errors.push(e),
                        }
                    }
                }
                _ => p.errors.push(RuleError::new(
                    Subject::File,
                    "rules",
                    ErrorCode::InvalidValue,
                    "must be an array of [[rules]] tables",
                )),
            },
            other => p.errors.push(RuleError::new(
                Subject::File,
                other,
                ErrorCode::UnknownField,
                "unknown key, expected `org`, `roles` or `rules`",
            )),
        }
    }
    if p.org.is_none() && !p.errors.iter().any(|e| e.subject == Subject::Org) {
        p.errors.push(RuleError::new(
            Subject::File,
            "org",
            ErrorCode::MissingField,
            "the [org] table is required",
        ));
    }
    p
}

fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(
                "invalid TOML at line {line}, column {column}: {}",
                e.message()
            )
        }
        None => format!("invalid TOML: {}", e.message()),
    }
}

/// Keys that users put on a role or rule but that belong elsewhere in the product: they
/// get the product's error instead of a plain "unknown key", and are removed so the rest
/// of the entry is still checked.
fn strip_misplaced(
    raw: toml::Value,
    subject: &Subject,
    errors: &mut Vec<RuleError>,
) -> toml::Value {
    let toml::Value::Table(mut table) = raw else {
        return raw;
    };
    let is_rule = matches!(subject, Subject::Rule(_) | Subject::RuleAt(_));
    for key in SKILL_SETTINGS {
        if table.remove(*key).is_some() {
            errors.push(RuleError::new(
                subject.clone(),
                *key,
                ErrorCode::OrgLevelSetting,
                "skills settings are org-level only; set them in [org] features",
            ));
        }
    }
    if is_rule {
        if table.remove("connectors").is_some() {
            errors.push(RuleError::new(
                subject.clone(),
                "connectors",
                ErrorCode::ConnectorScopeRequiresRole,
                "connector permissions attach to roles, not to groups; put them in a role",
            ));
        }
        if table.remove("capabilities").is_some() {
            errors.push(RuleError::new(
                subject.clone(),
                "capabilities",
                ErrorCode::UnknownField,
                "capabilities attach to roles, not to groups; put them in a role",
            ));
        }
    }
    toml::Value::Table(table)
}

fn section<T: DeserializeOwned>(
    value: toml::Value,
    subject: &Subject,
    prefix: &str,
) -> Result<T, RuleError> {
    value
        .try_into::<T>()
        .map_err(|e| serde_error(subject, prefix, &e))
}

fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

fn serde_error(subject: &Subject, prefix: &str, e: &toml::de::Error) -> RuleError {
    let message = e.message().trim().to_string();
    let rendered = e.to_string();
    let path = rendered
        .lines()
        .find_map(|l| l.strip_prefix("in `").and_then(|r| r.strip_suffix('`')))
        .unwrap_or("");
    let at = join_path(prefix, path);
    let named = |rest: &str| -> Option<(String, String)> {
        let rest = rest.strip_prefix('`')?;
        let (name, tail) = rest.split_once('`')?;
        Some((
            name.to_string(),
            tail.trim_start_matches(',').trim().to_string(),
        ))
    };
    if let Some((name, tail)) = message.strip_prefix("unknown field ").and_then(named) {
        let text = if tail.is_empty() || tail == "there are no fields" {
            "unknown key".to_string()
        } else {
            format!("unknown key, {tail}")
        };
        return RuleError::new(
            subject.clone(),
            join_path(&at, &name),
            ErrorCode::UnknownField,
            text,
        );
    }
    if let Some((name, _)) = message.strip_prefix("missing field ").and_then(named) {
        return RuleError::new(
            subject.clone(),
            join_path(&at, &name),
            ErrorCode::MissingField,
            "is required",
        );
    }
    RuleError::new(subject.clone(), at, ErrorCode::InvalidValue, message)
}

// ---------------------------------------------------------------- checks

struct Draft<'a> {
    org: Option<&'a OrgSpec>,
    roles: &'a BTreeMap<String, RoleSpec>,
    broken_roles: &'a BTreeSet<String>,
    rules: Vec<(usize, &'a RuleSpec)>,
}

struct Checked {
    errors: Vec<RuleError>,
    warnings: Vec<RuleWarning>,
    filters: BTreeMap<String, Arc<ValidFilter>>,
}

struct Checker {
    errors: Vec<RuleError>,
    warnings: Vec<RuleWarning>,
}

impl Checker {
    fn err(
        &mut self,
        s: &Subject,
        field: impl Into<String>,
        code: ErrorCode,
        msg: impl Into<String>,
    ) {
        self.errors
            .push(RuleError::new(s.clone(), field, code, msg));
    }
    fn warn(
        &mut self,
        s: &Subject,
        field: impl Into<String>,
        code: WarningCode,
        msg: impl Into<String>,
    ) {
        self.warnings
            .push(RuleWarning::new(s.clone(), field, code, msg));
    }
}

fn registry() -> Result<&'static SchemaRegistry, RuleError> {
    static REGISTRY: OnceLock<Result<SchemaRegistry, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(SchemaRegistry::builtin)
        .as_ref()
        .map_err(|e| {
            RuleError::new(
                Subject::File,
                "",
                ErrorCode::Internal,
                format!("the built-in SCIM schemas do not load: {e}"),
            )
        })
}

fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn valid_feature_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn feature_off(org: Option<&OrgSpec>, feature: &str) -> bool {
    org.is_some_and(|o| o.features.get(feature) == Some(&false))
}

/// Whether a blanket grant covers `feature`.
pub fn blanket_covers(blanket: Blanket, feature: &str) -> bool {
    if SKILL_SETTINGS.contains(&feature) || feature == COMPUTER_USE {
        return false;
    }
    match blanket {
        Blanket::All => true,
        Blanket::AllGa => GA_FEATURES.contains(&feature),
    }
}

fn check(d: &Draft<'_>) -> Checked {
    let mut c = Checker {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(org) = d.org {
        check_org(&mut c, org, !d.rules.is_empty());
    }
    for (key, role) in d.roles {
        check_role(&mut c, d.org, key, role);
    }
    let filters = check_rules(&mut c, d);
    // A role's warning also names the rules that attach the role, so the reader
    // knows whose users it affects.
    for w in &mut c.warnings {
        if let Subject::Role(key) = &w.subject {
            w.rules = d
                .rules
                .iter()
                .filter(|(_, r)| r.enabled && r.roles.iter().any(|k| k == key))
                .map(|(_, r)| r.id.clone())
                .collect();
        }
    }
    Checked {
        errors: c.errors,
        warnings: c.warnings,
        filters,
    }
}

fn check_org(c: &mut Checker, org: &OrgSpec, has_rules: bool) {
    let s = Subject::Org;
    let cur = &org.billing_currency;
    if cur.len() != 3 || !cur.chars().all(|ch| ch.is_ascii_uppercase()) {
        c.err(
            &s,
            "billing_currency",
            ErrorCode::InvalidCurrency,
            "must be an ISO 4217 code of three capital letters, e.g. \"USD\"",
        );
    }
    for (name, on) in &org.features {
        let field = format!("features.{name}");
        if !valid_feature_name(name) {
            c.err(
                &s,
                field,
                ErrorCode::InvalidIdentifier,
                "feature names are lower-case letters, digits and underscores",
            );
            continue;
        }
        if name == COMPUTER_USE && *on {
            c.err(
                &s,
                field,
                ErrorCode::ComputerUseNotAvailable,
                "Computer Use is not available on Team or Enterprise plans",
            );
        } else if !is_known_feature(name) {
            c.warn(
                &s,
                field,
                WarningCode::UnknownFeature,
                "not a feature this version knows; passed through as an opaque permission",
            );
        }
    }
    for id in &org.connectors {
        if !valid_identifier(id) {
            c.err(
                &s,
                format!("connectors.{id}"),
                ErrorCode::InvalidIdentifier,
                "connector ids are letters, digits, '_', '-', '.' or ':'",
            );
        }
    }
    for id in org.plugins.0.keys() {
        if !valid_identifier(id) {
            c.err(
                &s,
                format!("plugins.{id}"),
                ErrorCode::InvalidIdentifier,
                "plugin ids are letters, digits, '_', '-', '.' or ':'",
            );
        }
    }
    if !org.plugins.is_empty() {
        if let Some(off) = marketplace_off(Some(org)) {
            c.err(
                &s,
                "plugins",
                ErrorCode::FeatureDisabledAtOrg,
                format!("the plugin marketplace needs Cowork and Skills, but `{off}` is off at org level"),
            );
        }
    }
    if org.plan == Plan::Team && org.provisioning_mode.is_scim() {
        c.err(
            &s,
            "provisioning_mode",
            ErrorCode::PlanNotSupported,
            "SCIM provisioning needs the Enterprise plan",
        );
    }
    if org.provisioning_mode.is_advanced() && has_rules {
        c.warn(
            &s,
            "provisioning_mode",
            WarningCode::AdvancedProvisioning,
            format!(
                "under {} the IdP's group mappings own org roles, so users cannot be set to `managed` and custom roles only govern users the IdP already maps to Custom roles",
                org.provisioning_mode.as_str()
            ),
        );
    }
}

/// The org switch that keeps the plugin marketplace off (R16), if any.
fn marketplace_off(org: Option<&OrgSpec>) -> Option<&'static str> {
    ["cowork", "skills"]
        .into_iter()
        .find(|f| feature_off(org, f))
}

fn check_plugins(
    c: &mut Checker,
    s: &Subject,
    org: Option<&OrgSpec>,
    plugins: &BTreeMap<String, PluginPreference>,
) {
    if plugins.is_empty() {
        return;
    }
    if let Some(off) = marketplace_off(org) {
        c.err(
            s,
            "plugins",
            ErrorCode::FeatureDisabledAtOrg,
            format!("plugin settings need Cowork and Skills, but `{off}` is off at org level"),
        );
        return;
    }
    if let Some(org) = org {
        for id in plugins.keys() {
            if !org.plugins.0.contains_key(id) {
                c.err(
                    s,
                    format!("plugins.{id}"),
                    ErrorCode::PluginNotInOrg,
                    "this plugin is not in the org's plugin list ([org] plugins)",
                );
            }
        }
    }
}

fn check_role(c: &mut Checker, org: Option<&OrgSpec>, key: &str, role: &RoleSpec) {
    let s = Subject::Role(key.to_string());
    if !valid_identifier(key) {
        c.err(
            &s,
            "",
            ErrorCode::InvalidIdentifier,
            "role keys are 1-255 letters, digits, '_', '-', '.' or ':'",
        );
    }
    if org.is_some_and(|o| o.plan == Plan::Team) {
        c.err(
            &s,
            "",
            ErrorCode::PlanNotSupported,
            "custom roles need the Enterprise plan (org.plan is \"team\")",
        );
    }
    if role.name.trim().is_empty() || role.name.chars().count() > MAX_NAME_LEN {
        c.err(
            &s,
            "name",
            ErrorCode::InvalidValue,
            "must be 1-255 characters",
        );
    }
    if role
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
    {
        c.err(
            &s,
            "description",
            ErrorCode::InvalidValue,
            "must be at most 1000 characters",
        );
    }
    if role
        .default_model
        .as_ref()
        .is_some_and(|m| m.trim().is_empty())
    {
        c.err(
            &s,
            "default_model",
            ErrorCode::InvalidValue,
            "must not be empty",
        );
    }
    for (name, on) in &role.capabilities.features {
        let field = format!("capabilities.{name}");
        if !valid_feature_name(name) {
            c.err(
                &s,
                field,
                ErrorCode::InvalidIdentifier,
                "feature names are lower-case letters, digits and underscores",
            );
        } else if SKILL_SETTINGS.contains(&name.as_str()) {
            c.err(
                &s,
                field,
                ErrorCode::OrgLevelSetting,
                "skills settings are org-level only; set them in [org] features",
            );
        } else if name == COMPUTER_USE {
            if *on {
                c.err(
                    &s,
                    field,
                    ErrorCode::ComputerUseNotAvailable,
                    "Computer Use is not available on Team or Enterprise plans",
                );
            }
        } else {
            if !is_known_feature(name) {
                c.warn(
                    &s,
                    field.clone(),
                    WarningCode::UnknownFeature,
                    "not a feature this version knows; passed through as an opaque permission",
                );
            }
            if *on && feature_off(org, name) {
                c.warn(
                    &s,
                    field.clone(),
                    WarningCode::FeatureDisabledAtOrg,
                    format!("`{name}` is off at org level, which wins over any role; this grant has no effect until it is turned on"),
                );
            }
            if let Some(all) = role.capabilities.all {
                if !*on && blanket_covers(all, name) {
                    c.warn(
                        &s,
                        field,
                        WarningCode::IneffectiveCapability,
                        format!(
                            "has no effect: all = \"{}\" grants `{name}` anyway",
                            all.as_str()
                        ),
                    );
                }
            }
        }
    }
    for (id, spec) in &role.connectors {
        let field = format!("connectors.{id}");
        if let Some(org) = org {
            if !org.connectors.contains(id) {
                c.err(
                    &s,
                    field.clone(),
                    ErrorCode::ConnectorNotInOrg,
                    "this connector is not enabled at org level ([org] connectors)",
                );
                continue;
            }
            let capped = !org.connector_tools_default_always_allow;
            if capped
                && (spec.default_mode() == ConnectorMode::AlwaysAllow
                    || spec.tools().any(|(_, m)| m == ConnectorMode::AlwaysAllow))
            {
                c.warn(
                    &s,
                    field.clone(),
                    WarningCode::ConnectorModeCapped,
                    "`always_allow` is capped at `needs_approval` because org.connector_tools_default_always_allow is false",
                );
            }
        }
        for (tool, _) in spec.tools() {
            if tool.is_empty()
                || !tool
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                c.warn(
                    &s,
                    format!("{field}.tools.{tool}"),
                    WarningCode::ToolNameEncoded,
                    "tool names outside [A-Za-z0-9_-] are re-encoded by the server and cannot be compared",
                );
            }
        }
    }
    check_plugins(c, &s, org, &role.plugins);
    for area in role.admin_permissions.keys() {
        if !valid_feature_name(area) {
            c.err(
                &s,
                format!("admin_permissions.{area}"),
                ErrorCode::InvalidIdentifier,
                "admin areas are lower-case letters, digits and underscores",
            );
        }
    }
}

/// A rule's spend limit, once valid.
pub(crate) fn spend_limit(spend: &SpendSpec) -> Option<SpendLimit> {
    match spend.monthly.as_ref()? {
        SpendAmount::Minor(n) => u64::try_from(*n).ok().map(SpendLimit::Amount),
        SpendAmount::Text(t) if t == "unlimited" => Some(SpendLimit::Unlimited),
        _ => None,
    }
}

fn check_spend(c: &mut Checker, s: &Subject, org: Option<&OrgSpec>, spend: &SpendSpec) {
    if org.is_some_and(|o| !o.usage_credits) {
        c.err(
            s,
            "spend",
            ErrorCode::UsageCreditsOff,
            "spend limits need usage credits, but org.usage_credits is false",
        );
    }
    for (field, value) in [
        ("spend.weekly", &spend.weekly),
        ("spend.daily", &spend.daily),
    ] {
        if value.is_some() {
            c.err(
                s,
                field,
                ErrorCode::UnsupportedPeriod,
                "only a monthly period is supported; use `monthly`",
            );
        }
    }
    if spend.tokens.is_some() {
        c.err(
            s,
            "spend.tokens",
            ErrorCode::UnsupportedUnit,
            "budgets are money, in minor units of the billing currency, not tokens; use `monthly`",
        );
    }
    if let (Some(cur), Some(org)) = (&spend.currency, org) {
        if *cur != org.billing_currency {
            c.err(
                s,
                "spend.currency",
                ErrorCode::CurrencyMismatch,
                format!(
                    "budgets are in the org's billing currency ({})",
                    org.billing_currency
                ),
            );
        }
    }
    match &spend.monthly {
        None => {
            if spend.weekly.is_none() && spend.daily.is_none() && spend.tokens.is_none() {
                c.err(
                    s,
                    "spend.monthly",
                    ErrorCode::MissingField,
                    "is required: a whole number of minor currency units or \"unlimited\"",
                );
            }
        }
        Some(SpendAmount::Minor(n)) if *n < 0 => c.err(
            s,
            "spend.monthly",
            ErrorCode::InvalidAmount,
            "must not be negative",
        ),
        Some(SpendAmount::Minor(_)) => {}
        Some(SpendAmount::Fractional(_)) => c.err(
            s,
            "spend.monthly",
            ErrorCode::InvalidAmount,
            "must be a whole number of minor currency units",
        ),
        Some(SpendAmount::Text(t)) if t == "unlimited" => {}
        Some(SpendAmount::Text(_)) => c.err(
            s,
            "spend.monthly",
            ErrorCode::InvalidAmount,
            "must be a whole number of minor currency units (without quotes) or \"unlimited\"",
        ),
    }
}

fn check_rules(c: &mut Checker, d: &Draft<'_>) -> BTreeMap<String, Arc<ValidFilter>> {
    let mut filters = BTreeMap::new();
    let mut seen_ids: BTreeMap<&str, usize> = BTreeMap::new();
    let team = d.org.is_some_and(|o| o.plan == Plan::Team);
    let registry = match registry() {
        Ok(r) => Some(r),
        Err(e) => {
            c.errors.push(e);
            None
        }
    };
    for (pos, rule) in &d.rules {
        let s = if rule.id.is_empty() {
            Subject::RuleAt(*pos)
        } else {
            Subject::Rule(rule.id.clone())
        };
        if !valid_identifier(&rule.id) {
            c.err(
                &s,
                "id",
                ErrorCode::InvalidIdentifier,
                "rule ids are 1-255 letters, digits, '_', '-', '.' or ':'",
            );
        }
        if let Some(first) = seen_ids.insert(&rule.id, *pos) {
            seen_ids.insert(&rule.id, first);
            c.err(
                &s,
                "id",
                ErrorCode::DuplicateRuleId,
                format!("rule #{first} already uses this id"),
            );
        }
        if team {
            c.err(
                &s,
                "group",
                ErrorCode::PlanNotSupported,
                "groups, custom roles, group spend limits and plugin overrides need the Enterprise plan (org.plan is \"team\")",
            );
        }
        match (&rule.matcher.group, &rule.matcher.filter) {
            (Some(_), Some(_)) | (None, None) => c.err(
                &s,
                "match",
                ErrorCode::InvalidMatch,
                "must name exactly one of `group` and `filter`",
            ),
            (Some(g), None) => {
                if g.trim().is_empty() {
                    c.err(
                        &s,
                        "match.group",
                        ErrorCode::InvalidMatch,
                        "must not be empty",
                    );
                }
            }
            (None, Some(text)) => {
                if let Some(registry) = registry {
                    match Filter::parse(text).and_then(|f| f.validate(registry, ResourceKind::User))
                    {
                        Ok(f) => {
                            if f.mentions("groups") {
                                c.warn(
                                    &s,
                                    "match.filter",
                                    WarningCode::FilterOnGroups,
                                    "filters on the user's `groups` attribute miss nested groups; use match.group",
                                );
                            }
                            filters.insert(rule.id.clone(), Arc::new(f));
                        }
                        Err(e) => c.err(
                            &s,
                            "match.filter",
                            ErrorCode::InvalidFilter,
                            format!("not a valid SCIM filter on users: {}", e.detail()),
                        ),
                    }
                }
            }
        }
        if !valid_identifier(&rule.group.key) {
            c.err(
                &s,
                "group.key",
                ErrorCode::InvalidIdentifier,
                "group keys are 1-255 letters, digits, '_', '-', '.' or ':'",
            );
        }
        if rule.group.name.trim().is_empty() || rule.group.name.chars().count() > MAX_NAME_LEN {
            c.err(
                &s,
                "group.name",
                ErrorCode::InvalidGroupName,
                "group names must be 1-255 characters",
            );
        }
        if rule
            .group
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
        {
            c.err(
                &s,
                "group.description",
                ErrorCode::InvalidValue,
                "must be at most 1000 characters",
            );
        }
        let mut listed = BTreeSet::new();
        for role in &rule.roles {
            if !listed.insert(role) {
                c.err(
                    &s,
                    "roles",
                    ErrorCode::InvalidValue,
                    format!("role {role:?} is listed twice"),
                );
            } else if !d.roles.contains_key(role) && !d.broken_roles.contains(role) {
                c.err(
                    &s,
                    "roles",
                    ErrorCode::UnknownRole,
                    format!("role {role:?} is not defined in [roles]"),
                );
            }
        }
        if let Some(spend) = &rule.spend {
            check_spend(c, &s, d.org, spend);
        }
        if let Some(pool) = &rule.pool {
            check_pool(c, &s, d.org, pool);
        }
        check_plugins(c, &s, d.org, &rule.plugins);
    }
    check_groups(c, d);
    for key in d.roles.keys() {
        let used = d
            .rules
            .iter()
            .any(|(_, r)| r.enabled && r.roles.iter().any(|k| k == key));
        if !used {
            c.warn(
                &Subject::Role(key.clone()),
                "",
                WarningCode::UnusedRole,
                "no enabled rule attaches this role; it is still created downstream",
            );
        }
    }
    filters
}

/// R6 and R7 across rules: the downstream groups the enabled rules define.
fn check_groups(c: &mut Checker, d: &Draft<'_>) {
    let mut first: BTreeMap<&str, &RuleSpec> = BTreeMap::new();
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for (_, rule) in d.rules.iter().filter(|(_, r)| r.enabled) {
        let s = Subject::Rule(rule.id.clone());
        let key = rule.group.key.as_str();
        match first.get(key) {
            None => {
                if first.len() == MAX_GROUPS {
                    c.err(
                        &s,
                        "group.key",
                        ErrorCode::GroupLimitExceeded,
                        format!("this is group {} of the rule table; an organization has at most {MAX_GROUPS} groups", MAX_GROUPS + 1),
                    );
                }
                first.insert(key, rule);
                if let Some(other) = names.insert(rule.group.name.as_str(), key) {
                    c.warn(
                        &s,
                        "group.name",
                        WarningCode::DuplicateGroupName,
                        format!("group {other:?} has the same name; names are not unique downstream, groups are kept apart by key"),
                    );
                }
            }
            Some(prev) => {
                let differs = |field: &str| -> String {
                    format!(
                        "group key {key:?} is also filled by rule {:?} with a different {field}; rules sharing a group must agree on its settings",
                        prev.id
                    )
                };
                let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
                if prev.group.name != rule.group.name {
                    c.err(&s, "group.name", ErrorCode::GroupConflict, differs("name"));
                }
                if prev.group.description != rule.group.description {
                    c.err(
                        &s,
                        "group.description",
                        ErrorCode::GroupConflict,
                        differs("description"),
                    );
                }
                if set(&prev.roles) != set(&rule.roles) {
                    c.err(&s, "roles", ErrorCode::GroupConflict, differs("roles"));
                }
                if prev.spend.as_ref().and_then(spend_limit)
                    != rule.spend.as_ref().and_then(spend_limit)
                {
                    c.err(&s, "spend", ErrorCode::GroupConflict, differs("spend"));
                }
                if prev.pool.as_ref().and_then(pool_spec) != rule.pool.as_ref().and_then(pool_spec)
                {
                    c.err(&s, "pool", ErrorCode::GroupConflict, differs("pool"));
                }
                if prev.plugins != rule.plugins {
                    c.err(&s, "plugins", ErrorCode::GroupConflict, differs("plugins"));
                }
            }
        }
    }
}

// ---------------------------------------------------------------- building

fn build(
    file: RuleFile,
    filters: BTreeMap<String, Arc<ValidFilter>>,
    warnings: Vec<RuleWarning>,
) -> ValidRuleTable {
    let mut rules: Vec<CompiledRule> = file
        .rules
        .iter()
        .filter_map(|r| {
            let matcher = match (&r.matcher.group, &r.matcher.filter) {
                (Some(g), None) => RuleMatcher::Group(g.clone()),
                (None, Some(text)) => RuleMatcher::Filter {
                    text: text.clone(),
                    filter: filters.get(&r.id)?.clone(),
                },
                _ => return None,
            };
            Some(CompiledRule {
                id: r.id.clone(),
                priority: r.priority,
                enabled: r.enabled,
                matcher,
                group_key: r.group.key.clone(),
            })
        })
        .collect();
    rules.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));

    let mut groups: BTreeMap<String, TargetGroup> = BTreeMap::new();
    for r in file.rules.iter().filter(|r| r.enabled) {
        let group = groups
            .entry(r.group.key.clone())
            .or_insert_with(|| target_group(&file, r));
        group.rules.insert(r.id.clone());
    }

    let (filter_attributes, projection) = projection(filters.values().map(Arc::as_ref));
    ValidRuleTable {
        file,
        rules,
        groups,
        filter_attributes,
        projection,
        warnings,
    }
}

fn target_group(file: &RuleFile, r: &RuleSpec) -> TargetGroup {
    let roles: BTreeSet<String> = r.roles.iter().cloned().collect();
    let mut plugins: BTreeMap<String, (PluginPreference, PluginOrigin)> = BTreeMap::new();
    for key in &roles {
        let Some(role) = file.roles.get(key) else {
            continue;
        };
        for (id, pref) in &role.plugins {
            let entry = plugins
                .entry(id.clone())
                .or_insert((*pref, PluginOrigin::Role(key.clone())));
            if *pref > entry.0 {
                *entry = (*pref, PluginOrigin::Role(key.clone()));
            }
        }
    }
    for (id, pref) in &r.plugins {
        plugins.insert(id.clone(), (*pref, PluginOrigin::Rule));
    }
    TargetGroup {
        key: r.group.key.clone(),
        name: r.group.name.clone(),
        description: r.group.description.clone(),
        roles,
        monthly_spend: r.spend.as_ref().and_then(spend_limit),
        pool: r.pool.as_ref().and_then(pool_spec),
        plugins,
        rules: BTreeSet::new(),
    }
}

/// The attribute paths the filters read, and the top-level attributes to project.
/// [`ValidFilter::mentions`] answers for top-level attribute names and extension URNs;
/// an extension attribute counts when its filter mentions both its name and its URN.
fn projection<'a>(
    filters: impl Iterator<Item = &'a ValidFilter>,
) -> (BTreeSet<String>, Vec<AttrPath>) {
    let mut paths = BTreeSet::new();
    let mut attrs: Vec<AttrPath> = Vec::new();
    let Ok(registry) = registry() else {
        return (paths, Vec::new());
    };
    let kind = ResourceKind::User;
    for f in filters {
        for schema in [registry.core(kind), registry.common()] {
            for attr in schema.attributes.iter().filter(|a| f.mentions(&a.name)) {
                paths.insert(attr.name.clone());
                attrs.push(AttrPath::new(&attr.name, None));
            }
        }
        for ext in registry.extensions(kind) {
            if !f.mentions(&ext.id) {
                continue;
            }
            let named: Vec<&str> = ext
                .attributes
                .iter()
                .filter(|a| f.mentions(&a.name))
                .map(|a| a.name.as_str())
                .collect();
            // The whole extension object when the filter names no attribute of it.
            let named = if named.is_empty() { vec![""] } else { named };
            for attr in named {
                paths.insert(if attr.is_empty() {
                    ext.id.clone()
                } else {
                    format!("{}:{attr}", ext.id)
                });
                attrs.push(AttrPath {
                    urn: Some(ext.id.clone()),
                    attr: attr.to_string(),
                    sub: None,
                });
            }
        }
    }
    attrs.sort_by_key(ToString::to_string);
    attrs.dedup();
    (paths, attrs)
}
