//! The `attributes`/`excludedAttributes` projection (RFC 7644 §3.9, RFC 7643 §7
//! `returned`): parsing the parameter lists into a [`Projection`] and shaping a
//! rendered resource into a response body with [`project`]. Pure, like its parent.

use serde_json::{Map, Value};

use super::{shorten, Schemas};
use crate::scim::schema::{
    AttrPath, AttributeDef, Container, ResourceKind, Returned, SchemaRegistry,
};
use crate::scim::ScimError;

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
pub(super) fn split_attribute_list(text: &str) -> Vec<String> {
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
