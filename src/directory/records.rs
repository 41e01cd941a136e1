//! What the directory keeps per resource and per membership, and the keys it uses.
//!
//! A resource record holds the stored document (see `scim::resource`), timestamps and
//! a version. Memberships are their own keys in both directions, each carrying the
//! display name of the other side so users' `groups` and groups' `members` render
//! without extra reads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::timestamp;
use crate::scim::members::MemberKind;
use crate::scim::ResourceKind;
use crate::store::codec::{pair_key, pair_prefix};
use crate::store::Table;

/// One stored user or group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The stored document.
    pub doc: Value,
    /// `meta.created`.
    pub created: String,
    /// `meta.lastModified`.
    pub modified: String,
    /// Incremented on every change; the ETag is `W/"<version>"`.
    pub version: u64,
    /// Groups: how many direct members.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub member_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Record {
    /// A new record created at `now`.
    pub fn new(doc: Value, now: DateTime<Utc>) -> Self {
        let at = timestamp(now);
        Self {
            doc,
            created: at.clone(),
            modified: at,
            version: 1,
            member_count: 0,
        }
    }

    /// The entity tag (RFC 7644 §3.14).
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// Marks a change at `now`.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        self.modified = timestamp(now);
        self.version += 1;
    }

    /// A top-level string attribute of the document.
    pub fn str_attr(&self, name: &str) -> Option<&str> {
        self.doc.get(name).and_then(Value::as_str)
    }

    /// How this resource is shown in the other side of a membership.
    pub fn display(&self, kind: ResourceKind) -> Option<String> {
        match kind {
            ResourceKind::User => self
                .str_attr("displayName")
                .or_else(|| self.str_attr("userName"))
                .map(Into::into),
            ResourceKind::Group => self.str_attr("displayName").map(Into::into),
        }
    }
}

/// Value of a `Members` key (`group 0x00 member`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberValue {
    /// User or nested group.
    #[serde(rename = "t")]
    pub kind: MemberKindTag,
    /// The member's display name.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// Value of a `MemberOf` key (`member 0x00 group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberOfValue {
    /// The group's display name.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// Serializable member kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberKindTag {
    /// A user.
    #[serde(rename = "U")]
    User,
    /// A group.
    #[serde(rename = "G")]
    Group,
}

impl From<MemberKind> for MemberKindTag {
    fn from(k: MemberKind) -> Self {
        match k {
            MemberKind::User => MemberKindTag::User,
            MemberKind::Group => MemberKindTag::Group,
        }
    }
}

impl From<MemberKindTag> for MemberKind {
    fn from(k: MemberKindTag) -> Self {
        match k {
            MemberKindTag::User => MemberKind::User,
            MemberKindTag::Group => MemberKind::Group,
        }
    }
}

/// The record table of a resource type.
pub fn table(kind: ResourceKind) -> Table {
    match kind {
        ResourceKind::User => Table::Users,
        ResourceKind::Group => Table::Groups,
    }
}

/// The record table of a member kind.
pub fn member_table(kind: MemberKind) -> Table {
    match kind {
        MemberKind::User => Table::Users,
        MemberKind::Group => Table::Groups,
    }
}

/// `Members` key.
pub fn member_key(group: &str, member: &str) -> Vec<u8> {
    pair_key(group, member)
}

/// `MemberOf` key.
pub fn member_of_key(member: &str, group: &str) -> Vec<u8> {
    pair_key(member, group)
}

/// Prefix of a group's `Members` keys or a member's `MemberOf` keys.
pub fn prefix(id: &str) -> Vec<u8> {
    pair_prefix(id)
}

/// The index key of a case-insensitive unique name.
pub fn fold(name: &str) -> Vec<u8> {
    name.to_lowercase().into_bytes()
}

/// The meta counter key of a resource type.
pub fn count_key(kind: ResourceKind) -> &'static [u8] {
    match kind {
        ResourceKind::User => b"count/users",
        ResourceKind::Group => b"count/groups",
    }
}

/// The `meta` counter key of memberships.
pub const MEMBERSHIP_COUNT_KEY: &[u8] = b"count/memberships";
