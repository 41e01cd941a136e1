//! One operation on its target (RFC 7644 §3.5.2.1–§3.5.2.3): a single-valued attribute
//! or one of its sub-attributes, a multi-valued attribute as a whole or the elements a
//! value filter selects, and a group's `members` (as [`MemberOp`] deltas), with the
//! helpers they share (element matching, `primary` fix-up, creating an element from an
//! `eq` filter).

use serde_json::{Map, Value};

use super::{PatchOpKind, PatchPath};
use crate::scim::filter::{CompValue, CompareOp, Filter, ValidFilter};
use crate::scim::members::{parse_member_list, MemberOp};
use crate::scim::schema::{AttrPath, AttributeDef};
use crate::scim::value::{check_value_count, coerce, coerce_single};
use crate::scim::ScimError;

use super::apply::{Engine, Slot};

impl Engine<'_> {
    /// A single-valued attribute as a whole (RFC 7644 §3.5.2.1, §3.5.2.3): add and
    /// replace set it; for a complex attribute the given sub-attributes are merged
    /// into the existing ones, except that a new `value` (a different reference,
    /// like `manager`) replaces the whole object.
    pub(super) fn single_whole(
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
    pub(super) fn single_sub(
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
    pub(super) fn multi_whole(
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
    pub(super) fn multi_selected(
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
    pub(super) fn members(
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
pub(super) fn eq_conjuncts(filter: &Filter, attr: &AttributeDef) -> Option<Vec<(String, Value)>> {
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
