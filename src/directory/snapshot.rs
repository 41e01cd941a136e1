//! The directory as the rule table reads it: a lean [`Snapshot`] of users (id,
//! userName, active, downstream email, and only the attributes the rule filters
//! read) and groups (ids, names, direct members).
//!
//! [`Directory::snapshot`] reads everything (a full reconcile);
//! [`Directory::snapshot_for`] reads just what decides the access of some users (the
//! event path): those users, and the groups above them through nesting.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use serde_json::Value;

use super::records::{MemberKindTag, MemberValue, Record};
use super::{Directory, RenderOptions};
use crate::rules::{Snapshot, SnapshotGroup, SnapshotUser};
use crate::scim::members::MemberKind;
use crate::scim::resource::Projection;
use crate::scim::schema::AttrPath;
use crate::scim::ResourceKind;
use crate::store::codec::scan_json;
use crate::store::{StoreError, Table};

/// The address Cowork knows a user by: the primary email, else the work email, else
/// the first email, else a `userName` that looks like an email.
pub fn downstream_email(doc: &Value) -> Option<String> {
    let emails = doc.get("emails").and_then(Value::as_array);
    let value_of = |e: &Value| e.get("value").and_then(Value::as_str).map(str::to_string);
    let pick = emails.and_then(|list| {
        list.iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| {
                list.iter()
                    .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))
            })
            .or_else(|| list.first())
            .and_then(value_of)
    });
    pick.or_else(|| {
        doc.get("userName")
            .and_then(Value::as_str)
            .filter(|u| u.contains('@'))
            .map(str::to_string)
    })
}

impl Directory {
    fn snapshot_user(
        &self,
        id: &str,
        record: &Record,
        project: &dyn Fn(&Value) -> Value,
        eval: &RenderOptions,
    ) -> Result<SnapshotUser, StoreError> {
        let attributes = {
            let rendered =
                super::render::render(self.store().as_ref(), ResourceKind::User, id, record, eval)?;
            project(&rendered)
        };
        Ok(SnapshotUser {
            id: id.to_string(),
            user_name: record.str_attr("userName").unwrap_or_default().to_string(),
            // SCIM leaves `active` optional; a user provisioned without it is active.
            active: record
                .doc
                .get("active")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            email: downstream_email(&record.doc),
            attributes,
        })
    }

    fn eval_options(&self, needs_groups: bool) -> RenderOptions {
        RenderOptions {
            base: String::new(),
            projection: if needs_groups {
                Projection::all()
            } else {
                Projection {
                    attributes: Vec::new(),
                    excluded: vec![AttrPath::new("groups", None)],
                }
            },
        }
    }

    /// Every user and group. `project` reduces a rendered user to what the rule
    /// filters read (`ValidRuleTable::project_user`); `needs_groups` renders users'
    /// `groups` first when a filter reads them.
    pub fn snapshot(
        &self,
        project: &dyn Fn(&Value) -> Value,
        needs_groups: bool,
    ) -> Result<Snapshot, StoreError> {
        let eval = self.eval_options(needs_groups);
        let mut users = Vec::new();
        let mut failed = None;
        scan_json::<Record>(
            self.store().as_ref(),
            Table::Users,
            b"",
            None,
            |k, record| {
                let id = String::from_utf8_lossy(k).into_owned();
                match self.snapshot_user(&id, &record, project, &eval) {
                    Ok(u) => {
                        users.push(u);
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        let mut groups: BTreeMap<String, SnapshotGroup> = BTreeMap::new();
        scan_json::<Record>(
            self.store().as_ref(),
            Table::Groups,
            b"",
            None,
            |k, record| {
                let id = String::from_utf8_lossy(k).into_owned();
                groups.insert(id.clone(), empty_group(id, &record));
                ControlFlow::Continue(())
            },
        )?;
        // One pass over every membership.
        scan_json::<MemberValue>(
            self.store().as_ref(),
            Table::Members,
            b"",
            None,
            |k, value| {
                let Some(at) = k.iter().position(|b| *b == 0) else {
                    return ControlFlow::Continue(());
                };
                let group = String::from_utf8_lossy(&k[..at]);
                let member = String::from_utf8_lossy(&k[at + 1..]).into_owned();
                if let Some(g) = groups.get_mut(group.as_ref()) {
                    match value.kind {
                        MemberKindTag::User => g.member_users.push(member),
                        MemberKindTag::Group => g.member_groups.push(member),
                    }
                }
                ControlFlow::Continue(())
            },
        )?;
        Ok(Snapshot {
            users,
            groups: groups.into_values().collect(),
        })
    }

    /// What decides the access of `user_ids`: those users (the ones that still
    /// exist), and every group they are in directly or through nesting, with member
    /// lists restricted to these users and groups.
    pub fn snapshot_for(
        &self,
        user_ids: &BTreeSet<String>,
        project: &dyn Fn(&Value) -> Value,
        needs_groups: bool,
    ) -> Result<Snapshot, StoreError> {
        let eval = self.eval_options(needs_groups);
        let mut users = Vec::new();
        let mut groups: BTreeMap<String, SnapshotGroup> = BTreeMap::new();
        let mut queue: Vec<(String, String)> = Vec::new();
        for id in user_ids {
            let Some(record) = self.record(ResourceKind::User, id)? else {
                continue;
            };
            users.push(self.snapshot_user(id, &record, project, &eval)?);
            for group in self.member_of(id)? {
                queue.push((group, id.clone()));
            }
        }
        // Walk up: each (group, member) edge; the member is a user on the first step
        // and a group afterwards.
        let mut seen_edges = BTreeSet::new();
        let user_set: BTreeSet<&String> = users.iter().map(|u| &u.id).collect();
        while let Some((group, member)) = queue.pop() {
            if !seen_edges.insert((group.clone(), member.clone())) {
                continue;
            }
            let first_visit = !groups.contains_key(&group);
            if first_visit {
                let Some(record) = self.record(ResourceKind::Group, &group)? else {
                    continue;
                };
                groups.insert(group.clone(), empty_group(group.clone(), &record));
                for parent in self.member_of(&group)? {
                    queue.push((parent, group.clone()));
                }
            }
            if let Some(g) = groups.get_mut(&group) {
                if user_set.contains(&member) {
                    g.member_users.push(member);
                } else {
                    g.member_groups.push(member);
                }
            }
        }
        Ok(Snapshot {
            users,
            groups: groups.into_values().collect(),
        })
    }

    /// Direct members of a group by kind (for callers that need only ids).
    pub fn member_ids(&self, group: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let mut users = Vec::new();
        let mut groups = Vec::new();
        for (id, kind) in self.members(group)? {
            match kind {
                MemberKind::User => users.push(id),
                MemberKind::Group => groups.push(id),
            }
        }
        Ok((users, groups))
    }
}

fn empty_group(id: String, record: &Record) -> SnapshotGroup {
    SnapshotGroup {
        id,
        external_id: record.str_attr("externalId").map(str::to_string),
        display_name: record
            .str_attr("displayName")
            .unwrap_or_default()
            .to_string(),
        member_users: Vec::new(),
        member_groups: Vec::new(),
    }
}
