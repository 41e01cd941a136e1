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
    AttrPath, AttrType, AttributeDef, Container, Mutability, ResourceKind, Returned, Schema,
    SchemaRegistry, ENTERPRISE_USER_SCHEMA,
};
use super::unknown::{UnknownAttributes, Unknowns};
use super::value::{coerce, json_kind};
use super::ScimError;

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

fn replace_with(
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

/// The `attributes` / `excludedAttributes` parameters (RFC 7644 §3.9), mutually
/// exclusive. Paths that resolve are stored canonically (extension attributes carry
/// their URN, core and common attributes none); a whole schema is `attr == ""`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    /// Return only these (plus `returned: always` attributes). Empty: no restriction.
    pub attributes: Vec<AttrPath>,
    /// Return the defaults minus these (`returned: always` attributes stay).
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// No restriction: every attribute whose `returned` is `always` or `default`.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether nothing was asked for (every attribute returned by default).
    pub fn is_all(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// From the comma-separated query values (or a `/.search` body's arrays joined
    /// with commas). Empty items are skipped, and so is an empty parameter.
    ///
    /// Unknown attribute names are ignored rather than rejected: RFC 7644 §3.9 defines
    /// no error for them, an attribute the server does not hold simply has no value
    /// to return, and scim2-models (the library behind scim2-tester) drops invalid
    /// names the same way. `attributes=nosuch` therefore returns only `id` and
    /// `schemas`. A bracketed filter in an item (`emails[type eq "work"].value`, which
    /// Microsoft's Postman collection sends) is dropped, widening it to
    /// `emails.value`. Errors (`invalidValue`): a syntactically malformed path, and
    /// both parameters at once (RFC 7644 §3.9: "mutually exclusive").
    pub fn parse(
        registry: &SchemaRegistry,
        kind: ResourceKind,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Self, ScimError> {
        let attributes = parse_path_list(registry, kind, attributes, "attributes")?;
        let excluded = parse_path_list(registry, kind, excluded, "excludedAttributes")?;
        if !attributes.is_empty() && !excluded.is_empty() {
            return Err(ScimError::InvalidValue(
                "'attributes' and 'excludedAttributes' are mutually exclusive".into(),
            ));
        }
        Ok(Self {
            attributes,
            excluded,
        })
    }

    /// Whether the projection would include this top-level attribute (canonical
    /// name), so the directory can skip rendering `members` of a large group under
    /// `excludedAttributes=members`. Conservative: it may say `true` for an attribute
    /// [`project`] then drops (`password`), never `false` for one it keeps.
    pub fn includes(&self, attr: &str) -> bool {
        if attr.eq_ignore_ascii_case("id") || attr.eq_ignore_ascii_case("schemas") {
            return true;
        }
        if !self.attributes.is_empty() {
            return self
                .attributes
                .iter()
                .any(|p| p.attr.is_empty() || p.attr.eq_ignore_ascii_case(attr));
        }
        !self
            .excluded
            .iter()
            .any(|p| p.urn.is_none() && p.sub.is_none() && p.attr.eq_ignore_ascii_case(attr))
    }
}

fn parse_path_list(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    text: Option<&str>,
    param: &str,
) -> Result<Vec<AttrPath>, ScimError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in split_attribute_list(text) {
        let path = registry.parse_path(kind, &item).map_err(|_| {
            ScimError::InvalidValue(format!(
                "'{param}' has a malformed attribute path '{}'",
                shorten(&item)
            ))
        })?;
        out.push(canonical_path(registry, kind, path));
    }
    Ok(out)
}

/// The canonical spelling of a path, or the path as written when it does not resolve.
fn canonical_path(registry: &SchemaRegistry, kind: ResourceKind, path: AttrPath) -> AttrPath {
    if path.attr.is_empty() {
        return path;
    }
    match registry.resolve(kind, &path) {
        Some(r) => AttrPath {
            urn: match r.container {
                Container::Top => None,
                Container::Extension(urn) => Some(urn.to_string()),
            },
            attr: r.attr.name.clone(),
            sub: r.sub.map(|s| s.name.clone()),
        },
        None => path,
    }
}

/// Splits `a,b.c,d[x eq "1,2"].e` on commas outside brackets and quotes, drops the
/// bracketed filters and trims each item; empty items are skipped.
fn split_attribute_list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut in_quote = false;
    let mut escaped = false;
    for c in text.chars() {
        if depth > 0 {
            if in_quote {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_quote = false;
                }
            } else if c == '"' {
                in_quote = true;
            } else if c == '[' {
                depth += 1;
            } else if c == ']' {
                depth -= 1;
            }
            continue;
        }
        match c {
            '[' => depth = 1,
            ',' => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// How a projection treats one attribute.
enum Pick<'p> {
    /// The whole value (sub-attributes with `returned: never`/`request` dropped).
    All,
    /// Only these sub-attributes.
    Only(Vec<&'p str>),
    /// All default sub-attributes except these.
    Except(Vec<&'p str>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Default,
    Select,
    Exclude,
}

/// A projection path resolved against the schemas.
struct Target {
    /// The extension URN, `None` for the top level.
    ext: Option<String>,
    /// `None`: every attribute of the schema.
    attr: Option<String>,
    sub: Option<String>,
}

struct Plan {
    mode: Mode,
    targets: Vec<Target>,
}

impl Plan {
    fn new(registry: &SchemaRegistry, kind: ResourceKind, projection: &Projection) -> Self {
        let (mode, paths) = if !projection.attributes.is_empty() {
            (Mode::Select, projection.attributes.as_slice())
        } else if !projection.excluded.is_empty() {
            (Mode::Exclude, projection.excluded.as_slice())
        } else {
            (Mode::Default, &[][..])
        };
        let targets = paths
            .iter()
            .filter_map(|p| target(registry, kind, p))
            .collect();
        Self { mode, targets }
    }

    /// The projected value of one attribute, `None` to leave it out.
    fn shape(&self, ext: Option<&str>, def: &AttributeDef, value: &Value) -> Option<Value> {
        let pick = match def.returned {
            Returned::Never => return None,
            Returned::Always => Pick::All,
            Returned::Default | Returned::Request => {
                let matching: Vec<&Target> = self
                    .targets
                    .iter()
                    .filter(|t| same_ext(t.ext.as_deref(), ext))
                    .filter(|t| {
                        t.attr
                            .as_deref()
                            .is_none_or(|a| a.eq_ignore_ascii_case(&def.name))
                    })
                    .collect();
                let whole = matching.iter().any(|t| t.attr.is_none() || t.sub.is_none());
                let subs: Vec<&str> = matching.iter().filter_map(|t| t.sub.as_deref()).collect();
                match self.mode {
                    Mode::Default if def.returned == Returned::Request => return None,
                    Mode::Default => Pick::All,
                    Mode::Select if whole => Pick::All,
                    Mode::Select if subs.is_empty() => return None,
                    Mode::Select => Pick::Only(subs),
                    Mode::Exclude if whole || def.returned == Returned::Request => return None,
                    Mode::Exclude => Pick::Except(subs),
                }
            }
        };
        shape_value(def, value, &pick)
    }
}

fn same_ext(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    }
}

fn target(registry: &SchemaRegistry, kind: ResourceKind, path: &AttrPath) -> Option<Target> {
    if path.attr.is_empty() {
        let urn = path.urn.as_deref()?;
        if registry.core(kind).id.eq_ignore_ascii_case(urn) {
            return Some(Target {
                ext: None,
                attr: None,
                sub: None,
            });
        }
        let ext = registry
            .extensions(kind)
            .into_iter()
            .find(|s| s.id.eq_ignore_ascii_case(urn))?;
        return Some(Target {
            ext: Some(ext.id.clone()),
            attr: None,
            sub: None,
        });
    }
    let r = registry.resolve(kind, path)?;
    Some(Target {
        ext: match r.container {
            Container::Top => None,
            Container::Extension(urn) => Some(urn.to_string()),
        },
        attr: Some(r.attr.name.clone()),
        sub: r.sub.map(|s| s.name.clone()),
    })
}

fn shape_value(def: &AttributeDef, value: &Value, pick: &Pick<'_>) -> Option<Value> {
    if !def.is_complex() {
        return Some(value.clone());
    }
    match value {
        Value::Array(items) => {
            let out: Vec<Value> = items
                .iter()
                .filter_map(|item| shape_object(def, item, pick))
                .collect();
            if out.is_empty() {
                None
            } else {
                Some(Value::Array(out))
            }
        }
        other => shape_object(def, other, pick),
    }
}

fn shape_object(def: &AttributeDef, value: &Value, pick: &Pick<'_>) -> Option<Value> {
    let Value::Object(object) = value else {
        return Some(value.clone());
    };
    let named = |list: &[&str], name: &str| list.iter().any(|n| n.eq_ignore_ascii_case(name));
    let mut out = Map::new();
    for (key, v) in object {
        let keep = match def.sub_attr(key) {
            None => !matches!(pick, Pick::Only(_)),
            Some(sub) => match (sub.returned, pick) {
                (Returned::Never, _) => false,
                (Returned::Always, _) => true,
                (returned, Pick::All) => returned != Returned::Request,
                (_, Pick::Only(list)) => named(list, &sub.name),
                (returned, Pick::Except(list)) => {
                    returned != Returned::Request && !named(list, &sub.name)
                }
            },
        };
        if keep {
            out.insert(key.clone(), v.clone());
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(Value::Object(out))
    }
}

/// Applies `attributes=`/`excludedAttributes=` (RFC 7644 §3.9) to a rendered resource.
///
/// `id` and `schemas` are always returned (`returned: always`, RFC 7643 §3.1); `schemas`
/// is recomputed to list the extensions still present. `returned: never` attributes
/// (`password`) never appear; `returned: request` ones only when named in
/// `attributes`. A sub-attribute path (`name.givenName`, `emails.value`) keeps only
/// that sub-attribute; a URN alone (`urn:…:enterprise:2.0:User`) means every attribute
/// of that schema. Keys come out in the order `schemas`, `id`, `externalId`, core
/// attributes, extensions, `meta` (visible only if serde_json preserves order).
pub fn project(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    rendered: &Value,
    projection: &Projection,
) -> Value {
    let Some(object) = rendered.as_object() else {
        return rendered.clone();
    };
    let schemas = Schemas::of(registry, kind);
    let plan = Plan::new(registry, kind, projection);
    let mut id = None;
    let mut external_id = None;
    let mut meta = None;
    let mut body = Vec::new();
    for (key, value) in object {
        if key.eq_ignore_ascii_case("schemas") || schemas.extension_index(key).is_some() {
            continue;
        }
        let Some(def) = schemas.top_attr(key) else {
            if plan.mode != Mode::Select {
                body.push((key.clone(), value.clone()));
            }
            continue;
        };
        let Some(projected) = plan.shape(None, def, value) else {
            continue;
        };
        match def.name.as_str() {
            "id" => id = Some(projected),
            "externalId" => external_id = Some(projected),
            "meta" => meta = Some(projected),
            _ => body.push((def.name.clone(), projected)),
        }
    }
    let mut extensions = Map::new();
    for ext in &schemas.extensions {
        let inner = object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&ext.id))
            .and_then(|(_, v)| v.as_object());
        let Some(inner) = inner else {
            continue;
        };
        let mut out = Map::new();
        for (key, value) in inner {
            match ext.attr(key) {
                Some(def) => {
                    if let Some(projected) = plan.shape(Some(&ext.id), def, value) {
                        out.insert(def.name.clone(), projected);
                    }
                }
                None if plan.mode != Mode::Select => {
                    out.insert(key.clone(), value.clone());
                }
                None => {}
            }
        }
        if !out.is_empty() {
            extensions.insert(ext.id.clone(), Value::Object(out));
        }
    }

    let mut out = Map::new();
    out.insert("schemas".into(), schemas.schemas_value(&extensions));
    if let Some(id) = id {
        out.insert("id".into(), id);
    }
    if let Some(external_id) = external_id {
        out.insert("externalId".into(), external_id);
    }
    for (key, value) in body {
        out.insert(key, value);
    }
    for (key, value) in extensions {
        out.insert(key, value);
    }
    if let Some(meta) = meta {
        out.insert("meta".into(), meta);
    }
    Value::Object(out)
}

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

#[cfg(test)]
mod tests;
