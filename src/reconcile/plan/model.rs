//! The planner's inputs and outputs: what is downstream ([`ActualState`]), what the
//! plan covers ([`Scope`]) and how ([`PlanOptions`]), everything it reads
//! ([`PlanInput`]), and what it reports besides actions ([`Drift`], [`Foreign`],
//! [`Pending`], the [`Valve`]) in the [`Plan`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::action::{Action, ActionKind};
use crate::cowork::{Mode, OrgRole, Organization, PluginPolicy, RbacGroup, RbacRole};
use crate::reconcile::ownership::{Change, Ownership};
use crate::rules::{DesiredState, SpendLimit};

/// A downstream member, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualUser {
    /// `user_01...`.
    pub id: String,
    /// Email, lowercased.
    pub email: String,
    /// Org role.
    pub role: OrgRole,
}

/// A pending invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualInvite {
    /// `invite_01...`.
    pub id: String,
    /// Groups the invitee joins on acceptance.
    pub group_ids: Vec<String>,
}

/// A configured spend-limit row (monthly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualSpend {
    /// `spl_01...`.
    pub id: String,
    /// The limit.
    pub limit: SpendLimit,
}

/// What is downstream: read in full (a full reconcile) or believed from the
/// ownership records (the event path). `None` means unknown: the planner skips what
/// it cannot compare instead of guessing.
#[derive(Debug, Clone, Default)]
pub struct ActualState {
    /// `true` when read from the API; `false` when built from beliefs.
    pub complete: bool,
    /// `GET /me`, when available.
    pub org: Option<Organization>,
    /// Members by id.
    pub users: BTreeMap<String, ActualUser>,
    /// Pending invites by lowercased email.
    pub invites: BTreeMap<String, ActualInvite>,
    /// Groups by id.
    pub groups: BTreeMap<String, RbacGroup>,
    /// Member ids of the groups that were read, by group id.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// Custom roles by id.
    pub roles: BTreeMap<String, RbacRole>,
    /// Group spend rows by group id (tier-B read).
    pub group_spend: Option<BTreeMap<String, ActualSpend>>,
    /// Per-user override rows by member id.
    pub user_spend: Option<BTreeMap<String, ActualSpend>>,
    /// Plugin policies by plugin id (tier-B read).
    pub plugins: Option<BTreeMap<String, PluginPolicy>>,
}

/// Which targets a plan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything: roles, groups, memberships, users, plugins, deletions.
    Full,
    /// The event path: only these directory users' memberships, org role, invite and
    /// spend overrides, and creating a group one of them needs.
    Users(BTreeSet<String>),
}

impl Scope {
    pub(super) fn covers(&self, scim_id: &str) -> bool {
        match self {
            Scope::Full => true,
            Scope::Users(set) => set.contains(scim_id),
        }
    }

    pub(super) fn is_full(&self) -> bool {
        matches!(self, Scope::Full)
    }
}

/// How to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// What the client may write.
    pub mode: Mode,
    /// Which targets.
    pub scope: Scope,
    /// The safety valve: the largest share of managed memberships a plan may remove.
    pub max_removal_ratio: f64,
    /// Apply even what the valve refuses.
    pub force: bool,
    /// In real mode, write group spend limits as per-user overrides.
    pub materialize_group_spend: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Extended,
            scope: Scope::Full,
            max_removal_ratio: 0.2,
            force: false,
            materialize_group_spend: false,
        }
    }
}

/// Everything the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// What the rules ask for.
    pub desired: &'a DesiredState,
    /// Directory users by lowercased email → SCIM id (every user for a full plan; the
    /// touched users for the event path).
    pub directory: &'a HashMap<String, String>,
    /// What is downstream.
    pub actual: &'a ActualState,
    /// What the daemon owns and believes.
    pub ownership: &'a Ownership,
    /// How to plan.
    pub options: &'a PlanOptions,
}

/// Why a difference is reported instead of written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Real mode: Anthropic's Admin API cannot write it; fix it in the console.
    TierB,
    /// An org-level setting differs from what the rules expect (never written).
    OrgSetting,
    /// The org role cannot be set through the API (the IdP owns org roles).
    NotWritable,
    /// A rule key is held by an object the daemon must not touch.
    Conflict,
    /// A per-user spend override set by someone else differs from the rules.
    ForeignOverride,
}

/// A difference the plan does not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Why it is not written.
    pub kind: DriftKind,
    /// What it is about (`group:<key>`, `role:<key>`, `org`, `user:<scim id>`, ...).
    pub target: String,
    /// What differs.
    pub detail: String,
    /// Where a person fixes it, when that is a console step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_step: Option<String>,
}

/// Why an object is foreign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForeignKind {
    /// A `source_type: scim` group that carries a rule key.
    ScimGroup,
    /// A member with an admin role in one of the daemon's groups, or a governed user
    /// who holds an admin role.
    AdminMember,
    /// A member of one of the daemon's groups who is not a directory user.
    NonDirectoryMember,
}

/// An object the plan leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Foreign {
    /// Why.
    pub kind: ForeignKind,
    /// `group:<key>` or `user:<scim id>`.
    pub target: String,
    /// Downstream id of the object (member id or group id).
    pub id: String,
}

/// Why a governed user has no downstream action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingReason {
    /// Invited already; waiting for acceptance.
    InvitePending,
    /// Not downstream, and the provisioning mode does not allow invites.
    InvitesNotAllowed,
    /// No email to match downstream.
    NoEmail,
}

/// A governed user who is not downstream yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// SCIM id.
    pub scim_id: String,
    /// Why.
    pub reason: PendingReason,
    /// Rule keys of the groups waiting for the user.
    pub groups: Vec<String>,
}

/// The safety valve's arithmetic and verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Valve {
    /// Memberships of directory users in the daemon's groups.
    pub managed_memberships: usize,
    /// Memberships the plan removes (member removals, and the governed members of
    /// deleted groups).
    pub removals: usize,
    /// `removals / managed_memberships`.
    pub ratio: f64,
    /// The configured limit.
    pub max_removal_ratio: f64,
    /// Groups the plan deletes although they still have members.
    pub non_empty_deletions: Vec<String>,
    /// The plan is refused (nothing may be applied).
    pub refused: bool,
    /// The valve would refuse, but the plan was forced.
    pub forced: bool,
    /// Why it refuses, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The planner's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Writes, in order.
    pub actions: Vec<Action>,
    /// Differences reported, not written.
    pub drift: Vec<Drift>,
    /// Objects left alone.
    pub foreign: Vec<Foreign>,
    /// Governed users not downstream yet.
    pub pending: Vec<Pending>,
    /// What could not be compared this time (unknown downstream data).
    pub notes: Vec<String>,
    /// The valve.
    pub valve: Valve,
    /// Ownership records to bring in line with what was read (no downstream write).
    #[serde(skip)]
    pub sync: Vec<Change>,
}

impl Plan {
    /// Whether the valve refuses it.
    pub fn refused(&self) -> bool {
        self.valve.refused
    }

    /// Actions by kind.
    pub fn counts(&self) -> BTreeMap<ActionKind, usize> {
        let mut out = BTreeMap::new();
        for a in &self.actions {
            *out.entry(a.kind).or_insert(0) += 1;
        }
        out
    }
}
