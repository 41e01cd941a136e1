//! Parsing a PatchOp request body (RFC 7644 §3.5.2): the envelope, each operation's
//! `op`, `path` and `value`, and the `path` grammar (attribute paths, value filters,
//! sub-attributes after a filter).

use serde_json::Value;

use super::{PatchOpKind, PatchOperation, PatchPath, PatchRequest, MAX_OPERATIONS};
use crate::scim::filter::Filter;
use crate::scim::schema::{AttrPath, Container, ResourceKind, SchemaRegistry, PATCH_OP_SCHEMA};
use crate::scim::unknown::{UnknownAttributes, Unknowns};
use crate::scim::value::json_kind;
use crate::scim::ScimError;

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
/// Mutability and value types are checked by [`apply`](super::apply).
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
pub(super) fn parse_patch_path(
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
