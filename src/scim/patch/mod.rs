//! The RFC 7644 §3.5.2 PATCH engine: parses a PatchOp request and applies it to a
//! resource's stored document, atomically, with no I/O.
//!
//! The stored document holds canonical attribute names, `schemas` (core URN plus the
//! extension URNs that have data), `externalId`, core attributes at the top level and
//! extension attributes under their URN. It never holds `id`, `meta`, `password`, a
//! user's `groups` or a group's `members`: every operation on `members` becomes a
//! [`MemberOp`] delta, in request order, so a change costs the size of the change and
//! never the size of the group.
//!
//! Input tolerance for what Okta and Entra really send lives here:
//! - `op` and the structural keys (`schemas`, `Operations`, `op`, `path`, `value`) match
//!   case-insensitively (Entra sends `Add`/`Replace`/`Remove`); other keys in an
//!   operation (`"name": "addMember"`) are ignored; a missing `schemas` is tolerated,
//!   a `schemas` without the PatchOp URN is not; an empty `Operations` is a no-op
//!   (Microsoft's validator sends one).
//! - A path-less `add`/`replace` value may use plain names, dotted sub-attribute paths
//!   (`"name.givenName"`), URN-qualified paths (Entra's `aadOptscim062020`), value
//!   paths, or an extension URN whose value is an object.
//! - An `id` equal to the resource's id is ignored (Okta's group rename); `meta` and
//!   `schemas` in a path-less value are ignored as echoes; `password` (write-only,
//!   never stored) is accepted and ignored, as on POST and PUT.
//! - Values go through [`coerce`] (string booleans, Entra's bare-string `manager`,
//!   `{"value": ""}` as removal); a one-element array given for a single-valued
//!   attribute is unwrapped (Entra's tutorial sends `manager` as `[{...}]`).
//! - `emails[type eq "work"].value` on `add` or `replace` that matches no element
//!   creates `{"type": "work", "value": ...}` when the filter is `eq` comparisons
//!   joined by `and` (Entra relies on this); otherwise a filter that matches nothing
//!   is `noTarget` (RFC 7644 §3.5.2.3).
//! - `remove` is idempotent: a filter that matches nothing removes nothing.
//! - `remove` path `members` with a value list (Entra's default) removes those members.
//!
//! Must not import actix, sled, reqwest or anything outside `crate::scim`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::filter::Filter;
use super::members::MemberOp;
use super::schema::AttrPath;
use super::unknown::Unknowns;

/// Most operations one PATCH request may carry (documented in docs/idp-setup.md);
/// more is `400 tooMany`. With [`super::value::MAX_VALUES`] bounding each
/// multi-valued attribute, every operation costs a bounded amount of work.
pub const MAX_OPERATIONS: usize = 10_000;

mod apply;
mod parse;
mod targets;

pub use apply::apply;
pub use parse::parse;

/// The three PATCH operations of RFC 7644 §3.5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    /// `add` (§3.5.2.1).
    Add,
    /// `remove` (§3.5.2.2).
    Remove,
    /// `replace` (§3.5.2.3).
    Replace,
}

/// A parsed, schema-checked PATCH path: `attrPath` or `valuePath [ "." subAttr ]`.
///
/// `attr` is canonical (canonical names; `urn` set only for extension attributes) and
/// may carry a sub-attribute when there is no filter (`name.givenName`). With a
/// filter, `attr` is the multi-valued attribute, `filter` the value filter and `sub`
/// the sub-attribute after the closing bracket (`emails[type eq "work"].value`).
/// A path that is exactly an extension URN has `attr.attr == ""`.
#[derive(Debug, Clone)]
pub struct PatchPath {
    /// The attribute (and, without a filter, its sub-attribute).
    pub attr: AttrPath,
    /// The value-selection filter, for multi-valued attributes.
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter.
    pub sub: Option<String>,
}

/// One operation of a PATCH request.
#[derive(Debug, Clone)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOpKind,
    /// Where; `None` means the resource itself (not allowed for `remove`).
    pub path: Option<PatchPath>,
    /// The value; `None` when the request had no `value` member (explicit `null` is
    /// `Some(Value::Null)`).
    pub value: Option<Value>,
}

/// A parsed PATCH request (RFC 7644 §3.5.2).
#[derive(Debug, Clone)]
pub struct PatchRequest {
    /// The operations, in request order (without those on unknown attributes that
    /// were dropped).
    pub operations: Vec<PatchOperation>,
    /// Paths naming attributes no schema declares, dropped under
    /// [`UnknownAttributes::Ignore`]; [`apply`] uses the same policy.
    pub unknown: Unknowns,
}

/// The result of applying a PATCH.
#[derive(Debug, Clone)]
pub struct PatchOutcome {
    /// The new stored document.
    pub document: Value,
    /// Membership deltas, groups only, in request order.
    pub member_ops: Vec<MemberOp>,
    /// Attributes whose value changed, for the audit trail: canonical core names
    /// (`displayName`, `externalId`), extension attributes as full URN paths
    /// (`urn:...:enterprise:2.0:User:manager`), and `members` when there are member ops.
    pub changed: BTreeSet<String>,
    /// Every unknown attribute dropped, by [`parse`] and by [`apply`].
    pub unknown: Unknowns,
}

#[cfg(test)]
mod tests;
