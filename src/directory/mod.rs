//! The SCIM directory: Users and Groups on the store.
//!
//! Each operation validates with the pure protocol code (`scim`), then makes its
//! change in a store transaction together with its audit entry and its outbox
//! entry, and returns only once the write is durable. Every SCIM write goes through
//! the combining writer ([`combine`]): concurrent writes are validated one after the
//! other against a view that includes the writes before them ([`view`]), so the reads
//! a write depends on (uniqueness, `If-Match`, current members) cannot go stale, and
//! they commit in one transaction and one flush. PUT and PATCH compute their new
//! document before queueing ([`write`]).
//!
//! Memberships are keys of their own (`Members`, `MemberOf`), so a PATCH that adds
//! 100 members to a group of 100,000 costs 100 key writes. Every call here is
//! blocking: HTTP handlers run it off the async threads.

mod combine;
mod ids;
pub mod migrate;
mod positions;
pub mod query;
pub mod records;
mod render;
pub mod snapshot;
mod view;
mod write;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::clock::SharedClock;
use crate::config::UnknownMembers;
use crate::outbox::Touched;
use crate::scim::members::{MemberKind, MemberOp, MemberRef};
use crate::scim::resource;
use crate::scim::{ResourceKind, SchemaRegistry, ScimError, UnknownAttributes, Unknowns};
use crate::store::codec::{from_bytes, tx_bump, tx_get_json, tx_put_json};

use crate::store::{Store, StoreError, Table, TxFail, Txn};
use view::{Plain, Reads};
use write::{Change, Edit, Update};

pub use combine::{Lead, Pending, Queued, UpdateKind};
pub use ids::IdGen;
pub use records::Record;
pub use render::RenderOptions;

use records::{
    count_key, fold, member_key, member_of_key, member_table, prefix, table, MemberOfValue,
    MemberValue, MEMBERSHIP_COUNT_KEY,
};

/// Most member ids named in one audit entry (the count is always exact).
const AUDIT_ID_LIST_MAX: usize = 50;
/// A group deletion touching more users than this queues a full plan instead.
const TOUCHED_USERS_MAX: usize = 10_000;

/// Errors of directory operations.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The request is wrong (validation, uniqueness, not found, precondition).
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

type TxResult<T> = Result<T, TxFail<DirectoryError>>;

fn scim_fail<T>(e: ScimError) -> TxResult<T> {
    Err(TxFail::Domain(DirectoryError::Scim(e)))
}

/// Who is asking, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The token subject.
    pub subject: &'a str,
    /// The request id, when there is one.
    pub request_id: Option<&'a str>,
}

/// A resource as returned to a client.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Its id.
    pub id: String,
    /// Its ETag.
    pub etag: String,
    /// The SCIM JSON.
    pub body: Value,
}

/// The result of a write: the new record, and what was done for the audit trail.
#[derive(Debug, Clone)]
pub struct Written {
    /// The resource id.
    pub id: String,
    /// The record after the change.
    pub record: Record,
    /// Whether anything changed.
    pub changed: bool,
    /// Member ids the request named that do not exist (skipped, and in the audit entry).
    pub unknown_members: usize,
    /// Attributes no schema declares that the request carried and that were dropped
    /// (`[scim] unknown_attributes = "ignore"`); names only, for the log and metrics.
    pub unknown_attributes: Unknowns,
}

/// One `If-Match` precondition (RFC 7644 §3.14).
#[derive(Debug, Clone, Default)]
pub struct Precondition {
    /// The raw `If-Match` header.
    pub if_match: Option<String>,
}

impl Precondition {
    fn check(&self, record: &Record) -> Result<(), ScimError> {
        let Some(header) = self.if_match.as_deref() else {
            return Ok(());
        };
        let current = record.etag();
        let bare = |t: &str| {
            t.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        };
        let wanted = bare(&current);
        let ok = header
            .split(',')
            .any(|t| t.trim() == "*" || bare(t) == wanted);
        if ok {
            Ok(())
        } else {
            Err(ScimError::PreconditionFailed(format!(
                "the resource has changed: If-Match does not match the current version {current}"
            )))
        }
    }
}

/// An index over one attribute of one resource type: unique (`value → id`), or, for a
/// user's `externalId`, which RFC 7643 §3.1 does not make unique, a multi-index
/// (`value 0x00 id → ""`) so a filter may find several.
struct AttrIndex {
    table: Table,
    attr: &'static str,
    case_insensitive: bool,
    unique: bool,
}

fn indexes(kind: ResourceKind) -> [AttrIndex; 2] {
    match kind {
        ResourceKind::User => [
            AttrIndex {
                table: Table::UserNameIdx,
                attr: "userName",
                case_insensitive: true,
                unique: true,
            },
            AttrIndex {
                table: Table::UserExternalIdIdx,
                attr: "externalId",
                case_insensitive: false,
                unique: false,
            },
        ],
        ResourceKind::Group => [
            AttrIndex {
                table: Table::GroupNameIdx,
                attr: "displayName",
                case_insensitive: true,
                unique: true,
            },
            AttrIndex {
                table: Table::GroupExternalIdIdx,
                attr: "externalId",
                case_insensitive: false,
                unique: true,
            },
        ],
    }
}

impl AttrIndex {
    /// The index key of resource `id` with document `doc`, if it has the attribute.
    fn key(&self, doc: &Value, id: &str) -> Option<Vec<u8>> {
        let v = doc.get(self.attr)?.as_str()?;
        let mut key = if self.case_insensitive {
            fold(v)
        } else {
            v.as_bytes().to_vec()
        };
        if !self.unique {
            key.push(0);
            key.extend_from_slice(id.as_bytes());
        }
        Some(key)
    }

    /// The value stored under [`AttrIndex::key`].
    fn value<'i>(&self, id: &'i str) -> &'i [u8] {
        if self.unique {
            id.as_bytes()
        } else {
            b""
        }
    }

    /// Adds resource `id` to the index, refusing a unique value another resource holds.
    fn insert(&self, txn: &mut dyn Txn, key: &[u8], id: &str) -> TxResult<()> {
        if self.unique {
            ensure_free(txn, self, key, id)?;
        }
        txn.insert(self.table, key, self.value(id))?;
        Ok(())
    }
}

/// The ids of the users whose `externalId` is exactly `value` (the multi-index).
pub(crate) fn users_by_external_id(
    store: &dyn Store,
    value: &str,
) -> Result<Vec<String>, StoreError> {
    let mut prefix = value.as_bytes().to_vec();
    prefix.push(0);
    let mut ids = Vec::new();
    store.scan(Table::UserExternalIdIdx, &prefix, None, &mut |k, _| {
        // Ids never hold 0x00, so the id is what follows the last one; a longer
        // externalId that merely starts with `value 0x00` has more before it.
        if let Some(at) = k.iter().rposition(|b| *b == 0) {
            if at == value.len() {
                ids.push(String::from_utf8_lossy(&k[at + 1..]).into_owned());
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(ids)
}

/// What a membership change did.
#[derive(Debug, Default)]
struct MemberDelta {
    added: Vec<(String, MemberKind)>,
    removed: Vec<(String, MemberKind)>,
    unknown: Vec<String>,
}

impl MemberDelta {
    fn touched(&self) -> Touched {
        let mut t = Touched::default();
        for (id, kind) in self.added.iter().chain(&self.removed) {
            match kind {
                MemberKind::User => t.users.push(id.clone()),
                MemberKind::Group => t.groups.push(id.clone()),
            }
        }
        t
    }

    fn audit_details(&self) -> Value {
        let ids = |v: &[(String, MemberKind)]| -> Vec<String> {
            v.iter()
                .take(AUDIT_ID_LIST_MAX)
                .map(|(id, _)| id.clone())
                .collect()
        };
        let mut d = json!({
            "members_added": self.added.len(),
            "members_removed": self.removed.len(),
            "added_ids": ids(&self.added),
            "removed_ids": ids(&self.removed),
        });
        if !self.unknown.is_empty() {
            d["unknown_member_ids"] = json!(self
                .unknown
                .iter()
                .take(AUDIT_ID_LIST_MAX)
                .collect::<Vec<_>>());
            d["unknown_members"] = json!(self.unknown.len());
        }
        d
    }
}

/// The SCIM directory.
pub struct Directory {
    store: Arc<dyn Store>,
    registry: Arc<SchemaRegistry>,
    clock: SharedClock,
    writer: Mutex<()>,
    /// Combines concurrent writes into one transaction (see [`combine`]).
    combiner: combine::Combiner,
    ids: IdGen,
    unknown_members: UnknownMembers,
    /// What writes do with attributes no schema declares (`[scim] unknown_attributes`).
    unknown_attributes: UnknownAttributes,
    /// Where recent list pages ended (see [`positions`]).
    positions: positions::Positions,
}

impl Directory {
    /// A directory over `store`.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<SchemaRegistry>,
        clock: SharedClock,
        unknown_members: UnknownMembers,
    ) -> Self {
        Self {
            store,
            registry,
            clock,
            writer: Mutex::new(()),
            combiner: combine::Combiner::default(),
            ids: IdGen::new(),
            unknown_members,
            unknown_attributes: UnknownAttributes::default(),
            positions: positions::Positions::default(),
        }
    }

    /// Sets what writes do with attributes no schema declares (default: drop them).
    pub fn with_unknown_attributes(mut self, policy: UnknownAttributes) -> Self {
        self.unknown_attributes = policy;
        self
    }

    /// The schema registry.
    pub fn registry(&self) -> &SchemaRegistry {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// How many users and groups exist.
    pub fn counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let read = |key: &[u8]| -> Result<u64, StoreError> {
            Ok(match self.store.get(Table::Meta, key)? {
                Some(b) => crate::store::codec::seq_from_key(&b, Table::Meta)?,
                None => 0,
            })
        };
        Ok((
            read(count_key(ResourceKind::User))?,
            read(count_key(ResourceKind::Group))?,
            read(MEMBERSHIP_COUNT_KEY)?,
        ))
    }

    /// The id of the user with this userName (compared case-insensitively).
    pub fn user_id_by_name(&self, user_name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .get(Table::UserNameIdx, &fold(user_name))?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Reads a record.
    pub fn record(&self, kind: ResourceKind, id: &str) -> Result<Option<Record>, StoreError> {
        match self.store.get(table(kind), id.as_bytes())? {
            Some(bytes) => Ok(Some(from_bytes(&bytes, table(kind))?)),
            None => Ok(None),
        }
    }

    fn not_found(kind: ResourceKind, id: &str) -> ScimError {
        let what = match kind {
            ResourceKind::User => "user",
            ResourceKind::Group => "group",
        };
        // Ids are ours (opaque, not personal data), so naming it helps the caller.
        ScimError::NotFound(format!("no {what} with id '{}'", truncate(id, 64)))
    }

    /// `GET /Users/{id}` and `GET /Groups/{id}`.
    pub fn get(
        &self,
        kind: ResourceKind,
        id: &str,
        options: &RenderOptions,
    ) -> Result<Rendered, DirectoryError> {
        let record = self
            .record(kind, id)?
            .ok_or_else(|| Self::not_found(kind, id))?;
        self.render(kind, id, &record, options)
    }

    /// Renders a stored record for a client.
    pub fn render(
        &self,
        kind: ResourceKind,
        id: &str,
        record: &Record,
        options: &RenderOptions,
    ) -> Result<Rendered, DirectoryError> {
        let full = render::render(self.store.as_ref(), kind, id, record, options)?;
        // With nothing asked for, the projection is the rendered resource itself.
        let body = if options.projection.is_all() {
            full
        } else {
            resource::project(&self.registry, kind, &full, &options.projection)
        };
        Ok(Rendered {
            id: id.to_string(),
            etag: record.etag(),
            body,
        })
    }

    /// `POST /Users` and `POST /Groups`.
    pub fn create(
        &self,
        caller: Caller<'_>,
        kind: ResourceKind,
        body: Value,
    ) -> Result<Written, DirectoryError> {
        let change = self.creating(kind, body)?;
        self.submit(caller, change)
    }

    /// `PUT /Users/{id}` and `PUT /Groups/{id}`.
    pub fn replace(
        &self,
        caller: Caller<'_>,
        kind: ResourceKind,
        id: &str,
        body: Value,
        precondition: &Precondition,
    ) -> Result<Written, DirectoryError> {
        let change = self.updating(UpdateKind::Replace, kind, id, body, precondition)?;
        self.submit(caller, change)
    }

    /// `PATCH /Users/{id}` and `PATCH /Groups/{id}`.
    pub fn patch(
        &self,
        caller: Caller<'_>,
        kind: ResourceKind,
        id: &str,
        body: Value,
        precondition: &Precondition,
    ) -> Result<Written, DirectoryError> {
        let change = self.updating(UpdateKind::Patch, kind, id, body, precondition)?;
        self.submit(caller, change)
    }

    /// The shared path of PUT and PATCH: the request is applied here, before
    /// queueing (a PATCH of thousands of operations costs no other write its time),
    /// against the current record; the combining writer reuses the result when the
    /// record is still that version (the usual case) and applies it again otherwise.
    fn update(
        &self,
        kind: ResourceKind,
        id: &str,
        precondition: &Precondition,
        edit: Edit,
    ) -> Result<Change, DirectoryError> {
        let seen = self
            .record(kind, id)?
            .ok_or_else(|| Self::not_found(kind, id))?;
        precondition.check(&seen)?;
        let computed = self.compute(kind, id, &edit, &seen)?;
        Ok(Change::Update(Box::new(Update {
            kind,
            id: id.to_string(),
            precondition: precondition.clone(),
            edit,
            seen_version: seen.version,
            computed,
        })))
    }

    /// `DELETE /Users/{id}` and `DELETE /Groups/{id}`.
    pub fn delete(
        &self,
        caller: Caller<'_>,
        kind: ResourceKind,
        id: &str,
        precondition: &Precondition,
    ) -> Result<(), DirectoryError> {
        self.submit(caller, Change::delete(kind, id, precondition))
            .map(|_| ())
    }

    /// The groups `id` is a direct member of.
    pub fn member_of(&self, id: &str) -> Result<Vec<String>, StoreError> {
        member_of_in(&Plain(self.store.as_ref()), id)
    }

    /// The direct members of group `id`.
    pub fn members(&self, id: &str) -> Result<Vec<(String, MemberKind)>, StoreError> {
        members_in(&Plain(self.store.as_ref()), id)
    }

    /// Every user in group `id` or in groups nested inside it (cycle-safe).
    pub fn transitive_users(&self, id: &str) -> Result<BTreeSet<String>, StoreError> {
        transitive_users_in(&Plain(self.store.as_ref()), id)
    }

    fn relinks(
        &self,
        reads: &dyn Reads,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Relinks, StoreError> {
        let parents = member_of_in(reads, id)?;
        let members = if kind == ResourceKind::Group {
            members_in(reads, id)?.into_iter().map(|(m, _)| m).collect()
        } else {
            Vec::new()
        };
        Ok(Relinks { parents, members })
    }

    /// Looks up the members named in a body: which exist (with their kind and
    /// display), which do not.
    fn resolve_members(
        &self,
        reads: &dyn Reads,
        kind: ResourceKind,
        group_id: &str,
        refs: Option<&[MemberRef]>,
    ) -> Result<ResolvedMembers, DirectoryError> {
        let mut out = ResolvedMembers::default();
        let Some(refs) = refs else {
            return Ok(out);
        };
        if kind != ResourceKind::Group {
            return Ok(out);
        }
        let mut seen = HashSet::new();
        for r in refs {
            if !seen.insert(r.value.clone()) {
                continue;
            }
            if r.value == group_id {
                return Err(
                    ScimError::InvalidValue("a group cannot be a member of itself".into()).into(),
                );
            }
            match self.lookup_member(reads, r)? {
                Some((kind, display)) => {
                    out.known
                        .push((r.value.clone(), kind, r.display.clone().or(display)))
                }
                None => out.unknown.push(r.value.clone()),
            }
        }
        if !out.unknown.is_empty() && self.unknown_members == UnknownMembers::Reject {
            return Err(unknown_members_error(&out.unknown).into());
        }
        Ok(out)
    }

    fn lookup_member(
        &self,
        reads: &dyn Reads,
        r: &MemberRef,
    ) -> Result<Option<(MemberKind, Option<String>)>, StoreError> {
        let kinds: &[MemberKind] = match r.kind {
            Some(MemberKind::User) => &[MemberKind::User],
            Some(MemberKind::Group) => &[MemberKind::Group],
            None => &[MemberKind::User, MemberKind::Group],
        };
        for k in kinds {
            if let Some(bytes) = reads.get(member_table(*k), r.value.as_bytes())? {
                let record: Record = from_bytes(&bytes, member_table(*k))?;
                let resource_kind = match k {
                    MemberKind::User => ResourceKind::User,
                    MemberKind::Group => ResourceKind::Group,
                };
                return Ok(Some((*k, record.display(resource_kind))));
            }
        }
        Ok(None)
    }

    /// Turns member operations into a plan the transaction can apply: ids resolved,
    /// and the current member list read only when an operation needs it.
    fn plan_member_ops(
        &self,
        reads: &dyn Reads,
        kind: ResourceKind,
        group_id: &str,
        ops: &[MemberOp],
    ) -> Result<MemberPlan, DirectoryError> {
        let mut plan = MemberPlan::default();
        if kind != ResourceKind::Group || ops.is_empty() {
            return Ok(plan);
        }
        let needs_current = ops
            .iter()
            .any(|op| matches!(op, MemberOp::RemoveAll | MemberOp::Replace(_)));
        if needs_current {
            plan.current = Some(members_in(reads, group_id)?);
        }
        let mut unknown = Vec::new();
        for op in ops {
            let step = match op {
                MemberOp::Add(refs) | MemberOp::Replace(refs) => {
                    let resolved = self.resolve_members(reads, kind, group_id, Some(refs))?;
                    unknown.extend(resolved.unknown);
                    let known = resolved.known;
                    if matches!(op, MemberOp::Add(_)) {
                        PlanStep::Add(known)
                    } else {
                        PlanStep::Replace(known)
                    }
                }
                MemberOp::Remove(ids) => PlanStep::Remove(ids.clone()),
                MemberOp::RemoveAll => PlanStep::RemoveAll,
            };
            plan.steps.push(step);
        }
        plan.unknown = unknown;
        Ok(plan)
    }
}

/// The groups `id` is a direct member of.
fn member_of_in(reads: &dyn Reads, id: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    reads.scan(Table::MemberOf, &prefix(id), &mut |k, _| {
        if let Some(g) = crate::store::codec::pair_second(k) {
            out.push(g.to_string());
        }
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// The direct members of group `id`.
fn members_in(reads: &dyn Reads, id: &str) -> Result<Vec<(String, MemberKind)>, StoreError> {
    let mut out = Vec::new();
    let mut failed = None;
    reads.scan(
        Table::Members,
        &prefix(id),
        &mut |k, v| match from_bytes::<MemberValue>(v, Table::Members) {
            Ok(value) => {
                if let Some(m) = crate::store::codec::pair_second(k) {
                    out.push((m.to_string(), value.kind.into()));
                }
                std::ops::ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e);
                std::ops::ControlFlow::Break(())
            }
        },
    )?;
    failed.map_or(Ok(out), Err)
}

/// Every user in group `id` or in groups nested inside it (cycle-safe).
fn transitive_users_in(reads: &dyn Reads, id: &str) -> Result<BTreeSet<String>, StoreError> {
    let mut users = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut queue = vec![id.to_string()];
    while let Some(group) = queue.pop() {
        if !seen.insert(group.clone()) {
            continue;
        }
        for (member, kind) in members_in(reads, &group)? {
            match kind {
                MemberKind::User => {
                    users.insert(member);
                }
                MemberKind::Group => queue.push(member),
            }
        }
    }
    Ok(users)
}

/// Members a body named, split into those that exist and those that do not.
#[derive(Debug, Default)]
struct ResolvedMembers {
    known: Vec<KnownMember>,
    unknown: Vec<String>,
}

/// A member that exists: id, kind, display name.
type KnownMember = (String, MemberKind, Option<String>);

#[derive(Debug)]
enum PlanStep {
    Add(Vec<KnownMember>),
    Remove(Vec<String>),
    RemoveAll,
    Replace(Vec<KnownMember>),
}

#[derive(Debug, Default)]
struct MemberPlan {
    steps: Vec<PlanStep>,
    current: Option<Vec<(String, MemberKind)>>,
    unknown: Vec<String>,
}

/// For a display-name change: the other side of each membership.
#[derive(Debug, Default)]
struct Relinks {
    /// Groups this resource is a member of.
    parents: Vec<String>,
    /// Members of this resource (groups only).
    members: Vec<String>,
}

fn unknown_members_error(ids: &[String]) -> ScimError {
    let shown: Vec<&str> = ids.iter().take(10).map(|s| truncate(s, 64)).collect();
    ScimError::InvalidValue(format!(
        "{} member id(s) do not exist: {}{}",
        ids.len(),
        shown.join(", "),
        if ids.len() > shown.len() { ", ..." } else { "" }
    ))
}

fn kind_word(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "user",
        ResourceKind::Group => "group",
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(t), Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

fn ensure_free(txn: &mut dyn Txn, index: &AttrIndex, key: &[u8], id: &str) -> TxResult<()> {
    match txn.get(index.table, key)? {
        Some(owner) if owner != id.as_bytes() => scim_fail(ScimError::Uniqueness(format!(
            "{} is already in use by another resource",
            index.attr
        ))),
        _ => Ok(()),
    }
}

fn add_member(
    txn: &mut dyn Txn,
    group: &str,
    group_display: Option<&str>,
    member: &str,
    kind: MemberKind,
    member_display: Option<String>,
) -> TxResult<bool> {
    let key = member_key(group, member);
    if txn.get(Table::Members, &key)?.is_some() {
        return Ok(false);
    }
    tx_put_json(
        txn,
        Table::Members,
        &key,
        &MemberValue {
            kind: kind.into(),
            display: member_display,
        },
    )?;
    tx_put_json(
        txn,
        Table::MemberOf,
        &member_of_key(member, group),
        &MemberOfValue {
            display: group_display.map(Into::into),
        },
    )?;
    tx_bump(txn, Table::Meta, MEMBERSHIP_COUNT_KEY, 1)?;
    Ok(true)
}

fn remove_member(txn: &mut dyn Txn, group: &str, member: &str) -> TxResult<Option<MemberKind>> {
    let key = member_key(group, member);
    let Some(value) = tx_get_json::<MemberValue>(txn, Table::Members, &key)? else {
        return Ok(None);
    };
    txn.remove(Table::Members, &key)?;
    txn.remove(Table::MemberOf, &member_of_key(member, group))?;
    tx_bump(txn, Table::Meta, MEMBERSHIP_COUNT_KEY, -1)?;
    Ok(Some(value.kind.into()))
}

/// Applies a member plan inside the transaction. Each step sees the effect of the
/// ones before it (the transaction reads its own writes); the returned delta is the
/// net change, so an add and a remove of the same member in one request cancel out.
fn apply_member_plan(
    txn: &mut dyn Txn,
    group: &str,
    group_display: Option<&str>,
    plan: &MemberPlan,
) -> TxResult<MemberDelta> {
    // Successful single-member changes, in order.
    let mut events: Vec<(String, MemberKind, bool)> = Vec::new();
    // The full member set, tracked only when a step needs it (it was pre-read).
    let mut current: Option<std::collections::BTreeMap<String, MemberKind>> =
        plan.current.as_ref().map(|c| c.iter().cloned().collect());
    let record = |events: &mut Vec<(String, MemberKind, bool)>,
                  current: &mut Option<std::collections::BTreeMap<String, MemberKind>>,
                  id: &str,
                  kind: MemberKind,
                  added: bool| {
        if let Some(c) = current.as_mut() {
            if added {
                c.insert(id.to_string(), kind);
            } else {
                c.remove(id);
            }
        }
        events.push((id.to_string(), kind, added));
    };
    for step in &plan.steps {
        let (clear, adds): (bool, &[KnownMember]) = match step {
            PlanStep::Add(known) => (false, known),
            PlanStep::Replace(known) => (true, known),
            PlanStep::RemoveAll => (true, &[]),
            PlanStep::Remove(ids) => {
                for member in ids {
                    if let Some(kind) = remove_member(txn, group, member)? {
                        record(&mut events, &mut current, member, kind, false);
                    }
                }
                continue;
            }
        };
        if clear {
            let keep: HashSet<&str> = adds.iter().map(|(id, _, _)| id.as_str()).collect();
            let now: Vec<String> = current.iter().flat_map(|c| c.keys().cloned()).collect();
            for member in now {
                if !keep.contains(member.as_str()) {
                    if let Some(kind) = remove_member(txn, group, &member)? {
                        record(&mut events, &mut current, &member, kind, false);
                    }
                }
            }
        }
        for (member, kind, display) in adds {
            if add_member(txn, group, group_display, member, *kind, display.clone())? {
                record(&mut events, &mut current, member, *kind, true);
            }
        }
    }
    Ok(net_delta(events, plan.unknown.clone()))
}

/// Reduces ordered add/remove events to the net change per member: the first event
/// tells whether it was a member before, the last whether it is one now.
fn net_delta(events: Vec<(String, MemberKind, bool)>, unknown: Vec<String>) -> MemberDelta {
    let mut order: Vec<String> = Vec::new();
    let mut first_last: std::collections::HashMap<String, (MemberKind, bool, bool)> =
        std::collections::HashMap::new();
    for (id, kind, added) in events {
        match first_last.get_mut(&id) {
            Some(entry) => entry.2 = added,
            None => {
                order.push(id.clone());
                first_last.insert(id, (kind, added, added));
            }
        }
    }
    let mut delta = MemberDelta {
        unknown,
        ..MemberDelta::default()
    };
    for id in order {
        if let Some((kind, first_added, last_added)) = first_last.remove(&id) {
            let was_member = !first_added;
            match (was_member, last_added) {
                (false, true) => delta.added.push((id, kind)),
                (true, false) => delta.removed.push((id, kind)),
                _ => {}
            }
        }
    }
    delta
}

/// Rewrites the denormalized display name of resource `id` on both sides of its
/// memberships.
fn relink_display(
    txn: &mut dyn Txn,
    kind: ResourceKind,
    id: &str,
    display: Option<&str>,
    relinks: &Relinks,
) -> TxResult<()> {
    for group in &relinks.parents {
        let key = member_key(group, id);
        if let Some(mut v) = tx_get_json::<MemberValue>(txn, Table::Members, &key)? {
            v.display = display.map(Into::into);
            tx_put_json(txn, Table::Members, &key, &v)?;
        }
    }
    if kind == ResourceKind::Group {
        for member in &relinks.members {
            // Members removed earlier in this transaction keep no entry.
            let key = member_of_key(member, id);
            if txn.get(Table::MemberOf, &key)?.is_some() {
                tx_put_json(
                    txn,
                    Table::MemberOf,
                    &key,
                    &MemberOfValue {
                        display: display.map(Into::into),
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Adjusts a parent group's member count and version when a member disappears.
fn bump_group(
    txn: &mut dyn Txn,
    group: &str,
    delta: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> TxResult<()> {
    if let Some(mut record) = tx_get_json::<Record>(txn, Table::Groups, group.as_bytes())? {
        record.member_count = record.member_count.saturating_add_signed(delta);
        record.touch(now);
        tx_put_json(txn, Table::Groups, group.as_bytes(), &record)?;
    }
    Ok(())
}

/// Entra soft-delete tombstones: when a user is deactivated, Entra may rename its
/// `userName` to `<32 hex digits><old userName>`. That must not rewrite the login
/// identity, so the old `userName` is kept (and the attempt shows in the audit
/// trail as a change of `active` only).
fn guard_tombstone(
    kind: ResourceKind,
    old: &Value,
    mut new: Value,
    changed: &mut BTreeSet<String>,
) -> Value {
    if kind != ResourceKind::User {
        return new;
    }
    let inactive = new.get("active").and_then(Value::as_bool) == Some(false);
    let (Some(old_name), Some(new_name)) = (
        old.get("userName").and_then(Value::as_str),
        new.get("userName").and_then(Value::as_str),
    ) else {
        return new;
    };
    if inactive && is_tombstone_of(new_name, old_name) {
        let keep = old_name.to_string();
        if let Some(obj) = new.as_object_mut() {
            obj.insert("userName".into(), Value::String(keep));
        }
        changed.remove("userName");
    }
    new
}

/// Whether `candidate` is `<32 hex digits><original>`.
pub fn is_tombstone_of(candidate: &str, original: &str) -> bool {
    candidate.len() == original.len() + 32
        && candidate.is_char_boundary(32)
        && candidate[..32].bytes().all(|b| b.is_ascii_hexdigit())
        && candidate[32..].eq_ignore_ascii_case(original)
}

#[cfg(test)]
mod tests;
