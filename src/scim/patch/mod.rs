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
use super::unknown::{UnknownAttributes, Unknowns};
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
    /// The operations, in request order (without those on unknown attributes that
    /// were dropped).
    pub operations: Vec<PatchOperation>,
    /// Paths naming attributes no schema declares, dropped under
    /// [`UnknownAttributes::Ignore`]; [`apply`] uses the same policy.
    pub unknown: Unknowns,
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
    /// Every unknown attribute dropped, by [`parse`] and by [`apply`].
    pub unknown: Unknowns,
}

/// Parses and checks a PATCH request body (RFC 7644 §3.5.2).
///
/// - The body must be an object with an `Operations` array (`invalidSyntax`
///   otherwise); an empty array is accepted as a no-op.
/// - `schemas` may be missing; if present it must contain the PatchOp URN
///   (`invalidSyntax`).
/// - `op` is `add`, `remove` or `replace` in any case (`invalidSyntax` otherwise).
/// - `path` must parse (`invalidPath`, also for a malformed value filter); an empty
///   `path` counts as absent. A path naming an attribute no schema declares drops the
///   operation under [`UnknownAttributes::Ignore`] (it is listed in
///   [`PatchRequest::unknown`]) and is `invalidPath` under `Reject`.
/// - `remove` without a path is `noTarget`; `add`/`replace` without a `value` member
///   is `invalidValue`, as is a path-less value that is not an object.
///
/// Mutability and value types are checked by [`apply`].
pub fn parse(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    body: Value,
    policy: UnknownAttributes,
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
    let mut unknown = Unknowns::new(policy);
    let mut parsed = Vec::with_capacity(operations.len());
    for (i, op) in operations.into_iter().enumerate() {
        if let Some(op) = parse_operation(registry, kind, i, op, &mut unknown)? {
            parsed.push(op);
        }
    }
    Ok(PatchRequest {
        operations: parsed,
        unknown,
    })
}

fn parse_operation(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    i: usize,
    op: Value,
    unknown: &mut Unknowns,
) -> Result<Option<PatchOperation>, ScimError> {
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
        Some(Value::String(s)) => {
            match parse_patch_path(registry, kind, &s, unknown)
                .map_err(|e| prefix_detail(e, &format!("'Operations[{i}].path'")))?
            {
                Some(path) => Some(path),
                // An attribute no schema declares, ignored: the operation is a no-op.
                None => return Ok(None),
            }
        }
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
    Ok(Some(PatchOperation { op, path, value }))
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

/// Parses and resolves a PATCH path (RFC 7644 §3.5.2 `PATH`). `None`: the path names
/// an attribute (or sub-attribute) no schema declares and `unknown` ignores it.
fn parse_patch_path(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    text: &str,
    unknown: &mut Unknowns,
) -> Result<Option<PatchPath>, ScimError> {
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
        return Ok(Some(PatchPath {
            attr: raw,
            filter: None,
            sub: None,
        }));
    }
    let Some(resolved) = registry.resolve(kind, &raw) else {
        unknown.drop_or(attr_text, || {
            ScimError::InvalidPath(format!("unknown attribute '{attr_text}'"))
        })?;
        return Ok(None);
    };
    let attr = AttrPath {
        urn: match resolved.container {
            Container::Top => None,
            Container::Extension(urn) => Some(urn.to_string()),
        },
        attr: resolved.attr.name.clone(),
        sub: resolved.sub.map(|s| s.name.clone()),
    };
    let Some(filter_text) = filter_text else {
        return Ok(Some(PatchPath {
            attr,
            filter: None,
            sub: None,
        }));
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
        Some(name) => match resolved.attr.sub_attr(name) {
            Some(sub) => Some(sub.name.clone()),
            None => {
                unknown.drop_or(&format!("{}.{name}", attr.attr), || {
                    ScimError::InvalidPath(format!("'{}' has no sub-attribute '{name}'", attr.attr))
                })?;
                return Ok(None);
            }
        },
    };
    Ok(Some(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    }))
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

struct Engine<'a> {
    registry: &'a SchemaRegistry,
    kind: ResourceKind,
    id: &'a str,
    doc: Map<String, Value>,
    member_ops: Vec<MemberOp>,
    /// What the request dropped so far (seeded with what [`parse`] dropped).
    unknown: Unknowns,
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
        let new = coerce(attr, value, &attr.name, &mut self.unknown)?;
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
                &mut self.unknown,
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
                    let Some(Value::Array(remove)) =
                        coerce(attr, v, &attr.name, &mut self.unknown)?
                    else {
                        self.put_back(slot, items);
                        return Ok(());
                    };
                    items.retain(|item| !remove.iter().any(|r| contains(item, r)));
                }
            },
            PatchOpKind::Add => {
                let Some(Value::Array(new)) = coerce(
                    attr,
                    value.unwrap_or(Value::Null),
                    &attr.name,
                    &mut self.unknown,
                )?
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
                items = match coerce(
                    attr,
                    value.unwrap_or(Value::Null),
                    &attr.name,
                    &mut self.unknown,
                )? {
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
                let new = coerce(sub, value.unwrap_or(Value::Null), &at, &mut self.unknown)?;
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
                    if let Some(element) =
                        coerce_single(attr, Value::Object(object), &attr.name, &mut self.unknown)?
                    {
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
                let new = coerce_single(
                    attr,
                    value.unwrap_or(Value::Null),
                    &attr.name,
                    &mut self.unknown,
                )?;
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
mod tests;
