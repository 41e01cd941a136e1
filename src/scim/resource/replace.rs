//! PUT replacement (RFC 7644 §3.5.1): the new stored document from the existing one
//! and a validated input, keeping immutable values and `active`, and the
//! attribute-aware equality that the immutability check uses. Pure, like its parent.

use serde_json::{Map, Value};

use super::{container_mut, display_name, lookup, InputResource, Schemas};
use crate::scim::schema::{AttrType, AttributeDef, Mutability, ResourceKind, SchemaRegistry};
use crate::scim::ScimError;

/// PUT (RFC 7644 §3.5.1): the new stored document from the existing one and a
/// validated input. Writable attributes are replaced wholesale (omitted means cleared);
/// an immutable attribute that already has a value must be matched by the input (else
/// `mutability`) and keeps its value when omitted; `active` keeps its current value
/// when the body omits it (Okta/Delinea guidance: a PUT without `active` must not
/// suspend the user). Members are not part of the document: the caller applies
/// `input.members`.
pub fn replace_document(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    existing: &Value,
    input: &InputResource,
) -> Result<Value, ScimError> {
    replace_with(&Schemas::of(registry, kind), existing, input)
}

pub(super) fn replace_with(
    schemas: &Schemas<'_>,
    existing: &Value,
    input: &InputResource,
) -> Result<Value, ScimError> {
    let Value::Object(mut doc) = input.document.clone() else {
        return Err(ScimError::InvalidSyntax(
            "the resource must be a JSON object".into(),
        ));
    };
    let empty = Map::new();
    let old = existing.as_object().unwrap_or(&empty);
    if let Some(active) = schemas.core.attr("active") {
        if !doc.contains_key(&active.name) {
            if let Some(current) = old.get(&active.name) {
                doc.insert(active.name.clone(), current.clone());
            }
        }
    }
    for (ext, def) in schemas.all_attributes() {
        keep_immutable(ext, def, old, &mut doc)?;
    }
    for ext in &schemas.extensions {
        if matches!(doc.get(&ext.id), Some(Value::Object(o)) if o.is_empty()) {
            doc.remove(&ext.id);
        }
    }
    let schemas_value = schemas.schemas_value(&doc);
    doc.insert("schemas".into(), schemas_value);
    Ok(Value::Object(doc))
}

/// RFC 7644 §3.5.1 `immutable`: "If one or more values are already set for the
/// attribute, the input value(s) MUST match". Also applied to immutable
/// sub-attributes of single-valued complex attributes.
fn keep_immutable(
    ext: Option<&str>,
    def: &AttributeDef,
    old: &Map<String, Value>,
    doc: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    let Some(old_value) = lookup(old, ext, &def.name) else {
        return Ok(());
    };
    if def.mutability == Mutability::Immutable {
        match lookup(doc, ext, &def.name) {
            Some(new_value) if !values_equal(def, old_value, new_value) => {
                return Err(ScimError::Mutability(format!(
                    "attribute '{}' is immutable and already has a value",
                    display_name(ext, def)
                )));
            }
            Some(_) => {}
            None => {
                if let Some(container) = container_mut(doc, ext) {
                    container.insert(def.name.clone(), old_value.clone());
                }
            }
        }
        return Ok(());
    }
    if !def.is_complex() || def.multi_valued {
        return Ok(());
    }
    for sub in def
        .sub_attributes
        .iter()
        .filter(|s| s.mutability == Mutability::Immutable)
    {
        let Some(old_sub) = old_value.get(&sub.name) else {
            continue;
        };
        let Some(container) = container_mut(doc, ext) else {
            continue;
        };
        let parent = container
            .entry(def.name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(parent) = parent.as_object_mut() else {
            continue;
        };
        match parent.get(&sub.name) {
            Some(new_sub) if !values_equal(sub, old_sub, new_sub) => {
                return Err(ScimError::Mutability(format!(
                    "attribute '{}.{}' is immutable and already has a value",
                    display_name(ext, def),
                    sub.name
                )));
            }
            Some(_) => {}
            None => {
                parent.insert(sub.name.clone(), old_sub.clone());
            }
        }
    }
    Ok(())
}

/// Equality under the attribute's rules: strings of non-caseExact string attributes
/// compare case-insensitively; complex values compare sub-attribute by sub-attribute.
fn values_equal(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| single_equal(def, p, q))
        }
        _ => single_equal(def, a, b),
    }
}

fn single_equal(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if def.kind == AttrType::String && !def.case_exact => {
            x.to_lowercase() == y.to_lowercase()
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.get(k).is_some_and(|w| match def.sub_attr(k) {
                        Some(sub) => single_equal(sub, v, w),
                        None => v == w,
                    })
                })
        }
        _ => a == b,
    }
}
