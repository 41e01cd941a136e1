//! The rule table: the org's expected settings, custom roles, and rules mapping IdP
//! groups (or SCIM filters on users) onto downstream Cowork groups with roles, a monthly
//! spend limit and plugin preferences (design §6, `docs/rules.md`).
//!
//! - [`load_rule_file`] / [`validate`]: TOML text or a [`RuleFile`] → [`ValidRuleTable`],
//!   or every error (R1–R19 that can be checked offline, plus structure), each naming
//!   the rule or role and the field. [`ValidRuleTable::warnings`] lists what is legal
//!   but probably unintended (e.g. R8: a role granting a feature that is off at org level).
//! - [`resolve`]: table + directory [`Snapshot`] → [`DesiredState`] for the planner.
//! - [`explain`] / [`effective_access`]: one user's access and the rules, groups and roles
//!   behind each value, with the product's semantics (union of roles, org switch wins,
//!   most permissive spend and plugins, connector modes capped by the org).
//! - [`diff`]: what changed between two tables, for the audit trail and dry runs.
//!
//! Pure: nothing here performs I/O or imports actix_web, sled or reqwest; it depends on
//! `crate::scim` (filters, schemas) only.

pub mod diff;
pub mod error;
pub mod explain;
pub mod model;
pub mod resolve;
mod synthetic;
pub mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pool;

pub use diff::{diff, RuleTableDiff};
pub use error::{ErrorCode, RuleError, RuleErrors, RuleWarning, Subject, WarningCode};
pub use explain::{
    capability_names, effective_access, explain, ConnectorAccess, EffectiveAccess, Explanation,
    MatchVia, Reason, RuleMatch, Source,
};
pub use model::{
    AdminLevel, Blanket, Capabilities, ConnectorMode, ConnectorSpec, ConnectorTools, GroupSpec,
    MatchSpec, OrgPlugins, OrgSpec, Plan, PluginPreference, PoolTable, ProvisioningMode, RoleSpec,
    RuleFile, RuleSpec, SpendAmount, SpendSpec,
};
pub use resolve::{
    resolve, DesiredGroup, DesiredState, ManagedUser, OrgExpectations, ResolutionWarning,
    ResolutionWarningCode, Snapshot, SnapshotGroup, SnapshotUser,
};
#[doc(hidden)]
pub use synthetic::synthetic_snapshot;
pub use validate::{
    load_rule_file, validate, CompiledRule, PluginOrigin, PoolSpec, RuleMatcher, SpendLimit,
    TargetGroup, ValidRuleTable, MAX_GROUPS,
};
