//! The bodies of SCIM writes (create, replace, patch, delete) as the combining writer
//! runs them: each reads what it depends on through the batch's [`BatchView`] (so it
//! sees the batch's earlier writes), validates, and writes into its own
//! [`Savepoint`]. Its audit entry and outbox entry are collected as a [`Trail`] and
//! appended in the batch's transaction, where the chain head and the queue's
//! sequence are read and written under the store's own isolation.
//!
//! What a PUT or PATCH does to the document is computed by the caller before it
//! queues ([`Computed`]); here it is reused unless the record changed meanwhile.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::audit::{self, AuditDraft};
use crate::outbox::{self, Touched};
use crate::scim::members::MemberOp;
use crate::scim::patch::{self, PatchRequest};
use crate::scim::resource::{self, InputResource};
use crate::scim::{ResourceKind, ScimError, Unknowns};
use crate::store::codec::{tx_bump, tx_put_json};
use crate::store::{StoreError, Table, TxError, TxFail, Txn};

use super::records::{count_key, member_key, member_of_key, table, Record, MEMBERSHIP_COUNT_KEY};
use super::view::{BatchView, Reads, Savepoint};
use super::{
    add_member, apply_member_plan, bump_group, guard_tombstone, indexes, kind_word, merge,
    relink_display, Caller, Directory, DirectoryError, MemberDelta, Precondition, Relinks,
    ResolvedMembers, TxResult, Written, TOUCHED_USERS_MAX,
};

/// One SCIM write, as queued for the combining writer.
pub(super) enum Change {
    /// `POST /Users` or `POST /Groups`.
    Create {
        kind: ResourceKind,
        input: InputResource,
    },
    /// `PUT` or `PATCH` of a resource.
    Update(Box<Update>),
    /// `DELETE` of a resource.
    Delete {
        kind: ResourceKind,
        id: String,
        precondition: Precondition,
    },
}

impl Change {
    /// A `DELETE` of `id` (what it removes is read in its batch).
    pub fn delete(kind: ResourceKind, id: &str, precondition: &Precondition) -> Self {
        Change::Delete {
            kind,
            id: id.to_string(),
            precondition: precondition.clone(),
        }
    }
}

/// A PUT or PATCH, with its effect computed on the version the caller saw.
pub(super) struct Update {
    pub kind: ResourceKind,
    pub id: String,
    pub precondition: Precondition,
    pub edit: Edit,
    /// The version `computed` was computed on.
    pub seen_version: u64,
    pub computed: Computed,
}

/// What a PUT or PATCH asks.
pub(super) enum Edit {
    Replace(InputResource),
    Patch(PatchRequest),
}

impl Edit {
    fn verb(&self) -> &'static str {
        match self {
            Edit::Replace(_) => "replace",
            Edit::Patch(_) => "patch",
        }
    }
}

/// The new document of a PUT or PATCH and what it does to members.
pub(super) struct Computed {
    pub doc: Value,
    pub member_ops: Vec<MemberOp>,
    pub changed: BTreeSet<String>,
    /// Attributes no schema declares that were dropped.
    pub unknown: Unknowns,
}

/// An audit entry and the outbox entry that go with one write.
pub(super) struct Trail {
    subject: String,
    action: String,
    target: String,
    details: Value,
    /// Empty when the write queues no downstream work.
    touched: Touched,
    /// The requester's trace context, carried into the outbox entry.
    pub trace: Option<String>,
}

impl Trail {
    fn new(caller: Caller<'_>, action: &str, target: &str, mut details: Value) -> Self {
        if let Some(rid) = caller.request_id {
            merge(&mut details, json!({ "request_id": rid }));
        }
        Self {
            subject: caller.subject.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            details,
            touched: Touched::default(),
            trace: None,
        }
    }

    fn touching(mut self, touched: Touched) -> Self {
        self.touched = touched;
        self
    }

    /// Appends the audit entry and, when there is work, the outbox entry.
    pub(super) fn append(
        &self,
        txn: &mut dyn Txn,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), TxError> {
        audit::append(
            txn,
            AuditDraft::new(&self.subject, &self.action, Some(&self.target))
                .with(self.details.clone()),
            now,
        )?;
        crate::telemetry::propagation::queued_as(self.trace.clone(), || {
            outbox::append(txn, &self.action, self.touched.clone(), now)
        })?;
        Ok(())
    }
}

/// What a batch collects besides its writes.
pub(super) struct BatchCtx {
    pub now: chrono::DateTime<chrono::Utc>,
    pub trails: Vec<Trail>,
    /// Per kind (users, groups): list positions must be forgotten after the commit.
    pub forget: [bool; 2],
    /// Per kind: the greatest id stored when the batch began (read once).
    last_ids: [Option<Option<Vec<u8>>>; 2],
}

impl BatchCtx {
    pub(super) fn new(now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            now,
            trails: Vec::new(),
            forget: [false; 2],
            last_ids: [None, None],
        }
    }
}

fn slot(kind: ResourceKind) -> usize {
    match kind {
        ResourceKind::User => 0,
        ResourceKind::Group => 1,
    }
}

fn domain<T>(e: impl Into<DirectoryError>) -> TxResult<T> {
    Err(TxFail::Domain(e.into()))
}

/// Runs `body` in a savepoint: its writes and trails are kept when it returns
/// `Ok((value, true))`, dropped when it fails or returns `keep = false`.
fn in_savepoint<T>(
    view: &mut BatchView<'_>,
    ctx: &mut BatchCtx,
    body: impl FnOnce(&mut dyn Txn, &mut Vec<Trail>) -> TxResult<(T, bool)>,
) -> TxResult<T> {
    let mut savepoint = Savepoint::new(view);
    let mut trails = Vec::new();
    let (value, keep) = body(&mut savepoint, &mut trails)?;
    if keep {
        savepoint.release();
        ctx.trails.extend(trails);
    }
    Ok(value)
}

impl Directory {
    /// What a PUT or PATCH makes of `record` (pure: no store access).
    pub(super) fn compute(
        &self,
        kind: ResourceKind,
        id: &str,
        edit: &Edit,
        record: &Record,
    ) -> Result<Computed, ScimError> {
        match edit {
            Edit::Replace(input) => {
                let doc = resource::replace_document(&self.registry, kind, &record.doc, input)?;
                let member_ops = match (&input.members, kind) {
                    (Some(m), ResourceKind::Group) => vec![MemberOp::Replace(m.clone())],
                    // RFC 7644 §3.5.1: PUT replaces the resource; absent members means none.
                    (None, ResourceKind::Group) => vec![MemberOp::RemoveAll],
                    _ => Vec::new(),
                };
                Ok(Computed {
                    doc,
                    member_ops,
                    changed: input.attribute_names.iter().cloned().collect(),
                    unknown: input.unknown.clone(),
                })
            }
            Edit::Patch(request) => {
                let mut outcome = patch::apply(&self.registry, kind, id, &record.doc, request)?;
                if let Some(doc) = outcome.document.as_object_mut() {
                    resource::normalize_names(doc)?;
                }
                Ok(Computed {
                    doc: outcome.document,
                    member_ops: outcome.member_ops,
                    changed: outcome.changed,
                    unknown: std::mem::take(&mut outcome.unknown),
                })
            }
        }
    }

    /// Runs one queued write against the batch's view.
    pub(super) fn apply_change(
        &self,
        view: &mut BatchView<'_>,
        ctx: &mut BatchCtx,
        caller: Caller<'_>,
        change: Change,
    ) -> TxResult<Written> {
        match change {
            Change::Create { kind, input } => self.create_change(view, ctx, caller, kind, input),
            Change::Update(update) => self.update_change(view, ctx, caller, *update),
            Change::Delete {
                kind,
                id,
                precondition,
            } => self.delete_change(view, ctx, caller, kind, &id, &precondition),
        }
    }

    fn create_change(
        &self,
        view: &mut BatchView<'_>,
        ctx: &mut BatchCtx,
        caller: Caller<'_>,
        kind: ResourceKind,
        input: InputResource,
    ) -> TxResult<Written> {
        let id = match self.ids.next(self.clock.now_millis()) {
            Ok(id) => id,
            Err(e) => return domain(StoreError::Io(std::io::Error::other(e.to_string()))),
        };
        let members = match self.resolve_members(&*view, kind, &id, input.members.as_deref()) {
            Ok(m) => m,
            Err(e) => return domain(e),
        };
        // Ids grow with time, so a new resource is normally last in list order; one
        // that sorts earlier (a clock stepped back) shifts known positions.
        let last = match &ctx.last_ids[slot(kind)] {
            Some(last) => last.clone(),
            None => {
                let last = match self.store.last(table(kind), b"") {
                    Ok(found) => found.map(|(k, _)| k),
                    Err(e) => return domain(e),
                };
                ctx.last_ids[slot(kind)] = Some(last.clone());
                last
            }
        };
        if last.is_some_and(|last| last.as_slice() > id.as_bytes()) {
            ctx.forget[slot(kind)] = true;
        }
        let record = Record::new(input.document.clone(), ctx.now);
        let written = in_savepoint(view, ctx, |txn, trails| {
            let written =
                self.create_in(txn, trails, caller, kind, &id, record, &input, &members)?;
            Ok((written, true))
        })?;
        Ok(Written {
            unknown_attributes: input.unknown,
            ..written
        })
    }

    /// The writes of a create: indexes (refusing taken unique values), memberships,
    /// the record, the counter, and its trail.
    #[allow(clippy::too_many_arguments)]
    fn create_in(
        &self,
        txn: &mut dyn Txn,
        trails: &mut Vec<Trail>,
        caller: Caller<'_>,
        kind: ResourceKind,
        id: &str,
        mut record: Record,
        input: &InputResource,
        members: &ResolvedMembers,
    ) -> TxResult<Written> {
        for index in indexes(kind) {
            if let Some(key) = index.key(&record.doc, id) {
                index.insert(txn, &key, id)?;
            }
        }
        let mut delta = MemberDelta {
            unknown: members.unknown.clone(),
            ..MemberDelta::default()
        };
        if kind == ResourceKind::Group {
            let display = record.display(kind);
            for (member, member_kind, member_display) in &members.known {
                add_member(
                    txn,
                    id,
                    display.as_deref(),
                    member,
                    *member_kind,
                    member_display.clone(),
                )?;
                delta.added.push((member.clone(), *member_kind));
            }
            record.member_count = delta.added.len() as u64;
        }
        tx_put_json(txn, table(kind), id.as_bytes(), &record)?;
        tx_bump(txn, Table::Meta, count_key(kind), 1)?;
        let action = format!("scim.{}.create", kind_word(kind));
        let mut details = json!({ "attributes": input.attribute_names });
        if kind == ResourceKind::Group {
            merge(&mut details, delta.audit_details());
        }
        let touched = match kind {
            ResourceKind::User => Touched::user(id),
            ResourceKind::Group => delta.touched(),
        };
        trails.push(Trail::new(caller, &action, id, details).touching(touched));
        Ok(Written {
            id: id.to_string(),
            record,
            changed: true,
            unknown_members: delta.unknown.len(),
            unknown_attributes: Unknowns::default(),
        })
    }

    /// PUT and PATCH: the change computed on the version the caller saw, or computed
    /// again when a write (possibly earlier in this batch) changed the record since.
    fn update_change(
        &self,
        view: &mut BatchView<'_>,
        ctx: &mut BatchCtx,
        caller: Caller<'_>,
        update: Update,
    ) -> TxResult<Written> {
        let Update {
            kind,
            id,
            precondition,
            edit,
            seen_version,
            computed,
        } = update;
        let id = id.as_str();
        let current = match self.record_in(&*view, kind, id) {
            Ok(Some(record)) => record,
            Ok(None) => return domain(Self::not_found(kind, id)),
            Err(e) => return domain(e),
        };
        // RFC 7644 §3.14: against the version this write would change.
        if let Err(e) = precondition.check(&current) {
            return domain(e);
        }
        let computed = if current.version == seen_version {
            computed
        } else {
            // A concurrent write changed it meanwhile: apply it again.
            match self.compute(kind, id, &edit, &current) {
                Ok(c) => c,
                Err(e) => return domain(e),
            }
        };
        let Computed {
            doc,
            member_ops,
            mut changed,
            unknown,
        } = computed;
        let doc = guard_tombstone(kind, &current.doc, doc, &mut changed);
        let doc_changed = doc != current.doc;
        let plan = match self.plan_member_ops(&*view, kind, id, &member_ops) {
            Ok(plan) => plan,
            Err(e) => return domain(e),
        };
        let old_display = current.display(kind);
        let mut next = current.clone();
        next.doc = doc;
        let new_display = next.display(kind);
        let display_changed = old_display != new_display;
        // Rewriting denormalized display names needs the other side of each membership.
        let relinks = if display_changed {
            match self.relinks(&*view, kind, id) {
                Ok(r) => r,
                Err(e) => return domain(e),
            }
        } else {
            Relinks::default()
        };
        let verb = edit.verb();
        let now = ctx.now;
        let unchanged = |unknown_members: usize| Written {
            id: id.to_string(),
            record: current.clone(),
            changed: false,
            unknown_members,
            unknown_attributes: Unknowns::default(),
        };
        let written = in_savepoint(view, ctx, |txn, trails| {
            let delta = apply_member_plan(txn, id, new_display.as_deref(), &plan)?;
            let members_changed = !delta.added.is_empty() || !delta.removed.is_empty();
            let action = format!("scim.{}.{verb}", kind_word(kind));
            if !doc_changed && !members_changed {
                if delta.unknown.is_empty() {
                    // Nothing to write; even net-zero member writes are dropped.
                    return Ok((unchanged(0), false));
                }
                // Nothing changed, but the skipped ids are worth a record.
                trails.push(Trail::new(caller, &action, id, delta.audit_details()));
                return Ok((unchanged(delta.unknown.len()), true));
            }
            if doc_changed {
                for index in indexes(kind) {
                    let old = index.key(&current.doc, id);
                    let new = index.key(&next.doc, id);
                    if old != new {
                        if let Some(old) = &old {
                            txn.remove(index.table, old)?;
                        }
                        if let Some(new) = &new {
                            index.insert(txn, new, id)?;
                        }
                    }
                }
            }
            if display_changed {
                relink_display(txn, kind, id, new_display.as_deref(), &relinks)?;
            }
            let mut next = next.clone();
            next.member_count = (next.member_count + delta.added.len() as u64)
                .saturating_sub(delta.removed.len() as u64);
            next.touch(now);
            tx_put_json(txn, table(kind), id.as_bytes(), &next)?;
            let mut names: Vec<String> = changed.iter().cloned().collect();
            if members_changed && !names.iter().any(|n| n == "members") {
                names.push("members".into());
            }
            let mut details = json!({ "attributes": names });
            if kind == ResourceKind::Group {
                merge(&mut details, delta.audit_details());
            }
            let mut touched = delta.touched();
            match kind {
                ResourceKind::User => touched.users.push(id.to_string()),
                ResourceKind::Group if doc_changed => touched.groups.push(id.to_string()),
                ResourceKind::Group => {}
            }
            trails.push(Trail::new(caller, &action, id, details).touching(touched));
            Ok((
                Written {
                    id: id.to_string(),
                    record: next,
                    changed: true,
                    unknown_members: delta.unknown.len(),
                    unknown_attributes: Unknowns::default(),
                },
                true,
            ))
        })?;
        Ok(Written {
            unknown_attributes: unknown,
            ..written
        })
    }

    fn delete_change(
        &self,
        view: &mut BatchView<'_>,
        ctx: &mut BatchCtx,
        caller: Caller<'_>,
        kind: ResourceKind,
        id: &str,
        precondition: &Precondition,
    ) -> TxResult<Written> {
        let current = match self.record_in(&*view, kind, id) {
            Ok(Some(record)) => record,
            Ok(None) => return domain(Self::not_found(kind, id)),
            Err(e) => return domain(e),
        };
        if let Err(e) = precondition.check(&current) {
            return domain(e);
        }
        // Both directions of every membership this resource takes part in.
        let reads = || -> Result<_, StoreError> {
            let parents = super::member_of_in(&*view, id)?;
            let members = if kind == ResourceKind::Group {
                super::members_in(&*view, id)?
            } else {
                Vec::new()
            };
            let touched = match kind {
                ResourceKind::User => Touched::user(id),
                ResourceKind::Group => {
                    let users = super::transitive_users_in(&*view, id)?;
                    if users.len() > TOUCHED_USERS_MAX {
                        Touched::everything()
                    } else {
                        Touched {
                            users: users.into_iter().collect(),
                            ..Touched::default()
                        }
                    }
                }
            };
            Ok((parents, members, touched))
        };
        let (parents, members, touched) = match reads() {
            Ok(r) => r,
            Err(e) => return domain(e),
        };
        let now = ctx.now;
        // Every later resource moves up one place in list order.
        ctx.forget[slot(kind)] = true;
        in_savepoint(view, ctx, |txn, trails| {
            for index in indexes(kind) {
                if let Some(key) = index.key(&current.doc, id) {
                    txn.remove(index.table, &key)?;
                }
            }
            for group in &parents {
                txn.remove(Table::Members, &member_key(group, id))?;
                txn.remove(Table::MemberOf, &member_of_key(id, group))?;
                bump_group(txn, group, -1, now)?;
            }
            for (member, _) in &members {
                txn.remove(Table::MemberOf, &member_of_key(member, id))?;
                txn.remove(Table::Members, &member_key(id, member))?;
            }
            let removed = (parents.len() + members.len()) as i64;
            tx_bump(txn, Table::Meta, MEMBERSHIP_COUNT_KEY, -removed)?;
            txn.remove(table(kind), id.as_bytes())?;
            tx_bump(txn, Table::Meta, count_key(kind), -1)?;
            let action = format!("scim.{}.delete", kind_word(kind));
            let details = json!({ "memberships_removed": removed });
            trails.push(Trail::new(caller, &action, id, details).touching(touched.clone()));
            Ok((
                Written {
                    id: id.to_string(),
                    record: current.clone(),
                    changed: true,
                    unknown_members: 0,
                    unknown_attributes: Unknowns::default(),
                },
                true,
            ))
        })
    }

    /// Reads a record through `reads`.
    pub(super) fn record_in(
        &self,
        reads: &dyn Reads,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<Record>, StoreError> {
        match reads.get(table(kind), id.as_bytes())? {
            Some(bytes) => Ok(Some(crate::store::codec::from_bytes(&bytes, table(kind))?)),
            None => Ok(None),
        }
    }
}
