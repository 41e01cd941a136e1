//! The checks of a parsed rule file: organisation settings, plugins, roles, spend
//! limits, rules (filters and their targets) and groups, each collecting
//! [`RuleError`]s and [`RuleWarning`]s on a [`Checker`].

use super::*;

pub(super) struct Draft<'a> {
    pub(super) org: Option<&'a OrgSpec>,
    pub(super) roles: &'a BTreeMap<String, RoleSpec>,
    pub(super) broken_roles: &'a BTreeSet<String>,
    pub(super) rules: Vec<(usize, &'a RuleSpec)>,
}

pub(super) struct Checked {
    pub(super) errors: Vec<RuleError>,
    pub(super) warnings: Vec<RuleWarning>,
    pub(super) filters: BTreeMap<String, Arc<ValidFilter>>,
}

pub(super) struct Checker {
    pub(super) errors: Vec<RuleError>,
    pub(super) warnings: Vec<RuleWarning>,
}

impl Checker {
    pub(super) fn err(
        &mut self,
        s: &Subject,
        field: impl Into<String>,
        code: ErrorCode,
        msg: impl Into<String>,
    ) {
        self.errors
            .push(RuleError::new(s.clone(), field, code, msg));
    }
    pub(super) fn warn(
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

pub(super) fn registry() -> Result<&'static SchemaRegistry, RuleError> {
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

pub(super) fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

pub(super) fn valid_feature_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn feature_off(org: Option<&OrgSpec>, feature: &str) -> bool {
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

pub(super) fn check(d: &Draft<'_>) -> Checked {
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

pub(super) fn check_org(c: &mut Checker, org: &OrgSpec, has_rules: bool) {
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
pub(super) fn marketplace_off(org: Option<&OrgSpec>) -> Option<&'static str> {
    ["cowork", "skills"]
        .into_iter()
        .find(|f| feature_off(org, f))
}

pub(super) fn check_plugins(
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

pub(super) fn check_role(c: &mut Checker, org: Option<&OrgSpec>, key: &str, role: &RoleSpec) {
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

pub(super) fn check_spend(c: &mut Checker, s: &Subject, org: Option<&OrgSpec>, spend: &SpendSpec) {
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

pub(super) fn check_rules(c: &mut Checker, d: &Draft<'_>) -> BTreeMap<String, Arc<ValidFilter>> {
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
pub(super) fn check_groups(c: &mut Checker, d: &Draft<'_>) {
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
