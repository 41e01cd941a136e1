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
/// Errors: a body that is not an object, a malformed `schemas`, a `schemas` naming
/// the other resource type, or an unknown attribute carrying data is `invalidSyntax`;
/// a missing or blank required attribute (`userName`, `displayName`) and a value of
/// the wrong type are `invalidValue`.
pub fn parse_input(
    registry: &SchemaRegistry,
    kind: ResourceKind,
    body: Value,
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

    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            check_schemas(kind, &value)?;
            continue;
        }
        if let Some(index) = schemas.extension_index(&key) {
            gather_extension(&schemas, index, &key, value, &mut gathered)?;
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
            if carries_no_data(&value) {
                continue;
            }
            return Err(unknown_attribute(&key));
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
                None => return Err(unknown_attribute(&key)),
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
        if let Some(value) = coerce_for_storage(def, raw, &def.name)? {
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
            if let Some(value) = coerce_for_storage(def, raw, &at)? {
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
    })
}

/// Coerces one attribute for the stored document; writeOnly values are dropped.
fn coerce_for_storage(
    def: &AttributeDef,
    raw: Value,
    at: &str,
) -> Result<Option<Value>, ScimError> {
    if def.mutability == Mutability::WriteOnly {
        // `password`: Okta always sends one; we never store or return it.
        return Ok(None);
    }
    let mut value = coerce(def, raw, at)?;
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
                None if carries_no_data(&v) => continue,
                None => return Err(unknown_attribute(&at)),
            },
            _ => None,
        };
        let Some(def) = def else {
            if carries_no_data(&v) {
                continue;
            }
            return Err(unknown_attribute(&at));
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
mod tests {
    use super::*;
    use crate::scim::members::MemberKind;
    use crate::scim::schema::{GROUP_SCHEMA, USER_SCHEMA};
    use serde_json::json;

    fn reg() -> SchemaRegistry {
        SchemaRegistry::builtin().unwrap()
    }

    fn user(body: Value) -> Result<InputResource, ScimError> {
        parse_input(&reg(), ResourceKind::User, body)
    }

    fn group(body: Value) -> Result<InputResource, ScimError> {
        parse_input(&reg(), ResourceKind::Group, body)
    }

    fn path(text: &str) -> AttrPath {
        reg().parse_path(ResourceKind::User, text).unwrap()
    }

    fn projection(
        kind: ResourceKind,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Projection {
        Projection::parse(&reg(), kind, attributes, excluded).unwrap()
    }

    // ---- parse_input -------------------------------------------------------------

    #[test]
    fn okta_create_body_is_accepted_without_password_or_groups() {
        // idp-behaviour.md §1.3, verbatim apart from the domain.
        let input = user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "test.user@example.com",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@example.com", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        }))
        .unwrap();
        assert_eq!(
            input.document,
            json!({
                "schemas": [USER_SCHEMA],
                "externalId": "00ujl29u0le5T6Aj10h7",
                "userName": "test.user@example.com",
                "name": {"givenName": "Test", "familyName": "User"},
                "displayName": "Test User",
                "locale": "en-US",
                "active": true,
                "emails": [{"primary": true, "value": "test.user@example.com", "type": "work"}]
            })
        );
        assert_eq!(input.members, None);
        assert_eq!(
            input.attribute_names,
            [
                "externalId",
                "userName",
                "name",
                "displayName",
                "locale",
                "active",
                "emails"
            ]
        );
    }

    #[test]
    fn entra_create_body_with_meta_nulls_and_enterprise_schema_is_accepted() {
        // idp-behaviour.md §2.3, with the explicit nulls Entra sends for unmapped attributes.
        let input = user(json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb@example.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            "addresses": null,
            "phoneNumbers": null,
            "title": null,
            "department": null,
            "manager": null
        }))
        .unwrap();
        let doc = &input.document;
        assert_eq!(doc["schemas"], json!([USER_SCHEMA]));
        assert_eq!(
            doc["userName"],
            "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
        );
        assert_eq!(doc["emails"][0]["value"], "Test_User_11bb@example.com");
        for absent in [
            "meta",
            "roles",
            "addresses",
            "phoneNumbers",
            "title",
            ENTERPRISE_USER_SCHEMA,
        ] {
            assert!(doc.get(absent).is_none(), "{absent} should be unassigned");
        }
    }

    #[test]
    fn entra_postman_body_with_capitalised_names_and_string_booleans_is_canonicalised() {
        let input = user(json!({
            "UserName": "UserName222",
            "Active": "True",
            "DisplayName": "lennay",
            "schemas": [
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:core:2.0:User"
            ],
            "externalId": "5ec3f1d1c0b4",
            "name": {"formatted": "Andrew Ryan", "familyName": "Ryan", "givenName": "Andrew"},
            "emails": [
                {"Primary": true, "type": "work", "value": "testing@example.com"},
                {"Primary": false, "type": "home", "value": "testinghome@example.com"}
            ],
            "roles": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "admin"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "Department": "bob",
                "Manager": {"Value": "SuzzyQ"}
            }
        }))
        .unwrap();
        let doc = &input.document;
        assert_eq!(doc["userName"], "UserName222");
        assert_eq!(doc["active"], true);
        assert_eq!(doc["displayName"], "lennay");
        assert_eq!(doc["emails"][0]["primary"], true);
        assert_eq!(doc["emails"][1]["primary"], false);
        assert_eq!(doc["roles"][0]["primary"], true);
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA],
            json!({"department": "bob", "manager": {"value": "SuzzyQ"}})
        );
        assert_eq!(doc["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert!(input
            .attribute_names
            .contains(&format!("{ENTERPRISE_USER_SCHEMA}:department")));
    }

    #[test]
    fn enterprise_attributes_are_accepted_in_every_placement() {
        let cases = [
            json!({"userName": "a@example.com",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance"}),
            json!({"userName": "a@example.com",
                   "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"department": "Finance"}}),
            json!({"userName": "a@example.com",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0User": {"department": "Finance"}}),
            json!({"userName": "a@example.com",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0User:department": "Finance"}),
            json!({"userName": "a@example.com", "department": "Finance"}),
        ];
        for body in cases {
            let input = user(body.clone()).unwrap();
            assert_eq!(
                input.document[ENTERPRISE_USER_SCHEMA],
                json!({"department": "Finance"}),
                "{body}"
            );
            assert_eq!(
                input.document["schemas"],
                json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA])
            );
        }
    }

    #[test]
    fn entra_manager_as_a_bare_string_becomes_a_reference_object() {
        let input = user(json!({
            "userName": "a@example.com",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "2c2f6fb8"}
        }))
        .unwrap();
        assert_eq!(
            input.document[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "2c2f6fb8"})
        );
    }

    #[test]
    fn schemas_may_be_missing_or_carry_unknown_uris() {
        let input = user(json!({"userName": "a@example.com"})).unwrap();
        assert_eq!(input.document["schemas"], json!([USER_SCHEMA]));
        // Entra's group create (idp-behaviour.md §2.6).
        let input = group(json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:Group",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
            ],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"}
        }))
        .unwrap();
        assert_eq!(
            input.document,
            json!({
                "schemas": [GROUP_SCHEMA],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "displayName"
            })
        );
        assert_eq!(input.members, None);
        // An extension object of a schema we do not know, with nothing in it.
        assert!(user(json!({"userName": "a@example.com", "urn:example:ext:1.0:User": {}})).is_ok());
        assert!(user(
            json!({"userName": "a@example.com", "urn:example:ext:1.0:User": {"x": null}})
        )
        .is_ok());
    }

    #[test]
    fn malformed_schemas_are_invalid_syntax() {
        for schemas in [
            json!("urn:ietf:params:scim:schemas:core:2.0:User"),
            json!([1]),
            json!({}),
        ] {
            let err = user(json!({"schemas": schemas, "userName": "a@example.com"})).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidSyntax"), "{schemas}");
        }
        let err =
            user(json!({"schemas": [GROUP_SCHEMA], "userName": "a@example.com"})).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
    }

    #[test]
    fn bodies_that_are_not_objects_are_invalid_syntax() {
        for body in [json!([]), json!("x"), json!(null), json!(1)] {
            assert_eq!(user(body).unwrap_err().scim_type(), Some("invalidSyntax"));
        }
    }

    #[test]
    fn unknown_attributes_are_invalid_syntax_naming_the_attribute_not_the_value() {
        let err =
            user(json!({"userName": "a@example.com", "shoeSize": "secret-value"})).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
        assert!(err.detail().contains("shoeSize"));
        assert!(!err.detail().contains("secret-value"));
        let err = user(json!({
            "userName": "a@example.com",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"shoeSize": "42"}
        }))
        .unwrap_err();
        assert!(err.detail().contains("shoeSize"));
        let err = user(json!({"userName": "a@example.com", "urn:example:ext:1.0:User": {"x": 1}}))
            .unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
        // Users have no `members`, groups no `userName`.
        assert!(user(json!({"userName": "a@example.com", "members": [{"value": "u1"}]})).is_err());
        assert!(group(json!({"displayName": "Ops", "userName": "x"})).is_err());
    }

    #[test]
    fn unknown_attributes_sent_as_null_are_ignored() {
        assert!(user(json!({"userName": "a@example.com", "customAttribute": null})).is_ok());
    }

    #[test]
    fn read_only_attributes_are_ignored() {
        let input = user(json!({
            "id": "client-chosen",
            "meta": {"resourceType": "User", "created": "2019-09-18T18:15:26.5788954+00:00"},
            "groups": [{"value": "g1", "display": "Ops"}],
            "userName": "a@example.com",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "manager": {"value": "m1", "displayName": "Boss"}
            }
        }))
        .unwrap();
        assert_eq!(
            input.document,
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "userName": "a@example.com",
                ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m1"}}
            })
        );
        assert_eq!(
            input.attribute_names,
            [
                "userName",
                format!("{ENTERPRISE_USER_SCHEMA}:manager").as_str()
            ]
        );
    }

    #[test]
    fn password_is_accepted_and_never_stored() {
        let input = user(json!({"userName": "a@example.com", "password": "t0p-secret"})).unwrap();
        assert!(input.document.get("password").is_none());
        assert!(!input.attribute_names.iter().any(|n| n == "password"));
        assert!(!input.document.to_string().contains("t0p-secret"));
    }

    #[test]
    fn nulls_and_empty_arrays_are_unassigned() {
        let input = user(json!({
            "userName": "a@example.com",
            "displayName": null,
            "emails": [],
            "phoneNumbers": [null],
            "name": {"givenName": null, "familyName": "User", "honorificPrefix": null}
        }))
        .unwrap();
        assert_eq!(
            input.document,
            json!({"schemas": [USER_SCHEMA], "userName": "a@example.com", "name": {"familyName": "User"}})
        );
    }

    #[test]
    fn control_characters_in_names_are_refused_and_user_names_trimmed() {
        for bad in [
            "a\u{0}b@example.com",
            "a\u{1b}[31m@example.com",
            "a\rb",
            "a\nb",
        ] {
            let err = user(json!({"userName": bad})).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidValue"), "{bad:?}");
            let err = user(json!({"userName": "ok@example.com", "displayName": bad})).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidValue"), "{bad:?}");
            assert!(group(json!({"displayName": bad})).is_err(), "{bad:?}");
        }
        let input = user(json!({"userName": "  alice@example.com \t"})).unwrap();
        assert_eq!(input.document["userName"], "alice@example.com");
        // Unicode letters and inner spaces are names like any other.
        let input = user(json!({"userName": "zoë", "displayName": "Zoë de Vries"})).unwrap();
        assert_eq!(input.document["displayName"], "Zoë de Vries");
    }

    #[test]
    fn required_attributes_must_be_present_and_non_blank() {
        let cases = [
            (ResourceKind::User, json!({"displayName": "x"}), "userName"),
            (ResourceKind::User, json!({"userName": ""}), "userName"),
            (ResourceKind::User, json!({"userName": "   "}), "userName"),
            (ResourceKind::User, json!({"userName": null}), "userName"),
            (ResourceKind::Group, json!({"members": []}), "displayName"),
            (
                ResourceKind::Group,
                json!({"displayName": ""}),
                "displayName",
            ),
        ];
        for (kind, body, attr) in cases {
            let err = parse_input(&reg(), kind, body.clone()).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidValue"), "{body}");
            assert!(err.detail().contains(attr), "{body}: {}", err.detail());
        }
    }

    #[test]
    fn wrong_value_types_are_invalid_values() {
        let cases = [
            json!({"userName": "a@example.com", "active": "yes"}),
            json!({"userName": "a@example.com", "name": "Test User"}),
            json!({"userName": ["a@example.com"]}),
            json!({"userName": "a@example.com", "emails": [{"value": "a@example.com", "kind": "x"}]}),
        ];
        for body in cases {
            assert_eq!(
                user(body.clone()).unwrap_err().scim_type(),
                Some("invalidValue"),
                "{body}"
            );
        }
    }

    #[test]
    fn values_are_stored_as_sent() {
        let input = user(json!({
            "userName": "Mixed.Case@Example.com",
            "externalId": "ABC-def",
            "emails": [{"value": "Mixed.Case@Example.com", "type": "Work"}],
            "name": {"middleName": ""}
        }))
        .unwrap();
        assert_eq!(input.document["userName"], "Mixed.Case@Example.com");
        assert_eq!(input.document["externalId"], "ABC-def");
        assert_eq!(
            input.document["emails"][0],
            json!({"value": "Mixed.Case@Example.com", "type": "Work"})
        );
        assert_eq!(input.document["name"]["middleName"], "");
    }

    #[test]
    fn several_primary_values_keep_the_first() {
        let input = user(json!({
            "userName": "a@example.com",
            "emails": [
                {"value": "a@example.com"},
                {"value": "b@example.com", "primary": "True"},
                {"value": "c@example.com", "primary": true}
            ]
        }))
        .unwrap();
        let primaries: Vec<_> = input.document["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.get("primary").cloned())
            .collect();
        assert_eq!(primaries, [None, Some(json!(true)), Some(json!(false))]);
    }

    #[test]
    fn dotted_sub_attribute_keys_merge_into_their_parent() {
        let input = user(json!({
            "userName": "a@example.com",
            "name.givenName": "Test",
            "Name": {"familyName": "User"}
        }))
        .unwrap();
        assert_eq!(
            input.document["name"],
            json!({"givenName": "Test", "familyName": "User"})
        );
        let err = user(json!({"userName": "a@example.com", "emails.value": "a@example.com"}))
            .unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
    }

    #[test]
    fn an_attribute_given_twice_is_invalid_syntax() {
        let err =
            user(json!({"userName": "a@example.com", "UserName": "b@example.com"})).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
        let err = user(json!({
            "userName": "a@example.com",
            "department": "A",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "B"}
        }))
        .unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidSyntax"));
    }

    #[test]
    fn group_members_go_to_the_member_list_not_the_document() {
        // Okta Group Push create (idp-behaviour.md §1.7).
        let input = group(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Test SCIMv2",
            "members": []
        }))
        .unwrap();
        assert_eq!(
            input.document,
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2"})
        );
        assert_eq!(input.members, Some(Vec::new()));
        assert_eq!(input.attribute_names, ["displayName", "members"]);

        // Postman PUT with members.
        let input = group(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "g1",
            "DisplayName": "putName",
            "Members": [{"value": "u3", "display": "VP"}, {"$ref": null, "value": "u4", "type": "User"}]
        }))
        .unwrap();
        let members = input.members.unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].value, "u3");
        assert_eq!(members[1].kind, Some(MemberKind::User));
        assert!(input.document.get("members").is_none());

        let input = group(json!({"displayName": "Ops", "members": null})).unwrap();
        assert_eq!(input.members, Some(Vec::new()));
        let err = group(json!({"displayName": "Ops", "members": [{"display": "x"}]})).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
    }

    // ---- replace_document --------------------------------------------------------

    fn stored_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "externalId": "00u1",
            "userName": "a@example.com",
            "active": false,
            "title": "Engineer",
            ENTERPRISE_USER_SCHEMA: {"department": "Finance"}
        })
    }

    #[test]
    fn put_replaces_writable_attributes_and_keeps_active_when_omitted() {
        let input = user(json!({"userName": "b@example.com", "displayName": "B"})).unwrap();
        let doc = replace_document(&reg(), ResourceKind::User, &stored_user(), &input).unwrap();
        assert_eq!(
            doc,
            json!({
                "schemas": [USER_SCHEMA],
                "userName": "b@example.com",
                "displayName": "B",
                "active": false
            })
        );
    }

    #[test]
    fn put_with_active_sets_it() {
        // Okta AIW deactivation is a PUT with the full body and active:false; here the reverse.
        let input = user(json!({"userName": "a@example.com", "active": true})).unwrap();
        let doc = replace_document(&reg(), ResourceKind::User, &stored_user(), &input).unwrap();
        assert_eq!(doc["active"], true);
    }

    #[test]
    fn okta_put_echoing_id_meta_and_groups_replaces_cleanly() {
        let input = user(json!({
            "schemas": [USER_SCHEMA],
            "id": "23a35c27",
            "userName": "a@example.com",
            "name": {"givenName": "New", "familyName": "User", "middleName": ""},
            "emails": [{"primary": true, "value": "a@example.com", "type": "work", "display": "a@example.com"}],
            "active": true,
            "groups": [],
            "meta": {"resourceType": "User", "location": "https://example.com/scim/v2/Users/23a35c27"}
        }))
        .unwrap();
        let doc = replace_document(&reg(), ResourceKind::User, &stored_user(), &input).unwrap();
        assert_eq!(doc["name"]["givenName"], "New");
        assert!(
            doc.get("id").is_none() && doc.get("meta").is_none() && doc.get("groups").is_none()
        );
        assert!(doc.get("externalId").is_none());
    }

    fn immutable_schemas() -> (Schema, Schema, Schema) {
        let core: Schema = serde_json::from_value(json!({
            "id": "urn:example:core:User",
            "name": "User",
            "attributes": [
                {"name": "userName", "type": "string", "multiValued": false, "required": true,
                 "mutability": "readWrite", "returned": "default"},
                {"name": "employeeId", "type": "string", "multiValued": false, "caseExact": false,
                 "mutability": "immutable", "returned": "default"},
                {"name": "badge", "type": "complex", "multiValued": false,
                 "mutability": "readWrite", "returned": "default", "subAttributes": [
                    {"name": "serial", "type": "string", "multiValued": false, "caseExact": true,
                     "mutability": "immutable", "returned": "default"},
                    {"name": "color", "type": "string", "multiValued": false,
                     "mutability": "readWrite", "returned": "default"}
                 ]}
            ]
        }))
        .unwrap();
        let ext: Schema = serde_json::from_value(json!({
            "id": "urn:example:ext:User",
            "name": "Ext",
            "attributes": [
                {"name": "costCenter", "type": "string", "multiValued": false,
                 "mutability": "immutable", "returned": "default"}
            ]
        }))
        .unwrap();
        (core, reg().common().clone(), ext)
    }

    fn replace_immutable(existing: Value, new: Value) -> Result<Value, ScimError> {
        let (core, common, ext) = immutable_schemas();
        let schemas = Schemas {
            core: &core,
            common: &common,
            extensions: vec![&ext],
        };
        let input = InputResource {
            document: new,
            members: None,
            attribute_names: Vec::new(),
        };
        replace_with(&schemas, &existing, &input)
    }

    #[test]
    fn put_changing_an_immutable_attribute_is_a_mutability_error() {
        let existing = json!({"userName": "a", "employeeId": "E1", "urn:example:ext:User": {"costCenter": "C1"}});
        let err = replace_immutable(
            existing.clone(),
            json!({"userName": "a", "employeeId": "E2"}),
        )
        .unwrap_err();
        assert_eq!(err.scim_type(), Some("mutability"));
        assert!(err.detail().contains("employeeId"));
        let err = replace_immutable(
            existing,
            json!({"userName": "a", "urn:example:ext:User": {"costCenter": "C2"}}),
        )
        .unwrap_err();
        assert_eq!(err.scim_type(), Some("mutability"));
        assert!(err.detail().contains("urn:example:ext:User:costCenter"));
    }

    #[test]
    fn put_matching_or_omitting_an_immutable_attribute_keeps_it() {
        let existing = json!({"userName": "a", "employeeId": "E1", "urn:example:ext:User": {"costCenter": "C1"}});
        // Not caseExact: a case-only difference matches.
        let doc = replace_immutable(
            existing.clone(),
            json!({"userName": "b", "employeeId": "e1"}),
        )
        .unwrap();
        assert_eq!(doc["employeeId"], "e1");
        assert_eq!(doc["urn:example:ext:User"]["costCenter"], "C1");
        assert_eq!(
            doc["schemas"],
            json!(["urn:example:core:User", "urn:example:ext:User"])
        );
        let doc = replace_immutable(existing, json!({"userName": "b"})).unwrap();
        assert_eq!(doc["employeeId"], "E1");
    }

    #[test]
    fn put_may_set_an_immutable_attribute_that_had_no_value() {
        let doc = replace_immutable(
            json!({"userName": "a"}),
            json!({"userName": "a", "employeeId": "E9"}),
        )
        .unwrap();
        assert_eq!(doc["employeeId"], "E9");
    }

    #[test]
    fn immutable_sub_attributes_of_complex_attributes_are_enforced() {
        let existing = json!({"userName": "a", "badge": {"serial": "S1", "color": "red"}});
        let err = replace_immutable(
            existing.clone(),
            json!({"userName": "a", "badge": {"serial": "s1"}}),
        )
        .unwrap_err();
        assert_eq!(err.scim_type(), Some("mutability"));
        let doc = replace_immutable(
            existing,
            json!({"userName": "a", "badge": {"color": "blue"}}),
        )
        .unwrap();
        assert_eq!(doc["badge"], json!({"serial": "S1", "color": "blue"}));
    }

    // ---- Projection / project ----------------------------------------------------

    fn rendered_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "2819c223",
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "password": "must-never-appear",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@example.com", "type": "home"}
            ],
            "groups": [{"value": "g1", "display": "Ops", "$ref": "https://example.com/scim/v2/Groups/g1"}],
            ENTERPRISE_USER_SCHEMA: {"department": "Finance", "manager": {"value": "m1"}},
            "meta": {
                "resourceType": "User",
                "created": "2024-01-01T00:00:00Z",
                "lastModified": "2024-02-01T00:00:00Z",
                "location": "https://example.com/scim/v2/Users/2819c223",
                "version": "W/\"1\""
            }
        })
    }

    fn rendered_group() -> Value {
        json!({
            "schemas": [GROUP_SCHEMA],
            "id": "g1",
            "displayName": "Ops",
            "members": [{"value": "u1", "display": "a@example.com", "type": "User"}],
            "meta": {"resourceType": "Group"}
        })
    }

    fn project_user(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let p = projection(ResourceKind::User, attributes, excluded);
        project(&reg(), ResourceKind::User, &rendered_user(), &p)
    }

    #[test]
    fn default_projection_returns_everything_but_password() {
        let out = project_user(None, None);
        let mut expected = rendered_user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(out, expected);
    }

    #[test]
    fn attributes_user_name_keeps_id_and_schemas() {
        assert_eq!(
            project_user(Some("userName"), None),
            json!({"schemas": [USER_SCHEMA], "id": "2819c223", "userName": "bjensen@example.com"})
        );
        // Case-insensitive names, a list, and the Postman collection's attributes=userName,emails.
        assert_eq!(
            project_user(Some("USERNAME, emails"), None),
            json!({
                "schemas": [USER_SCHEMA],
                "id": "2819c223",
                "userName": "bjensen@example.com",
                "emails": rendered_user()["emails"]
            })
        );
    }

    #[test]
    fn sub_attribute_projection_keeps_only_that_sub_attribute() {
        assert_eq!(
            project_user(Some("name.givenName"), None),
            json!({"schemas": [USER_SCHEMA], "id": "2819c223", "name": {"givenName": "Barbara"}})
        );
        assert_eq!(
            project_user(Some("emails.value,meta.lastModified"), None),
            json!({
                "schemas": [USER_SCHEMA],
                "id": "2819c223",
                "emails": [{"value": "bjensen@example.com"}, {"value": "babs@example.com"}],
                "meta": {"lastModified": "2024-02-01T00:00:00Z"}
            })
        );
    }

    #[test]
    fn extension_attributes_can_be_selected_and_excluded() {
        let expected = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "2819c223",
            ENTERPRISE_USER_SCHEMA: {"department": "Finance"}
        });
        assert_eq!(
            project_user(
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
                None
            ),
            expected
        );
        assert_eq!(project_user(Some("department"), None), expected);
        let whole = project_user(Some(ENTERPRISE_USER_SCHEMA), None);
        assert_eq!(
            whole[ENTERPRISE_USER_SCHEMA],
            rendered_user()[ENTERPRISE_USER_SCHEMA]
        );
        assert_eq!(
            project_user(
                Some(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value")),
                None
            )[ENTERPRISE_USER_SCHEMA],
            json!({"manager": {"value": "m1"}})
        );

        // Excluding the last extension attribute drops the URN from `schemas`.
        let out = project_user(None, Some(ENTERPRISE_USER_SCHEMA));
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
        let out = project_user(
            None,
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
        );
        assert_eq!(
            out[ENTERPRISE_USER_SCHEMA],
            json!({"department": "Finance"})
        );
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    }

    #[test]
    fn excluded_attributes_remove_defaults_but_never_id_or_schemas() {
        let out = project_user(None, Some("emails,name.familyName,id,meta,groups"));
        assert_eq!(out["id"], "2819c223");
        assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert!(
            out.get("emails").is_none() && out.get("meta").is_none() && out.get("groups").is_none()
        );
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        assert_eq!(out["userName"], "bjensen@example.com");
    }

    #[test]
    fn excluded_members_leave_the_rest_of_the_group() {
        let p = projection(ResourceKind::Group, None, Some("members"));
        assert!(!p.includes("members"));
        assert!(p.includes("displayName"));
        assert_eq!(
            project(&reg(), ResourceKind::Group, &rendered_group(), &p),
            json!({"schemas": [GROUP_SCHEMA], "id": "g1", "displayName": "Ops", "meta": {"resourceType": "Group"}})
        );
        let p = projection(ResourceKind::Group, None, Some("Members"));
        assert!(!p.includes("members"));
    }

    #[test]
    fn includes_reflects_selected_attributes() {
        let p = projection(ResourceKind::Group, Some("displayName"), None);
        assert!(p.includes("id") && p.includes("displayName") && !p.includes("members"));
        let p = projection(ResourceKind::Group, Some("members.value"), None);
        assert!(p.includes("members"));
        assert!(Projection::all().includes("members"));
        let p = projection(ResourceKind::Group, None, Some("members.display"));
        assert!(p.includes("members"));
    }

    #[test]
    fn password_never_appears_even_when_asked_for() {
        for (attributes, excluded) in [
            (Some("password"), None),
            (None, Some("userName")),
            (None, None),
        ] {
            let out = project_user(attributes, excluded);
            assert!(out.get("password").is_none());
            assert!(!out.to_string().contains("must-never-appear"));
        }
        assert_eq!(
            project_user(Some("password"), None),
            json!({"schemas": [USER_SCHEMA], "id": "2819c223"})
        );
    }

    #[test]
    fn unknown_projection_names_are_ignored() {
        assert_eq!(
            project_user(Some("nosuch,urn:example:other:1.0:User:x"), None),
            json!({"schemas": [USER_SCHEMA], "id": "2819c223"})
        );
        assert_eq!(project_user(None, Some("nosuch")), project_user(None, None));
    }

    #[test]
    fn malformed_projection_paths_and_both_parameters_are_invalid_values() {
        let r = reg();
        let err = Projection::parse(&r, ResourceKind::User, Some("1abc"), None).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
        let err = Projection::parse(&r, ResourceKind::User, Some("userName"), Some("emails"))
            .unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
        // Empty parameters are no parameters.
        let p = Projection::parse(&r, ResourceKind::User, Some(""), Some(" , ")).unwrap();
        assert_eq!(p, Projection::all());
        assert!(Projection::parse(&r, ResourceKind::User, Some("userName"), Some("")).is_ok());
    }

    #[test]
    fn projection_paths_are_canonicalised() {
        let p = projection(
            ResourceKind::User,
            Some("Name.GivenName,Department,urn:ietf:params:scim:schemas:core:2.0:User:UserName"),
            None,
        );
        assert_eq!(
            p.attributes,
            vec![
                AttrPath::new("name", Some("givenName")),
                AttrPath {
                    urn: Some(ENTERPRISE_USER_SCHEMA.into()),
                    attr: "department".into(),
                    sub: None
                },
                AttrPath::new("userName", None),
            ]
        );
    }

    #[test]
    fn bracketed_filters_in_attribute_lists_widen_to_the_attribute() {
        assert_eq!(
            split_attribute_list(r#"emails[type eq "work"].value, userName,name[x eq "a,]b"]"#),
            ["emails.value", "userName", "name"]
        );
        assert_eq!(
            project_user(Some(r#"emails[type eq "work"]"#), None)["emails"],
            rendered_user()["emails"]
        );
    }

    #[test]
    fn whole_core_schema_selects_top_level_attributes() {
        let out = project_user(Some(USER_SCHEMA), None);
        assert_eq!(out["userName"], "bjensen@example.com");
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert!(out.get("password").is_none());
    }

    // ---- sort_key ----------------------------------------------------------------

    fn key(rendered: &Value, sort_by: &str) -> Option<SortKey> {
        sort_key(&reg(), ResourceKind::User, rendered, &path(sort_by))
    }

    #[test]
    fn string_sort_keys_fold_case_unless_case_exact() {
        let u = json!({"userName": "BJensen@Example.com", "externalId": "ABC", "id": "Xy"});
        assert_eq!(
            key(&u, "userName"),
            Some(SortKey::String("bjensen@example.com".into()))
        );
        assert_eq!(key(&u, "externalId"), Some(SortKey::String("ABC".into())));
        assert_eq!(key(&u, "id"), Some(SortKey::String("Xy".into())));
        assert!(
            key(&json!({"userName": "alice"}), "userName")
                < key(&json!({"userName": "Bob"}), "userName")
        );
    }

    #[test]
    fn multi_valued_sort_keys_use_the_primary_value_else_the_first() {
        let u = rendered_user();
        assert_eq!(
            key(&u, "emails.value"),
            Some(SortKey::String("bjensen@example.com".into()))
        );
        assert_eq!(
            key(&u, "emails"),
            Some(SortKey::String("bjensen@example.com".into()))
        );
        let u = json!({"emails": [{"value": "Z@example.com"}, {"value": "a@example.com", "primary": true}]});
        assert_eq!(
            key(&u, "emails.value"),
            Some(SortKey::String("a@example.com".into()))
        );
        let u = json!({"emails": [{"value": "Z@example.com", "type": "work"}, {"value": "a@example.com"}]});
        assert_eq!(
            key(&u, "emails.value"),
            Some(SortKey::String("z@example.com".into()))
        );
        assert_eq!(key(&u, "emails.type"), Some(SortKey::String("work".into())));
    }

    #[test]
    fn sort_keys_follow_the_attribute_type() {
        let u = rendered_user();
        assert_eq!(key(&u, "active"), Some(SortKey::Bool(true)));
        assert_eq!(
            key(&u, "meta.created"),
            Some(SortKey::DateTime("2024-01-01T00:00:00Z".parse().unwrap()))
        );
        assert!(key(&u, "meta.created") < key(&u, "meta.lastModified"));
        assert_eq!(
            key(&u, "name.familyName"),
            Some(SortKey::String("jensen".into()))
        );
        assert_eq!(
            key(&u, "department"),
            Some(SortKey::String("finance".into()))
        );
        assert_eq!(
            key(
                &u,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
            ),
            Some(SortKey::String("m1".into()))
        );
    }

    #[test]
    fn missing_values_have_no_sort_key() {
        let u = json!({"userName": "a@example.com", "title": "", "emails": []});
        for sort_by in [
            "displayName",
            "title",
            "emails.value",
            "name.givenName",
            "nosuch",
            "department",
        ] {
            assert_eq!(key(&u, sort_by), None, "{sort_by}");
        }
    }
}
