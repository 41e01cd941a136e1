//! Spend limits (E13–E14): scopes, limits, the upsert body, effective summaries and
//! the list filter.

use super::*;

/// What a spend limit applies to (a tagged union; an open set).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SpendScope {
    /// One member (the only scope the real API writes).
    User {
        /// `user_01...`.
        user_id: String,
    },
    /// A seat tier's default.
    SeatTier {
        /// The seat tier.
        seat_tier: String,
    },
    /// A group's per-member default.
    RbacGroup {
        /// `rbac_group_01...`.
        rbac_group_id: String,
    },
    /// An organization service.
    OrganizationService {
        /// The service.
        service: String,
    },
    /// The organization default.
    Organization,
    /// A scope type this version does not know.
    #[serde(other)]
    Unknown,
}

impl SpendScope {
    /// The `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            SpendScope::User { .. } => "user",
            SpendScope::SeatTier { .. } => "seat_tier",
            SpendScope::RbacGroup { .. } => "rbac_group",
            SpendScope::OrganizationService { .. } => "organization_service",
            SpendScope::Organization => "organization",
            SpendScope::Unknown => "unknown",
        }
    }
}

/// A configured spend limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "spend_limit")]
pub struct SpendLimit {
    /// `spl_01...`.
    pub id: String,
    /// What it applies to.
    pub scope: SpendScope,
    /// Period (`monthly`).
    pub period: Period,
    /// Minor units of `currency` as a decimal string; `null` = explicitly unlimited.
    pub amount: Option<String>,
    /// ISO 4217 code of the org's billing currency.
    pub currency: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl SpendLimit {
    /// The amount in minor units (`None` = unlimited or unparsable).
    pub fn amount_minor(&self) -> Option<u64> {
        self.amount.as_deref().and_then(|a| a.parse().ok())
    }
}

/// `POST /v1/organizations/spend_limits` body: an upsert on (scope, period).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendLimitRequest {
    /// What it applies to (`user` on the real API; others are tier B).
    pub scope: SpendScope,
    /// Period (defaults to `monthly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Minor units as a decimal string; `null` = explicitly unlimited.
    pub amount: Option<String>,
    /// Tier B: the currency the caller meant; must equal the billing currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// One row of `GET /spend_limits/effective`: a member's effective limit for a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendSummary {
    /// The member.
    pub actor: SpendActor,
    /// Effective limit in minor units; `null` = no limit for this period.
    pub amount: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Period.
    pub period: Period,
    /// Spend so far this period (may be fractional).
    pub period_to_date_spend: String,
    /// The member's scope.
    pub scope: SpendScope,
    /// The scope the limit was inherited from.
    pub source: SpendScope,
    /// The limit row that applies.
    #[serde(default)]
    pub spend_limit_id: Option<String>,
}

/// The `actor` of a [`SpendSummary`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "user_actor")]
pub struct SpendActor {
    /// `user_01...`.
    pub user_id: String,
    /// Display name (null when unavailable).
    #[serde(default)]
    pub name: Option<String>,
    /// Email (null when unavailable).
    #[serde(default)]
    pub email_address: Option<String>,
    /// The account was deleted.
    #[serde(default)]
    pub deleted: bool,
}

/// Filter of `GET /spend_limits` (the beta spend-limit reads, or tier B E14).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendLimitFilter {
    /// Only rows of this scope type (`user`, `rbac_group`, `seat_tier`, `organization`).
    pub scope_type: Option<String>,
    /// Only rows of this group.
    pub rbac_group_id: Option<String>,
}
