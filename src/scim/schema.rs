//! The schema model of RFC 7643 §7 and the registry of the schemas this server
//! serves (`schemas/*.json`, embedded at build time).
//!
//! Everything schema-driven (input validation, filters, PATCH, projection) resolves
//! attribute paths here: names compare case-insensitively (RFC 7643 §2.1), an
//! unqualified name is looked up in the core schema, then the common attributes,
//! then the extensions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// ListResponse message URN.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// PatchOp message URN.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// SearchRequest message URN.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

const USER_SCHEMA_JSON: &str = include_str!("../../schemas/user.schema.json");
const ENTERPRISE_SCHEMA_JSON: &str = include_str!("../../schemas/enterprise-user.schema.json");
const GROUP_SCHEMA_JSON: &str = include_str!("../../schemas/group.schema.json");
const USER_RT_JSON: &str = include_str!("../../schemas/user.resource-type.json");
const GROUP_RT_JSON: &str = include_str!("../../schemas/group.resource-type.json");
const SPC_JSON: &str = include_str!("../../schemas/service-provider-config.json");

/// The two resource types this server provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResourceKind {
    /// `/Users`
    User,
    /// `/Groups`
    Group,
}

impl ResourceKind {
    /// The resource type name (`meta.resourceType`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint segment, without a slash.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The core schema URN.
    pub fn core_schema(self) -> &'static str {
        match self {
            ResourceKind::User => USER_SCHEMA,
            ResourceKind::Group => GROUP_SCHEMA,
        }
    }
}

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    /// JSON string.
    String,
    /// JSON boolean.
    Boolean,
    /// JSON number with a fraction.
    Decimal,
    /// JSON integer.
    Integer,
    /// xsd:dateTime string.
    DateTime,
    /// base64 string.
    Binary,
    /// URI string.
    Reference,
    /// Object with sub-attributes.
    Complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the server only.
    ReadOnly,
    /// Freely writable.
    ReadWrite,
    /// Set once, then fixed.
    Immutable,
    /// Accepted, never returned.
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always returned, even when excluded.
    Always,
    /// Never returned.
    Never,
    /// Returned unless excluded.
    Default,
    /// Returned only when asked for.
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness.
    None,
    /// Unique within this server.
    Server,
    /// Globally unique.
    Global,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    /// Canonical name.
    pub name: String,
    /// Data type.
    #[serde(rename = "type")]
    pub kind: AttrType,
    /// Whether the attribute holds an array.
    pub multi_valued: bool,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Whether a value is required.
    #[serde(default)]
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// Who may write it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// Uniqueness.
    #[serde(default = "default_uniqueness")]
    pub uniqueness: Uniqueness,
    /// Suggested values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// Reference targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// Sub-attributes of a complex attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
}

fn default_uniqueness() -> Uniqueness {
    Uniqueness::None
}

impl AttributeDef {
    /// A sub-attribute by name, case-insensitively.
    pub fn sub_attr(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether this is a complex attribute.
    pub fn is_complex(&self) -> bool {
        self.kind == AttrType::Complex
    }

    /// Whether clients may write it.
    pub fn is_writable(&self) -> bool {
        !matches!(self.mutability, Mutability::ReadOnly)
    }

    fn simple(
        name: &str,
        kind: AttrType,
        case_exact: bool,
        mutability: Mutability,
        returned: Returned,
    ) -> Self {
        Self {
            name: name.into(),
            kind,
            multi_valued: false,
            description: String::new(),
            required: false,
            case_exact,
            mutability,
            returned,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }
}

/// One schema (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// The schema URN.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Top-level attributes.
    pub attributes: Vec<AttributeDef>,
}

impl Schema {
    /// A top-level attribute by name, case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// An attribute path as written by a client: `[urn ":"] attr ["." sub]`
/// (RFC 7644 §3.10). Names are as written; [`SchemaRegistry::resolve`] canonicalizes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, if the path was qualified.
    pub urn: Option<String>,
    /// The attribute name.
    pub attr: String,
    /// The sub-attribute name.
    pub sub: Option<String>,
}

impl AttrPath {
    /// An unqualified path.
    pub fn new(attr: &str, sub: Option<&str>) -> Self {
        Self {
            urn: None,
            attr: attr.into(),
            sub: sub.map(Into::into),
        }
    }
}

impl std::fmt::Display for AttrPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        write!(f, "{}", self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Where the value of a resolved attribute lives in a resource's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container<'a> {
    /// At the top level of the resource (core and common attributes).
    Top,
    /// Inside the object keyed by an extension schema URN.
    Extension(&'a str),
}

/// An attribute path resolved against the registry.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The schema the attribute belongs to.
    pub schema: &'a Schema,
    /// Where the attribute's value lives in the JSON.
    pub container: Container<'a>,
    /// The top-level attribute.
    pub attr: &'a AttributeDef,
    /// The sub-attribute, if the path named one.
    pub sub: Option<&'a AttributeDef>,
}

impl<'a> Resolved<'a> {
    /// The attribute the path ends at.
    pub fn leaf(&self) -> &'a AttributeDef {
        self.sub.unwrap_or(self.attr)
    }
}

/// The URN of the pseudo-schema holding the common attributes (`id`, `externalId`, `meta`).
pub const COMMON_SCHEMA: &str = "urn:cowork-sync:common";

/// The schemas and resource types this server serves.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    user: Schema,
    enterprise: Schema,
    group: Schema,
    common: Schema,
    documents: Vec<Value>,
    resource_types: Vec<Value>,
    service_provider_config: Value,
}

fn parse_doc(text: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("embedded {what} is not valid JSON: {e}"))
}

fn parse_schema(doc: &Value, what: &str) -> Result<Schema, String> {
    Schema::deserialize(doc).map_err(|e| format!("embedded {what} is not a valid schema: {e}"))
}

fn common_schema() -> Schema {
    use AttrType::*;
    use Mutability::*;
    use Returned as R;
    let mut meta = AttributeDef::simple("meta", Complex, false, ReadOnly, R::Default);
    meta.sub_attributes = vec![
        AttributeDef::simple("resourceType", String, true, ReadOnly, R::Default),
        AttributeDef::simple("created", DateTime, false, ReadOnly, R::Default),
        AttributeDef::simple("lastModified", DateTime, false, ReadOnly, R::Default),
        AttributeDef::simple("location", Reference, true, ReadOnly, R::Default),
        AttributeDef::simple("version", String, true, ReadOnly, R::Default),
    ];
    Schema {
        id: COMMON_SCHEMA.into(),
        name: "Common".into(),
        description: "Attributes every resource has (RFC 7643 §3.1)".into(),
        attributes: vec![
            AttributeDef::simple("id", String, true, ReadOnly, R::Always),
            AttributeDef::simple("externalId", String, true, ReadWrite, R::Default),
            meta,
        ],
    }
}

impl SchemaRegistry {
    /// The registry of the embedded `schemas/*.json`.
    pub fn builtin() -> Result<Self, String> {
        let user_doc = parse_doc(USER_SCHEMA_JSON, "user schema")?;
        let enterprise_doc = parse_doc(ENTERPRISE_SCHEMA_JSON, "enterprise user schema")?;
        let group_doc = parse_doc(GROUP_SCHEMA_JSON, "group schema")?;
        Ok(Self {
            user: parse_schema(&user_doc, "user schema")?,
            enterprise: parse_schema(&enterprise_doc, "enterprise user schema")?,
            group: parse_schema(&group_doc, "group schema")?,
            common: common_schema(),
            documents: vec![user_doc, enterprise_doc, group_doc],
            resource_types: vec![
                parse_doc(USER_RT_JSON, "user resource type")?,
                parse_doc(GROUP_RT_JSON, "group resource type")?,
            ],
            service_provider_config: parse_doc(SPC_JSON, "service provider config")?,
        })
    }

    /// The core schema of a resource type.
    pub fn core(&self, kind: ResourceKind) -> &Schema {
        match kind {
            ResourceKind::User => &self.user,
            ResourceKind::Group => &self.group,
        }
    }

    /// The extension schemas of a resource type.
    pub fn extensions(&self, kind: ResourceKind) -> Vec<&Schema> {
        match kind {
            ResourceKind::User => vec![&self.enterprise],
            ResourceKind::Group => Vec::new(),
        }
    }

    /// The common attributes (`id`, `externalId`, `meta`).
    pub fn common(&self) -> &Schema {
        &self.common
    }

    /// A schema of this resource type (core or extension) by URN, case-insensitively.
    pub fn schema_for(&self, kind: ResourceKind, urn: &str) -> Option<&Schema> {
        let core = self.core(kind);
        if core.id.eq_ignore_ascii_case(urn) {
            return Some(core);
        }
        self.extensions(kind)
            .into_iter()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Parses an attribute path (`urn:...:User:name.givenName`, `emails.value`,
    /// `urn:...:enterprise:2.0:User:manager`). A path that is exactly an extension
    /// URN yields `attr == ""` (the whole extension object).
    pub fn parse_path(&self, kind: ResourceKind, text: &str) -> Result<AttrPath, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty attribute path".into());
        }
        let (urn, rest) = if text.len() > 4 && text[..4].eq_ignore_ascii_case("urn:") {
            let known = std::iter::once(self.core(kind))
                .chain(self.extensions(kind))
                .find(|s| {
                    text.len() >= s.id.len()
                        && text[..s.id.len()].eq_ignore_ascii_case(&s.id)
                        && (text.len() == s.id.len() || text.as_bytes()[s.id.len()] == b':')
                });
            match known {
                Some(schema) if text.len() == schema.id.len() => {
                    return Ok(AttrPath {
                        urn: Some(schema.id.clone()),
                        attr: String::new(),
                        sub: None,
                    })
                }
                Some(schema) => (Some(schema.id.clone()), &text[schema.id.len() + 1..]),
                None => match text.rfind(':') {
                    Some(at) => (Some(text[..at].to_string()), &text[at + 1..]),
                    None => return Err(format!("malformed attribute path '{text}'")),
                },
            }
        } else {
            (None, text)
        };
        let (attr, sub) = match rest.split_once('.') {
            Some((a, s)) => (a, Some(s)),
            None => (rest, None),
        };
        if !valid_name(attr) || sub.is_some_and(|s| !valid_name(s)) {
            return Err(format!("malformed attribute path '{text}'"));
        }
        Ok(AttrPath {
            urn,
            attr: attr.into(),
            sub: sub.map(Into::into),
        })
    }

    /// Resolves a path to its definition, or `None` if this resource type has no such
    /// attribute.
    pub fn resolve(&self, kind: ResourceKind, path: &AttrPath) -> Option<Resolved<'_>> {
        let (schema, container) = match &path.urn {
            Some(urn) => {
                let schema = self.schema_for(kind, urn)?;
                (schema, self.container_of(kind, schema))
            }
            None => {
                let found = std::iter::once(self.core(kind))
                    .chain(std::iter::once(&self.common))
                    .chain(self.extensions(kind))
                    .find(|s| s.attr(&path.attr).is_some())?;
                (found, self.container_of(kind, found))
            }
        };
        let attr = match schema.attr(&path.attr) {
            Some(a) => a,
            // The common attributes may be qualified with the core URN.
            None if schema.id == self.core(kind).id => self.common.attr(&path.attr)?,
            None => return None,
        };
        let sub = match &path.sub {
            Some(name) => Some(attr.sub_attr(name)?),
            None => None,
        };
        Some(Resolved {
            schema,
            container,
            attr,
            sub,
        })
    }

    fn container_of<'a>(&self, kind: ResourceKind, schema: &'a Schema) -> Container<'a> {
        if schema.id == self.core(kind).id || schema.id == COMMON_SCHEMA {
            Container::Top
        } else {
            Container::Extension(&schema.id)
        }
    }

    /// The `/Schemas` documents, without `meta.location`.
    pub fn schema_documents(&self) -> &[Value] {
        &self.documents
    }

    /// The `/ResourceTypes` documents, without `meta.location`.
    pub fn resource_type_documents(&self) -> &[Value] {
        &self.resource_types
    }

    /// The `/ServiceProviderConfig` document, without `meta.location`.
    pub fn service_provider_config(&self) -> &Value {
        &self.service_provider_config
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> SchemaRegistry {
        SchemaRegistry::builtin().unwrap()
    }

    #[test]
    fn embedded_schemas_parse() {
        let r = reg();
        assert_eq!(r.core(ResourceKind::User).id, USER_SCHEMA);
        assert!(r.core(ResourceKind::User).attr("USERNAME").is_some());
        assert_eq!(r.schema_documents().len(), 3);
    }

    #[test]
    fn paths_resolve_case_insensitively_and_across_schemas() {
        let r = reg();
        let p = r.parse_path(ResourceKind::User, "Name.GivenName").unwrap();
        let res = r.resolve(ResourceKind::User, &p).unwrap();
        assert_eq!(res.attr.name, "name");
        assert_eq!(res.leaf().name, "givenName");
        assert_eq!(res.container, Container::Top);

        let p = r
            .parse_path(
                ResourceKind::User,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            )
            .unwrap();
        let res = r.resolve(ResourceKind::User, &p).unwrap();
        assert_eq!(res.container, Container::Extension(ENTERPRISE_USER_SCHEMA));
        assert_eq!(res.leaf().name, "value");

        let p = r.parse_path(ResourceKind::User, "department").unwrap();
        assert_eq!(
            r.resolve(ResourceKind::User, &p).unwrap().container,
            Container::Extension(ENTERPRISE_USER_SCHEMA)
        );

        let p = r
            .parse_path(ResourceKind::User, "meta.lastModified")
            .unwrap();
        assert_eq!(
            r.resolve(ResourceKind::User, &p).unwrap().leaf().kind,
            AttrType::DateTime
        );

        let p = r
            .parse_path(
                ResourceKind::User,
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            )
            .unwrap();
        assert_eq!(
            r.resolve(ResourceKind::User, &p).unwrap().attr.name,
            "userName"
        );

        let p = r
            .parse_path(ResourceKind::User, ENTERPRISE_USER_SCHEMA)
            .unwrap();
        assert_eq!(p.attr, "");
    }

    #[test]
    fn unknown_and_malformed_paths_are_refused() {
        let r = reg();
        let p = r.parse_path(ResourceKind::User, "nosuch").unwrap();
        assert!(r.resolve(ResourceKind::User, &p).is_none());
        assert!(r.parse_path(ResourceKind::User, "1abc").is_err());
        assert!(r.parse_path(ResourceKind::User, "").is_err());
        let p = r.parse_path(ResourceKind::Group, "members.value").unwrap();
        assert!(r.resolve(ResourceKind::Group, &p).is_some());
    }
}
