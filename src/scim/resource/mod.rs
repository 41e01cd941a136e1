//! User and Group resources as the protocol sees them: validating POST/PUT bodies into
//! the stored document (RFC 7644 §3.3, §3.5.1), PUT replacement, the
//! `attributes`/`excludedAttributes` projection (RFC 7644 §3.9, RFC 7643 §7 `returned`)
//! and sort keys (RFC 7644 §3.4.2.3).
//!
//! Two JSON shapes, a contract shared with the directory and PATCH:
//! - the **stored document**: `schemas` (core URN plus each extension URN that has
//!   data), optional `externalId`, core attributes at the top level and extension
//!   attributes under their URN key, all with canonical names and coerced values. It
//!   never holds `id`, `meta`, `password`, users' `groups` or groups' `members`.
//! - the **rendered resource**: the stored document plus what the directory adds
//!   (`id`, `meta`, `groups` or `members`). [`project`] turns it into a response body.
//!
//! Input is tolerant (Okta and Entra quirks, see `value.rs`); output is strict RFC 7643.
//! Pure: no I/O, no clock. Must not import actix_web, sled, reqwest, nor anything of
//! ours outside `scim`.

use serde_json::{Map, Value};

use super::members::{parse_member_list, MemberRef};
use super::schema::{
    AttributeDef, Container, Mutability, ResourceKind, Schema, SchemaRegistry,
    ENTERPRISE_USER_SCHEMA,
};
use super::unknown::{UnknownAttributes, Unknowns};
use super::value::{coerce, json_kind};
use super::ScimError;

mod project;
mod replace;
mod sort;

pub use project::{project, Projection};
pub use replace::replace_document;
pub use sort::{sort_key, SortKey};

/// The enterprise URN as misspelled in Microsoft's SCIM tutorial (no `:` before `User`).
const ENTERPRISE_USER_SCHEMA_TYPO: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";

/// Attribute names longer than this are cut short in error details.
const MAX_NAME_IN_DETAIL: usize = 100;

/// A validated POST/PUT body.
#[derive(Debug, Clone, PartialEq)]
pub struct InputResource {
    /// The stored document (see the module docs): canonical names, coerced values,
    /// readOnly and writeOnly attributes dropped.
    pub document: Value,
    /// Groups only: the members given (`None` when the body had no `members` key;
    /// `members: null` or `[]` give `Some` of an empty list).
    pub members: Option<Vec<MemberRef>>,
    /// Canonical names of the attributes stored, in document order, for the audit
    /// trail (names, never values). Extension attributes are URN-qualified; `members`
    /// is listed when the body gave it.
    pub attribute_names: Vec<String>,
    /// Attributes no schema declares that were dropped (`unknown_attributes = "ignore"`).
    pub unknown: Unknowns,
}

/// The schemas of one resource type.
struct Schemas<'r> {
    core: &'r Schema,
    common: &'r Schema,
    extensions: Vec<&'r Schema>,
}

impl<'r> Schemas<'r> {
    fn of(registry: &'r SchemaRegistry, kind: ResourceKind) -> Self {
        Self {
            core: registry.core(kind),
            common: registry.common(),
            extensions: registry.extensions(kind),
        }
    }

    /// A top-level (core or common) attribute by name, case-insensitively.
    fn top_attr(&self, name: &str) -> Option<&'r AttributeDef> {
        self.core.attr(name).or_else(|| self.common.attr(name))
    }

    /// The index of the extension keyed by `key` (case-insensitive; the enterprise
    /// URN typo from Microsoft's docs is accepted).
    fn extension_index(&self, key: &str) -> Option<usize> {
        let key = if key.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA_TYPO) {
            ENTERPRISE_USER_SCHEMA
        } else {
            key
        };
        self.extensions
            .iter()
            .position(|s| s.id.eq_ignore_ascii_case(key))
    }

    /// Every attribute with the extension URN it lives under (`None`: top level),
    /// common attributes first, then core, then extensions.
    fn all_attributes(&self) -> impl Iterator<Item = (Option<&'r str>, &'r AttributeDef)> + '_ {
        self.common
            .attributes
            .iter()
            .chain(&self.core.attributes)
            .map(|a| (None, a))
            .chain(
                self.extensions
                    .iter()
                    .flat_map(|s| s.attributes.iter().map(|a| (Some(s.id.as_str()), a))),
            )
    }

    /// The `schemas` value for a document: the core URN, then each extension URN
    /// whose object holds data.
    fn schemas_value(&self, doc: &Map<String, Value>) -> Value {
        let mut out = vec![Value::String(self.core.id.clone())];
        for ext in &self.extensions {
            if matches!(doc.get(&ext.id), Some(Value::Object(o)) if !o.is_empty()) {
                out.push(Value::String(ext.id.clone()));
            }
        }
        Value::Array(out)
    }
}

/// The raw values of a body, grouped by attribute before coercion.
#[derive(Default)]
struct Gathered<'r> {
    entries: Vec<Entry<'r>>,
}

struct Entry<'r> {
    /// Index into `Schemas::extensions`, `None` for the top level.
    ext: Option<usize>,
    def: &'r AttributeDef,
    raw: Value,
}

impl<'r> Gathered<'r> {
    /// Records `value` for `def` (or for its sub-attribute `sub`, given as a dotted
    /// key such as `name.givenName`). `key` names the attribute in errors.
    fn add(
        &mut self,
        ext: Option<usize>,
        def: &'r AttributeDef,
        sub: Option<&'r AttributeDef>,
        value: Value,
        key: &str,
    ) -> Result<(), ScimError> {
        if value.is_null() {
            return Ok(());
        }
        let existing = self
            .entries
            .iter_mut()
            .find(|e| e.ext == ext && e.def.name == def.name);
        match (sub, existing) {
            (None, None) => {
                self.entries.push(Entry {
                    ext,
                    def,
                    raw: value,
                });
                Ok(())
            }
            (Some(_), _) if def.multi_valued => Err(ScimError::InvalidSyntax(format!(
                "attribute '{}' names a sub-attribute of the multi-valued '{}'; send '{}' as an array",
                shorten(key),
                def.name,
                def.name
            ))),
            (Some(sub), None) => {
                let mut object = Map::new();
                object.insert(sub.name.clone(), value);
                self.entries.push(Entry {
                    ext,
                    def,
                    raw: Value::Object(object),
                });
                Ok(())
            }
            (Some(sub), Some(entry)) => match &mut entry.raw {
                Value::Object(object)
                    if !object.keys().any(|k| k.eq_ignore_ascii_case(&sub.name)) =>
                {
                    object.insert(sub.name.clone(), value);
                    Ok(())
                }
                _ => Err(given_twice(key)),
            },
            (None, Some(_)) => Err(given_twice(key)),
        }
    }

    fn take(&mut self, ext: Option<usize>, def: &AttributeDef) -> Option<Value> {
        let at = self
            .entries
            .iter()
            .position(|e| e.ext == ext && e.def.name == def.name)?;
        Some(self.entries.swap_remove(at).raw)
    }
}

fn given_twice(key: &str) -> ScimError {
    ScimError::InvalidSyntax(format!(
        "attribute '{}' is given more than once",
        shorten(key)
    ))
}

fn unknown_attribute(key: &str) -> ScimError {
    ScimError::InvalidSyntax(format!("unknown attribute '{}'", shorten(key)))
}

/// An attribute name fit for an error detail.
fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_IN_DETAIL {
        name.to_string()
    } else {
        let mut cut: String = name.chars().take(MAX_NAME_IN_DETAIL).collect();
        cut.push('…');
        cut
    }
}

/// Whether a value holds nothing to store: `null`, `[]`, `{}`, or containers of those.
fn carries_no_data(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().all(carries_no_data),
        Value::Object(object) => object.values().all(carries_no_data),
        _ => false,
    }
}

/// Validates a POST or PUT body for `kind` (RFC 7644 §3.3, §3.5.1).
///
/// Tolerated: attribute names in any case; unknown `schemas` URIs; a missing core
/// URN; extension attributes at the top level, URN-qualified
/// (`urn:…:enterprise:2.0:User:department`) or unqualified; the `…:2.0User` URN typo;
/// dotted keys for sub-attributes of single-valued complex attributes
/// (`name.givenName`); `null` and `[]` meaning unassigned; readOnly attributes (`id`,
/// `meta`, users' `groups`), which are ignored; `password`, which is accepted and
/// dropped. Several `primary: true` values in one multi-valued attribute keep the
/// first and turn the others to `false` (RFC 7643 §2.4 allows one; the same fix-up
/// RFC 7644 §3.5.2 prescribes for PATCH).
///
/// An attribute no schema declares (also an undeclared sub-attribute, or an
/// undeclared attribute of a declared extension) carrying data is dropped and listed
/// in [`InputResource::unknown`] under [`UnknownAttributes::Ignore`]; under
/// [`UnknownAttributes::Reject`] it is `invalidSyntax` (`invalidValue` for a
/// sub-attribute inside a complex value).
///
/// Errors: a body that is not an object, a malformed `schemas`, or a `schemas` naming
/// the other resource type is `invalidSyntax`; a missing or blank required attribute
/// (`userName`, `displayName`) and a value of the wrong type are `invalidValue`.
pub fn parse_input(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    body: Value,
    policy: UnknownAttributes,
) -> Result<InputResource, ScimError> {
    let body = match body {
        Value::Object(body) => body,
        other => {
            return Err(ScimError::InvalidSyntax(format!(
                "the request body must be a JSON object, not {}",
                json_kind(&other)
            )))
        }
    };
    let schemas = Schemas::of(registry, kind);
    let mut gathered = Gathered::default();
    let mut members: Option<Value> = None;
    let mut unknown = Unknowns::new(policy);

    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            check_schemas(kind, &value)?;
            continue;
        }
        if let Some(index) = schemas.extension_index(&key) {
            gather_extension(&schemas, index, &key, value, &mut gathered, &mut unknown)?;
            continue;
        }
        let path_text = fix_enterprise_typo(&key);
        let resolved = registry
            .parse_path(kind, &path_text)
            .ok()
            .and_then(|p| registry.resolve(kind, &p));
        let Some(resolved) = resolved else {
            // Entra sends explicit nulls for attributes it does not map, and schema
            // URIs of its own with no attributes.
            if !carries_no_data(&value) {
                unknown.drop_or(&key, || unknown_attribute(&key))?;
            }
            continue;
        };
        // RFC 7644 §3.3: readOnly values SHALL be ignored.
        if !resolved.attr.is_writable() || resolved.sub.is_some_and(|s| !s.is_writable()) {
            continue;
        }
        if kind == ResourceKind::Group
            && resolved.container == Container::Top
            && resolved.attr.name == "members"
        {
            if resolved.sub.is_some() {
                return Err(ScimError::InvalidSyntax(
                    "'members' must be given as an array of member objects".into(),
                ));
            }
            if members.is_some() {
                return Err(given_twice(&key));
            }
            members = Some(value);
            continue;
        }
        let ext = match resolved.container {
            Container::Top => None,
            Container::Extension(urn) => match schemas.extension_index(urn) {
                Some(index) => Some(index),
                None => {
                    unknown.drop_or(&key, || unknown_attribute(&key))?;
                    continue;
                }
            },
        };
        gathered.add(ext, resolved.attr, resolved.sub, value, &key)?;
    }

    let mut doc = Map::new();
    // Placeholder keeps `schemas` first when serde_json preserves insertion order.
    doc.insert("schemas".into(), Value::Array(Vec::new()));
    let mut attribute_names = Vec::new();
    for def in schemas
        .common
        .attributes
        .iter()
        .chain(&schemas.core.attributes)
    {
        let Some(raw) = gathered.take(None, def) else {
            continue;
        };
        if let Some(value) = coerce_for_storage(def, raw, &def.name, &mut unknown)? {
            attribute_names.push(def.name.clone());
            doc.insert(def.name.clone(), value);
        }
    }
    let members = match members {
        Some(raw) => {
            attribute_names.push("members".into());
            Some(parse_member_list(raw)?)
        }
        None => None,
    };
    for (index, ext) in schemas.extensions.iter().enumerate() {
        let mut object = Map::new();
        for def in &ext.attributes {
            let Some(raw) = gathered.take(Some(index), def) else {
                continue;
            };
            let at = format!("{}:{}", ext.id, def.name);
            if let Some(value) = coerce_for_storage(def, raw, &at, &mut unknown)? {
                attribute_names.push(at);
                object.insert(def.name.clone(), value);
            }
        }
        if !object.is_empty() {
            doc.insert(ext.id.clone(), Value::Object(object));
        }
    }
    normalize_names(&mut doc)?;
    check_required(&schemas, &doc)?;
    let schemas_value = schemas.schemas_value(&doc);
    doc.insert("schemas".into(), schemas_value);
    Ok(InputResource {
        document: Value::Object(doc),
        members,
        attribute_names,
        unknown,
    })
}

/// Coerces one attribute for the stored document; writeOnly values are dropped.
fn coerce_for_storage(
    def: &AttributeDef,
    raw: Value,
    at: &str,
    unknown: &mut Unknowns,
) -> Result<Option<Value>, ScimError> {
    if def.mutability == Mutability::WriteOnly {
        // `password`: Okta always sends one; we never store or return it.
        return Ok(None);
    }
    let mut value = coerce(def, raw, at, unknown)?;
    if let Some(v) = value.as_mut() {
        single_primary(def, v);
    }
    Ok(value)
}

/// RFC 7643 §2.4: `primary: true` appears at most once; the first one wins.
fn single_primary(def: &AttributeDef, value: &mut Value) {
    if !def.multi_valued || def.sub_attr("primary").is_none() {
        return;
    }
    let Value::Array(items) = value else {
        return;
    };
    let mut seen = false;
    for item in items {
        if let Some(primary) = item.get_mut("primary") {
            if *primary == Value::Bool(true) {
                if seen {
                    *primary = Value::Bool(false);
                }
                seen = true;
            }
        }
    }
}

/// `schemas`, when present, is an array of strings that does not name the other
/// resource type's core schema. Unknown URIs (Entra's ADSCIM Group URI) are fine.
fn check_schemas(kind: ResourceKind, value: &Value) -> Result<(), ScimError> {
    let items = match value {
        Value::Null => return Ok(()),
        Value::Array(items) => items,
        _ => {
            return Err(ScimError::InvalidSyntax(
                "'schemas' must be an array of strings".into(),
            ))
        }
    };
    let other = match kind {
        ResourceKind::User => ResourceKind::Group,
        ResourceKind::Group => ResourceKind::User,
    };
    for item in items {
        let Value::String(uri) = item else {
            return Err(ScimError::InvalidSyntax(
                "'schemas' must be an array of strings".into(),
            ));
        };
        if uri.eq_ignore_ascii_case(other.core_schema()) {
            return Err(ScimError::InvalidSyntax(format!(
                "'schemas' names the {} schema, but this endpoint takes {} resources",
                other.name(),
                kind.name()
            )));
        }
    }
    Ok(())
}

/// Rewrites a `…enterprise:2.0User:attr` key to the real enterprise URN.
fn fix_enterprise_typo(key: &str) -> String {
    let typo = ENTERPRISE_USER_SCHEMA_TYPO;
    if key.len() > typo.len()
        && key.is_char_boundary(typo.len())
        && key[..typo.len()].eq_ignore_ascii_case(typo)
        && key[typo.len()..].starts_with(':')
    {
        format!("{ENTERPRISE_USER_SCHEMA}{}", &key[typo.len()..])
    } else {
        key.to_string()
    }
}

/// Gathers the attributes of an extension object (`"urn:…:User": {...}`).
fn gather_extension<'r>(
    schemas: &Schemas<'r>,
    index: usize,
    key: &str,
    value: Value,
    gathered: &mut Gathered<'r>,
    unknown: &mut Unknowns,
) -> Result<(), ScimError> {
    let Some(ext) = schemas.extensions.get(index).copied() else {
        return Err(unknown_attribute(key));
    };
    let object = match value {
        Value::Null => return Ok(()),
        Value::Object(object) => object,
        other => {
            return Err(ScimError::InvalidSyntax(format!(
                "'{}' must be an object, not {}",
                ext.id,
                json_kind(&other)
            )))
        }
    };
    for (name, v) in object {
        if name.eq_ignore_ascii_case("schemas") {
            // Clients that serialize the extension as a model echo its URN here.
            continue;
        }
        let at = format!("{}:{}", ext.id, name);
        let (attr_name, sub_name) = match name.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (name.as_str(), None),
        };
        let def = ext.attr(attr_name);
        let sub = match (def, sub_name) {
            (Some(def), Some(s)) => match def.sub_attr(s) {
                Some(sub) => Some(sub),
                None => {
                    if !carries_no_data(&v) {
                        unknown.drop_or(&at, || unknown_attribute(&at))?;
                    }
                    continue;
                }
            },
            _ => None,
        };
        let Some(def) = def else {
            if !carries_no_data(&v) {
                unknown.drop_or(&at, || unknown_attribute(&at))?;
            }
            continue;
        };
        if !def.is_writable() || sub.is_some_and(|s| !s.is_writable()) {
            continue;
        }
        gathered.add(Some(index), def, sub, v, &at)?;
    }
    Ok(())
}

/// The names IdPs and people match on: `userName` (users) and `displayName` (users
/// and groups) must not carry control characters (NUL, ESC, CR, LF, ...), which no
/// directory holds in a name and which break logs, CSV exports and terminals; and
/// `userName` loses surrounding whitespace, so `" alice@example.com "` is the user
/// `alice@example.com` (uniqueness is decided on the trimmed, case-folded name).
pub fn normalize_names(doc: &mut Map<String, Value>) -> Result<(), ScimError> {
    if let Some(Value::String(name)) = doc.get_mut("userName") {
        let trimmed = name.trim();
        if trimmed.len() != name.len() {
            *name = trimmed.to_string();
        }
    }
    for attr in ["userName", "displayName"] {
        if let Some(Value::String(text)) = doc.get(attr) {
            if text.chars().any(char::is_control) {
                return Err(ScimError::InvalidValue(format!(
                    "attribute '{attr}' must not contain control characters"
                )));
            }
        }
    }
    Ok(())
}

/// Required, writable attributes must be present; required strings must not be blank.
fn check_required(schemas: &Schemas<'_>, doc: &Map<String, Value>) -> Result<(), ScimError> {
    for (ext, def) in schemas.all_attributes() {
        if !def.required || !def.is_writable() {
            continue;
        }
        let at = display_name(ext, def);
        match lookup(doc, ext, &def.name) {
            None => {
                return Err(ScimError::InvalidValue(format!(
                    "required attribute '{at}' is missing"
                )))
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(ScimError::InvalidValue(format!(
                    "attribute '{at}' must be a non-empty string"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn display_name(ext: Option<&str>, def: &AttributeDef) -> String {
    match ext {
        Some(urn) => format!("{urn}:{}", def.name),
        None => def.name.clone(),
    }
}

fn lookup<'a>(doc: &'a Map<String, Value>, ext: Option<&str>, name: &str) -> Option<&'a Value> {
    match ext {
        None => doc.get(name),
        Some(urn) => doc.get(urn)?.as_object()?.get(name),
    }
}

/// The object holding attributes of `ext` (the document itself for the top level),
/// created when missing.
fn container_mut<'a>(
    doc: &'a mut Map<String, Value>,
    ext: Option<&str>,
) -> Option<&'a mut Map<String, Value>> {
    match ext {
        None => Some(doc),
        Some(urn) => doc
            .entry(urn)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut(),
    }
}

#[cfg(test)]
mod tests;
