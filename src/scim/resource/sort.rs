//! Sort keys for `sortBy` (RFC 7644 §3.4.2.3): [`SortKey`] and [`sort_key`], which
//! reads the orderable value of one attribute from a rendered resource. Pure, like its
//! parent.

use serde_json::{Map, Value};

use crate::scim::schema::{
    AttrPath, AttrType, AttributeDef, Container, ResourceKind, SchemaRegistry,
};

/// An orderable sort value (RFC 7644 §3.4.2.3). Only keys of one attribute are ever
/// compared with each other, so they share a variant.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum SortKey {
    /// A boolean (`false` before `true`).
    Bool(bool),
    /// An integer attribute.
    Integer(i64),
    /// A decimal attribute.
    Decimal(f64),
    /// A dateTime attribute, in UTC.
    DateTime(chrono::DateTime<chrono::Utc>),
    /// A string: lower-cased unless the attribute is caseExact.
    String(String),
}

/// The sort key of a rendered resource for `sortBy` (RFC 7644 §3.4.2.3), or `None`
/// when the resource has no value there (or the path names no attribute). A
/// multi-valued attribute sorts by its primary value, else its first; a complex
/// attribute named without a sub-attribute sorts by its `value` sub-attribute when it
/// has one. Strings of attributes that are not caseExact fold case; an empty string
/// counts as no value. Order missing keys with [`crate::scim::list::compare_sort_keys`]:
/// last when ascending, first when descending.
pub fn sort_key(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    rendered: &Value,
    sort_by: &AttrPath,
) -> Option<SortKey> {
    let resolved = registry.resolve(kind, sort_by)?;
    let object = rendered.as_object()?;
    let container = match resolved.container {
        Container::Top => object,
        Container::Extension(urn) => get_ci(object, urn)?.as_object()?,
    };
    let value = get_ci(container, &resolved.attr.name)?;
    let attr = resolved.attr;
    let (leaf_def, leaf) = if attr.is_complex() {
        let sub = resolved.sub.or_else(|| attr.sub_attr("value"))?;
        let element = if attr.multi_valued {
            primary_or_first(value.as_array()?)?
        } else {
            value
        };
        (sub, get_ci(element.as_object()?, &sub.name)?)
    } else if attr.multi_valued {
        (attr, value.as_array()?.first()?)
    } else {
        (attr, value)
    };
    key_of(leaf_def, leaf)
}

fn get_ci<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn primary_or_first(items: &[Value]) -> Option<&Value> {
    items
        .iter()
        .find(|item| item.get("primary") == Some(&Value::Bool(true)))
        .or_else(|| items.first())
}

fn key_of(def: &AttributeDef, value: &Value) -> Option<SortKey> {
    match value {
        Value::Bool(b) => Some(SortKey::Bool(*b)),
        Value::Number(n) => match (def.kind, n.as_i64()) {
            (AttrType::Integer, Some(i)) => Some(SortKey::Integer(i)),
            _ => n.as_f64().map(SortKey::Decimal),
        },
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => {
            if def.kind == AttrType::DateTime {
                if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                    return Some(SortKey::DateTime(t.with_timezone(&chrono::Utc)));
                }
            }
            Some(SortKey::String(if def.case_exact {
                s.clone()
            } else {
                s.to_lowercase()
            }))
        }
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}
