//! Group membership as the protocol sees it: member references from request bodies
//! and the membership deltas a PATCH turns into (RFC 7643 §4.2, RFC 7644 §3.5.2).
//!
//! A group's members never travel inside the stored group document: the directory
//! keeps each membership as its own key, and PATCH hands it deltas, so a change costs
//! the size of the change, not of the group.

use serde_json::Value;

use super::value::json_kind;
use super::ScimError;

/// What kind of resource a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberKind {
    /// A user.
    User,
    /// A nested group.
    Group,
}

impl MemberKind {
    /// The `type` value (`User` or `Group`).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }

    /// Parses a `type` value case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("user") {
            Some(MemberKind::User)
        } else if s.eq_ignore_ascii_case("group") {
            Some(MemberKind::Group)
        } else {
            None
        }
    }
}

/// A member named by a client: its id, its type and display name if the client said.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberRef {
    /// The member's `id`.
    pub value: String,
    /// The member's type, when given.
    pub kind: Option<MemberKind>,
    /// The display name the client gave (kept; otherwise the server fills one in).
    pub display: Option<String>,
}

/// One change to a group's membership, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    /// Add these members (already a member is fine).
    Add(Vec<MemberRef>),
    /// Remove these member ids (not a member is fine).
    Remove(Vec<String>),
    /// Remove every member.
    RemoveAll,
    /// Make the membership exactly this list.
    Replace(Vec<MemberRef>),
}

/// Parses a `members` value: an array of `{"value": id, "type"?, "$ref"?, "display"?}`
/// (a single object is accepted as a one-element array). `$ref` is ignored (the server
/// fills it); a non-empty `display` is kept; `displayName` is read as `display` when
/// `display` is absent (Microsoft's Postman collection sends it); a missing or empty
/// `value` is an `invalidValue` error.
pub fn parse_member_list(value: Value) -> Result<Vec<MemberRef>, ScimError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        other => {
            return Err(ScimError::InvalidValue(format!(
                "'members' must be an array of objects, not {}",
                json_kind(&other)
            )))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(object) = item else {
            return Err(ScimError::InvalidValue(format!(
                "'members[{i}]' must be an object with a 'value'"
            )));
        };
        let mut id = None;
        let mut kind = None;
        let mut display = None;
        let mut display_name = None;
        for (key, v) in object {
            if key.eq_ignore_ascii_case("value") {
                match v {
                    Value::String(s) if !s.trim().is_empty() => id = Some(s),
                    _ => {
                        return Err(ScimError::InvalidValue(format!(
                            "'members[{i}].value' must be a non-empty string"
                        )))
                    }
                }
            } else if key.eq_ignore_ascii_case("type") {
                if let Value::String(s) = &v {
                    kind = MemberKind::parse(s);
                    if kind.is_none() {
                        return Err(ScimError::InvalidValue(format!(
                            "'members[{i}].type' must be 'User' or 'Group'"
                        )));
                    }
                }
            } else if key.eq_ignore_ascii_case("display") {
                if let Value::String(s) = v {
                    display = Some(s).filter(|s| !s.trim().is_empty());
                }
            } else if key.eq_ignore_ascii_case("displayName") {
                if let Value::String(s) = v {
                    display_name = Some(s).filter(|s| !s.trim().is_empty());
                }
            } else if key.eq_ignore_ascii_case("$ref") {
                // Filled in by the server from the id.
            } else {
                return Err(ScimError::InvalidValue(format!(
                    "'members[{i}]' has no sub-attribute '{key}'"
                )));
            }
        }
        match id {
            Some(value) => out.push(MemberRef {
                value,
                kind,
                display: display.or(display_name),
            }),
            None => {
                return Err(ScimError::InvalidValue(format!(
                    "'members[{i}]' has no 'value'"
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_lists_accept_idp_shapes() {
        let members = parse_member_list(json!([
            {"$ref": null, "value": "u1"},
            {"value": "g1", "type": "Group", "display": "Ops"},
            {"Value": "u2", "display": "user@example.com"}
        ]))
        .unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(members[1].kind, Some(MemberKind::Group));
        assert_eq!(members[2].value, "u2");
        assert_eq!(parse_member_list(json!({"value": "u3"})).unwrap().len(), 1);
    }

    #[test]
    fn display_name_in_a_member_is_read_as_display() {
        // Microsoft's Postman collection: `{"displayName": "new User", "value": ...}`.
        let members = parse_member_list(json!([
            {"displayName": "new User", "value": "u1"},
            {"display": "kept", "displayName": "ignored", "value": "u2"},
            {"displayName": "", "value": "u3"}
        ]))
        .unwrap();
        assert_eq!(members[0].display.as_deref(), Some("new User"));
        assert_eq!(members[1].display.as_deref(), Some("kept"));
        assert_eq!(members[2].display, None);
        assert!(parse_member_list(json!([{"value": "u4", "nickName": "x"}])).is_err());
    }

    #[test]
    fn members_without_a_value_are_invalid() {
        let err = parse_member_list(json!([{"display": "x"}])).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidValue"));
        assert!(parse_member_list(json!([{"value": ""}])).is_err());
        assert!(parse_member_list(json!("u1")).is_err());
    }
}
