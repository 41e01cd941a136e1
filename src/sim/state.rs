//! The simulator's model: one organization with its members, invites, groups,
//! memberships, custom roles, spend limits and plugin policies, and the product rules
//! (R1–R19) that the real service enforces. Pure and synchronous: no I/O, no clock
//! (callers pass `now`), no HTTP. The HTTP layer and the in-memory fake both call it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::page::{make_id, seq_of_id, splitmix64, CursorQuery, IdQuery};
use crate::cowork::error::CoworkError;
use crate::cowork::types::*;

/// The most groups an organization may have (R6).
pub const MAX_GROUPS: usize = 100;
/// The most ids a member replacement may carry (E9).
pub const MAX_SET_MEMBERS: usize = 10_000;
/// How long an invite stays pending.
pub const INVITE_TTL_DAYS: i64 = 21;

/// Features the product treats as generally available (covered by `all_ga`).
pub const GA_FEATURES: [&str; 5] = [
    "chat",
    "cowork",
    "claude_code",
    "web_search",
    "code_execution",
];

/// Capability names that are org-level skill settings, never per role (R10).
const ORG_LEVEL_SETTINGS: [&str; 8] = [
    "skills",
    "skills_enabled",
    "skill_sharing",
    "skill_sharing_enabled",
    "user_skill_creation",
    "user_skill_creation_enabled",
    "org_wide_skill_sharing",
    "org_wide_skill_sharing_enabled",
];

/// An API error as the simulator answers it (status, `error.type`, message, `code`,
/// `details`).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.type`.
    pub kind: &'static str,
    /// `error.message` (names fields, never values).
    pub message: String,
    /// `error.code`.
    pub code: Option<&'static str>,
    /// `error.details`.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, code: Option<&'static str>, message: &str) -> Self {
        Self {
            status,
            kind,
            message: message.to_owned(),
            code,
            details: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(code: Option<&'static str>, message: &str) -> Self {
        Self::new(400, "invalid_request_error", code, message)
    }

    /// 404 `not_found_error`.
    pub fn not_found(message: &str) -> Self {
        Self::new(404, "not_found_error", None, message)
    }

    /// 409 `conflict_error`.
    pub fn conflict(code: &'static str, message: &str) -> Self {
        Self::new(409, "conflict_error", Some(code), message)
    }

    /// 401 `authentication_error`.
    pub fn unauthenticated(message: &str) -> Self {
        Self::new(401, "authentication_error", None, message)
    }

    /// Adds `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn plan() -> Self {
        Self::invalid(
            Some("plan_not_supported"),
            "groups, custom roles, group spend limits and plugin overrides need the Enterprise plan",
        )
    }

    fn scim() -> Self {
        Self::invalid(
            Some("scim_managed_resource"),
            "this group is managed by SCIM and cannot be changed through the API",
        )
    }

    fn admin_role() -> Self {
        Self::invalid(
            Some("admin_role_not_assignable"),
            "admin roles cannot be assigned, changed or removed through the API",
        )
    }

    /// 404 for an extension endpoint when the extension tier is off.
    pub fn extension() -> Self {
        Self::not_found("this endpoint is not part of the Admin API")
    }

    /// The error envelope body.
    pub fn envelope(&self, request_id: &str) -> ErrorEnvelope {
        ErrorEnvelope {
            kind: "error".into(),
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message: self.message.clone(),
                code: self.code.map(str::to_owned),
                details: self.details.clone(),
            },
            request_id: Some(request_id.to_owned()),
        }
    }
}

impl From<ApiError> for CoworkError {
    fn from(e: ApiError) -> Self {
        let body = serde_json::to_vec(&e.envelope("req_in_memory")).unwrap_or_default();
        CoworkError::from_response(e.status, &body, None, None)
    }
}

/// Result of a model operation.
pub type ApiResult<T> = Result<T, ApiError>;

/// The organization record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgRecord {
    /// UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Plan.
    pub plan: Plan,
    /// Provisioning mode.
    pub provisioning_mode: ProvisioningMode,
    /// Settings.
    pub settings: OrgSettings,
}

/// A group membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRec {
    /// The member.
    pub user_id: String,
    /// When added.
    pub created_at: DateTime<Utc>,
    /// Order of addition (oldest first listing).
    pub seq: u64,
}

/// An ordered collection keyed by id, listed by creation sequence.
#[derive(Clone, Debug)]
pub struct Coll<T> {
    by_seq: BTreeMap<u64, T>,
    seq_of: HashMap<String, u64>,
}

impl<T> Default for Coll<T> {
    fn default() -> Self {
        Self {
            by_seq: BTreeMap::new(),
            seq_of: HashMap::new(),
        }
    }
}

impl<T> Coll<T> {
    fn insert(&mut self, id: String, seq: u64, value: T) {
        if let Some(old) = self.seq_of.insert(id, seq) {
            self.by_seq.remove(&old);
        }
        self.by_seq.insert(seq, value);
    }

    /// The item with this id.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.seq_of.get(id).and_then(|s| self.by_seq.get(s))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        let seq = *self.seq_of.get(id)?;
        self.by_seq.get_mut(&seq)
    }

    fn remove(&mut self, id: &str) -> Option<T> {
        let seq = self.seq_of.remove(id)?;
        self.by_seq.remove(&seq)
    }

    /// Whether the id is present.
    pub fn contains(&self, id: &str) -> bool {
        self.seq_of.contains_key(id)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// One cursor page of every item, oldest first.
    fn cursor_page(&self, q: &CursorQuery) -> ApiResult<CursorPage<T>>
    where
        T: Clone,
    {
        let start = q.start()?;
        let items = self
            .by_seq
            .range(start.range())
            .map(|(k, v)| (*k, v.clone()));
        Ok(q.finish(start, items))
    }

    /// Items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.by_seq.values()
    }

    /// Items by sequence.
    pub fn by_seq(&self) -> &BTreeMap<u64, T> {
        &self.by_seq
    }
}

/// Everything the simulator persists: the model without its indexes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version.
    pub format: u32,
    /// The organization.
    pub org: OrgRecord,
    /// Members, oldest first.
    pub users: Vec<User>,
    /// Invites, oldest first.
    pub invites: Vec<Invite>,
    /// Groups, oldest first.
    pub groups: Vec<RbacGroup>,
    /// Group id → memberships, oldest first.
    pub members: BTreeMap<String, Vec<MemberRec>>,
    /// Roles, oldest first.
    pub roles: Vec<RbacRole>,
    /// Spend-limit rows, oldest first.
    pub spend_limits: Vec<SpendLimit>,
    /// Plugin id → group overrides.
    pub plugin_overrides: BTreeMap<String, Vec<GroupOverride>>,
    /// Next creation sequence.
    pub next_seq: u64,
    /// Last change that affects members' effective access.
    #[serde(default)]
    pub access_changed_at: Option<DateTime<Utc>>,
}

/// A stored answer to an idempotent write.
#[derive(Clone, Debug)]
pub struct IdemRecord {
    /// Hash of method, path and body.
    pub fingerprint: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's body.
    pub body: Vec<u8>,
    /// When the record is forgotten (24 h after the first answer).
    pub expires_at: DateTime<Utc>,
}

/// The simulated organization and its rules.
#[derive(Clone, Debug)]
pub struct SimState {
    org: OrgRecord,
    users: Coll<User>,
    emails: HashMap<String, String>,
    invites: Coll<Invite>,
    groups: Coll<RbacGroup>,
    group_ext: HashMap<String, String>,
    members: HashMap<String, Coll<MemberRec>>,
    user_groups: HashMap<String, BTreeSet<String>>,
    roles: Coll<RbacRole>,
    role_ext: HashMap<String, String>,
    spend: Coll<SpendLimit>,
    spend_key: HashMap<(SpendScope, String), String>,
    plugin_overrides: BTreeMap<String, Vec<GroupOverride>>,
    idempotency: HashMap<String, IdemRecord>,
    next_seq: u64,
    access_changed_at: Option<DateTime<Utc>>,
}

/// Lowercases an email and drops a `+tag` in the local part, so lookups are
/// case-insensitive and tolerant of tag variants (as the real `email` filter is).
pub fn email_key(email: &str) -> String {
    let lower = email.trim().to_ascii_lowercase();
    match lower.split_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => lower,
    }
}

fn check_name(name: &str, what: &str) -> ApiResult<()> {
    let len = name.trim().chars().count();
    if len == 0 || name.chars().count() > 255 {
        return Err(ApiError::invalid(
            None,
            &format!("{what} must be 1 to 255 characters"),
        ));
    }
    Ok(())
}

fn check_version(current: Option<u64>, if_match: Option<u64>) -> ApiResult<()> {
    match if_match {
        Some(v) if Some(v) != current => Err(ApiError::conflict(
            "version_mismatch",
            "If-Match does not match the current version",
        )),
        _ => Ok(()),
    }
}

/// New members created through the simulator's own hook (`POST /_sim/users`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMember {
    /// Email.
    pub email: String,
    /// Display name (defaults to the email's local part).
    #[serde(default)]
    pub name: Option<String>,
    /// Org role (defaults to `user`; any role, admin roles included).
    #[serde(default)]
    pub role: Option<OrgRole>,
    /// Seat tier.
    #[serde(default)]
    pub seat_tier: Option<String>,
}

/// A group created through the simulator's own hook (`POST /_sim/groups`), e.g. one
/// the IdP provisioned over SCIM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSimGroup {
    /// Name.
    pub name: String,
    /// Source (defaults to `scim`).
    #[serde(default)]
    pub source_type: Option<SourceType>,
    /// Initial members.
    #[serde(default)]
    pub user_ids: Vec<String>,
}

impl SimState {
    /// The first-start organization (documented in the module docs of `sim`).
    pub fn seeded(now: DateTime<Utc>) -> Self {
        let tools = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let settings = OrgSettings {
            cowork_enabled: true,
            claude_code_enabled: true,
            chat_enabled: true,
            web_search_enabled: true,
            code_execution_enabled: true,
            skills_enabled: true,
            user_skill_creation_enabled: true,
            skill_sharing_enabled: true,
            org_wide_skill_sharing_enabled: false,
            connector_tools_default_always_allow: true,
            usage_credits_enabled: true,
            computer_use_available: false,
            billing_currency: "USD".into(),
            connectors: vec![
                OrgConnector {
                    id: "mcpsrv_github".into(),
                    name: "GitHub".into(),
                    enabled: true,
                    tools: tools(&["search_code", "create_issue", "create_pull_request"]),
                },
                OrgConnector {
                    id: "mcpsrv_jira".into(),
                    name: "Jira".into(),
                    enabled: true,
                    tools: tools(&["search_issues", "create_issue", "transition_issue"]),
                },
                OrgConnector {
                    id: "mcpsrv_slack".into(),
                    name: "Slack".into(),
                    enabled: true,
                    tools: tools(&["search_messages", "post_message"]),
                },
                OrgConnector {
                    id: "mcpsrv_drive".into(),
                    name: "Google Drive".into(),
                    enabled: true,
                    tools: tools(&["search_files", "read_file"]),
                },
            ],
            plugins: vec![
                OrgPlugin {
                    id: "finance-close".into(),
                    marketplace_id: "mkt_org_default".into(),
                    name: "Finance close".into(),
                    org_preference: Preference::Available,
                },
                OrgPlugin {
                    id: "brand-kit".into(),
                    marketplace_id: "mkt_org_default".into(),
                    name: "Brand kit".into(),
                    org_preference: Preference::Available,
                },
                OrgPlugin {
                    id: "security-review".into(),
                    marketplace_id: "mkt_org_default".into(),
                    name: "Security review".into(),
                    org_preference: Preference::Available,
                },
            ],
        };
        let org_bits = splitmix64(0x5EED_0001);
        let org_bits2 = splitmix64(0x5EED_0002);
        let org = OrgRecord {
            id: format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                org_bits >> 32,
                (org_bits >> 16) & 0xffff,
                org_bits & 0xfff,
                (org_bits2 >> 48) & 0xfff,
                org_bits2 & 0xffff_ffff_ffff
            ),
            name: "Example Corp (simulated)".into(),
            plan: Plan::Enterprise,
            provisioning_mode: ProvisioningMode::Manual,
            settings,
        };
        let mut state = Self::empty(org);
        let owner = NewMember {
            email: "owner@example.com".into(),
            name: Some("Primary Owner".into()),
            role: Some(OrgRole::PrimaryOwner),
            seat_tier: None,
        };
        // The seed is fixed and valid, so these cannot fail; errors are ignored.
        let _ = state.sim_add_member(&owner, now);
        let _ = state.sim_add_group(
            &NewSimGroup {
                name: "All Employees (SCIM)".into(),
                source_type: Some(SourceType::Scim),
                user_ids: Vec::new(),
            },
            now,
        );
        for (name, caps) in [
            ("Chat only", json!({"chat": true})),
            ("All GA features", json!({"all": "all_ga"})),
        ] {
            let spec = RoleSpec {
                name: name.into(),
                description: Some("Created in the admin console".into()),
                capabilities: serde_json::from_value(caps).unwrap_or_default(),
                ..RoleSpec::default()
            };
            let _ = state.create_role(&spec, now);
        }
        state.access_changed_at = None;
        state
    }

    fn empty(org: OrgRecord) -> Self {
        Self {
            org,
            users: Coll::default(),
            emails: HashMap::new(),
            invites: Coll::default(),
            groups: Coll::default(),
            group_ext: HashMap::new(),
            members: HashMap::new(),
            user_groups: HashMap::new(),
            roles: Coll::default(),
            role_ext: HashMap::new(),
            spend: Coll::default(),
            spend_key: HashMap::new(),
            plugin_overrides: BTreeMap::new(),
            idempotency: HashMap::new(),
            next_seq: 1,
            access_changed_at: None,
        }
    }

    /// Rebuilds the model (and its indexes) from a snapshot.
    pub fn from_snapshot(snap: Snapshot) -> Self {
        let mut s = Self::empty(snap.org);
        s.next_seq = snap.next_seq.max(1);
        for u in snap.users {
            let seq = s.restore_seq(&u.id);
            s.emails.insert(email_key(&u.email), u.id.clone());
            s.users.insert(u.id.clone(), seq, u);
        }
        for i in snap.invites {
            let seq = s.restore_seq(&i.id);
            s.invites.insert(i.id.clone(), seq, i);
        }
        for g in snap.groups {
            let seq = s.restore_seq(&g.id);
            if let Some(ext) = &g.external_id {
                s.group_ext.insert(ext.clone(), g.id.clone());
            }
            s.members.entry(g.id.clone()).or_default();
            s.groups.insert(g.id.clone(), seq, g);
        }
        for (gid, recs) in snap.members {
            if !s.groups.contains(&gid) {
                continue;
            }
            for m in recs {
                s.user_groups
                    .entry(m.user_id.clone())
                    .or_default()
                    .insert(gid.clone());
                s.next_seq = s.next_seq.max(m.seq + 1);
                s.members
                    .entry(gid.clone())
                    .or_default()
                    .insert(m.user_id.clone(), m.seq, m);
            }
        }
        for r in snap.roles {
            let seq = s.restore_seq(&r.id);
            if let Some(ext) = &r.external_id {
                s.role_ext.insert(ext.clone(), r.id.clone());
            }
            s.roles.insert(r.id.clone(), seq, r);
        }
        for l in snap.spend_limits {
            let seq = s.restore_seq(&l.id);
            s.spend_key
                .insert((l.scope.clone(), l.period.to_string()), l.id.clone());
            s.spend.insert(l.id.clone(), seq, l);
        }
        s.plugin_overrides = snap.plugin_overrides;
        s.access_changed_at = snap.access_changed_at;
        s
    }

    fn restore_seq(&mut self, id: &str) -> u64 {
        match seq_of_id(id) {
            Some(seq) => {
                self.next_seq = self.next_seq.max(seq + 1);
                seq
            }
            None => self.bump_seq(),
        }
    }

    /// The persistent part of the model.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            format: 1,
            org: self.org.clone(),
            users: self.users.iter().cloned().collect(),
            invites: self.invites.iter().cloned().collect(),
            groups: self.groups.iter().cloned().collect(),
            members: self
                .groups
                .iter()
                .map(|g| {
                    let recs = self
                        .members
                        .get(&g.id)
                        .map(|c| c.iter().cloned().collect())
                        .unwrap_or_default();
                    (g.id.clone(), recs)
                })
                .collect(),
            roles: self.roles.iter().cloned().collect(),
            spend_limits: self.spend.iter().cloned().collect(),
            plugin_overrides: self.plugin_overrides.clone(),
            next_seq: self.next_seq,
            access_changed_at: self.access_changed_at,
        }
    }

    fn bump_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn new_id(&mut self, prefix: &str) -> (String, u64) {
        let seq = self.bump_seq();
        (make_id(prefix, seq), seq)
    }

    fn touch_access(&mut self, now: DateTime<Utc>) {
        self.access_changed_at = Some(now);
    }

    fn require_enterprise(&self) -> ApiResult<()> {
        if self.org.plan == Plan::Team {
            return Err(ApiError::plan());
        }
        Ok(())
    }

    // ---------------------------------------------------------------- organization

    /// The organization record.
    pub fn org(&self) -> &OrgRecord {
        &self.org
    }

    /// The organization record, for the simulator's own hooks.
    pub fn org_mut(&mut self) -> &mut OrgRecord {
        &mut self.org
    }

    /// `GET /me`.
    pub fn me(&self, extended: bool) -> Organization {
        Organization {
            id: self.org.id.clone(),
            name: self.org.name.clone(),
            plan: Some(self.org.plan.clone()),
            provisioning_mode: Some(self.org.provisioning_mode.clone()),
            settings: Some(self.org.settings.clone()),
            capabilities: ApiCapabilities {
                extended_api: extended,
                plugin_policies: extended,
                group_spend_limits_writable: extended,
            },
        }
    }

    /// Applies a partial update of the organization (`PUT /_sim/org`): any of `name`,
    /// `plan`, `provisioning_mode`, and `settings` (merged key by key).
    pub fn patch_org(&mut self, patch: &Value, now: DateTime<Utc>) -> ApiResult<Organization> {
        let mut current = serde_json::to_value(&self.org)
            .map_err(|_| ApiError::invalid(None, "organization could not be encoded"))?;
        let Some(patch) = patch.as_object() else {
            return Err(ApiError::invalid(None, "body must be a JSON object"));
        };
        for (key, value) in patch {
            match key.as_str() {
                "name" | "plan" | "provisioning_mode" => current[key] = value.clone(),
                "settings" => {
                    let Some(fields) = value.as_object() else {
                        return Err(ApiError::invalid(None, "settings must be an object"));
                    };
                    for (k, v) in fields {
                        current["settings"][k] = v.clone();
                    }
                }
                _ => {
                    return Err(ApiError::invalid(
                        None,
                        &format!("unknown organization field {key}"),
                    ))
                }
            }
        }
        self.org = serde_json::from_value(current)
            .map_err(|_| ApiError::invalid(None, "organization fields have the wrong types"))?;
        self.touch_access(now);
        Ok(self.me(true))
    }

    // ---------------------------------------------------------------- members

    /// Members (for in-process inspection).
    pub fn users(&self) -> &Coll<User> {
        &self.users
    }

    /// `GET /users` (ID pagination, newest first; `email` and `roles` filters).
    pub fn list_users(
        &self,
        q: &IdQuery,
        email: Option<&str>,
        roles: &[OrgRole],
    ) -> ApiResult<IdPage<User>> {
        let email = email.map(email_key);
        q.page(
            self.users.by_seq(),
            |u| {
                email.as_ref().is_none_or(|e| email_key(&u.email) == *e)
                    && (roles.is_empty() || roles.contains(&u.role))
            },
            |u| &u.id,
        )
    }

    /// `GET /users/{id}`.
    pub fn get_user(&self, id: &str) -> ApiResult<User> {
        self.users
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no member with this id"))
    }

    /// The user with this email, if any.
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.emails
            .get(&email_key(email))
            .and_then(|id| self.users.get(id))
    }

    /// `POST /users/{id}` `{role}`.
    pub fn set_user_role(
        &mut self,
        id: &str,
        role: &OrgRole,
        now: DateTime<Utc>,
    ) -> ApiResult<User> {
        let current = self.get_user(id)?;
        if role.is_admin() || current.role.is_admin() {
            return Err(ApiError::admin_role());
        }
        if !role.is_assignable() {
            return Err(ApiError::invalid(
                None,
                "role must be \"user\" or \"managed\"",
            ));
        }
        if self.org.provisioning_mode.idp_manages_roles() {
            return Err(ApiError::invalid(
                Some("idp_manages_roles"),
                "roles are managed by the identity provider (advanced provisioning)",
            ));
        }
        let user = self
            .users
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("no member with this id"))?;
        if user.role != *role {
            user.role = role.clone();
            self.access_changed_at = Some(now);
        }
        self.get_user(id)
    }

    /// `DELETE /users/{id}`.
    pub fn delete_user(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let user = self.get_user(id)?;
        if user.role.is_admin() {
            return Err(ApiError::admin_role());
        }
        if self.org.provisioning_mode.scim_manages_membership() {
            return Err(ApiError::invalid(
                Some("scim_managed_resource"),
                "membership is managed by SCIM",
            ));
        }
        self.users.remove(id);
        self.emails.remove(&email_key(&user.email));
        for gid in self.user_groups.remove(id).unwrap_or_default() {
            if let Some(members) = self.members.get_mut(&gid) {
                members.remove(id);
            }
        }
        let scope = SpendScope::User {
            user_id: id.to_owned(),
        };
        let doomed: Vec<String> = self
            .spend
            .iter()
            .filter(|l| l.scope == scope)
            .map(|l| l.id.clone())
            .collect();
        for sid in doomed {
            self.remove_spend(&sid);
        }
        self.touch_access(now);
        Ok(Deleted {
            kind: "user_deleted".into(),
            id: id.to_owned(),
        })
    }

    /// `POST /_sim/users`: someone signed up (or was provisioned). A pending invite
    /// for the same email is accepted: its role and groups apply.
    pub fn sim_add_member(&mut self, new: &NewMember, now: DateTime<Utc>) -> ApiResult<User> {
        let email = new.email.trim();
        if !email.contains('@') {
            return Err(ApiError::invalid(None, "email must be an email address"));
        }
        if self.user_by_email(email).is_some() {
            return Err(ApiError::conflict(
                "member_exists",
                "a member with this email already exists",
            ));
        }
        let invite = self
            .invites
            .iter()
            .find(|i| i.status == InviteStatus::Pending && email_key(&i.email) == email_key(email))
            .cloned();
        let role = new
            .role
            .clone()
            .or_else(|| invite.as_ref().map(|i| i.role.clone()))
            .unwrap_or(OrgRole::User);
        let (id, seq) = self.new_id("user");
        let name = new
            .name
            .clone()
            .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
        let user = User {
            id: id.clone(),
            email: email.to_owned(),
            name,
            role,
            added_at: now,
            seat_tier: new.seat_tier.clone(),
        };
        self.emails.insert(email_key(email), id.clone());
        self.users.insert(id.clone(), seq, user.clone());
        if let Some(invite) = invite {
            if let Some(i) = self.invites.get_mut(&invite.id) {
                i.status = InviteStatus::Accepted;
            }
            for gid in &invite.rbac_group_ids {
                if self.groups.contains(gid) {
                    self.insert_member(gid, &id, now);
                }
            }
        }
        self.touch_access(now);
        Ok(user)
    }

    /// Adds several members at once, all or none: every email is checked (format,
    /// not a member yet, not repeated in the batch) before any is added.
    pub fn sim_add_members(
        &mut self,
        news: &[NewMember],
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<User>> {
        let mut batch = BTreeSet::new();
        for (i, new) in news.iter().enumerate() {
            let key = email_key(&new.email);
            if !new.email.contains('@') {
                return Err(ApiError::invalid(
                    None,
                    &format!("[{i}].email must be an email address"),
                ));
            }
            if self.emails.contains_key(&key) || !batch.insert(key) {
                return Err(ApiError::conflict(
                    "member_exists",
                    &format!("[{i}].email belongs to an existing or earlier member"),
                ));
            }
        }
        news.iter()
            .map(|new| self.sim_add_member(new, now))
            .collect()
    }

    // ---------------------------------------------------------------- invites

    /// `GET /invites` (ID pagination, newest first).
    pub fn list_invites(&self, q: &IdQuery, now: DateTime<Utc>) -> ApiResult<IdPage<Invite>> {
        let mut page = q.page(self.invites.by_seq(), |_| true, |i| &i.id)?;
        for i in &mut page.data {
            Self::age_invite(i, now);
        }
        Ok(page)
    }

    fn age_invite(invite: &mut Invite, now: DateTime<Utc>) {
        if invite.status == InviteStatus::Pending && invite.expires_at <= now {
            invite.status = InviteStatus::Expired;
        }
    }

    /// `GET /invites/{id}`.
    pub fn get_invite(&self, id: &str, now: DateTime<Utc>) -> ApiResult<Invite> {
        let mut invite = self
            .invites
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no invite with this id"))?;
        Self::age_invite(&mut invite, now);
        Ok(invite)
    }

    /// `POST /invites`. With `accept`, the invitee joins at once.
    pub fn create_invite(
        &mut self,
        req: &InviteRequest,
        accept: bool,
        now: DateTime<Utc>,
    ) -> ApiResult<Invite> {
        if !self.org.provisioning_mode.allows_invites() {
            return Err(ApiError::invalid(
                Some("provisioning_mode"),
                "invites are not available when members are provisioned by JIT or SCIM",
            ));
        }
        if req.role.is_admin() {
            return Err(ApiError::admin_role());
        }
        if !req.role.is_assignable() {
            return Err(ApiError::invalid(
                None,
                "role must be \"user\" or \"managed\"",
            ));
        }
        let email = req.email.trim();
        if !email.contains('@') || email.len() > 320 {
            return Err(ApiError::invalid(None, "email must be an email address"));
        }
        if self.user_by_email(email).is_some() {
            return Err(ApiError::invalid(
                Some("member_exists"),
                "a member with this email already exists",
            ));
        }
        let pending = self.invites.iter().any(|i| {
            i.status == InviteStatus::Pending
                && i.expires_at > now
                && email_key(&i.email) == email_key(email)
        });
        if pending {
            return Err(ApiError::invalid(
                Some("invite_exists"),
                "a pending invite for this email already exists",
            ));
        }
        if !req.rbac_group_ids.is_empty() {
            self.require_enterprise()?;
        }
        for gid in &req.rbac_group_ids {
            let group = self
                .groups
                .get(gid)
                .ok_or_else(|| ApiError::not_found("no group with this id"))?;
            if group.is_scim() {
                return Err(ApiError::scim());
            }
        }
        let (id, seq) = self.new_id("invite");
        let invite = Invite {
            id: id.clone(),
            email: email.to_owned(),
            role: req.role.clone(),
            status: InviteStatus::Pending,
            invited_at: now,
            expires_at: now + Duration::days(INVITE_TTL_DAYS),
            rbac_group_ids: req.rbac_group_ids.clone(),
        };
        self.invites.insert(id.clone(), seq, invite);
        if accept {
            let member = NewMember {
                email: email.to_owned(),
                name: None,
                role: None,
                seat_tier: None,
            };
            self.sim_add_member(&member, now)?;
        }
        self.get_invite(&id, now)
    }

    /// `DELETE /invites/{id}` (pending invites only).
    pub fn delete_invite(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let invite = self.get_invite(id, now)?;
        if invite.status != InviteStatus::Pending {
            return Err(ApiError::invalid(
                None,
                "only a pending invite can be withdrawn",
            ));
        }
        self.invites.remove(id);
        Ok(Deleted {
            kind: "invite_deleted".into(),
            id: id.to_owned(),
        })
    }

    // ---------------------------------------------------------------- groups

    /// Groups (for in-process inspection).
    pub fn groups(&self) -> &Coll<RbacGroup> {
        &self.groups
    }

    /// `GET /rbac_groups` (cursor pagination, oldest first).
    pub fn list_groups(&self, q: &CursorQuery) -> ApiResult<CursorPage<RbacGroup>> {
        self.require_enterprise()?;
        self.groups.cursor_page(q)
    }

    /// `GET /rbac_groups/{id}`.
    pub fn get_group(&self, id: &str) -> ApiResult<RbacGroup> {
        self.require_enterprise()?;
        self.groups
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no group with this id"))
    }

    fn writable_group(&self, id: &str) -> ApiResult<RbacGroup> {
        let group = self.get_group(id)?;
        if group.is_scim() {
            return Err(ApiError::scim());
        }
        Ok(group)
    }

    /// `POST /rbac_groups`.
    pub fn create_group(&mut self, new: &NewGroup, now: DateTime<Utc>) -> ApiResult<RbacGroup> {
        self.require_enterprise()?;
        check_name(&new.name, "name")?;
        if let Some(ext) = &new.external_id {
            if ext.is_empty() || ext.len() > 255 {
                return Err(ApiError::invalid(
                    None,
                    "external_id must be 1 to 255 characters",
                ));
            }
            if let Some(existing) = self.group_ext.get(ext) {
                return Err(ApiError::conflict(
                    "external_id_in_use",
                    "a group with this external_id already exists",
                )
                .with_details(json!({ "existing_id": existing })));
            }
        }
        if self.groups.len() >= MAX_GROUPS {
            return Err(ApiError::invalid(
                Some("group_limit_exceeded"),
                "an organization can have at most 100 groups",
            ));
        }
        let (id, seq) = self.new_id("rbac_group");
        let group = RbacGroup {
            id: id.clone(),
            name: new.name.clone(),
            source_type: SourceType::Direct,
            roles: Some(Vec::new()),
            created_at: now,
            updated_at: now,
            description: new.description.clone(),
            external_id: new.external_id.clone(),
            managed_by: new.managed_by.clone(),
            version: Some(1),
        };
        if let Some(ext) = &new.external_id {
            self.group_ext.insert(ext.clone(), id.clone());
        }
        self.members.insert(id.clone(), Coll::default());
        self.groups.insert(id, seq, group.clone());
        Ok(group)
    }

    /// `POST /_sim/groups`: a group made outside the API (by default a SCIM group).
    pub fn sim_add_group(&mut self, new: &NewSimGroup, now: DateTime<Utc>) -> ApiResult<RbacGroup> {
        check_name(&new.name, "name")?;
        if self.groups.len() >= MAX_GROUPS {
            return Err(ApiError::invalid(
                Some("group_limit_exceeded"),
                "an organization can have at most 100 groups",
            ));
        }
        for uid in &new.user_ids {
            if !self.users.contains(uid) {
                return Err(ApiError::not_found("no member with this id"));
            }
        }
        let (id, seq) = self.new_id("rbac_group");
        let group = RbacGroup {
            id: id.clone(),
            name: new.name.clone(),
            source_type: new.source_type.clone().unwrap_or(SourceType::Scim),
            roles: Some(Vec::new()),
            created_at: now,
            updated_at: now,
            description: None,
            external_id: None,
            managed_by: None,
            version: Some(1),
        };
        self.members.insert(id.clone(), Coll::default());
        self.groups.insert(id.clone(), seq, group.clone());
        for uid in &new.user_ids {
            self.insert_member(&id, uid, now);
        }
        Ok(group)
    }

    /// `POST /rbac_groups/{id}` (`name`, tier B `description`; optional `If-Match`).
    pub fn update_group(
        &mut self,
        id: &str,
        update: &GroupUpdate,
        if_match: Option<u64>,
        now: DateTime<Utc>,
    ) -> ApiResult<RbacGroup> {
        let group = self.writable_group(id)?;
        check_version(group.version, if_match)?;
        if let Some(name) = &update.name {
            check_name(name, "name")?;
        }
        let g = self
            .groups
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found("no group with this id"))?;
        let mut changed = false;
        if let Some(name) = &update.name {
            changed |= g.name != *name;
            g.name = name.clone();
        }
        if let Some(description) = &update.description {
            changed |= g.description.as_ref() != Some(description);
            g.description = Some(description.clone());
        }
        if changed {
            g.updated_at = now;
            g.version = Some(g.version.unwrap_or(0) + 1);
        }
        Ok(g.clone())
    }

    /// `DELETE /rbac_groups/{id}`: members lose its roles, spend limit and plugin
    /// overrides.
    pub fn delete_group(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let group = self.writable_group(id)?;
        self.groups.remove(id);
        if let Some(ext) = &group.external_id {
            self.group_ext.remove(ext);
        }
        if let Some(members) = self.members.remove(id) {
            for m in members.iter() {
                if let Some(set) = self.user_groups.get_mut(&m.user_id) {
                    set.remove(id);
                }
            }
        }
        let scope = SpendScope::RbacGroup {
            rbac_group_id: id.to_owned(),
        };
        let doomed: Vec<String> = self
            .spend
            .iter()
            .filter(|l| l.scope == scope)
            .map(|l| l.id.clone())
            .collect();
        for sid in doomed {
            self.remove_spend(&sid);
        }
        for overrides in self.plugin_overrides.values_mut() {
            overrides.retain(|o| o.rbac_group_id != id);
        }
        self.touch_access(now);
        Ok(Deleted {
            kind: "rbac_group_deleted".into(),
            id: id.to_owned(),
        })
    }

    /// The group ids of a member.
    pub fn groups_of(&self, user_id: &str) -> Vec<String> {
        self.user_groups
            .get(user_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The member ids of a group, oldest first.
    pub fn member_ids(&self, group_id: &str) -> Vec<String> {
        self.members
            .get(group_id)
            .map(|c| c.iter().map(|m| m.user_id.clone()).collect())
            .unwrap_or_default()
    }

    /// `GET /rbac_groups/{id}/members` (cursor pagination, oldest first).
    pub fn list_members(
        &self,
        group_id: &str,
        q: &CursorQuery,
    ) -> ApiResult<CursorPage<RbacGroupMember>> {
        self.get_group(group_id)?;
        let start = q.start()?;
        let Some(members) = self.members.get(group_id) else {
            return Ok(q.finish(start, std::iter::empty()));
        };
        let items = members.by_seq().range(start.range()).map(|(k, m)| {
            let email = self
                .users
                .get(&m.user_id)
                .map(|u| u.email.clone())
                .unwrap_or_default();
            (
                *k,
                RbacGroupMember {
                    group_id: group_id.to_owned(),
                    user_id: m.user_id.clone(),
                    email,
                    created_at: m.created_at,
                },
            )
        });
        Ok(q.finish(start, items))
    }

    fn insert_member(&mut self, group_id: &str, user_id: &str, now: DateTime<Utc>) -> MemberRec {
        let seq = self.bump_seq();
        let rec = MemberRec {
            user_id: user_id.to_owned(),
            created_at: now,
            seq,
        };
        self.members.entry(group_id.to_owned()).or_default().insert(
            user_id.to_owned(),
            seq,
            rec.clone(),
        );
        self.user_groups
            .entry(user_id.to_owned())
            .or_default()
            .insert(group_id.to_owned());
        self.access_changed_at = Some(now);
        rec
    }

    fn delete_member(&mut self, group_id: &str, user_id: &str, now: DateTime<Utc>) -> bool {
        let removed = self
            .members
            .get_mut(group_id)
            .and_then(|c| c.remove(user_id))
            .is_some();
        if removed {
            if let Some(set) = self.user_groups.get_mut(user_id) {
                set.remove(group_id);
            }
            self.access_changed_at = Some(now);
        }
        removed
    }

    fn is_member(&self, group_id: &str, user_id: &str) -> bool {
        self.members
            .get(group_id)
            .is_some_and(|c| c.contains(user_id))
    }

    /// `POST /rbac_groups/{id}/members` `{user_id}`: 400 if already a member.
    pub fn add_member(
        &mut self,
        group_id: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<RbacGroupMember> {
        self.writable_group(group_id)?;
        let user = self
            .users
            .get(user_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no member with this id in the organization"))?;
        if self.is_member(group_id, user_id) {
            return Err(ApiError::invalid(
                Some("already_member"),
                "the user is already a member of this group",
            ));
        }
        let rec = self.insert_member(group_id, user_id, now);
        Ok(RbacGroupMember {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
            email: user.email,
            created_at: rec.created_at,
        })
    }

    /// `DELETE /rbac_groups/{id}/members/{user_id}`: 404 if not a member.
    pub fn remove_member(
        &mut self,
        group_id: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<MemberDeleted> {
        self.writable_group(group_id)?;
        if !self.delete_member(group_id, user_id, now) {
            return Err(ApiError::not_found(
                "the user is not a member of this group",
            ));
        }
        Ok(MemberDeleted {
            group_id: group_id.to_owned(),
            user_id: user_id.to_owned(),
        })
    }

    /// Tier B `PUT /rbac_groups/{id}/members` `{user_ids}`: full replacement.
    pub fn set_members(
        &mut self,
        group_id: &str,
        user_ids: &[String],
        now: DateTime<Utc>,
    ) -> ApiResult<SetMembersResult> {
        self.writable_group(group_id)?;
        if user_ids.len() > MAX_SET_MEMBERS {
            return Err(ApiError::invalid(
                None,
                "user_ids may carry at most 10,000 ids",
            ));
        }
        let wanted: BTreeSet<&str> = user_ids.iter().map(String::as_str).collect();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|u| !self.users.contains(u))
            .take(20)
            .collect();
        if !missing.is_empty() {
            return Err(
                ApiError::not_found("some user_ids are not members of the organization")
                    .with_details(json!({ "user_ids": missing })),
            );
        }
        let current = self.member_ids(group_id);
        let mut result = SetMembersResult::default();
        for uid in &current {
            if wanted.contains(uid.as_str()) {
                result.unchanged += 1;
            } else {
                self.delete_member(group_id, uid, now);
                result.removed.push(uid.clone());
            }
        }
        let mut seen = BTreeSet::new();
        for uid in user_ids {
            if seen.insert(uid.as_str()) && !self.is_member(group_id, uid) {
                self.insert_member(group_id, uid, now);
                result.added.push(uid.clone());
            }
        }
        Ok(result)
    }

    /// Tier B `PUT /rbac_groups/{id}/roles` `{role_ids}`: replaces attached roles.
    pub fn set_group_roles(
        &mut self,
        group_id: &str,
        role_ids: &[String],
        now: DateTime<Utc>,
    ) -> ApiResult<RbacGroup> {
        let group = self.get_group(group_id)?;
        if group.is_scim() && !self.org.provisioning_mode.scim_manages_membership() {
            return Err(ApiError::invalid(
                Some("scim_group_not_supported"),
                "SCIM-synced groups cannot carry roles while provisioning is invite-only or JIT",
            ));
        }
        let mut roles: Vec<String> = Vec::new();
        for rid in role_ids {
            if !self.roles.contains(rid) {
                return Err(ApiError::not_found(
                    "no role with this id in this organization",
                ));
            }
            if !roles.contains(rid) {
                roles.push(rid.clone());
            }
        }
        let g = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| ApiError::not_found("no group with this id"))?;
        if g.roles.as_ref() != Some(&roles) {
            g.roles = Some(roles);
            g.updated_at = now;
            g.version = Some(g.version.unwrap_or(0) + 1);
            self.access_changed_at = Some(now);
        }
        self.get_group(group_id)
    }

    // ---------------------------------------------------------------- roles

    /// Roles (for in-process inspection).
    pub fn roles(&self) -> &Coll<RbacRole> {
        &self.roles
    }

    /// `GET /rbac_roles` (cursor pagination).
    pub fn list_roles(&self, q: &CursorQuery) -> ApiResult<CursorPage<RbacRole>> {
        self.require_enterprise()?;
        self.roles.cursor_page(q)
    }

    /// `GET /rbac_roles/{id}`.
    pub fn get_role(&self, id: &str) -> ApiResult<RbacRole> {
        self.require_enterprise()?;
        self.roles
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no role with this id in this organization"))
    }

    /// `GET /rbac_roles/{id}/permissions` (cursor pagination).
    pub fn list_permissions(
        &self,
        id: &str,
        q: &CursorQuery,
    ) -> ApiResult<CursorPage<RolePermission>> {
        let role = self.get_role(id)?;
        let start = q.start()?;
        let rows = self.permissions_of(&role);
        let from = start.after.map_or(0, |a| a.saturating_add(1));
        let items = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u64, r))
            .skip(usize::try_from(from).unwrap_or(usize::MAX));
        Ok(q.finish(start, items))
    }

    /// The documented permission rows a typed role definition maps to (§3.2).
    pub fn permissions_of(&self, role: &RbacRole) -> Vec<RolePermission> {
        let org = || PermissionResource::Organization {
            organization_id: self.org.id.clone(),
        };
        let row = |resource: PermissionResource, action: &str| RolePermission {
            resource,
            action: action.to_owned(),
        };
        let tool_action = |mode: ToolMode| match mode {
            ToolMode::AlwaysAllow => Some("always_allow"),
            ToolMode::NeedsApproval => Some("use"),
            ToolMode::Deny => None,
        };
        let mut rows = Vec::new();
        if let Some(caps) = &role.capabilities {
            match caps.all {
                Blanket::All => rows.push(row(org(), "capability_access_all")),
                Blanket::AllGa => rows.push(row(org(), "capability_access_all_ga")),
                Blanket::None => {}
            }
            for feature in caps.granted() {
                rows.push(row(org(), feature));
            }
        }
        match &role.connectors {
            Some(ConnectorPolicy::All { all_connectors }) => {
                if let Some(action) = tool_action(all_connectors.default_tool_mode) {
                    rows.push(row(PermissionResource::AllConnectors, action));
                }
            }
            Some(ConnectorPolicy::List(grants)) => {
                for g in grants.iter().filter(|g| g.access == ConnectorAccess::Allow) {
                    let connector = || PermissionResource::Connector {
                        connector_id: g.connector_id.clone(),
                    };
                    if g.tools.is_empty() {
                        if let Some(action) = tool_action(g.default_tool_mode) {
                            rows.push(row(connector(), action));
                        }
                    }
                    for t in &g.tools {
                        if let Some(action) = tool_action(t.mode) {
                            let resource = PermissionResource::ConnectorTool {
                                connector_id: g.connector_id.clone(),
                                tool_name: t.tool_name.clone(),
                            };
                            rows.push(row(resource, action));
                        }
                    }
                    for scope in &g.oauth_scopes {
                        let resource = PermissionResource::ConnectorScope {
                            connector_id: g.connector_id.clone(),
                            scope: scope.clone(),
                        };
                        rows.push(row(resource, "grant"));
                    }
                    match g.auth_method {
                        Some(AuthMethod::Interactive) => rows.push(row(connector(), "interactive")),
                        Some(AuthMethod::Managed) => rows.push(row(connector(), "managed")),
                        None => {}
                    }
                }
            }
            None => {}
        }
        if let Some(perms) = &role.admin_permissions {
            for (area, level) in perms {
                match level {
                    AdminLevel::View => rows.push(row(org(), &format!("permission_{area}_view"))),
                    AdminLevel::Manage => {
                        rows.push(row(org(), &format!("permission_{area}_manage")))
                    }
                    AdminLevel::None => {}
                }
            }
        }
        rows
    }

    /// Validates a role definition against the org (R8–R11).
    fn check_role(&self, spec: &RoleSpec) -> ApiResult<()> {
        check_name(&spec.name, "name")?;
        for feature in spec.capabilities.granted() {
            if ORG_LEVEL_SETTINGS.contains(&feature) {
                return Err(ApiError::invalid(
                    Some("org_level_setting"),
                    &format!(
                        "capabilities.{feature} is an organization-level setting, not per role"
                    ),
                ));
            }
            if feature == "computer_use" {
                return Err(ApiError::invalid(
                    Some("computer_use_not_available"),
                    "Computer Use is not available on Team or Enterprise plans",
                ));
            }
            if self.org.settings.feature_switch(feature) == Some(false) {
                return Err(ApiError::invalid(
                    Some("feature_disabled_at_org"),
                    &format!("capabilities.{feature} is turned off for the organization"),
                ));
            }
        }
        if let ConnectorPolicy::List(grants) = &spec.connectors {
            let mut seen = BTreeSet::new();
            for (i, g) in grants.iter().enumerate() {
                if self.org.settings.connector(&g.connector_id).is_none() {
                    return Err(ApiError::invalid(
                        Some("connector_not_in_org"),
                        &format!("connectors[{i}].connector_id is not added at organization level"),
                    ));
                }
                if !seen.insert(&g.connector_id) {
                    return Err(ApiError::invalid(
                        None,
                        &format!("connectors[{i}] repeats a connector"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn role_external_conflict(&self, spec: &RoleSpec, except: Option<&str>) -> ApiResult<()> {
        if let Some(ext) = &spec.external_id {
            if let Some(existing) = self.role_ext.get(ext) {
                if Some(existing.as_str()) != except {
                    return Err(ApiError::conflict(
                        "external_id_in_use",
                        "a role with this external_id already exists",
                    )
                    .with_details(json!({ "existing_id": existing })));
                }
            }
        }
        Ok(())
    }

    /// Tier B `POST /rbac_roles`.
    pub fn create_role(&mut self, spec: &RoleSpec, now: DateTime<Utc>) -> ApiResult<RbacRole> {
        self.require_enterprise()?;
        self.role_external_conflict(spec, None)?;
        self.check_role(spec)?;
        let (id, seq) = self.new_id("rbac_role");
        let role = RbacRole {
            id: id.clone(),
            name: spec.name.clone(),
            created_at: now,
            updated_at: now,
            description: spec.description.clone(),
            external_id: spec.external_id.clone(),
            version: Some(1),
            default_model: spec.default_model.clone(),
            capabilities: Some(spec.capabilities.clone()),
            connectors: Some(spec.connectors.clone()),
            admin_permissions: Some(spec.admin_permissions.clone()),
        };
        if let Some(ext) = &spec.external_id {
            self.role_ext.insert(ext.clone(), id.clone());
        }
        self.roles.insert(id, seq, role.clone());
        Ok(role)
    }

    /// Tier B `POST /rbac_roles/{id}`: replaces the definition.
    pub fn update_role(
        &mut self,
        id: &str,
        spec: &RoleSpec,
        if_match: Option<u64>,
        now: DateTime<Utc>,
    ) -> ApiResult<RbacRole> {
        let current = self.get_role(id)?;
        check_version(current.version, if_match)?;
        self.role_external_conflict(spec, Some(id))?;
        self.check_role(spec)?;
        let mut role = current.clone();
        role.name = spec.name.clone();
        role.description = spec.description.clone();
        role.external_id = spec.external_id.clone();
        role.default_model = spec.default_model.clone();
        role.capabilities = Some(spec.capabilities.clone());
        role.connectors = Some(spec.connectors.clone());
        role.admin_permissions = Some(spec.admin_permissions.clone());
        if role != current {
            role.updated_at = now;
            role.version = Some(current.version.unwrap_or(0) + 1);
            if let Some(old) = &current.external_id {
                self.role_ext.remove(old);
            }
            if let Some(ext) = &role.external_id {
                self.role_ext.insert(ext.clone(), id.to_owned());
            }
            if let Some(r) = self.roles.get_mut(id) {
                *r = role.clone();
            }
            self.touch_access(now);
        }
        Ok(role)
    }

    /// Tier B `DELETE /rbac_roles/{id}`: detaches it from every group.
    pub fn delete_role(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        let role = self.get_role(id)?;
        self.roles.remove(id);
        if let Some(ext) = &role.external_id {
            self.role_ext.remove(ext);
        }
        let ids: Vec<String> = self.groups.iter().map(|g| g.id.clone()).collect();
        for gid in ids {
            if let Some(g) = self.groups.get_mut(&gid) {
                if let Some(roles) = &mut g.roles {
                    if roles.iter().any(|r| r == id) {
                        roles.retain(|r| r != id);
                        g.updated_at = now;
                        g.version = Some(g.version.unwrap_or(0) + 1);
                    }
                }
            }
        }
        self.touch_access(now);
        Ok(Deleted {
            kind: "rbac_role_deleted".into(),
            id: id.to_owned(),
        })
    }

    // ---------------------------------------------------------------- spend limits

    /// Spend-limit rows (for in-process inspection).
    pub fn spend_limits(&self) -> &Coll<SpendLimit> {
        &self.spend
    }

    fn require_spend_api(&self) -> ApiResult<()> {
        self.require_enterprise()?;
        if !self.org.settings.usage_credits_enabled {
            return Err(ApiError::invalid(
                Some("usage_credits_disabled"),
                "spend limits need usage credits to be turned on",
            ));
        }
        Ok(())
    }

    /// `GET /spend_limits/{id}`.
    pub fn get_spend_limit(&self, id: &str) -> ApiResult<SpendLimit> {
        self.require_spend_api()?;
        self.spend
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no spend limit with this id"))
    }

    /// Tier B `GET /spend_limits?scope_type=&rbac_group_id=` (cursor pagination).
    pub fn list_spend_limits(
        &self,
        q: &CursorQuery,
        scope_type: Option<&str>,
        rbac_group_id: Option<&str>,
    ) -> ApiResult<CursorPage<SpendLimit>> {
        self.require_spend_api()?;
        let start = q.start()?;
        let items = self
            .spend
            .by_seq()
            .range(start.range())
            .filter(|(_, l)| scope_type.is_none_or(|t| l.scope.type_name() == t))
            .filter(|(_, l)| {
                rbac_group_id.is_none_or(|g| {
                    matches!(&l.scope, SpendScope::RbacGroup { rbac_group_id } if rbac_group_id == g)
                })
            })
            .map(|(k, l)| (*k, l.clone()));
        Ok(q.finish(start, items))
    }

    /// `POST /spend_limits`: upsert on (scope, period). Tier A writes only
    /// `scope.type: "user"`; with `extended` the group, seat-tier and organization
    /// scopes are writable too.
    pub fn upsert_spend_limit(
        &mut self,
        req: &SpendLimitRequest,
        extended: bool,
        now: DateTime<Utc>,
    ) -> ApiResult<SpendLimit> {
        self.require_spend_api()?;
        let period = req.period.clone().unwrap_or(Period::Monthly);
        if period != Period::Monthly {
            return Err(ApiError::invalid(
                Some("unsupported_period"),
                "monthly is the only supported period",
            ));
        }
        let currency = self.org.settings.billing_currency.clone();
        if let Some(c) = &req.currency {
            if !c.eq_ignore_ascii_case(&currency) {
                return Err(ApiError::invalid(
                    Some("currency_mismatch"),
                    "currency must be the organization's billing currency",
                ));
            }
        }
        if let Some(a) = &req.amount {
            if a.is_empty() || a.len() > 18 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid(
                    Some("invalid_amount"),
                    "amount must be a non-negative integer string in minor units",
                ));
            }
        }
        match &req.scope {
            SpendScope::User { user_id } => {
                if !self.users.contains(user_id) {
                    return Err(ApiError::not_found("no member with this id"));
                }
            }
            SpendScope::RbacGroup { rbac_group_id } if extended => {
                self.get_group(rbac_group_id)?;
            }
            SpendScope::SeatTier { .. } | SpendScope::Organization if extended => {}
            _ => {
                return Err(ApiError::invalid(
                    Some("scope_not_writable"),
                    "only scope.type \"user\" can be set through the API",
                ))
            }
        }
        let key = (req.scope.clone(), period.to_string());
        let limit = match self.spend_key.get(&key).cloned() {
            Some(existing) => {
                let l = self
                    .spend
                    .get_mut(&existing)
                    .ok_or_else(|| ApiError::not_found("no spend limit with this id"))?;
                if l.amount != req.amount {
                    l.amount = req.amount.clone();
                    l.updated_at = now;
                }
                l.clone()
            }
            None => {
                let (id, seq) = self.new_id("spl");
                let l = SpendLimit {
                    id: id.clone(),
                    scope: req.scope.clone(),
                    period,
                    amount: req.amount.clone(),
                    currency,
                    created_at: now,
                    updated_at: now,
                };
                self.spend_key.insert(key, id.clone());
                self.spend.insert(id, seq, l.clone());
                l
            }
        };
        self.touch_access(now);
        Ok(limit)
    }

    fn remove_spend(&mut self, id: &str) -> Option<SpendLimit> {
        let l = self.spend.remove(id)?;
        self.spend_key
            .remove(&(l.scope.clone(), l.period.to_string()));
        Some(l)
    }

    /// `DELETE /spend_limits/{id}`.
    pub fn delete_spend_limit(&mut self, id: &str, now: DateTime<Utc>) -> ApiResult<Deleted> {
        self.require_spend_api()?;
        self.remove_spend(id)
            .ok_or_else(|| ApiError::not_found("no spend limit with this id"))?;
        self.touch_access(now);
        Ok(Deleted {
            kind: "spend_limit_deleted".into(),
            id: id.to_owned(),
        })
    }

    fn limit_for(&self, scope: SpendScope) -> Option<&SpendLimit> {
        self.spend_key
            .get(&(scope, Period::Monthly.to_string()))
            .and_then(|id| self.spend.get(id))
    }

    /// The monthly limit that applies to a member (§3.5 step 5), and whether several
    /// of the member's groups disagreed.
    pub fn resolve_spend(&self, user: &User) -> (Option<&SpendLimit>, bool) {
        if let Some(l) = self.limit_for(SpendScope::User {
            user_id: user.id.clone(),
        }) {
            return (Some(l), false);
        }
        let group_limits: Vec<&SpendLimit> = self
            .user_groups
            .get(&user.id)
            .into_iter()
            .flatten()
            .filter_map(|g| {
                self.limit_for(SpendScope::RbacGroup {
                    rbac_group_id: g.clone(),
                })
            })
            .collect();
        if !group_limits.is_empty() {
            let distinct: BTreeSet<Option<u64>> =
                group_limits.iter().map(|l| l.amount_minor()).collect();
            // Most permissive: no limit beats any amount, a larger amount a smaller.
            let best = group_limits
                .iter()
                .copied()
                .max_by_key(|l| match l.amount_minor() {
                    None => u128::MAX,
                    Some(a) => u128::from(a),
                });
            return (best, distinct.len() > 1);
        }
        if let Some(tier) = &user.seat_tier {
            if let Some(l) = self.limit_for(SpendScope::SeatTier {
                seat_tier: tier.clone(),
            }) {
                return (Some(l), false);
            }
        }
        (self.limit_for(SpendScope::Organization), false)
    }

    /// `GET /spend_limits/effective` (cursor pagination by member; `period[]` and
    /// `user_ids[]` filters). Members without a limit have no row.
    pub fn list_effective_spend(
        &self,
        q: &CursorQuery,
        periods: &[Period],
        user_ids: &[String],
    ) -> ApiResult<CursorPage<SpendSummary>> {
        self.require_spend_api()?;
        if user_ids.len() > 100 {
            return Err(ApiError::invalid(
                None,
                "user_ids may carry at most 100 ids",
            ));
        }
        let start = q.start()?;
        let wants_monthly = periods.is_empty() || periods.contains(&Period::Monthly);
        let items = self
            .users
            .by_seq()
            .range(start.range())
            .filter(|(_, u)| user_ids.is_empty() || user_ids.contains(&u.id))
            .filter_map(|(k, u)| {
                if !wants_monthly {
                    return None;
                }
                let (limit, _) = self.resolve_spend(u);
                let limit = limit?;
                Some((
                    *k,
                    SpendSummary {
                        actor: SpendActor {
                            user_id: u.id.clone(),
                            name: Some(u.name.clone()),
                            email_address: Some(u.email.clone()),
                            deleted: false,
                        },
                        amount: limit.amount.clone(),
                        currency: limit.currency.clone(),
                        period: Period::Monthly,
                        period_to_date_spend: "0".into(),
                        scope: SpendScope::User {
                            user_id: u.id.clone(),
                        },
                        source: limit.scope.clone(),
                        spend_limit_id: Some(limit.id.clone()),
                    },
                ))
            });
        let mut page = q.finish(start, items);
        // The effective endpoint documents only `data` and `next_page`.
        page.has_more = None;
        Ok(page)
    }

    // ---------------------------------------------------------------- plugins

    fn plugin_policy(&self, plugin: &OrgPlugin) -> PluginPolicy {
        PluginPolicy {
            plugin_id: plugin.id.clone(),
            marketplace_id: plugin.marketplace_id.clone(),
            org_preference: plugin.org_preference,
            group_overrides: self
                .plugin_overrides
                .get(&plugin.id)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Tier B `GET /plugin_policies` (cursor pagination).
    pub fn list_plugin_policies(&self, q: &CursorQuery) -> ApiResult<CursorPage<PluginPolicy>> {
        let start = q.start()?;
        let from = start.after.map_or(0, |a| a.saturating_add(1));
        let items = self
            .org
            .settings
            .plugins
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64, self.plugin_policy(p)))
            .skip(usize::try_from(from).unwrap_or(usize::MAX));
        Ok(q.finish(start, items))
    }

    /// Tier B `PUT /plugin_policies/{plugin_id}`: replaces the overrides.
    pub fn put_plugin_policy(
        &mut self,
        plugin_id: &str,
        update: &PluginPolicyUpdate,
        now: DateTime<Utc>,
    ) -> ApiResult<PluginPolicy> {
        let settings = &self.org.settings;
        if !(settings.cowork_enabled && settings.skills_enabled) {
            return Err(ApiError::invalid(
                Some("feature_disabled_at_org"),
                "the plugin marketplace needs Cowork and Skills turned on",
            ));
        }
        let index = settings
            .plugins
            .iter()
            .position(|p| p.id == plugin_id)
            .ok_or_else(|| ApiError::not_found("no plugin with this id in the marketplace"))?;
        if !update.group_overrides.is_empty() {
            self.require_enterprise()?;
        }
        let mut seen = BTreeSet::new();
        for (i, o) in update.group_overrides.iter().enumerate() {
            if !self.groups.contains(&o.rbac_group_id) {
                return Err(ApiError::not_found("no group with this id"));
            }
            if !seen.insert(&o.rbac_group_id) {
                return Err(ApiError::invalid(
                    None,
                    &format!("group_overrides[{i}] repeats a group"),
                ));
            }
        }
        if let Some(pref) = update.org_preference {
            if let Some(p) = self.org.settings.plugins.get_mut(index) {
                p.org_preference = pref;
            }
        }
        if update.group_overrides.is_empty() {
            self.plugin_overrides.remove(plugin_id);
        } else {
            self.plugin_overrides
                .insert(plugin_id.to_owned(), update.group_overrides.clone());
        }
        self.touch_access(now);
        let plugin = self
            .org
            .settings
            .plugins
            .get(index)
            .cloned()
            .ok_or_else(|| ApiError::not_found("no plugin with this id in the marketplace"))?;
        Ok(self.plugin_policy(&plugin))
    }

    /// Overrides of a plugin.
    pub fn plugin_overrides(&self, plugin_id: &str) -> &[GroupOverride] {
        self.plugin_overrides
            .get(plugin_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// When the last access-relevant change happened.
    pub fn access_changed_at(&self) -> Option<DateTime<Utc>> {
        self.access_changed_at
    }

    // ---------------------------------------------------------------- idempotency

    /// The stored answer for an idempotency key, if still fresh.
    pub fn idempotent_answer(&self, key: &str, now: DateTime<Utc>) -> Option<&IdemRecord> {
        self.idempotency.get(key).filter(|r| r.expires_at > now)
    }

    /// Stores an answer for 24 hours (expired records are swept now and then).
    pub fn remember_answer(&mut self, key: String, record: IdemRecord, now: DateTime<Utc>) {
        if self.idempotency.len() % 4096 == 4095 {
            self.idempotency.retain(|_, r| r.expires_at > now);
        }
        self.idempotency.insert(key, record);
    }

    /// Forgets every stored answer.
    pub fn clear_idempotency(&mut self) {
        self.idempotency.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap()
    }

    fn member(state: &mut SimState, email: &str) -> String {
        let new = NewMember {
            email: email.into(),
            name: None,
            role: None,
            seat_tier: None,
        };
        state.sim_add_member(&new, t0()).unwrap().id
    }

    fn group(state: &mut SimState, name: &str, ext: Option<&str>) -> ApiResult<RbacGroup> {
        let new = NewGroup {
            name: name.into(),
            external_id: ext.map(str::to_owned),
            ..NewGroup::default()
        };
        state.create_group(&new, t0())
    }

    fn scim_group(state: &SimState) -> String {
        state
            .groups()
            .iter()
            .find(|g| g.is_scim())
            .unwrap()
            .id
            .clone()
    }

    #[test]
    fn seed_has_an_enterprise_org_an_owner_a_scim_group_and_two_roles() {
        let s = SimState::seeded(t0());
        assert_eq!(s.org().plan, Plan::Enterprise);
        assert_eq!(s.org().settings.billing_currency, "USD");
        assert_eq!(s.users().len(), 1);
        assert_eq!(s.users().iter().next().unwrap().role, OrgRole::PrimaryOwner);
        assert_eq!(s.groups().len(), 1);
        assert_eq!(s.roles().len(), 2);
        assert!(s.users().iter().next().unwrap().id.starts_with("user_01"));
    }

    #[test]
    fn scim_groups_refuse_every_write() {
        let mut s = SimState::seeded(t0());
        let g = scim_group(&s);
        let u = member(&mut s, "a@example.com");
        let rename = GroupUpdate {
            name: Some("x".into()),
            description: None,
        };
        for err in [
            s.update_group(&g, &rename, None, t0()).unwrap_err(),
            s.delete_group(&g, t0()).unwrap_err(),
            s.add_member(&g, &u, t0()).unwrap_err(),
            s.remove_member(&g, &u, t0()).unwrap_err(),
            s.set_members(&g, std::slice::from_ref(&u), t0())
                .unwrap_err(),
        ] {
            assert_eq!(err.code, Some("scim_managed_resource"));
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn admin_roles_cannot_be_assigned_changed_or_removed() {
        let mut s = SimState::seeded(t0());
        let owner = s.users().iter().next().unwrap().id.clone();
        let u = member(&mut s, "a@example.com");
        let e = s.set_user_role(&u, &OrgRole::Owner, t0()).unwrap_err();
        assert_eq!(e.code, Some("admin_role_not_assignable"));
        let e = s
            .set_user_role(&owner, &OrgRole::Managed, t0())
            .unwrap_err();
        assert_eq!(e.code, Some("admin_role_not_assignable"));
        let e = s.delete_user(&owner, t0()).unwrap_err();
        assert_eq!(e.code, Some("admin_role_not_assignable"));
        assert_eq!(
            s.set_user_role(&u, &OrgRole::Managed, t0()).unwrap().role,
            OrgRole::Managed
        );
    }

    #[test]
    fn membership_add_twice_is_400_and_remove_of_a_non_member_is_404() {
        let mut s = SimState::seeded(t0());
        let g = group(&mut s, "Eng", None).unwrap().id;
        let u = member(&mut s, "a@example.com");
        s.add_member(&g, &u, t0()).unwrap();
        let e = s.add_member(&g, &u, t0()).unwrap_err();
        assert_eq!((e.status, e.code), (400, Some("already_member")));
        s.remove_member(&g, &u, t0()).unwrap();
        assert_eq!(s.remove_member(&g, &u, t0()).unwrap_err().status, 404);
        assert_eq!(
            s.add_member(&g, "user_01nobody", t0()).unwrap_err().status,
            404
        );
    }

    #[test]
    fn external_id_is_unique_and_the_conflict_names_the_existing_group() {
        let mut s = SimState::seeded(t0());
        let first = group(&mut s, "Eng", Some("okta:1")).unwrap();
        let e = group(&mut s, "Eng again", Some("okta:1")).unwrap_err();
        assert_eq!(e.status, 409);
        assert_eq!(e.kind, "conflict_error");
        assert_eq!(e.details.unwrap()["existing_id"], first.id.as_str());
    }

    #[test]
    fn the_hundred_and_first_group_is_refused() {
        let mut s = SimState::seeded(t0());
        for i in 1..MAX_GROUPS {
            group(&mut s, &format!("g{i}"), None).unwrap();
        }
        let e = group(&mut s, "one too many", None).unwrap_err();
        assert_eq!(e.code, Some("group_limit_exceeded"));
    }

    #[test]
    fn team_plan_refuses_groups_roles_group_spend_and_plugin_overrides() {
        let mut s = SimState::seeded(t0());
        let g = group(&mut s, "Eng", None).unwrap().id;
        s.patch_org(&json!({"plan": "team"}), t0()).unwrap();
        assert_eq!(
            group(&mut s, "x", None).unwrap_err().code,
            Some("plan_not_supported")
        );
        let spec = RoleSpec {
            name: "r".into(),
            ..RoleSpec::default()
        };
        assert_eq!(
            s.create_role(&spec, t0()).unwrap_err().code,
            Some("plan_not_supported")
        );
        let req = SpendLimitRequest {
            scope: SpendScope::RbacGroup {
                rbac_group_id: g.clone(),
            },
            period: None,
            amount: Some("100".into()),
            currency: None,
        };
        assert_eq!(
            s.upsert_spend_limit(&req, true, t0()).unwrap_err().code,
            Some("plan_not_supported")
        );
        let update = PluginPolicyUpdate {
            org_preference: None,
            group_overrides: vec![GroupOverride {
                rbac_group_id: g,
                preference: Preference::Required,
            }],
        };
        assert_eq!(
            s.put_plugin_policy("finance-close", &update, t0())
                .unwrap_err()
                .code,
            Some("plan_not_supported")
        );
    }

    #[test]
    fn spend_limits_are_monthly_in_the_billing_currency_and_upsert_in_place() {
        let mut s = SimState::seeded(t0());
        let u = member(&mut s, "a@example.com");
        let mut req = SpendLimitRequest {
            scope: SpendScope::User { user_id: u.clone() },
            period: Some(Period::Weekly),
            amount: Some("5000".into()),
            currency: Some("USD".into()),
        };
        assert_eq!(
            s.upsert_spend_limit(&req, false, t0()).unwrap_err().code,
            Some("unsupported_period")
        );
        req.period = None;
        req.currency = Some("EUR".into());
        assert_eq!(
            s.upsert_spend_limit(&req, false, t0()).unwrap_err().code,
            Some("currency_mismatch")
        );
        req.currency = None;
        let first = s.upsert_spend_limit(&req, false, t0()).unwrap();
        assert!(first.id.starts_with("spl_01"));
        req.amount = Some("7000".into());
        let second = s.upsert_spend_limit(&req, false, t0()).unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(second.amount_minor(), Some(7000));
        req.amount = Some("-1".into());
        assert_eq!(
            s.upsert_spend_limit(&req, false, t0()).unwrap_err().code,
            Some("invalid_amount")
        );
        let g = group(&mut s, "Eng", None).unwrap().id;
        let group_req = SpendLimitRequest {
            scope: SpendScope::RbacGroup { rbac_group_id: g },
            period: None,
            amount: Some("1".into()),
            currency: None,
        };
        assert_eq!(
            s.upsert_spend_limit(&group_req, false, t0())
                .unwrap_err()
                .code,
            Some("scope_not_writable"),
            "the real API writes user scopes only"
        );
        assert!(s.upsert_spend_limit(&group_req, true, t0()).is_ok());
    }

    #[test]
    fn invites_respect_provisioning_mode_and_duplicates() {
        let mut s = SimState::seeded(t0());
        let req = InviteRequest {
            email: "new@example.com".into(),
            role: OrgRole::User,
            rbac_group_ids: vec![],
        };
        let invite = s.create_invite(&req, false, t0()).unwrap();
        assert!(invite.id.starts_with("invite_01"));
        assert_eq!(
            s.create_invite(&req, false, t0()).unwrap_err().code,
            Some("invite_exists")
        );
        let owner = InviteRequest {
            email: "OWNER+x@example.com".into(),
            ..req.clone()
        };
        assert_eq!(
            s.create_invite(&owner, false, t0()).unwrap_err().code,
            Some("member_exists")
        );
        s.patch_org(&json!({"provisioning_mode": "scim_permissive"}), t0())
            .unwrap();
        let other = InviteRequest {
            email: "other@example.com".into(),
            ..req
        };
        assert_eq!(
            s.create_invite(&other, false, t0()).unwrap_err().code,
            Some("provisioning_mode")
        );
    }

    #[test]
    fn accepted_invites_become_members_of_their_groups() {
        let mut s = SimState::seeded(t0());
        let g = group(&mut s, "Eng", None).unwrap().id;
        let req = InviteRequest {
            email: "new@example.com".into(),
            role: OrgRole::Managed,
            rbac_group_ids: vec![g.clone()],
        };
        let invite = s.create_invite(&req, true, t0()).unwrap();
        assert_eq!(invite.status, InviteStatus::Accepted);
        let user = s.user_by_email("new@example.com").unwrap().clone();
        assert_eq!(user.role, OrgRole::Managed);
        assert_eq!(s.member_ids(&g), vec![user.id]);
    }

    #[test]
    fn roles_are_checked_against_the_org_and_detached_on_delete() {
        let mut s = SimState::seeded(t0());
        let bad = |caps: Value| RoleSpec {
            name: "r".into(),
            capabilities: serde_json::from_value(caps).unwrap(),
            ..RoleSpec::default()
        };
        assert_eq!(
            s.create_role(&bad(json!({"computer_use": true})), t0())
                .unwrap_err()
                .code,
            Some("computer_use_not_available")
        );
        assert_eq!(
            s.create_role(&bad(json!({"skill_sharing": true})), t0())
                .unwrap_err()
                .code,
            Some("org_level_setting")
        );
        s.patch_org(&json!({"settings": {"cowork_enabled": false}}), t0())
            .unwrap();
        assert_eq!(
            s.create_role(&bad(json!({"cowork": true})), t0())
                .unwrap_err()
                .code,
            Some("feature_disabled_at_org")
        );
        let mut spec = bad(json!({"chat": true}));
        spec.connectors = ConnectorPolicy::List(vec![ConnectorGrant {
            connector_id: "mcpsrv_unknown".into(),
            access: ConnectorAccess::Allow,
            default_tool_mode: ToolMode::NeedsApproval,
            tools: vec![],
            oauth_scopes: vec![],
            auth_method: None,
        }]);
        assert_eq!(
            s.create_role(&spec, t0()).unwrap_err().code,
            Some("connector_not_in_org")
        );
        let role = s.create_role(&bad(json!({"chat": true})), t0()).unwrap();
        let g = group(&mut s, "Eng", None).unwrap().id;
        s.set_group_roles(&g, std::slice::from_ref(&role.id), t0())
            .unwrap();
        assert_eq!(
            s.set_group_roles(&g, &["rbac_role_01nope".to_owned()], t0())
                .unwrap_err()
                .status,
            404
        );
        s.delete_role(&role.id, t0()).unwrap();
        assert_eq!(s.get_group(&g).unwrap().roles, Some(vec![]));
    }

    #[test]
    fn set_members_reports_added_removed_and_unchanged() {
        let mut s = SimState::seeded(t0());
        let g = group(&mut s, "Eng", None).unwrap().id;
        let a = member(&mut s, "a@example.com");
        let b = member(&mut s, "b@example.com");
        let c = member(&mut s, "c@example.com");
        s.add_member(&g, &a, t0()).unwrap();
        s.add_member(&g, &b, t0()).unwrap();
        let r = s.set_members(&g, &[b.clone(), c.clone()], t0()).unwrap();
        assert_eq!(r.added, vec![c.clone()]);
        assert_eq!(r.removed, vec![a]);
        assert_eq!(r.unchanged, 1);
        assert_eq!(s.member_ids(&g), vec![b, c]);
    }

    #[test]
    fn deleting_a_group_removes_its_memberships_limits_and_overrides() {
        let mut s = SimState::seeded(t0());
        let g = group(&mut s, "Eng", None).unwrap().id;
        let a = member(&mut s, "a@example.com");
        s.add_member(&g, &a, t0()).unwrap();
        let req = SpendLimitRequest {
            scope: SpendScope::RbacGroup {
                rbac_group_id: g.clone(),
            },
            period: None,
            amount: Some("100".into()),
            currency: None,
        };
        s.upsert_spend_limit(&req, true, t0()).unwrap();
        let update = PluginPolicyUpdate {
            org_preference: None,
            group_overrides: vec![GroupOverride {
                rbac_group_id: g.clone(),
                preference: Preference::Required,
            }],
        };
        s.put_plugin_policy("brand-kit", &update, t0()).unwrap();
        s.delete_group(&g, t0()).unwrap();
        assert!(s.groups_of(&a).is_empty());
        assert!(s.spend_limits().is_empty());
        assert!(s.plugin_overrides("brand-kit").is_empty());
    }

    #[test]
    fn bulk_member_creation_is_all_or_nothing() {
        let mut s = SimState::seeded(t0());
        let batch = |emails: &[&str]| -> Vec<NewMember> {
            emails
                .iter()
                .map(|e| NewMember {
                    email: (*e).into(),
                    name: None,
                    role: None,
                    seat_tier: None,
                })
                .collect()
        };
        let e = s
            .sim_add_members(&batch(&["a@example.com", "A+x@example.com"]), t0())
            .unwrap_err();
        assert_eq!(e.status, 409);
        assert!(e.message.starts_with("[1]"), "{}", e.message);
        assert_eq!(s.users().len(), 1, "nothing was added");
        let added = s
            .sim_add_members(&batch(&["a@example.com", "b@example.com"]), t0())
            .unwrap();
        assert_eq!(added.len(), 2);
    }

    #[test]
    fn snapshots_round_trip_with_their_indexes() {
        let mut s = SimState::seeded(t0());
        let g = group(&mut s, "Eng", Some("okta:1")).unwrap().id;
        let a = member(&mut s, "a@example.com");
        s.add_member(&g, &a, t0()).unwrap();
        let restored = SimState::from_snapshot(s.snapshot());
        assert_eq!(restored.member_ids(&g), vec![a.clone()]);
        assert_eq!(restored.groups_of(&a), vec![g.clone()]);
        assert!(restored.user_by_email("A@example.com").is_some());
        let mut restored = restored;
        assert_eq!(
            group(&mut restored, "dup", Some("okta:1"))
                .unwrap_err()
                .status,
            409
        );
        let next = group(&mut restored, "new", None).unwrap();
        assert!(next.id > g, "ids keep increasing after a restart");
    }
}
