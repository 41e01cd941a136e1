//! Coercion of one JSON value to an attribute's definition (RFC 7643 §2.3).
//!
//! This is where input tolerance for real IdPs lives at the value level: attribute
//! and sub-attribute names are matched case-insensitively and rewritten to their
//! canonical spelling, `"True"`/`"false"` strings become booleans (Entra), a bare
//! string given for a complex attribute with a `value` sub-attribute becomes
//! `{"value": ...}` (Entra's `manager`), a single value given for a multi-valued
//! attribute becomes a one-element array, and `null`, empty strings in complex
//! sub-attributes we fill ourselves, and empty arrays mean "unassigned" (§2.5).
//! Read-only sub-attributes sent by a client are dropped, as RFC 7644 §3.5.1 says.

use serde_json::{Map, Value};

use super::schema::{AttrType, AttributeDef, Mutability};
use super::unknown::Unknowns;
use super::ScimError;

/// Most values one multi-valued attribute may hold (emails, roles, entitlements...).
/// IdPs send a handful; the bound keeps every PATCH operation on such an attribute
/// cheap, so a PATCH costs time linear in its operations.
pub const MAX_VALUES: usize = 1000;

/// `invalidValue` when a multi-valued attribute would hold more than [`MAX_VALUES`].
pub fn check_value_count(count: usize, at: &str) -> Result<(), ScimError> {
    if count > MAX_VALUES {
        return Err(ScimError::InvalidValue(format!(
            "attribute '{at}' may hold at most {MAX_VALUES} values, not {count}"
        )));
    }
    Ok(())
}

/// Coerces `value` to `def`. `at` names the attribute in error messages. Returns
/// `None` when the value means "unassigned". A sub-attribute `def` does not declare
/// goes to `unknown` (dropped, or `invalidValue` under its `Reject` policy).
pub fn coerce(
    def: &AttributeDef,
    value: Value,
    at: &str,
    unknown: &mut Unknowns,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if def.multi_valued {
        let items = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        check_value_count(items.len(), at)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_single(def, item, at, unknown)? {
                out.push(v);
            }
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    if let Value::Array(_) = value {
        return Err(ScimError::InvalidValue(format!(
            "attribute '{at}' is single-valued but an array was given"
        )));
    }
    coerce_single(def, value, at, unknown)
}

/// Coerces one element (of a multi-valued attribute, or a single-valued attribute).
pub fn coerce_single(
    def: &AttributeDef,
    value: Value,
    at: &str,
    unknown: &mut Unknowns,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    match def.kind {
        AttrType::Complex => coerce_complex(def, value, at, unknown),
        _ => coerce_scalar(def, value, at).map(Some),
    }
}

fn coerce_complex(
    def: &AttributeDef,
    value: Value,
    at: &str,
    unknown: &mut Unknowns,
) -> Result<Option<Value>, ScimError> {
    let object = match value {
        Value::Object(object) => object,
        // Entra sends `manager` as a bare id string.
        Value::String(s) if def.sub_attr("value").is_some() => {
            if s.is_empty() {
                return Ok(None);
            }
            let mut object = Map::new();
            object.insert("value".into(), Value::String(s));
            object
        }
        other => {
            return Err(ScimError::InvalidValue(format!(
                "attribute '{at}' must be an object, not {}",
                json_kind(&other)
            )))
        }
    };
    let mut out = Map::new();
    for (key, v) in object {
        let Some(sub) = def.sub_attr(&key) else {
            if !v.is_null() {
                unknown.drop_or(&format!("{at}.{key}"), || {
                    ScimError::InvalidValue(format!(
                        "attribute '{at}' has no sub-attribute '{key}'"
                    ))
                })?;
            }
            continue;
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        let path = format!("{at}.{}", sub.name);
        if let Some(v) = coerce(sub, v, &path, unknown)? {
            out.insert(sub.name.clone(), v);
        }
    }
    // `{"value": ""}` is how Entra's validator removes a manager.
    let empty_value = matches!(out.get("value"), Some(Value::String(s)) if s.is_empty());
    if out.is_empty() || (empty_value && out.len() == 1) {
        return Ok(None);
    }
    Ok(Some(Value::Object(out)))
}

fn coerce_scalar(def: &AttributeDef, value: Value, at: &str) -> Result<Value, ScimError> {
    let wrong = |v: &Value| {
        ScimError::InvalidValue(format!(
            "attribute '{at}' must be {}, not {}",
            type_phrase(def.kind),
            json_kind(v)
        ))
    };
    match def.kind {
        AttrType::String | AttrType::Reference => match value {
            Value::String(_) => Ok(value),
            // IdP attribute mappings sometimes send numbers for string attributes.
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) if def.kind == AttrType::String => Ok(Value::String(b.to_string())),
            other => Err(wrong(&other)),
        },
        AttrType::Boolean => match value {
            Value::Bool(_) => Ok(value),
            Value::String(ref s) => match parse_bool(s) {
                Some(b) => Ok(Value::Bool(b)),
                None => Err(wrong(&value)),
            },
            other => Err(wrong(&other)),
        },
        AttrType::Integer => match value {
            Value::Number(ref n) if n.is_i64() || n.is_u64() => Ok(value),
            Value::String(ref s) => s
                .trim()
                .parse::<i64>()
                .map(|i| Value::Number(i.into()))
                .map_err(|_| wrong(&value)),
            other => Err(wrong(&other)),
        },
        AttrType::Decimal => match value {
            Value::Number(_) => Ok(value),
            Value::String(ref s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| wrong(&value)),
            other => Err(wrong(&other)),
        },
        AttrType::DateTime => match value {
            Value::String(ref s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Ok(value),
            other => Err(wrong(&other)),
        },
        AttrType::Binary => match value {
            Value::String(ref s) if is_base64(s) => Ok(value),
            other => Err(wrong(&other)),
        },
        AttrType::Complex => Err(wrong(&value)),
    }
}

/// `"true"`/`"false"` in any case (Entra sends `"True"` and `"False"`).
pub fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn is_base64(s: &str) -> bool {
    use base64::Engine;
    let trimmed: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&trimmed)
        .is_ok()
        || base64::engine::general_purpose::URL_SAFE
            .decode(&trimmed)
            .is_ok()
        || base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&trimmed)
            .is_ok()
        || base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&trimmed)
            .is_ok()
}

fn type_phrase(kind: AttrType) -> &'static str {
    match kind {
        AttrType::String => "a string",
        AttrType::Boolean => "a boolean",
        AttrType::Decimal => "a number",
        AttrType::Integer => "an integer",
        AttrType::DateTime => "an xsd:dateTime string",
        AttrType::Binary => "a base64 string",
        AttrType::Reference => "a URI string",
        AttrType::Complex => "an object",
    }
}

/// A short name for a JSON value's kind, for error details (never the value itself).
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{ResourceKind, SchemaRegistry};
    use crate::scim::unknown::UnknownAttributes;
    use serde_json::json;

    /// [`super::coerce`] refusing unknown sub-attributes.
    fn coerce(def: &AttributeDef, value: Value, at: &str) -> Result<Option<Value>, ScimError> {
        super::coerce(
            def,
            value,
            at,
            &mut Unknowns::new(UnknownAttributes::Reject),
        )
    }

    fn def(kind: ResourceKind, path: &str) -> AttributeDef {
        let r = SchemaRegistry::builtin().unwrap();
        let p = r.parse_path(kind, path).unwrap();
        r.resolve(kind, &p).unwrap().leaf().clone()
    }

    #[test]
    fn string_booleans_become_booleans() {
        let active = def(ResourceKind::User, "active");
        assert_eq!(
            coerce(&active, json!("False"), "active").unwrap(),
            Some(json!(false))
        );
        assert_eq!(
            coerce(&active, json!("TRUE"), "active").unwrap(),
            Some(json!(true))
        );
        assert!(coerce(&active, json!("yes"), "active").is_err());
    }

    #[test]
    fn complex_values_get_canonical_names_and_drop_read_only_parts() {
        let emails = def(ResourceKind::User, "emails");
        let v = coerce(
            &emails,
            json!([{"Value": "a@example.com", "Primary": "True", "TYPE": "work"}, null]),
            "emails",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            v,
            json!([{"value": "a@example.com", "primary": true, "type": "work"}])
        );
        let manager = def(ResourceKind::User, "manager");
        assert_eq!(
            coerce(&manager, json!("2c2f6fb8"), "manager").unwrap(),
            Some(json!({"value": "2c2f6fb8"}))
        );
        assert_eq!(
            coerce(&manager, json!({"value": ""}), "manager").unwrap(),
            None
        );
        assert_eq!(
            coerce(
                &manager,
                json!({"value": "m1", "displayName": "Boss"}),
                "manager"
            )
            .unwrap(),
            Some(json!({"value": "m1"}))
        );
    }

    #[test]
    fn wrong_types_and_unknown_sub_attributes_are_invalid_values() {
        let name = def(ResourceKind::User, "name");
        let err = coerce(&name, json!({"nickname": "x"}), "name").unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
        let user_name = def(ResourceKind::User, "userName");
        assert!(coerce(&user_name, json!({"a": 1}), "userName").is_err());
        assert!(coerce(&user_name, json!(["a"]), "userName").is_err());
    }

    #[test]
    fn unknown_sub_attributes_are_dropped_and_named_when_ignored() {
        let emails = def(ResourceKind::User, "emails");
        let mut unknown = Unknowns::new(UnknownAttributes::Ignore);
        let v = super::coerce(
            &emails,
            json!([{"value": "a@example.com", "labell": "home"}, {"value": "b@example.com", "labell": "x"}]),
            "emails",
            &mut unknown,
        )
        .unwrap();
        assert_eq!(
            v,
            Some(json!([{"value": "a@example.com"}, {"value": "b@example.com"}]))
        );
        assert_eq!(unknown.names(), ["emails.labell"]);
        assert_eq!(unknown.count(), 2);
        // A null unknown sub-attribute means "unassigned", as at the top level.
        let name = def(ResourceKind::User, "name");
        assert_eq!(
            coerce(&name, json!({"givenName": "A", "nickname": null}), "name").unwrap(),
            Some(json!({"givenName": "A"}))
        );
    }

    #[test]
    fn null_and_empty_arrays_are_unassigned() {
        let emails = def(ResourceKind::User, "emails");
        assert_eq!(coerce(&emails, json!([]), "emails").unwrap(), None);
        assert_eq!(coerce(&emails, Value::Null, "emails").unwrap(), None);
    }
}
