//! The planner's inputs and outputs: what is downstream ([`ActualState`]), what the
//! plan covers ([`Scope`]) and how ([`PlanOptions`]), everything it reads
//! ([`PlanInput`]), and what it reports besides actions ([`Drift`], [`Foreign`],
//! [`Pending`], the [`Valve`]) in the [`Plan`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::action::{Action, ActionKind};
use crate::cowork::{Mode, OrgRole, Organization, PluginPolicy, Preference, RbacGroup, RbacRole};
use crate::reconcile::ownership::{Change, OffboardReason, Ownership};
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

/// A plugin as the beta Plugins API shows it: its id and its installation settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActualPlugin {
    /// `plugin_01...`.
    pub id: String,
    /// The org-wide setting, when there is one.
    pub org: Option<Preference>,
    /// Group settings by group id.
    pub groups: BTreeMap<String, Preference>,
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
    /// Plugins by name with their installation settings (the beta Plugins API, tier
    /// A), for the plugins the rules name; `None` when not read or not available.
    pub plugin_settings: Option<BTreeMap<String, ActualPlugin>>,
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

/// What a deactivated or deleted governed user loses downstream
/// (`lifecycle.on_deactivate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDeactivate {
    /// Their groups, then (after the grace) their organization membership and seat.
    #[default]
    RemoveFromOrg,
    /// Their groups only; they stay an organization member.
    RemoveFromGroups,
}

/// How to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// What the client may write.
    pub mode: Mode,
    /// Which targets.
    pub scope: Scope,
    /// The safety valve: the largest share of managed memberships (and of governed
    /// members, for organization removals) the removals in the window may reach.
    pub max_removal_ratio: f64,
    /// The valve never holds while the removals in the window are at most this many.
    pub removal_floor: usize,
    /// The sliding window the valve counts removals over.
    pub removal_window: chrono::Duration,
    /// Apply even what the valve holds.
    pub force: bool,
    /// In real mode, write group spend limits as per-user overrides.
    pub materialize_group_spend: bool,
    /// What offboarding takes away.
    pub on_deactivate: OnDeactivate,
    /// Grace before a deactivated or deleted user is removed from the organization.
    pub remove_from_org_after: chrono::Duration,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Extended,
            scope: Scope::Full,
            max_removal_ratio: 0.2,
            removal_floor: 10,
            removal_window: chrono::Duration::hours(1),
            force: false,
            materialize_group_spend: false,
            on_deactivate: OnDeactivate::RemoveFromOrg,
            remove_from_org_after: chrono::Duration::zero(),
        }
    }
}

/// A directory user as the planner sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The primary email (the downstream key), as the IdP sent it.
    pub email: Option<String>,
    /// SCIM `active`.
    pub active: bool,
}

/// The directory users a plan sees: every user for a full plan, the users in scope
/// for the event path. A user in scope who is not here was deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryView {
    /// By SCIM id.
    pub users: HashMap<String, DirectoryUser>,
}

impl DirectoryView {
    /// Adds (or replaces) a user.
    pub fn insert(&mut self, scim_id: &str, email: Option<&str>, active: bool) {
        self.users.insert(
            scim_id.to_string(),
            DirectoryUser {
                email: email.map(str::to_string),
                active,
            },
        );
    }
}

/// Everything the planner reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// What the rules ask for.
    pub desired: &'a DesiredState,
    /// The directory users in view.
    pub directory: &'a DirectoryView,
    /// What is downstream.
    pub actual: &'a ActualState,
    /// What the daemon owns and believes.
    pub ownership: &'a Ownership,
    /// How to plan.
    pub options: &'a PlanOptions,
    /// Now, by the daemon's clock (grace periods, the removal window).
    pub now: chrono::DateTime<chrono::Utc>,
    /// The caps of spent pools, by SCIM user id (design §6.1).
    pub caps: &'a BTreeMap<String, PoolCap>,
}

/// A spent pool's cap on one member: a per-user spend override at what they had
/// spent when their group's pool ran out (design §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolCap {
    /// The cap, minor units of the billing currency.
    pub at: u64,
    /// The key of the pooled group whose pool set it (the lowest cap's, when more
    /// than one pool caps the member).
    pub group: String,
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
    /// Another directory user's email names the same downstream member, and that user
    /// was matched (see [`Collision`]).
    IdentityCollision,
}

/// Directory users whose emails name one downstream member (equal ignoring case, or
/// after dropping a `+tag`, as the Admin API matches them). One is matched, by a
/// fixed rule: an active user before an inactive one, a user the rules govern before
/// one they do not, the user already linked to the member before the others, then the
/// smallest SCIM id. The others are reported and get nothing downstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collision {
    /// The downstream member, when one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// The SCIM id matched.
    pub matched: String,
    /// The other SCIM ids.
    pub others: Vec<String>,
}

/// Where a governed user's offboarding stands after this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OffboardState {
    /// Removed from the daemon's groups; the organization removal is due later.
    InGrace,
    /// This plan removes them from the organization (or withdraws their invite).
    Removing,
    /// They keep the organization membership (`on_deactivate = "remove_from_groups"`).
    KeptInOrg,
    /// Never removed from the organization: they hold an admin role.
    AdminKept,
    /// Never removed by the daemon: the IdP provisions the organization (SCIM).
    IdpManaged,
}

/// A governed user the IdP deactivated or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offboard {
    /// SCIM id.
    pub scim_id: String,
    /// The downstream member, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `deactivated` or `deleted`.
    pub reason: OffboardReason,
    /// Since when (daemon clock).
    pub since: chrono::DateTime<chrono::Utc>,
    /// When the organization removal is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where it stands.
    pub state: OffboardState,
}

/// A removal the valve holds instead of applying.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    /// The removal.
    pub action: Action,
    /// Why it is held.
    pub reason: String,
    /// First held by this plan (not held before).
    pub new: bool,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Valve {
    /// Memberships of directory users in the daemon's groups.
    pub managed_memberships: usize,
    /// Directory users linked to a downstream member.
    pub governed_members: usize,
    /// Memberships this plan removes that count (member removals, and the governed
    /// members of deleted groups; not the approved or already held ones).
    pub removals: usize,
    /// Organization removals (and withdrawn invites) this plan makes that count.
    pub org_removals: usize,
    /// Memberships removed by earlier passes within the window.
    pub window_removals: usize,
    /// Organization removals by earlier passes within the window.
    pub window_org_removals: usize,
    /// `(window_removals + removals) / managed_memberships`.
    pub ratio: f64,
    /// `(window_org_removals + org_removals) / governed_members`.
    pub org_ratio: f64,
    /// The configured limit on both ratios.
    pub max_removal_ratio: f64,
    /// The configured floor.
    pub removal_floor: usize,
    /// The window, in seconds.
    pub window_seconds: i64,
    /// Groups the plan deletes although they still have members (always held).
    pub non_empty_deletions: Vec<String>,
    /// The valve holds this plan's new removals.
    pub holding: bool,
    /// Removals held (new and earlier).
    pub held: usize,
    /// Removals an operator approved, applied by this plan.
    pub approved: usize,
    /// The valve would hold, but the plan was forced.
    pub forced: bool,
    /// Why it holds, in one sentence.
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
    /// Removals the valve holds (not in `actions`).
    pub held: Vec<Held>,
    /// Governed users being offboarded.
    pub offboarding: Vec<Offboard>,
    /// Directory users who claim one downstream member.
    pub collisions: Vec<Collision>,
    /// Ownership records to bring in line with what was read (no downstream write).
    #[serde(skip)]
    pub sync: Vec<Change>,
}

impl Plan {
    /// Whether the valve holds anything.
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
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
