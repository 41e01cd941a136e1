//! Turning a stored record into the resource a client sees: the stored document plus
//! `id`, `meta`, and the relationships the directory keeps as separate keys (users'
//! `groups`, direct and indirect; groups' `members`), each with `display` and `$ref`.

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;

use serde_json::{json, Map, Value};

use super::records::{prefix, MemberOfValue, MemberValue, Record};
use crate::scim::members::MemberKind;
use crate::scim::resource::Projection;
use crate::scim::ResourceKind;
use crate::store::codec::{pair_second, scan_json};
use crate::store::{Store, StoreError, Table};

/// How to render resources for one request.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// The SCIM base URL, e.g. `https://sync.example.com/scim/v2` (for `location`, `$ref`).
    pub base: String,
    /// `attributes` / `excludedAttributes`.
    pub projection: Projection,
}

impl RenderOptions {
    /// Everything, with `base` as the base URL.
    pub fn all(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            projection: Projection::all(),
        }
    }

    fn location(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}/{}", self.base, kind.endpoint(), id)
    }
}

/// Renders a record in full (before projection). Relationships are only read when
/// the projection asks for them.
pub fn render(
    store: &dyn Store,
    kind: ResourceKind,
    id: &str,
    record: &Record,
    options: &RenderOptions,
) -> Result<Value, StoreError> {
    let mut out = Map::new();
    let doc = record.doc.as_object();
    if let Some(schemas) = doc.and_then(|d| d.get("schemas")) {
        out.insert("schemas".into(), schemas.clone());
    } else {
        out.insert("schemas".into(), json!([kind.core_schema()]));
    }
    out.insert("id".into(), Value::String(id.to_string()));
    if let Some(ext) = doc.and_then(|d| d.get("externalId")) {
        out.insert("externalId".into(), ext.clone());
    }
    for (k, v) in doc.into_iter().flatten() {
        if k != "schemas" && k != "externalId" {
            out.insert(k.clone(), v.clone());
        }
    }
    match kind {
        ResourceKind::User if options.projection.includes("groups") => {
            let groups = user_groups(store, id, options)?;
            if !groups.is_empty() {
                out.insert("groups".into(), Value::Array(groups));
            }
        }
        ResourceKind::Group if options.projection.includes("members") => {
            let members = group_members(store, id, options)?;
            if !members.is_empty() {
                out.insert("members".into(), Value::Array(members));
            }
        }
        _ => {}
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": kind.name(),
            "created": record.created,
            "lastModified": record.modified,
            "location": options.location(kind, id),
            "version": record.etag(),
        }),
    );
    Ok(Value::Object(out))
}

fn direct_groups(
    store: &dyn Store,
    member: &str,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut out = Vec::new();
    scan_json::<MemberOfValue>(store, Table::MemberOf, &prefix(member), None, |k, v| {
        if let Some(g) = pair_second(k) {
            out.push((g.to_string(), v.display));
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// A user's groups (RFC 7643 §4.1.2): direct memberships, then groups reached
/// through nesting as `indirect`.
fn user_groups(
    store: &dyn Store,
    id: &str,
    options: &RenderOptions,
) -> Result<Vec<Value>, StoreError> {
    let mut found: BTreeMap<String, (Option<String>, &'static str)> = BTreeMap::new();
    let mut queue: Vec<String> = Vec::new();
    for (g, display) in direct_groups(store, id)? {
        queue.push(g.clone());
        found.insert(g, (display, "direct"));
    }
    let mut seen: HashSet<String> = queue.iter().cloned().collect();
    while let Some(group) = queue.pop() {
        for (parent, display) in direct_groups(store, &group)? {
            if seen.insert(parent.clone()) {
                queue.push(parent.clone());
                found.entry(parent).or_insert((display, "indirect"));
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(g, (display, kind))| {
            let mut v = json!({
                "value": g,
                "$ref": options.location(ResourceKind::Group, &g),
                "type": kind,
            });
            if let (Some(d), Some(obj)) = (display, v.as_object_mut()) {
                obj.insert("display".into(), Value::String(d));
            }
            v
        })
        .collect())
}

fn group_members(
    store: &dyn Store,
    id: &str,
    options: &RenderOptions,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    scan_json::<MemberValue>(store, Table::Members, &prefix(id), None, |k, value| {
        if let Some(m) = pair_second(k) {
            let kind: MemberKind = value.kind.into();
            let resource = match kind {
                MemberKind::User => ResourceKind::User,
                MemberKind::Group => ResourceKind::Group,
            };
            let mut item = Map::new();
            item.insert("value".into(), Value::String(m.to_string()));
            item.insert("$ref".into(), Value::String(options.location(resource, m)));
            item.insert("type".into(), Value::String(kind.as_str().into()));
            if let Some(d) = value.display {
                item.insert("display".into(), Value::String(d));
            }
            out.push(Value::Object(item));
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}
