//! Errors and warnings of the rule layer. Every finding names what it is about (the
//! org, a role key, a rule id) and the field, so `cowork-sync rules validate` can print
//! one readable line per problem and the admin API can return them as JSON.
//!
//! Messages name fields and identifiers from the rule file, never directory values
//! (emails, names): those are personal data.

use serde::Serialize;

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Subject {
    /// The file as a whole (syntax, top-level keys, table-wide limits).
    File,
    /// The `[org]` table.
    Org,
    /// A `[roles.<key>]` table.
    Role(String),
    /// A `[[rules]]` entry, by its id.
    Rule(String),
    /// A `[[rules]]` entry without a usable id, by its 1-based position in the file.
    RuleAt(usize),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::File => write!(f, "rule file"),
            Subject::Org => write!(f, "org"),
            Subject::Role(key) => write!(f, "role {key:?}"),
            Subject::Rule(id) => write!(f, "rule {id:?}"),
            Subject::RuleAt(n) => write!(f, "rule #{n}"),
        }
    }
}

/// Why a rule file is invalid. [`ErrorCode::as_str`] is the machine-readable code;
/// [`ErrorCode::product_rule`] names the product rule (R1–R19 of the Cowork admin
/// reference) when the error is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The text is not valid TOML.
    Syntax,
    /// A key the rule file does not have.
    UnknownField,
    /// A required key is missing.
    MissingField,
    /// A value has the wrong type or is not one of the allowed values.
    InvalidValue,
    /// An identifier (rule id, role key, group key, plugin or connector id) is malformed.
    InvalidIdentifier,
    /// Two rules share an id.
    DuplicateRuleId,
    /// A rule references a role the file does not define.
    UnknownRole,
    /// `match` must name exactly one of `group` and `filter`.
    InvalidMatch,
    /// `match.filter` is not a valid SCIM filter on users.
    InvalidFilter,
    /// R1: groups, custom roles, spend limits, plugin overrides or SCIM on a Team plan.
    PlanNotSupported,
    /// R6: more than 100 downstream groups.
    GroupLimitExceeded,
    /// R7: a group name that is empty or longer than 255 characters.
    InvalidGroupName,
    /// R7: one group key targeted with different names or settings.
    GroupConflict,
    /// R9: a connector permission for a connector not enabled at org level.
    ConnectorNotInOrg,
    /// R9: connector permissions written on a rule (group) instead of a role.
    ConnectorScopeRequiresRole,
    /// R10: a setting that exists only at org level (skills posture).
    OrgLevelSetting,
    /// R11: Computer Use is not available on Team or Enterprise.
    ComputerUseNotAvailable,
    /// R12: a budget period other than monthly.
    UnsupportedPeriod,
    /// R12: a budget in another currency than the org's billing currency.
    CurrencyMismatch,
    /// R12: a budget in tokens (budgets are money only).
    UnsupportedUnit,
    /// R12: a negative, fractional or non-numeric amount.
    InvalidAmount,
    /// R16: plugin settings while Cowork or Skills is off org-wide.
    FeatureDisabledAtOrg,
    /// R16: a plugin that is not in the org's plugin list.
    PluginNotInOrg,
    /// R19: spend limits while usage credits are off.
    UsageCreditsOff,
    /// The billing currency is not an ISO 4217 code.
    InvalidCurrency,
    /// The schema registry could not be built (a bug, not a user error).
    Internal,
}

impl ErrorCode {
    /// The stable machine-readable code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Syntax => "syntax",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::InvalidIdentifier => "invalid_identifier",
            ErrorCode::DuplicateRuleId => "duplicate_rule_id",
            ErrorCode::UnknownRole => "unknown_role",
            ErrorCode::InvalidMatch => "invalid_match",
            ErrorCode::InvalidFilter => "invalid_filter",
            ErrorCode::PlanNotSupported => "plan_not_supported",
            ErrorCode::GroupLimitExceeded => "group_limit_exceeded",
            ErrorCode::InvalidGroupName => "invalid_group_name",
            ErrorCode::GroupConflict => "group_conflict",
            ErrorCode::ConnectorNotInOrg => "connector_not_in_org",
            ErrorCode::ConnectorScopeRequiresRole => "connector_scope_requires_role",
            ErrorCode::OrgLevelSetting => "org_level_setting",
            ErrorCode::ComputerUseNotAvailable => "computer_use_not_available",
            ErrorCode::UnsupportedPeriod => "unsupported_period",
            ErrorCode::CurrencyMismatch => "currency_mismatch",
            ErrorCode::UnsupportedUnit => "unsupported_unit",
            ErrorCode::InvalidAmount => "invalid_amount",
            ErrorCode::FeatureDisabledAtOrg => "feature_disabled_at_org",
            ErrorCode::PluginNotInOrg => "plugin_not_in_org",
            ErrorCode::UsageCreditsOff => "usage_credits_off",
            ErrorCode::InvalidCurrency => "invalid_currency",
            ErrorCode::Internal => "internal",
        }
    }

    /// The product rule of the Cowork admin reference (§1.9) this error enforces.
    pub fn product_rule(self) -> Option<&'static str> {
        match self {
            ErrorCode::PlanNotSupported => Some("R1"),
            ErrorCode::GroupLimitExceeded => Some("R6"),
            ErrorCode::InvalidGroupName | ErrorCode::GroupConflict => Some("R7"),
            ErrorCode::ConnectorNotInOrg | ErrorCode::ConnectorScopeRequiresRole => Some("R9"),
            ErrorCode::OrgLevelSetting => Some("R10"),
            ErrorCode::ComputerUseNotAvailable => Some("R11"),
            ErrorCode::UnsupportedPeriod
            | ErrorCode::CurrencyMismatch
            | ErrorCode::UnsupportedUnit
            | ErrorCode::InvalidAmount => Some("R12"),
            ErrorCode::FeatureDisabledAtOrg | ErrorCode::PluginNotInOrg => Some("R16"),
            ErrorCode::UsageCreditsOff => Some("R19"),
            _ => None,
        }
    }
}

/// One reason a rule file is invalid.
///
/// Displays as `rule "pilot": field "spend.monthly": must be a whole number of minor
/// currency units`; `field` is a dotted path inside the subject (empty when the whole
/// subject is at fault).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", render(subject, field, message))]
pub struct RuleError {
    /// What the error is about.
    pub subject: Subject,
    /// The dotted field path inside the subject, e.g. `spend.monthly`.
    pub field: String,
    /// The machine-readable reason.
    pub code: ErrorCode,
    /// One readable sentence (without the subject and field).
    pub message: String,
}

impl RuleError {
    /// A new error.
    pub fn new(
        subject: Subject,
        field: impl Into<String>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        Self {
            subject,
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// A list of errors as one error value (for `?` and for serde's `try_from`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", join(.0))]
pub struct RuleErrors(pub Vec<RuleError>);

fn join(errors: &[RuleError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a valid rule file may still not do what its author expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// R8: a role grants a feature that is off at org level; the org switch wins.
    FeatureDisabledAtOrg,
    /// A feature name this version does not know; passed through as an opaque string.
    UnknownFeature,
    /// A role sets a capability to `false` that its blanket grant covers anyway.
    IneffectiveCapability,
    /// A role allows `always_allow` while the org caps connector tools at `needs_approval`.
    ConnectorModeCapped,
    /// A tool name the server re-encodes (characters outside `[A-Za-z0-9_-]`).
    ToolNameEncoded,
    /// R7: two group keys share a display name (names are not unique downstream).
    DuplicateGroupName,
    /// R3: `*_advanced` provisioning; the daemon cannot set users to `managed`.
    AdvancedProvisioning,
    /// A role no enabled rule uses.
    UnusedRole,
    /// A filter on the user's `groups` attribute; use `match.group` instead.
    FilterOnGroups,
}

impl WarningCode {
    /// The stable machine-readable code.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::FeatureDisabledAtOrg => "feature_disabled_at_org",
            WarningCode::UnknownFeature => "unknown_feature",
            WarningCode::IneffectiveCapability => "ineffective_capability",
            WarningCode::ConnectorModeCapped => "connector_mode_capped",
            WarningCode::ToolNameEncoded => "tool_name_encoded",
            WarningCode::DuplicateGroupName => "duplicate_group_name",
            WarningCode::AdvancedProvisioning => "advanced_provisioning",
            WarningCode::UnusedRole => "unused_role",
            WarningCode::FilterOnGroups => "filter_on_groups",
        }
    }
}

/// A non-fatal finding of validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleWarning {
    /// What the warning is about.
    pub subject: Subject,
    /// The dotted field path inside the subject.
    pub field: String,
    /// The machine-readable reason.
    pub code: WarningCode,
    /// One readable sentence.
    pub message: String,
    /// For a role's warning: the enabled rules that attach the role.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

impl RuleWarning {
    /// A new warning.
    pub fn new(
        subject: Subject,
        field: impl Into<String>,
        code: WarningCode,
        message: impl Into<String>,
    ) -> Self {
        Self {
            subject,
            field: field.into(),
            code,
            message: message.into(),
            rules: Vec::new(),
        }
    }
}

impl std::fmt::Display for RuleWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.rules.is_empty() {
            return f.write_str(&render(&self.subject, &self.field, &self.message));
        }
        let subject = format!(
            "{} (used by rule{} {})",
            self.subject,
            if self.rules.len() == 1 { "" } else { "s" },
            self.rules
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        f.write_str(&render_named(&subject, &self.field, &self.message))
    }
}

fn render(subject: &Subject, field: &str, message: &str) -> String {
    render_named(&subject.to_string(), field, message)
}

fn render_named(subject: &str, field: &str, message: &str) -> String {
    if field.is_empty() {
        format!("{subject}: {message}")
    } else {
        format!("{subject}: field {field:?}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_subject_field_and_message() {
        let e = RuleError::new(
            Subject::Rule("pilot".into()),
            "spend.monthly",
            ErrorCode::InvalidAmount,
            "must be a whole number of minor currency units",
        );
        assert_eq!(
            e.to_string(),
            r#"rule "pilot": field "spend.monthly": must be a whole number of minor currency units"#
        );
        assert_eq!(e.code.product_rule(), Some("R12"));
        let e = RuleError::new(
            Subject::Role("x".into()),
            "",
            ErrorCode::PlanNotSupported,
            "no",
        );
        assert_eq!(e.to_string(), r#"role "x": no"#);
    }
}
