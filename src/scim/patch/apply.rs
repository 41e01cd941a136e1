//! Applying a parsed request to a stored document: the [`Engine`] that walks the
//! operations, resolves each path to its slot (top level or extension object), and
//! finishes with the schemas bookkeeping, the required and immutable checks and the
//! change set.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{PatchOpKind, PatchOperation, PatchOutcome, PatchPath, PatchRequest};
use crate::scim::members::MemberOp;
use crate::scim::schema::{
    AttributeDef, Container, Mutability, ResourceKind, SchemaRegistry, COMMON_SCHEMA,
};
use crate::scim::unknown::Unknowns;
use crate::scim::value::json_kind;
use crate::scim::ScimError;

use super::parse::parse_patch_path;
use super::targets::eq_conjuncts;

/// Applies a parsed request to a stored document, atomically: on any error only the
/// error is returned and the caller keeps the old document.
///
/// `id` is the resource's id (an `id` equal to it in a value is ignored; any other is
/// a `mutability` error). Errors: `invalidPath` (unknown attribute), `mutability`
/// (read-only or immutable target, removing a required attribute — RFC 7644
/// §3.5.2.2), `invalidValue` (wrong value type), `noTarget` (a filter on `replace`
/// or `add` matched nothing and could not create a value), `invalidFilter` (a
/// `members` removal filter other than `value eq` joined by `or`).
pub fn apply(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    id: &str,
    document: &Value,
    request: &PatchRequest,
) -> Result<PatchOutcome, ScimError> {
    let Value::Object(old) = document else {
        return Err(ScimError::InvalidValue(
            "the stored resource is not an object".into(),
        ));
    };
    let mut engine = Engine {
        registry,
        kind,
        id,
        doc: old.clone(),
        member_ops: Vec::new(),
        unknown: request.unknown.clone(),
    };
    for (i, operation) in request.operations.iter().enumerate() {
        engine
            .operation(operation)
            .map_err(|e| prefix_any(e, &format!("'Operations[{i}]'")))?;
    }
    engine.finish(old)
}

fn prefix_any(err: ScimError, prefix: &str) -> ScimError {
    match err {
        ScimError::InvalidFilter(d) => ScimError::InvalidFilter(format!("{prefix}: {d}")),
        ScimError::Mutability(d) => ScimError::Mutability(format!("{prefix}: {d}")),
        ScimError::InvalidSyntax(d) => ScimError::InvalidSyntax(format!("{prefix}: {d}")),
        ScimError::InvalidPath(d) => ScimError::InvalidPath(format!("{prefix}: {d}")),
        ScimError::NoTarget(d) => ScimError::NoTarget(format!("{prefix}: {d}")),
        ScimError::InvalidValue(d) => ScimError::InvalidValue(format!("{prefix}: {d}")),
        other => other,
    }
}

pub(super) struct Engine<'a> {
    pub(super) registry: &'a SchemaRegistry,
    pub(super) kind: ResourceKind,
    pub(super) id: &'a str,
    pub(super) doc: Map<String, Value>,
    pub(super) member_ops: Vec<MemberOp>,
    /// What the request dropped so far (seeded with what [`parse`](super::parse) dropped).
    pub(super) unknown: Unknowns,
}

/// Where an attribute's value lives: the top level or an extension object.
#[derive(Clone, Copy)]
pub(super) struct Slot<'a> {
    pub(super) container: Container<'a>,
    pub(super) name: &'a str,
}

impl<'a> Engine<'a> {
    fn operation(&mut self, operation: &PatchOperation) -> Result<(), ScimError> {
        match &operation.path {
            Some(path) => self.at_path(operation.op, path, operation.value.clone(), false),
            None => {
                let Some(Value::Object(values)) = &operation.value else {
                    return Err(match operation.op {
                        PatchOpKind::Remove => ScimError::NoTarget("remove needs a 'path'".into()),
                        _ => ScimError::InvalidValue(
                            "without a 'path' the value must be an object of attributes".into(),
                        ),
                    });
                };
                if operation.op == PatchOpKind::Remove {
                    return Err(ScimError::NoTarget("remove needs a 'path'".into()));
                }
                for (key, value) in values {
                    if key.eq_ignore_ascii_case("schemas") {
                        // We keep `schemas` ourselves.
                        continue;
                    }
                    let Some(path) =
                        parse_patch_path(self.registry, self.kind, key, &mut self.unknown)?
                    else {
                        continue;
                    };
                    self.at_path(operation.op, &path, Some(value.clone()), true)?;
                }
                Ok(())
            }
        }
    }

    fn at_path(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<Value>,
        pathless: bool,
    ) -> Result<(), ScimError> {
        if path.attr.attr.is_empty() {
            return self.extension_object(op, path, value);
        }
        let registry = self.registry;
        let resolved = registry
            .resolve(self.kind, &path.attr)
            .ok_or_else(|| ScimError::InvalidPath(format!("unknown attribute '{}'", path.attr)))?;
        let attr = resolved.attr;
        let common = resolved.schema.id == COMMON_SCHEMA
            || (resolved.container == Container::Top
                && registry.common().attr(&attr.name).is_some());
        if common && attr.name == "id" {
            // Okta's group rename carries the resource's own id: ignore it.
            if op != PatchOpKind::Remove
                && path.attr.sub.is_none()
                && value.as_ref().and_then(Value::as_str) == Some(self.id)
            {
                return Ok(());
            }
            return Err(ScimError::Mutability("'id' is read-only".into()));
        }
        if common && attr.name == "meta" && pathless {
            return Ok(());
        }
        if self.kind == ResourceKind::Group
            && resolved.container == Container::Top
            && attr.name == "members"
        {
            return self.members(op, path, value);
        }
        if attr.mutability == Mutability::WriteOnly {
            // `password`: accepted and never stored, as on POST and PUT.
            return Ok(());
        }
        if attr.mutability == Mutability::ReadOnly {
            return Err(ScimError::Mutability(format!(
                "'{}' is read-only",
                attr.name
            )));
        }
        let sub_name = path.sub.as_deref().or(path.attr.sub.as_deref());
        let sub = match sub_name {
            Some(name) => Some(attr.sub_attr(name).ok_or_else(|| {
                ScimError::InvalidPath(format!("'{}' has no sub-attribute '{name}'", attr.name))
            })?),
            None => None,
        };
        if let Some(sub) = sub {
            if sub.mutability == Mutability::ReadOnly {
                return Err(ScimError::Mutability(format!(
                    "'{}.{}' is read-only",
                    attr.name, sub.name
                )));
            }
        }
        let value = match (op, value) {
            (PatchOpKind::Remove, v) => v,
            (_, Some(v)) => Some(v),
            (_, None) => {
                return Err(ScimError::InvalidValue(format!(
                    "'{}' needs a 'value'",
                    attr.name
                )))
            }
        };
        let slot = Slot {
            container: resolved.container,
            name: &attr.name,
        };
        if attr.multi_valued {
            let filter = match &path.filter {
                Some(f) => Some(f.validate_within(registry, self.kind, &path.attr)?),
                None => None,
            };
            if filter.is_none() && sub.is_none() {
                self.multi_whole(op, slot, attr, value)
            } else {
                let create = match (&path.filter, sub) {
                    (Some(f), Some(_)) => eq_conjuncts(f, attr),
                    _ => None,
                };
                self.multi_selected(op, slot, attr, filter.as_ref(), sub, create, value)
            }
        } else {
            match sub {
                None => self.single_whole(op, slot, attr, value),
                Some(sub) => self.single_sub(op, slot, attr, sub, value),
            }
        }
    }

    /// A path that is exactly an extension URN: its value is an object of that
    /// extension's attributes; `remove` drops the whole extension.
    fn extension_object(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<Value>,
    ) -> Result<(), ScimError> {
        let urn = path.attr.urn.clone().unwrap_or_default();
        if self.registry.schema_for(self.kind, &urn).is_none()
            || urn.eq_ignore_ascii_case(self.kind.core_schema())
        {
            return Err(ScimError::InvalidPath(
                "a path may only be a schema URN for an extension".into(),
            ));
        }
        let values = match (op, value) {
            (PatchOpKind::Remove, _) | (PatchOpKind::Replace, Some(Value::Null)) => {
                self.doc.remove(&urn);
                return Ok(());
            }
            (PatchOpKind::Add, Some(Value::Null)) => return Ok(()),
            (_, Some(Value::Object(values))) => values,
            (_, Some(other)) => {
                return Err(ScimError::InvalidValue(format!(
                    "an extension's value must be an object, not {}",
                    json_kind(&other)
                )))
            }
            (_, None) => return Err(ScimError::InvalidValue("a value is required".into())),
        };
        for (key, v) in values {
            if key.eq_ignore_ascii_case("schemas") {
                // Clients that serialize the extension as a model echo its URN here.
                continue;
            }
            let Some(sub_path) = parse_patch_path(
                self.registry,
                self.kind,
                &format!("{urn}:{key}"),
                &mut self.unknown,
            )?
            else {
                continue;
            };
            self.at_path(op, &sub_path, Some(v), true)?;
        }
        Ok(())
    }

    /// Takes an attribute's value out of the document (to change it in place and
    /// write it back; on an error the whole engine is dropped, so nothing is lost).
    pub(super) fn take(&mut self, slot: Slot<'_>) -> Option<Value> {
        match slot.container {
            Container::Top => self.doc.remove(slot.name),
            Container::Extension(urn) => self.doc.get_mut(urn)?.as_object_mut()?.remove(slot.name),
        }
    }

    /// Writes back an array taken with [`Engine::take`] and left unchanged.
    pub(super) fn put_back(&mut self, slot: Slot<'_>, items: Vec<Value>) {
        self.write(slot, (!items.is_empty()).then_some(Value::Array(items)));
    }

    pub(super) fn read(&self, slot: Slot<'_>) -> Option<&Value> {
        match slot.container {
            Container::Top => self.doc.get(slot.name),
            Container::Extension(urn) => self.doc.get(urn)?.as_object()?.get(slot.name),
        }
    }

    pub(super) fn write(&mut self, slot: Slot<'_>, value: Option<Value>) {
        let target = match slot.container {
            Container::Top => &mut self.doc,
            Container::Extension(urn) => {
                let entry = self
                    .doc
                    .entry(urn.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                match entry {
                    Value::Object(map) => map,
                    _ => return,
                }
            }
        };
        match value {
            Some(v) => {
                target.insert(slot.name.to_string(), v);
            }
            None => {
                target.remove(slot.name);
            }
        }
    }

    /// Schemas bookkeeping, the required and immutable checks, and the change set.
    fn finish(mut self, old: &Map<String, Value>) -> Result<PatchOutcome, ScimError> {
        let registry = self.registry;
        let kind = self.kind;
        let core = registry.core(kind);
        for extension in registry.extensions(kind) {
            let has_data = match self.doc.get(&extension.id) {
                Some(Value::Object(map)) => !map.is_empty(),
                Some(_) => true,
                None => false,
            };
            if !has_data {
                self.doc.remove(&extension.id);
            }
            set_schema(&mut self.doc, &extension.id, has_data);
        }
        set_schema(&mut self.doc, &core.id, true);

        // RFC 7644 §3.5.2.2: a required attribute that becomes unassigned is a
        // mutability error.
        for attr in core.attributes.iter().filter(|a| a.required) {
            match self.doc.get(&attr.name) {
                None if old.contains_key(&attr.name) => {
                    return Err(ScimError::Mutability(format!(
                        "'{}' is required and cannot be removed",
                        attr.name
                    )))
                }
                Some(Value::String(s))
                    if s.trim().is_empty() && old.get(&attr.name) != self.doc.get(&attr.name) =>
                {
                    return Err(ScimError::InvalidValue(format!(
                        "'{}' must not be empty",
                        attr.name
                    )))
                }
                _ => {}
            }
        }

        let mut changed = BTreeSet::new();
        let keys: BTreeSet<&String> = old.keys().chain(self.doc.keys()).collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            let (before, after) = (old.get(key), self.doc.get(key));
            if let Some(extension) = registry.extensions(kind).into_iter().find(|s| s.id == *key) {
                let empty = Map::new();
                let before = before.and_then(Value::as_object).unwrap_or(&empty);
                let after = after.and_then(Value::as_object).unwrap_or(&empty);
                let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
                for name in names {
                    if before.get(name) != after.get(name) {
                        if let Some(def) = extension.attr(name) {
                            check_immutable(def, before.get(name), after.get(name))?;
                        }
                        changed.insert(format!("{key}:{name}"));
                    }
                }
            } else if before != after {
                if let Some(def) = core.attr(key) {
                    check_immutable(def, before, after)?;
                }
                changed.insert(key.clone());
            }
        }
        if !self.member_ops.is_empty() {
            changed.insert("members".into());
        }
        Ok(PatchOutcome {
            document: Value::Object(self.doc),
            member_ops: self.member_ops,
            changed,
            unknown: self.unknown,
        })
    }
}

/// Immutable attributes may be set while unassigned, never changed (RFC 7643 §7).
fn check_immutable(
    def: &AttributeDef,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), ScimError> {
    if def.mutability == Mutability::Immutable && before.is_some() && before != after {
        return Err(ScimError::Mutability(format!(
            "'{}' is immutable",
            def.name
        )));
    }
    if let (Some(Value::Object(b)), Some(Value::Object(a))) = (before, after) {
        for sub in def
            .sub_attributes
            .iter()
            .filter(|s| s.mutability == Mutability::Immutable)
        {
            if b.contains_key(&sub.name) && b.get(&sub.name) != a.get(&sub.name) {
                return Err(ScimError::Mutability(format!(
                    "'{}.{}' is immutable",
                    def.name, sub.name
                )));
            }
        }
    }
    Ok(())
}

fn set_schema(doc: &mut Map<String, Value>, urn: &str, present: bool) {
    let list = doc
        .entry("schemas".to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let Value::Array(list) = list else { return };
    let has = |v: &Value| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn));
    if present {
        if !list.iter().any(has) {
            list.push(Value::String(urn.to_string()));
        }
    } else {
        list.retain(|v| !has(v));
    }
}
