//! The RFC 7644 §3.5.2 PATCH engine: parses a PatchOp request and applies it to a
//! resource's stored document, atomically, with no I/O.
//!
//! The stored document holds canonical attribute names, `schemas` (core URN plus the
//! extension URNs that have data), `externalId`, core attributes at the top level and
//! extension attributes under their URN. It never holds `id`, `meta`, `password`, a
//! user's `groups` or a group's `members`: every operation on `members` becomes a
//! [`MemberOp`] delta, in request order, so a change costs the size of the change and
//! never the size of the group.
//!
//! Input tolerance for what Okta and Entra really send lives here:
//! - `op` and the structural keys (`schemas`, `Operations`, `op`, `path`, `value`) match
//!   case-insensitively (Entra sends `Add`/`Replace`/`Remove`); other keys in an
//!   operation (`"name": "addMember"`) are ignored; a missing `schemas` is tolerated,
//!   a `schemas` without the PatchOp URN is not; an empty `Operations` is a no-op
//!   (Microsoft's validator sends one).
//! - A path-less `add`/`replace` value may use plain names, dotted sub-attribute paths
//!   (`"name.givenName"`), URN-qualified paths (Entra's `aadOptscim062020`), value
//!   paths, or an extension URN whose value is an object.
//! - An `id` equal to the resource's id is ignored (Okta's group rename); `meta` and
//!   `schemas` in a path-less value are ignored as echoes; `password` (write-only,
//!   never stored) is accepted and ignored, as on POST and PUT.
//! - Values go through [`coerce`] (string booleans, Entra's bare-string `manager`,
//!   `{"value": ""}` as removal); a one-element array given for a single-valued
//!   attribute is unwrapped (Entra's tutorial sends `manager` as `[{...}]`).
//! - `emails[type eq "work"].value` on `add` or `replace` that matches no element
//!   creates `{"type": "work", "value": ...}` when the filter is `eq` comparisons
//!   joined by `and` (Entra relies on this); otherwise a filter that matches nothing
//!   is `noTarget` (RFC 7644 §3.5.2.3).
//! - `remove` is idempotent: a filter that matches nothing removes nothing.
//! - `remove` path `members` with a value list (Entra's default) removes those members.
//!
//! Must not import actix, sled, reqwest or anything outside `crate::scim`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::filter::{CompValue, CompareOp, Filter, ValidFilter};
use super::members::{parse_member_list, MemberOp};
use super::schema::{
    AttrPath, AttributeDef, Container, Mutability, ResourceKind, SchemaRegistry, COMMON_SCHEMA,
    PATCH_OP_SCHEMA,
};
use super::value::{check_value_count, coerce, coerce_single, json_kind};
use super::ScimError;

/// Most operations one PATCH request may carry (documented in docs/idp-setup.md);
/// more is `400 tooMany`. With [`super::value::MAX_VALUES`] bounding each
/// multi-valued attribute, every operation costs a bounded amount of work.
pub const MAX_OPERATIONS: usize = 10_000;

/// The three PATCH operations of RFC 7644 §3.5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    /// `add` (§3.5.2.1).
    Add,
    /// `remove` (§3.5.2.2).
    Remove,
    /// `replace` (§3.5.2.3).
    Replace,
}

/// A parsed, schema-checked PATCH path: `attrPath` or `valuePath [ "." subAttr ]`.
///
/// `attr` is canonical (canonical names; `urn` set only for extension attributes) and
/// may carry a sub-attribute when there is no filter (`name.givenName`). With a
/// filter, `attr` is the multi-valued attribute, `filter` the value filter and `sub`
/// the sub-attribute after the closing bracket (`emails[type eq "work"].value`).
/// A path that is exactly an extension URN has `attr.attr == ""`.
#[derive(Debug, Clone)]
pub struct PatchPath {
    /// The attribute (and, without a filter, its sub-attribute).
    pub attr: AttrPath,
    /// The value-selection filter, for multi-valued attributes.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter.
    pub sub: Option<String>,
}

/// One operation of a PATCH request.
#[derive(Debug, Clone)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOpKind,
    /// Where; `None` means the resource itself (not allowed for `remove`).
    pub path: Option<PatchPath>,
    /// The value; `None` when the request had no `value` member (explicit `null` is
    /// `Some(Value::Null)`).
    pub value: Option<Value>,
}

/// A parsed PATCH request (RFC 7644 §3.5.2).
#[derive(Debug, Clone)]
pub struct PatchRequest {
    /// The operations, in request order.
    pub operations: Vec<PatchOperation>,
}

/// The result of applying a PATCH.
#[derive(Debug, Clone)]
pub struct PatchOutcome {
    /// The new stored document.
    pub document: Value,
    /// Membership deltas, groups only, in request order.
    pub member_ops: Vec<MemberOp>,
    /// Attributes whose value changed, for the audit trail: canonical core names
    /// (`displayName`, `externalId`), extension attributes as full URN paths
    /// (`urn:...:enterprise:2.0:User:manager`), and `members` when there are member ops.
    pub changed: BTreeSet<String>,
}

/// Parses and checks a PATCH request body (RFC 7644 §3.5.2).
///
/// - The body must be an object with an `Operations` array (`invalidSyntax`
///   otherwise); an empty array is accepted as a no-op.
/// - `schemas` may be missing; if present it must contain the PatchOp URN
///   (`invalidSyntax`).
/// - `op` is `add`, `remove` or `replace` in any case (`invalidSyntax` otherwise).
/// - `path` must parse and name an attribute of this resource type (`invalidPath`,
///   also for a malformed value filter); an empty `path` counts as absent.
/// - `remove` without a path is `noTarget`; `add`/`replace` without a `value` member
///   is `invalidValue`, as is a path-less value that is not an object.
///
/// Mutability and value types are checked by [`apply`].
pub fn parse(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    body: Value,
) -> Result<PatchRequest, ScimError> {
    let Value::Object(body) = body else {
        return Err(ScimError::InvalidSyntax(format!(
            "a PATCH body must be a JSON object, not {}",
            json_kind(&body)
        )));
    };
    let mut schemas = None;
    let mut operations = None;
    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            schemas = Some(value);
        } else if key.eq_ignore_ascii_case("Operations") {
            operations = Some(value);
        }
    }
    match schemas {
        None => {}
        Some(Value::Array(list))
            if list.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            }) => {}
        Some(Value::String(s)) if s.eq_ignore_ascii_case(PATCH_OP_SCHEMA) => {}
        Some(_) => {
            return Err(ScimError::InvalidSyntax(format!(
                "'schemas' must contain '{PATCH_OP_SCHEMA}'"
            )))
        }
    }
    let operations = match operations {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ScimError::InvalidSyntax(format!(
                "'Operations' must be an array, not {}",
                json_kind(&other)
            )))
        }
        None => {
            return Err(ScimError::InvalidSyntax(
                "a PATCH body needs an 'Operations' array".into(),
            ))
        }
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::TooMany(format!(
            "a PATCH request may carry at most {MAX_OPERATIONS} operations, not {}",
            operations.len()
        )));
    }
    let operations = operations
        .into_iter()
        .enumerate()
        .map(|(i, op)| parse_operation(registry, kind, i, op))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PatchRequest { operations })
}

fn parse_operation(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    i: usize,
    op: Value,
) -> Result<PatchOperation, ScimError> {
    let Value::Object(object) = op else {
        return Err(ScimError::InvalidSyntax(format!(
            "'Operations[{i}]' must be an object"
        )));
    };
    let mut op_kind = None;
    let mut path = None;
    let mut value = None;
    for (key, v) in object {
        if key.eq_ignore_ascii_case("op") {
            op_kind = Some(v);
        } else if key.eq_ignore_ascii_case("path") {
            path = Some(v);
        } else if key.eq_ignore_ascii_case("value") {
            value = Some(v);
        }
        // Anything else (Microsoft's `"name": "addMember"`) is ignored.
    }
    let op = match op_kind {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("add") => PatchOpKind::Add,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("remove") => PatchOpKind::Remove,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("replace") => PatchOpKind::Replace,
        Some(_) => {
            return Err(ScimError::InvalidSyntax(format!(
                "'Operations[{i}].op' must be 'add', 'remove' or 'replace'"
            )))
        }
        None => {
            return Err(ScimError::InvalidSyntax(format!(
                "'Operations[{i}]' has no 'op'"
            )))
        }
    };
    let path = match path {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            parse_patch_path(registry, kind, &s)
                .map_err(|e| prefix_detail(e, &format!("'Operations[{i}].path'")))?,
        ),
        Some(other) => {
            return Err(ScimError::InvalidPath(format!(
                "'Operations[{i}].path' must be a string, not {}",
                json_kind(&other)
            )))
        }
    };
    match (op, &path, &value) {
        (PatchOpKind::Remove, None, _) => {
            // RFC 7644 §3.5.2.2: remove without a path fails with noTarget.
            return Err(ScimError::NoTarget(format!(
                "'Operations[{i}]' is a remove without a 'path'"
            )));
        }
        (PatchOpKind::Add | PatchOpKind::Replace, _, None) => {
            return Err(ScimError::InvalidValue(format!(
                "'Operations[{i}]' needs a 'value'"
            )));
        }
        (PatchOpKind::Add | PatchOpKind::Replace, None, Some(v)) if !v.is_object() => {
            return Err(ScimError::InvalidValue(format!(
                "'Operations[{i}].value' must be an object of attributes when there is no 'path', not {}",
                json_kind(v)
            )));
        }
        _ => {}
    }
    Ok(PatchOperation { op, path, value })
}

fn prefix_detail(err: ScimError, prefix: &str) -> ScimError {
    match err {
        ScimError::InvalidPath(d) => ScimError::InvalidPath(format!("{prefix}: {d}")),
        ScimError::InvalidFilter(d) => ScimError::InvalidFilter(format!("{prefix}: {d}")),
        other => other,
    }
}

/// Splits `attr[filter].sub` into its three parts, honouring quoted strings in the
/// filter. Without brackets the whole text is the attribute path.
fn split_value_path(text: &str) -> Result<(&str, Option<&str>, Option<&str>), ScimError> {
    let Some(open) = text.find('[') else {
        if text.contains(']') {
            return Err(ScimError::InvalidPath("unbalanced ']' in path".into()));
        }
        return Ok((text, None, None));
    };
    let mut close = None;
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in text[open + 1..].char_indices() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' => {
                return Err(ScimError::InvalidPath(
                    "nested '[' in a value filter".into(),
                ))
            }
            ']' => {
                close = Some(open + 1 + at);
                break;
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return Err(ScimError::InvalidPath("unclosed '[' in path".into()));
    };
    let filter = &text[open + 1..close];
    if filter.trim().is_empty() {
        return Err(ScimError::InvalidPath("empty value filter".into()));
    }
    let rest = &text[close + 1..];
    let sub = if rest.is_empty() {
        None
    } else if let Some(sub) = rest.strip_prefix('.') {
        Some(sub)
    } else {
        return Err(ScimError::InvalidPath(
            "only '.subAttribute' may follow a value filter".into(),
        ));
    };
    Ok((&text[..open], Some(filter), sub))
}

/// Parses and resolves a PATCH path (RFC 7644 §3.5.2 `PATH`).
fn parse_patch_path(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    text: &str,
) -> Result<PatchPath, ScimError> {
    let text = text.trim();
    let (attr_text, filter_text, sub_text) = split_value_path(text)?;
    let raw = registry
        .parse_path(kind, attr_text)
        .map_err(ScimError::InvalidPath)?;
    if raw.attr.is_empty() {
        // The whole extension object.
        if filter_text.is_some() {
            return Err(ScimError::InvalidPath(
                "a schema URN cannot take a value filter".into(),
            ));
        }
        return Ok(PatchPath {
            attr: raw,
            filter: None,
            sub: None,
        });
    }
    let resolved = registry
        .resolve(kind, &raw)
        .ok_or_else(|| ScimError::InvalidPath(format!("unknown attribute '{attr_text}'")))?;
    let attr = AttrPath {
        urn: match resolved.container {
            Container::Top => None,
            Container::Extension(urn) => Some(urn.to_string()),
        },
        attr: resolved.attr.name.clone(),
        sub: resolved.sub.map(|s| s.name.clone()),
    };
    let Some(filter_text) = filter_text else {
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    };
    if attr.sub.is_some() || !resolved.attr.multi_valued {
        return Err(ScimError::InvalidPath(format!(
            "a value filter needs a multi-valued attribute; '{}' is not one",
            resolved.leaf().name
        )));
    }
    let filter = Filter::parse(filter_text).map_err(|e| {
        ScimError::InvalidPath(format!(
            "invalid value filter on '{}': {}",
            attr.attr,
            e.detail()
        ))
    })?;
    filter.validate_within(registry, kind, &attr).map_err(|e| {
        ScimError::InvalidPath(format!(
            "invalid value filter on '{}': {}",
            attr.attr,
            e.detail()
        ))
    })?;
    let sub = match sub_text {
        None => None,
        Some(name) => Some(
            resolved
                .attr
                .sub_attr(name)
                .ok_or_else(|| {
                    ScimError::InvalidPath(format!("'{}' has no sub-attribute '{name}'", attr.attr))
                })?
                .name
                .clone(),
        ),
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

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

struct Engine<'a> {
    registry: &'a SchemaRegistry,
    kind: ResourceKind,
    id: &'a str,
    doc: Map<String, Value>,
    member_ops: Vec<MemberOp>,
}

/// Where an attribute's value lives: the top level or an extension object.
#[derive(Clone, Copy)]
struct Slot<'a> {
    container: Container<'a>,
    name: &'a str,
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
                    let path = parse_patch_path(self.registry, self.kind, key)?;
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
            let sub_path = parse_patch_path(self.registry, self.kind, &format!("{urn}:{key}"))?;
            self.at_path(op, &sub_path, Some(v), true)?;
        }
        Ok(())
    }

    /// Takes an attribute's value out of the document (to change it in place and
    /// write it back; on an error the whole engine is dropped, so nothing is lost).
    fn take(&mut self, slot: Slot<'_>) -> Option<Value> {
        match slot.container {
            Container::Top => self.doc.remove(slot.name),
            Container::Extension(urn) => self.doc.get_mut(urn)?.as_object_mut()?.remove(slot.name),
        }
    }

    /// Writes back an array taken with [`Engine::take`] and left unchanged.
    fn put_back(&mut self, slot: Slot<'_>, items: Vec<Value>) {
        self.write(slot, (!items.is_empty()).then_some(Value::Array(items)));
    }

    fn read(&self, slot: Slot<'_>) -> Option<&Value> {
        match slot.container {
            Container::Top => self.doc.get(slot.name),
            Container::Extension(urn) => self.doc.get(urn)?.as_object()?.get(slot.name),
        }
    }

    fn write(&mut self, slot: Slot<'_>, value: Option<Value>) {
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

    /// A single-valued attribute as a whole (RFC 7644 §3.5.2.1, §3.5.2.3): add and
    /// replace set it; for a complex attribute the given sub-attributes are merged
    /// into the existing ones, except that a new `value` (a different reference,
    /// like `manager`) replaces the whole object.
    fn single_whole(
        &mut self,
        op: PatchOpKind,
        slot: Slot<'_>,
        attr: &AttributeDef,
        value: Option<Value>,
    ) -> Result<(), ScimError> {
        if op == PatchOpKind::Remove {
            self.write(slot, None);
            return Ok(());
        }
        let value = match value.unwrap_or(Value::Null) {
            // Entra's tutorial sends `manager` as a one-element array.
            Value::Array(mut items) if items.len() <= 1 => items.pop().unwrap_or(Value::Null),
            other => other,
        };
        let new = coerce(attr, value, &attr.name)?;
        let merged = match (new, self.read(slot)) {
            (Some(Value::Object(new)), Some(Value::Object(old))) => {
                let same_ref = match (new.get("value"), old.get("value")) {
                    (Some(n), Some(o)) => n == o,
                    _ => true,
                };
                if same_ref {
                    let mut merged = old.clone();
                    merged.extend(new);
                    Some(Value::Object(merged))
                } else {
                    Some(Value::Object(new))
                }
            }
            (new, _) => new,
        };
        self.write(slot, merged);
        Ok(())
    }

    /// A sub-attribute of a single-valued complex attribute (`name.givenName`).
    fn single_sub(
        &mut self,
        op: PatchOpKind,
        slot: Slot<'_>,
        attr: &AttributeDef,
        sub: &AttributeDef,
        value: Option<Value>,
    ) -> Result<(), ScimError> {
        let new = match op {
            PatchOpKind::Remove => None,
            _ => coerce(
                sub,
                value.unwrap_or(Value::Null),
                &format!("{}.{}", attr.name, sub.name),
            )?,
        };
        let mut object = match self.read(slot) {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        match new {
            Some(v) => {
                object.insert(sub.name.clone(), v);
            }
            None => {
                object.remove(&sub.name);
            }
        }
        let is_empty = object.is_empty();
        self.write(slot, (!is_empty).then_some(Value::Object(object)));
        Ok(())
    }

    /// A multi-valued attribute as a whole: add appends values not already present,
    /// replace replaces the array, remove unassigns it — or, given a value list,
    /// removes the elements that contain one of the listed values.
    fn multi_whole(
        &mut self,
        op: PatchOpKind,
        slot: Slot<'_>,
        attr: &AttributeDef,
        value: Option<Value>,
    ) -> Result<(), ScimError> {
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let mut written = Vec::new();
        match op {
            PatchOpKind::Remove => match value {
                None | Some(Value::Null) => items.clear(),
                Some(v) => {
                    let Some(Value::Array(remove)) = coerce(attr, v, &attr.name)? else {
                        self.put_back(slot, items);
                        return Ok(());
                    };
                    items.retain(|item| !remove.iter().any(|r| contains(item, r)));
                }
            },
            PatchOpKind::Add => {
                let Some(Value::Array(new)) =
                    coerce(attr, value.unwrap_or(Value::Null), &attr.name)?
                else {
                    self.put_back(slot, items);
                    return Ok(());
                };
                // Values already present, by their serialization (objects keep sorted
                // keys), so an add costs what it adds, not that times what is there.
                let mut present: std::collections::HashMap<String, usize> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.to_string(), i))
                    .collect();
                for item in new {
                    let text = item.to_string();
                    match present.get(&text) {
                        Some(&at) => written.push(at),
                        None => {
                            present.insert(text, items.len());
                            written.push(items.len());
                            items.push(item);
                        }
                    }
                }
            }
            PatchOpKind::Replace => {
                items = match coerce(attr, value.unwrap_or(Value::Null), &attr.name)? {
                    Some(Value::Array(new)) => new,
                    _ => Vec::new(),
                };
                written = (0..items.len()).collect();
            }
        }
        check_value_count(items.len(), &attr.name)?;
        fix_primary(attr, &mut items, &written)?;
        self.write(slot, (!items.is_empty()).then_some(Value::Array(items)));
        Ok(())
    }

    /// Elements of a multi-valued attribute selected by a value filter (or all of
    /// them, for `emails.type` without a filter), or a sub-attribute of them.
    #[allow(clippy::too_many_arguments)]
    fn multi_selected(
        &mut self,
        op: PatchOpKind,
        slot: Slot<'_>,
        attr: &AttributeDef,
        filter: Option<&ValidFilter>,
        sub: Option<&AttributeDef>,
        create: Option<Vec<(String, Value)>>,
        value: Option<Value>,
    ) -> Result<(), ScimError> {
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let matched: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, item)| filter.is_none_or(|f| f.matches(item)))
            .map(|(i, _)| i)
            .collect();
        let mut written = Vec::new();
        let mut drop = vec![false; items.len()];
        match (op, sub) {
            // RFC 7644 §3.5.2.2: remove the matching values (none matching: nothing to do).
            (PatchOpKind::Remove, None) => {
                for &i in &matched {
                    drop[i] = true;
                }
            }
            (PatchOpKind::Remove, Some(sub)) => {
                for &i in &matched {
                    if let Some(object) = items[i].as_object_mut() {
                        object.remove(&sub.name);
                        drop[i] = object.is_empty();
                    }
                }
            }
            (_, Some(sub)) => {
                let at = format!("{}.{}", attr.name, sub.name);
                let new = coerce(sub, value.unwrap_or(Value::Null), &at)?;
                if matched.is_empty() {
                    let Some(new) = new else {
                        self.put_back(slot, items);
                        return Ok(());
                    };
                    let Some(pairs) = create else {
                        return Err(ScimError::NoTarget(format!(
                            "no value of '{}' matches the path",
                            attr.name
                        )));
                    };
                    // Entra's `emails[type eq "work"].value` on a user without a work
                    // email: create the element the filter describes.
                    let mut object: Map<String, Value> = pairs.into_iter().collect();
                    object.insert(sub.name.clone(), new);
                    if let Some(element) = coerce_single(attr, Value::Object(object), &attr.name)? {
                        written.push(items.len());
                        items.push(element);
                        drop.push(false);
                    }
                } else {
                    for &i in &matched {
                        if let Some(object) = items[i].as_object_mut() {
                            match &new {
                                Some(v) => {
                                    object.insert(sub.name.clone(), v.clone());
                                    written.push(i);
                                }
                                None => {
                                    object.remove(&sub.name);
                                    drop[i] = object.is_empty();
                                }
                            }
                        }
                    }
                }
            }
            (op, None) => {
                if matched.is_empty() {
                    return Err(ScimError::NoTarget(format!(
                        "no value of '{}' matches the filter",
                        attr.name
                    )));
                }
                let new = coerce_single(attr, value.unwrap_or(Value::Null), &attr.name)?;
                for &i in &matched {
                    match (&new, op) {
                        (None, PatchOpKind::Replace) => drop[i] = true,
                        (None, _) => {}
                        // RFC 7644 §3.5.2.3: matching values are replaced.
                        (Some(v), PatchOpKind::Replace) => {
                            items[i] = v.clone();
                            written.push(i);
                        }
                        (Some(Value::Object(v)), _) => {
                            if let Some(object) = items[i].as_object_mut() {
                                object.extend(v.clone());
                                written.push(i);
                            }
                        }
                        (Some(v), _) => {
                            items[i] = v.clone();
                            written.push(i);
                        }
                    }
                }
            }
        }
        check_value_count(items.len(), &attr.name)?;
        fix_primary(attr, &mut items, &written)?;
        let mut kept = Vec::with_capacity(items.len());
        for (item, gone) in items.into_iter().zip(drop) {
            if !gone {
                kept.push(item);
            }
        }
        self.write(slot, (!kept.is_empty()).then_some(Value::Array(kept)));
        Ok(())
    }

    /// Operations on a group's `members` become deltas; the document is not touched.
    fn members(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<Value>,
    ) -> Result<(), ScimError> {
        if let Some(sub) = path.sub.as_deref().or(path.attr.sub.as_deref()) {
            if sub.eq_ignore_ascii_case("display") {
                // Server-filled; whatever the client says is ignored.
                return Ok(());
            }
            return Err(ScimError::Mutability(format!(
                "'members.{sub}' cannot be changed; add or remove the member instead"
            )));
        }
        if let Some(filter) = &path.filter {
            if op != PatchOpKind::Remove {
                return Err(ScimError::Mutability(
                    "members selected by a filter cannot be changed; add or remove them instead"
                        .into(),
                ));
            }
            let ids = member_ids(filter).ok_or_else(|| {
                ScimError::InvalidFilter(
                    "only 'value eq \"id\"' filters, optionally joined by 'or', can select members to remove"
                        .into(),
                )
            })?;
            self.member_ops.push(MemberOp::Remove(ids));
            return Ok(());
        }
        match op {
            PatchOpKind::Add => {
                let list = parse_member_list(value.unwrap_or(Value::Null))?;
                if !list.is_empty() {
                    self.member_ops.push(MemberOp::Add(list));
                }
            }
            PatchOpKind::Replace => {
                let list = parse_member_list(value.unwrap_or(Value::Null))?;
                self.member_ops.push(MemberOp::Replace(list));
            }
            PatchOpKind::Remove => match value {
                None | Some(Value::Null) => self.member_ops.push(MemberOp::RemoveAll),
                // Entra's default: remove with a value list.
                Some(v) => {
                    let ids: Vec<String> =
                        parse_member_list(v)?.into_iter().map(|m| m.value).collect();
                    if !ids.is_empty() {
                        self.member_ops.push(MemberOp::Remove(ids));
                    }
                }
            },
        }
        Ok(())
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

/// Whether `element` has every sub-attribute `pattern` gives, with equal values
/// (or equals it, for simple values).
fn contains(element: &Value, pattern: &Value) -> bool {
    match (element, pattern) {
        (Value::Object(e), Value::Object(p)) => p.iter().all(|(k, v)| e.get(k) == Some(v)),
        (e, p) => e == p,
    }
}

/// RFC 7644 §3.5.2: a PATCH that sets one value's `primary` to true sets it to false
/// on the others. Two primary values written by one operation are invalid.
fn fix_primary(
    attr: &AttributeDef,
    items: &mut [Value],
    written: &[usize],
) -> Result<(), ScimError> {
    if attr.sub_attr("primary").is_none() {
        return Ok(());
    }
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let mut primaries: Vec<usize> = written
        .iter()
        .copied()
        .filter(|&i| items.get(i).is_some_and(is_primary))
        .collect();
    primaries.dedup();
    if primaries.len() > 1 {
        return Err(ScimError::InvalidValue(format!(
            "at most one value of '{}' may be primary",
            attr.name
        )));
    }
    if let Some(&keep) = primaries.first() {
        for (i, item) in items.iter_mut().enumerate() {
            if i != keep && is_primary(item) {
                if let Some(object) = item.as_object_mut() {
                    object.insert("primary".into(), Value::Bool(false));
                }
            }
        }
    }
    Ok(())
}

/// The name a filter comparison inside `attr[...]` refers to.
fn filter_sub_name(path: &AttrPath) -> &str {
    path.sub.as_deref().unwrap_or(&path.attr)
}

fn comp_value_json(value: &CompValue) -> Value {
    match value {
        CompValue::String(s) => Value::String(s.clone()),
        CompValue::Bool(b) => Value::Bool(*b),
        CompValue::Number(n) => Value::Number(n.clone()),
        CompValue::Null => Value::Null,
    }
}

/// The sub-attribute values a filter made only of `eq` joined by `and` pins down
/// (`type eq "work"` → `[("type", "work")]`), to create a value that matches it.
fn eq_conjuncts(filter: &Filter, attr: &AttributeDef) -> Option<Vec<(String, Value)>> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, value) => {
            let def = attr.sub_attr(filter_sub_name(path))?;
            let value = comp_value_json(value);
            (!value.is_null()).then(|| vec![(def.name.clone(), value)])
        }
        Filter::And(a, b) => {
            let mut pairs = eq_conjuncts(a, attr)?;
            pairs.extend(eq_conjuncts(b, attr)?);
            Some(pairs)
        }
        _ => None,
    }
}

/// The member ids of a `value eq "a" or value eq "b"` filter; `None` for any other
/// filter, which could not be turned into a delta without reading the group.
fn member_ids(filter: &Filter) -> Option<Vec<String>> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, CompValue::String(id))
            if filter_sub_name(path).eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        Filter::Or(a, b) => {
            let mut ids = member_ids(a)?;
            ids.extend(member_ids(b)?);
            Some(ids)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::members::{MemberKind, MemberRef};
    use crate::scim::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
    use proptest::prelude::*;
    use serde_json::json;

    const USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";
    const GROUP_ID: &str = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b";

    fn reg() -> SchemaRegistry {
        SchemaRegistry::builtin().unwrap()
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "externalId": "00ujl29u0le5T6Aj10h7",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@example.com", "type": "home"}
            ],
            ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "m1"}}
        })
    }

    fn plain_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "test.user@example.com",
            "active": true
        })
    }

    fn group() -> Value {
        json!({
            "schemas": [GROUP_SCHEMA],
            "externalId": "8aa1a0c0",
            "displayName": "Cowork Pilot"
        })
    }

    fn patch(kind: ResourceKind, doc: &Value, body: Value) -> Result<PatchOutcome, ScimError> {
        let r = reg();
        let id = match kind {
            ResourceKind::User => USER_ID,
            ResourceKind::Group => GROUP_ID,
        };
        let request = parse(&r, kind, body)?;
        apply(&r, kind, id, doc, &request)
    }

    #[test]
    fn more_operations_than_the_bound_are_too_many() {
        let one = json!({"op": "replace", "path": "displayName", "value": "x"});
        let at_bound: Vec<Value> = vec![one.clone(); MAX_OPERATIONS];
        assert!(user_patch(&plain_user(), Value::Array(at_bound)).is_ok());
        let over: Vec<Value> = vec![one; MAX_OPERATIONS + 1];
        assert_eq!(
            scim_type(user_patch(&plain_user(), Value::Array(over))),
            "tooMany"
        );
    }

    #[test]
    fn a_multi_valued_attribute_may_not_grow_past_its_bound() {
        use crate::scim::value::MAX_VALUES;
        // Entra's work-email form, one new type per operation: refused past the bound.
        let adds: Vec<Value> = (0..=MAX_VALUES)
            .map(|i| {
                json!({"op": "add", "path": format!("emails[type eq \"w{i}\"].value"),
                       "value": format!("u{i}@example.com")})
            })
            .collect();
        assert_eq!(
            scim_type(user_patch(
                &plain_user(),
                Value::Array(adds[..MAX_VALUES + 1].to_vec())
            )),
            "invalidValue"
        );
        let out = user_patch(&plain_user(), Value::Array(adds[..MAX_VALUES].to_vec())).unwrap();
        assert_eq!(out.document["emails"].as_array().unwrap().len(), MAX_VALUES);
        // A whole-array add past the bound, too.
        let many: Vec<Value> = (0..=MAX_VALUES)
            .map(|i| json!({"value": format!("v{i}@example.com")}))
            .collect();
        assert_eq!(
            scim_type(user_patch(
                &plain_user(),
                json!([{"op": "add", "path": "emails", "value": many}])
            )),
            "invalidValue"
        );
    }

    #[test]
    fn repeated_adds_of_present_values_keep_one_copy_and_the_rest_of_the_document() {
        let out = user_patch(
            &user(),
            json!([
                {"op": "add", "path": "emails", "value": [{"value": "babs@example.com", "type": "home"}]},
                {"op": "add", "path": "emails", "value": [{"value": "new@example.com"}, {"value": "new@example.com"}]},
                {"op": "remove", "path": "emails", "value": [{"value": "nobody@example.com"}]},
                {"op": "add", "path": "phoneNumbers", "value": null}
            ]),
        )
        .unwrap();
        let emails = out.document["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3, "{emails:?}");
        assert_eq!(out.document["userName"], user()["userName"]);
    }

    fn ops(operations: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
    }

    fn user_patch(doc: &Value, operations: Value) -> Result<PatchOutcome, ScimError> {
        patch(ResourceKind::User, doc, ops(operations))
    }

    fn group_patch(operations: Value) -> Result<PatchOutcome, ScimError> {
        patch(ResourceKind::Group, &group(), ops(operations))
    }

    fn scim_type(result: Result<PatchOutcome, ScimError>) -> &'static str {
        result.unwrap_err().scim_type().unwrap_or("none")
    }

    fn changed(out: &PatchOutcome) -> Vec<&str> {
        out.changed.iter().map(String::as_str).collect()
    }

    fn member(id: &str) -> MemberRef {
        MemberRef {
            value: id.into(),
            kind: None,
            display: None,
        }
    }

    // ---- Okta ------------------------------------------------------------------

    #[test]
    fn okta_deactivates_and_reactivates_with_a_pathless_replace() {
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .unwrap();
        assert_eq!(out.document["active"], json!(false));
        assert_eq!(changed(&out), ["active"]);
        let back = user_patch(
            &out.document,
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .unwrap();
        assert_eq!(back.document, user());
    }

    #[test]
    fn okta_group_rename_carrying_the_own_id_is_accepted() {
        let out = group_patch(json!([
            {"op": "replace", "value": {"id": GROUP_ID, "displayName": "Test SCIMv2"}}
        ]))
        .unwrap();
        assert_eq!(out.document["displayName"], "Test SCIMv2");
        assert!(out.document.get("id").is_none());
        assert_eq!(changed(&out), ["displayName"]);
        assert!(out.member_ops.is_empty());
    }

    #[test]
    fn okta_no_op_rename_changes_nothing() {
        let out = group_patch(json!([
            {"op": "replace", "value": {"id": GROUP_ID, "displayName": "Cowork Pilot"}}
        ]))
        .unwrap();
        assert_eq!(out.document, group());
        assert!(out.changed.is_empty());
    }

    #[test]
    fn a_rename_carrying_another_id_is_a_mutability_error() {
        let result = group_patch(json!([
            {"op": "replace", "value": {"id": "other", "displayName": "Test SCIMv2"}}
        ]));
        assert_eq!(scim_type(result), "mutability");
    }

    #[test]
    fn okta_membership_push_becomes_ordered_deltas() {
        let out = group_patch(json!([
            {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
            {"op": "add", "path": "members", "value": [
                {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@example.com"}
            ]}
        ]))
        .unwrap();
        assert_eq!(
            out.member_ops,
            vec![
                MemberOp::Remove(vec!["89bb1940-b905-4575-9e7f-6f887cfb368e".into()]),
                MemberOp::Add(vec![MemberRef {
                    display: Some("test.user@example.com".into()),
                    ..member("23a35c27-23d3-4c03-b4c5-6443c09e7173")
                }]),
            ]
        );
        assert_eq!(out.document, group());
        assert_eq!(changed(&out), ["members"]);
    }

    #[test]
    fn okta_full_members_replace_becomes_a_replace_delta() {
        let out = group_patch(json!([
            {"op": "replace", "path": "members", "value": [
                {"value": "u1", "display": "a@example.com"},
                {"value": "g1", "type": "Group"}
            ]}
        ]))
        .unwrap();
        assert_eq!(
            out.member_ops,
            vec![MemberOp::Replace(vec![
                MemberRef {
                    display: Some("a@example.com".into()),
                    ..member("u1")
                },
                MemberRef {
                    value: "g1".into(),
                    kind: Some(MemberKind::Group),
                    display: None,
                }
            ])]
        );
        let out = group_patch(json!([{"op": "replace", "path": "members", "value": []}])).unwrap();
        assert_eq!(out.member_ops, vec![MemberOp::Replace(vec![])]);
    }

    // ---- Entra -----------------------------------------------------------------

    #[test]
    fn entra_capitalised_ops_replace_work_email_and_family_name() {
        let out = user_patch(
            &user(),
            json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@example.com"},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out.document["emails"][0],
            json!({"value": "updated@example.com", "type": "work", "primary": true})
        );
        assert_eq!(out.document["emails"][1]["value"], "babs@example.com");
        assert_eq!(
            out.document["name"],
            json!({"givenName": "Barbara", "familyName": "updatedFamilyName"})
        );
        assert_eq!(changed(&out), ["emails", "name"]);
    }

    #[test]
    fn entra_string_booleans_disable_and_enable() {
        let out = user_patch(
            &user(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .unwrap();
        assert_eq!(out.document["active"], json!(false));
        let out = user_patch(
            &out.document,
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )
        .unwrap();
        assert_eq!(out.document["active"], json!(true));
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .unwrap();
        assert_eq!(out.document["active"], json!(false));
    }

    #[test]
    fn entra_aadoptscim062020_pathless_replace_takes_dotted_and_urn_keys() {
        let out = user_patch(
            &plain_user(),
            json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@example.com"},
                {"op": "replace", "value": {
                    "displayName": "Bjfe",
                    "name.givenName": "Kkom",
                    "name.familyName": "Unua",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
                }}
            ]),
        )
        .unwrap();
        let doc = &out.document;
        assert_eq!(
            doc["emails"],
            json!([{"type": "work", "value": "TestMhvaes@example.com"}])
        );
        assert_eq!(doc["displayName"], "Bjfe");
        assert_eq!(
            doc["name"],
            json!({"givenName": "Kkom", "familyName": "Unua"})
        );
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber": "Aklq"})
        );
        assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert_eq!(
            changed(&out),
            [
                "displayName",
                "emails",
                "name",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"
            ]
        );
    }

    #[test]
    fn entra_urn_qualified_path_replaces_an_extension_attribute() {
        let out = user_patch(
            &user(),
            json!([{
                "op": "Replace",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                "value": "42"
            }]),
        )
        .unwrap();
        assert_eq!(out.document[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "42");
        assert_eq!(
            out.document[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "m1"})
        );
    }

    #[test]
    fn entra_manager_as_bare_string_then_removed_with_an_empty_value() {
        let manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
        let out = user_patch(
            &plain_user(),
            json!([{"op": "add", "path": manager, "value": "2c2f6fb8-8ad4-4b6e-9d3c-1f6c1b1e0a11"}]),
        )
        .unwrap();
        assert_eq!(
            out.document[ENTERPRISE_USER_SCHEMA],
            json!({"manager": {"value": "2c2f6fb8-8ad4-4b6e-9d3c-1f6c1b1e0a11"}})
        );
        assert_eq!(
            out.document["schemas"],
            json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
        );
        let removed = user_patch(
            &out.document,
            json!([{"op": "replace", "path": manager, "value": {"value": ""}}]),
        )
        .unwrap();
        // The last enterprise attribute is gone: so are the object and the URN.
        assert_eq!(removed.document, plain_user());
        assert_eq!(changed(&removed), [manager]);
    }

    #[test]
    fn entra_manager_in_a_one_element_array_is_accepted() {
        let out = user_patch(
            &user(),
            json!([{"op": "Add", "path": "manager", "value": [
                {"$ref": "https://example.com/scim/v2/Users/00aa", "value": "00aa"}
            ]}]),
        )
        .unwrap();
        // A new manager replaces the old reference rather than merging into it.
        assert_eq!(
            out.document[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"$ref": "https://example.com/scim/v2/Users/00aa", "value": "00aa"})
        );
    }

    #[test]
    fn entra_group_member_add_with_null_ref() {
        let out = group_patch(json!([
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}
        ]))
        .unwrap();
        assert_eq!(
            out.member_ops,
            vec![MemberOp::Add(vec![member("f648f8d5ea4e4cd38e9c")])]
        );
    }

    #[test]
    fn entra_remove_with_a_value_list_removes_those_members() {
        let out = group_patch(json!([
            {"op": "Remove", "path": "members", "value": [
                {"$ref": null, "value": "f648f8d5ea4e4cd38e9c"},
                {"value": "u2"}
            ]}
        ]))
        .unwrap();
        assert_eq!(
            out.member_ops,
            vec![MemberOp::Remove(vec![
                "f648f8d5ea4e4cd38e9c".into(),
                "u2".into()
            ])]
        );
    }

    #[test]
    fn members_removed_by_value_filters_joined_with_or() {
        let out = group_patch(json!([
            {"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"},
            {"op": "remove", "path": "Members[Value EQ \"c\"]"}
        ]))
        .unwrap();
        assert_eq!(
            out.member_ops,
            vec![
                MemberOp::Remove(vec!["a".into(), "b".into()]),
                MemberOp::Remove(vec!["c".into()])
            ]
        );
    }

    #[test]
    fn members_removed_by_another_filter_are_refused_with_invalid_filter() {
        let result = group_patch(json!([{"op": "remove", "path": "members[type eq \"User\"]"}]));
        assert_eq!(scim_type(result), "invalidFilter");
        let result = group_patch(json!([
            {"op": "remove", "path": "members[value eq \"a\" and type eq \"User\"]"}
        ]));
        assert_eq!(scim_type(result), "invalidFilter");
    }

    #[test]
    fn a_large_member_add_is_one_delta_and_leaves_the_document_alone() {
        let members: Vec<Value> = (0..5000)
            .map(|i| json!({"value": format!("u{i}")}))
            .collect();
        let out = group_patch(json!([
            {"op": "add", "path": "members", "value": members},
            {"op": "remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}
        ]))
        .unwrap();
        assert_eq!(out.document, group());
        assert!(matches!(&out.member_ops[0], MemberOp::Add(list) if list.len() == 5000));
        assert_eq!(
            out.member_ops[1],
            MemberOp::Remove(vec!["u1".into(), "u2".into()])
        );
    }

    #[test]
    fn removing_members_without_a_value_removes_all() {
        let out = group_patch(json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(out.member_ops, vec![MemberOp::RemoveAll]);
    }

    #[test]
    fn pathless_members_become_add_and_replace_deltas() {
        let out = group_patch(json!([
            {"op": "add", "value": {"members": [{"value": "u1"}]}},
            {"op": "replace", "value": {"members": [{"value": "u2"}], "displayName": "Renamed"}}
        ]))
        .unwrap();
        assert_eq!(
            out.member_ops,
            vec![
                MemberOp::Add(vec![member("u1")]),
                MemberOp::Replace(vec![member("u2")])
            ]
        );
        assert_eq!(out.document["displayName"], "Renamed");
        assert_eq!(changed(&out), ["displayName", "members"]);
    }

    #[test]
    fn member_display_is_ignored_and_member_values_are_immutable() {
        let out = group_patch(json!([
            {"op": "replace", "path": "members[value eq \"u1\"].display", "value": "x"},
            {"op": "replace", "path": "members.display", "value": "x"}
        ]))
        .unwrap();
        assert!(out.member_ops.is_empty());
        assert!(out.changed.is_empty());
        let result = group_patch(json!([
            {"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u2"}
        ]));
        assert_eq!(scim_type(result), "mutability");
        let result = group_patch(json!([
            {"op": "replace", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}
        ]));
        assert_eq!(scim_type(result), "mutability");
    }

    #[test]
    fn ms_validator_empty_operations_is_a_no_op() {
        let out = patch(ResourceKind::User, &user(), ops(json!([]))).unwrap();
        assert_eq!(out.document, user());
        assert!(out.changed.is_empty());
        assert!(out.member_ops.is_empty());
    }

    #[test]
    fn ms_validator_add_then_remove_of_one_member_keeps_the_order() {
        let out = group_patch(json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "remove", "path": "members[value eq \"u1\"]"}
        ]))
        .unwrap();
        assert_eq!(
            out.member_ops,
            vec![
                MemberOp::Add(vec![member("u1")]),
                MemberOp::Remove(vec!["u1".into()])
            ]
        );
    }

    #[test]
    fn ms_validator_group_replace_attributes_and_add_member_name_key() {
        let out = group_patch(json!([
            {"op": "replace", "value": {"externalId": "new-ext"}},
            {"op": "Add", "path": "members", "name": "addMember", "value": [{"value": "u1"}]}
        ]))
        .unwrap();
        assert_eq!(out.document["externalId"], "new-ext");
        assert_eq!(out.member_ops, vec![MemberOp::Add(vec![member("u1")])]);
        assert_eq!(changed(&out), ["externalId", "members"]);
    }

    #[test]
    fn ms_validator_multiple_ops_on_one_attribute_apply_in_order() {
        let out = user_patch(
            &plain_user(),
            json!([
                {"op": "add", "path": "title", "value": "Engineer"},
                {"op": "replace", "path": "title", "value": "Manager"},
                {"op": "add", "path": "nickName", "value": "Babs"},
                {"op": "remove", "path": "nickName"}
            ]),
        )
        .unwrap();
        assert_eq!(out.document["title"], "Manager");
        assert!(out.document.get("nickName").is_none());
        assert_eq!(changed(&out), ["title"]);
    }

    // ---- RFC 7644 §3.5.2 examples ----------------------------------------------

    #[test]
    fn rfc_pathless_add_appends_an_email_and_sets_a_nickname() {
        let out = user_patch(
            &user(),
            json!([{"op": "add", "value": {
                "emails": [{"value": "babs@example.com", "type": "home"}, {"value": "b@example.com", "type": "other"}],
                "nickname": "Babs"
            }}]),
        )
        .unwrap();
        let emails = out.document["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3, "an equal value is not duplicated");
        assert_eq!(emails[2]["value"], "b@example.com");
        assert_eq!(out.document["nickName"], "Babs");
    }

    #[test]
    fn rfc_add_member_and_replace_member() {
        let out = group_patch(json!([
            {"op": "add", "path": "members", "value": [{
                "display": "Babs Jensen",
                "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
                "value": "2819c223-7f76-453a-919d-413861904646"
            }]},
            {"op": "remove", "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"},
            {"op": "add", "path": "members", "value": [{"value": "902c246b-6245-4190-8e05-00816be7344a"}]}
        ]))
        .unwrap();
        assert_eq!(out.member_ops.len(), 3);
    }

    #[test]
    fn rfc_replace_matching_elements_and_their_sub_attributes() {
        let doc = json!({
            "schemas": [USER_SCHEMA],
            "userName": "bjensen@example.com",
            "addresses": [
                {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"},
                {"type": "home", "streetAddress": "456 Hollywood Blvd"}
            ]
        });
        let out = user_patch(
            &doc,
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
        )
        .unwrap();
        assert_eq!(
            out.document["addresses"][0],
            json!({"type": "work", "streetAddress": "1010 Broadway Ave", "locality": "Hollywood"})
        );
        let out = user_patch(
            &doc,
            json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
                "type": "work", "streetAddress": "911 Universal City Plaza", "primary": true
            }}]),
        )
        .unwrap();
        assert_eq!(
            out.document["addresses"][0],
            json!({"type": "work", "streetAddress": "911 Universal City Plaza", "primary": true})
        );
        assert_eq!(out.document["addresses"][1]["type"], "home");
    }

    #[test]
    fn rfc_pathless_replace_replaces_emails_and_merges_name() {
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "value": {
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
                "name": {"middleName": "Jane"}
            }}]),
        )
        .unwrap();
        assert_eq!(out.document["emails"].as_array().unwrap().len(), 1);
        assert_eq!(
            out.document["name"],
            json!({"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"})
        );
    }

    #[test]
    fn rfc_remove_by_complex_filter_and_whole_attribute() {
        let out = user_patch(
            &user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
        )
        .unwrap();
        assert_eq!(
            out.document["emails"],
            json!([{"value": "babs@example.com", "type": "home"}])
        );
        let out = user_patch(&user(), json!([{"op": "remove", "path": "emails"}])).unwrap();
        assert!(out.document.get("emails").is_none());
        let out = user_patch(
            &user(),
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}, {"op": "remove", "path": "emails[type eq \"work\"]"}]),
        )
        .unwrap();
        assert!(
            out.document.get("emails").is_none(),
            "an emptied array is unassigned"
        );
    }

    #[test]
    fn remove_of_a_sub_attribute_from_matching_elements() {
        let out = user_patch(
            &user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
        )
        .unwrap();
        assert_eq!(
            out.document["emails"][0],
            json!({"value": "bjensen@example.com", "type": "work"})
        );
        let out = user_patch(&user(), json!([{"op": "remove", "path": "name.givenName"}])).unwrap();
        assert_eq!(out.document["name"], json!({"familyName": "Jensen"}));
    }

    #[test]
    fn remove_with_a_filter_matching_nothing_is_idempotent() {
        let out = user_patch(
            &user(),
            json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
        )
        .unwrap();
        assert_eq!(out.document, user());
        assert!(out.changed.is_empty());
    }

    #[test]
    fn a_work_email_is_created_when_the_filter_matches_nothing() {
        let out = user_patch(
            &plain_user(),
            json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
        )
        .unwrap();
        assert_eq!(
            out.document["emails"],
            json!([{"type": "work", "value": "new@example.com"}])
        );
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\" and primary eq true].value", "value": "555-0100"}]),
        )
        .unwrap();
        assert_eq!(
            out.document["phoneNumbers"],
            json!([{"type": "mobile", "primary": true, "value": "555-0100"}])
        );
    }

    #[test]
    fn entra_single_app_role_uses_a_string_boolean_filter() {
        let out = user_patch(
            &plain_user(),
            json!([{"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "Admin"}]),
        )
        .unwrap();
        assert_eq!(
            out.document["roles"],
            json!([{"primary": true, "value": "Admin"}])
        );
        let out = user_patch(
            &out.document,
            json!([{"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "User"}]),
        )
        .unwrap();
        assert_eq!(
            out.document["roles"],
            json!([{"primary": true, "value": "User"}])
        );
    }

    #[test]
    fn setting_primary_clears_it_on_the_other_values() {
        let out = user_patch(
            &user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]}]),
        )
        .unwrap();
        let emails = &out.document["emails"];
        assert_eq!(emails[0]["primary"], json!(false));
        assert_eq!(emails[2]["primary"], json!(true));
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
        )
        .unwrap();
        assert_eq!(out.document["emails"][0]["primary"], json!(false));
        assert_eq!(out.document["emails"][1]["primary"], json!(true));
        let result = user_patch(
            &user(),
            json!([{"op": "replace", "path": "emails", "value": [
                {"value": "a@example.com", "primary": true}, {"value": "b@example.com", "primary": true}
            ]}]),
        );
        assert_eq!(scim_type(result), "invalidValue");
    }

    #[test]
    fn extension_urn_as_a_path_or_key_takes_an_object() {
        let out = user_patch(
            &plain_user(),
            json!([{"op": "add", "value": {ENTERPRISE_USER_SCHEMA: {"department": "Finance", "Manager": {"Value": "m9"}}}}]),
        )
        .unwrap();
        assert_eq!(
            out.document[ENTERPRISE_USER_SCHEMA],
            json!({"department": "Finance", "manager": {"value": "m9"}})
        );
        let out = user_patch(
            &out.document,
            json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
        )
        .unwrap();
        assert_eq!(out.document, plain_user());
    }

    #[test]
    fn capitalised_attribute_names_are_canonicalised() {
        let out = user_patch(
            &plain_user(),
            json!([{"op": "Replace", "value": {"DisplayName": "Babs", "Active": "False", "Department": "Ops"}}]),
        )
        .unwrap();
        assert_eq!(out.document["displayName"], "Babs");
        assert_eq!(out.document["active"], json!(false));
        assert_eq!(out.document[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
    }

    #[test]
    fn password_is_accepted_and_never_stored() {
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "value": {"password": "1mz050nq"}}, {"op": "replace", "path": "password", "value": "x"}]),
        )
        .unwrap();
        assert_eq!(out.document, user());
        assert!(out.changed.is_empty());
    }

    #[test]
    fn pathless_meta_and_schemas_are_ignored_as_echoes() {
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "value": {
                "schemas": [USER_SCHEMA], "meta": {"resourceType": "User"}, "title": "Boss"
            }}]),
        )
        .unwrap();
        assert_eq!(
            out.document["schemas"],
            json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
        );
        assert!(out.document.get("meta").is_none());
        assert_eq!(changed(&out), ["title"]);
    }

    #[test]
    fn a_missing_schemas_member_is_tolerated() {
        let out = patch(
            ResourceKind::User,
            &user(),
            json!({"Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}),
        )
        .unwrap();
        assert_eq!(out.document["title"], "Boss");
    }

    // ---- errors ------------------------------------------------------------------

    #[test]
    fn malformed_bodies_are_invalid_syntax() {
        let r = reg();
        for body in [
            json!([]),
            json!({"schemas": [PATCH_OP_SCHEMA]}),
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {}}),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []}),
            ops(json!(["add"])),
            ops(json!([{"path": "title", "value": "x"}])),
            ops(json!([{"op": "upsert", "path": "title", "value": "x"}])),
        ] {
            let err = parse(&r, ResourceKind::User, body).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidSyntax"), "{err:?}");
        }
    }

    #[test]
    fn unknown_or_malformed_paths_are_invalid_path() {
        for path in [
            "nosuch",
            "name.nosuch",
            "emails[type eq \"work\"",
            "emails[type eq \"work\"]value",
            "emails[nosuch eq \"work\"]",
            "emails[type eq]",
            "name[givenName eq \"x\"]",
            "emails[type eq \"work\"].nosuch",
            "urn:example:unknown:1.0:User:thing",
            "1abc",
        ] {
            let result = user_patch(
                &user(),
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert_eq!(scim_type(result), "invalidPath", "{path}");
        }
        let result = user_patch(&user(), json!([{"op": "replace", "value": {"nosuch": 1}}]));
        assert_eq!(scim_type(result), "invalidPath");
        let result = group_patch(json!([{"op": "add", "path": "userName", "value": "x"}]));
        assert_eq!(scim_type(result), "invalidPath");
    }

    #[test]
    fn read_only_targets_are_mutability_errors() {
        for operation in [
            json!({"op": "replace", "path": "id", "value": "other"}),
            json!({"op": "remove", "path": "id"}),
            json!({"op": "replace", "path": "meta.lastModified", "value": "2024-01-01T00:00:00Z"}),
            json!({"op": "add", "path": "groups", "value": [{"value": "g1"}]}),
            json!({"op": "replace", "value": {"groups": []}}),
            json!({"op": "replace", "path": "manager.displayName", "value": "Boss"}),
        ] {
            let result = user_patch(&user(), json!([operation.clone()]));
            assert_eq!(scim_type(result), "mutability", "{operation}");
        }
        // The resource's own id is an echo, not a change.
        let out = user_patch(
            &user(),
            json!([{"op": "replace", "path": "id", "value": USER_ID}]),
        )
        .unwrap();
        assert!(out.changed.is_empty());
    }

    #[test]
    fn removing_a_required_attribute_is_a_mutability_error() {
        let result = user_patch(&user(), json!([{"op": "remove", "path": "userName"}]));
        assert_eq!(scim_type(result), "mutability");
        let result = user_patch(
            &user(),
            json!([{"op": "replace", "path": "userName", "value": null}]),
        );
        assert_eq!(scim_type(result), "mutability");
        let result = group_patch(json!([{"op": "remove", "path": "displayName"}]));
        assert_eq!(scim_type(result), "mutability");
        let result = user_patch(
            &user(),
            json!([{"op": "replace", "path": "userName", "value": " "}]),
        );
        assert_eq!(scim_type(result), "invalidValue");
    }

    #[test]
    fn values_of_the_wrong_type_are_invalid_value() {
        for operation in [
            json!({"op": "replace", "path": "active", "value": "maybe"}),
            json!({"op": "replace", "path": "userName", "value": {"a": 1}}),
            json!({"op": "replace", "path": "name", "value": "Barbara"}),
            json!({"op": "add", "path": "emails", "value": [{"nosuch": "x"}]}),
            json!({"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "often"}),
            json!({"op": "replace", "value": {"active": 3}}),
            json!({"op": "replace", "value": "active"}),
            json!({"op": "add", "path": "title"}),
        ] {
            let result = user_patch(&user(), json!([operation.clone()]));
            assert_eq!(scim_type(result), "invalidValue", "{operation}");
        }
        let result =
            group_patch(json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]));
        assert_eq!(scim_type(result), "invalidValue");
    }

    #[test]
    fn remove_without_a_path_is_no_target() {
        let result = user_patch(&user(), json!([{"op": "remove"}]));
        assert_eq!(scim_type(result), "noTarget");
        let result = user_patch(
            &user(),
            json!([{"op": "Remove", "path": "", "value": {"title": "x"}}]),
        );
        assert_eq!(scim_type(result), "noTarget");
    }

    #[test]
    fn replace_with_a_filter_matching_nothing_is_no_target() {
        for operation in [
            json!({"op": "replace", "path": "emails[type eq \"other\"]", "value": {"value": "x@example.com"}}),
            json!({"op": "replace", "path": "emails[value co \"nobody\"].type", "value": "work"}),
            json!({"op": "replace", "path": "emails[type eq \"x\" or type eq \"y\"].value", "value": "a@example.com"}),
            json!({"op": "add", "path": "phoneNumbers.type", "value": "work"}),
        ] {
            let result = user_patch(&user(), json!([operation.clone()]));
            assert_eq!(scim_type(result), "noTarget", "{operation}");
        }
    }

    #[test]
    fn a_failing_third_operation_leaves_no_trace() {
        let doc = user();
        let result = user_patch(
            &doc,
            json!([
                {"op": "replace", "path": "title", "value": "Boss"},
                {"op": "add", "path": "emails", "value": [{"value": "x@example.com"}]},
                {"op": "replace", "path": "active", "value": "perhaps"}
            ]),
        );
        let err = result.unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
        assert!(
            err.detail().starts_with("'Operations[2]'"),
            "{}",
            err.detail()
        );
        assert_eq!(doc, user());
        let result = group_patch(json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "replace", "path": "displayName", "value": "New"},
            {"op": "remove", "path": "members[type eq \"User\"]"}
        ]));
        assert!(result.is_err(), "member deltas are not returned on failure");
    }

    #[test]
    fn error_details_never_carry_values() {
        let secret = "secret-person@example.com";
        for operation in [
            json!({"op": "replace", "path": format!("emails[value eq \"{secret}\"]"), "value": {"value": "x@example.com"}}),
            json!({"op": "replace", "path": "active", "value": secret}),
            json!({"op": "replace", "path": format!("emails[value eq \"{secret}\""), "value": "x"}),
        ] {
            let err = user_patch(&user(), json!([operation])).unwrap_err();
            assert!(!err.detail().contains("secret-person"), "{}", err.detail());
        }
    }

    // ---- properties ----------------------------------------------------------------

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-zA-Z@. ]{0,8}".prop_map(Value::String),
            Just(json!("False")),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("value".to_string()),
                            Just("type".to_string()),
                            Just("primary".to_string()),
                            Just("givenName".to_string()),
                            Just("name.givenName".to_string()),
                            Just("id".to_string()),
                            Just("active".to_string()),
                            Just("emails".to_string()),
                            Just("members".to_string()),
                            "[a-z]{1,5}",
                        ],
                        inner
                    ),
                    0..3
                )
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    fn arb_path() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof![
            Just("active".to_string()),
            Just("userName".to_string()),
            Just("displayName".to_string()),
            Just("name".to_string()),
            Just("name.givenName".to_string()),
            Just("emails".to_string()),
            Just("emails.value".to_string()),
            Just("emails[type eq \"work\"]".to_string()),
            Just("emails[type eq \"work\"].value".to_string()),
            Just("emails[primary eq true].primary".to_string()),
            Just("members".to_string()),
            Just("members[value eq \"u1\"]".to_string()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager".to_string()),
            Just("id".to_string()),
            "[a-z\\[\\]\". ]{0,12}",
        ])
    }

    fn arb_operation() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just("add"), Just("Replace"), Just("remove"), Just("bad")],
            arb_path(),
            prop::option::of(arb_json()),
        )
            .prop_map(|(op, path, value)| {
                let mut object = Map::new();
                object.insert("op".into(), json!(op));
                if let Some(path) = path {
                    object.insert("path".into(), json!(path));
                }
                if let Some(value) = value {
                    object.insert("value".into(), value);
                }
                Value::Object(object)
            })
    }

    proptest! {
        #[test]
        fn apply_never_panics_on_arbitrary_operations(
            operations in prop::collection::vec(arb_operation(), 0..5),
            as_group in any::<bool>(),
        ) {
            let (kind, doc) = if as_group { (ResourceKind::Group, group()) } else { (ResourceKind::User, user()) };
            if let Ok(out) = patch(kind, &doc, ops(Value::Array(operations))) {
                // Whatever succeeded left a well-formed document.
                prop_assert!(out.document.is_object());
                prop_assert!(out.document["schemas"].as_array().is_some_and(|s| !s.is_empty()));
            }
        }

        #[test]
        fn a_replaced_value_reads_back(
            text in "[A-Za-z0-9 @.-]{1,20}",
            active in any::<bool>(),
            pick in 0usize..4,
        ) {
            let (path, pointer) = [
                ("title", "/title"),
                ("name.givenName", "/name/givenName"),
                ("emails[type eq \"home\"].value", "/emails/1/value"),
                ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                 "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department"),
            ][pick];
            let out = user_patch(&user(), json!([
                {"op": "replace", "path": path, "value": text.clone()},
                {"op": "Replace", "path": "active", "value": if active { "True" } else { "false" }}
            ])).unwrap();
            prop_assert_eq!(out.document.pointer(pointer), Some(&json!(text)));
            prop_assert_eq!(&out.document["active"], &json!(active));
            let again = user_patch(&out.document, json!([
                {"op": "replace", "path": path, "value": text}
            ])).unwrap();
            prop_assert!(again.changed.is_empty(), "a repeated replace changes nothing");
        }
    }
}
