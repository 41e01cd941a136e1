//! SCIM filters (RFC 7644 §3.4.2.2): parsing, validation against the schema, and
//! evaluation against a rendered resource.
//!
//! Three steps, each its own type: [`Filter::parse`] turns text into a syntax tree
//! without knowing any schema; [`Filter::validate`] (or [`Filter::validate_within`]
//! for PATCH value filters) resolves every attribute path against the
//! [`SchemaRegistry`] and checks operators against attribute types, giving a
//! [`ValidFilter`]; [`ValidFilter::matches`] evaluates it against a resource's JSON.
//!
//! Input tolerance (what Okta and Entra really send) lives in the parser and the
//! validator: keywords and names in any case, extra whitespace, unquoted bare-word
//! values (`externalId eq jyoung`), Entra's `emails[type eq "work"].value eq "..."`,
//! `"True"` for a boolean. [`Filter`]'s `Display` is strict RFC 7644 text.
//!
//! The parser is bounded ([`MAX_FILTER_LEN`], [`MAX_FILTER_DEPTH`],
//! [`MAX_FILTER_TERMS`]), builds `and`/`or` chains iteratively and never panics.
//! Pure: no I/O, and nothing from actix, sled or reqwest.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde_json::{Number, Value};

use super::schema::{AttrPath, AttrType, AttributeDef, Container, Returned};
use super::{ResourceKind, SchemaRegistry, ScimError};

mod eval;
mod parse;
#[cfg(test)]
mod tests;
mod validate;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// The deepest nesting accepted: each `( ... )`, `not ( ... )` and valuePath `[ ... ]`
/// is one level. `and`/`or` chains are flat and bounded by [`MAX_FILTER_TERMS`].
pub const MAX_FILTER_DEPTH: usize = 16;
/// The most attribute expressions (`pr` and comparisons) accepted in one filter.
pub const MAX_FILTER_TERMS: usize = 64;

/// The deepest resolved tree `validate` accepts. A parsed filter stays below it (each
/// nesting level adds at most an `or`, an `and` and a `not`/valuePath node); it bounds
/// the recursion of validation and evaluation for filters built by hand.
const MAX_TREE_DEPTH: usize = 3 * MAX_FILTER_DEPTH + 3;
/// How much of a token or path an error detail shows.
const SHOWN_TOKEN: usize = 40;
const SHOWN_PATH: usize = 120;

/// An attribute operator (RFC 7644 §3.4.2.2, Table 3), other than `pr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// The operator as written in a filter (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Parses an operator name case-insensitively.
    pub fn from_keyword(word: &str) -> Option<Self> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        if word.len() != 2 {
            return None;
        }
        ALL.into_iter()
            .find(|op| word.eq_ignore_ascii_case(op.as_str()))
    }

    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }

    fn accepts(self, ord: Ordering) -> bool {
        match self {
            CompareOp::Eq => ord == Ordering::Equal,
            CompareOp::Ne => ord != Ordering::Equal,
            CompareOp::Gt => ord == Ordering::Greater,
            CompareOp::Ge => ord != Ordering::Less,
            CompareOp::Lt => ord == Ordering::Less,
            CompareOp::Le => ord != Ordering::Greater,
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison value (`compValue`): the JSON literals RFC 7644 allows.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A JSON number.
    Number(Number),
    /// A JSON string (escapes decoded), or a tolerated unquoted bare word.
    String(String),
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::String(s) => write_json_string(f, s),
        }
    }
}

/// A parsed filter: names as written, not yet checked against any schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`
    Compare(AttrPath, CompareOp, CompValue),
    /// `a and b`
    And(Box<Filter>, Box<Filter>),
    /// `a or b`
    Or(Box<Filter>, Box<Filter>),
    /// `not (f)`
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the complex attribute `attr` matches `filter`,
    /// whose paths name sub-attributes of `attr`. Entra's
    /// `attr[f].sub op value` is `attr[f and sub op value]`.
    ValuePath {
        /// The complex attribute.
        attr: AttrPath,
        /// The filter on each of its values.
        filter: Box<Filter>,
    },
}

/// Canonical RFC 7644 text: lowercase keywords, single spaces, JSON literals, only
/// the parentheses the tree needs. `Filter::parse(&f.to_string()) == Ok(f)`.
/// Iterative, so any tree prints without deep recursion.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        enum Step<'a> {
            Node(&'a Filter, u8),
            Text(&'static str),
        }
        const OR: u8 = 1;
        const AND: u8 = 2;
        const ATOM: u8 = 3;
        fn prec(node: &Filter) -> u8 {
            match node {
                Filter::Or(..) => OR,
                Filter::And(..) => AND,
                _ => ATOM,
            }
        }
        let mut stack = vec![Step::Node(self, 0)];
        while let Some(step) = stack.pop() {
            let (node, min) = match step {
                Step::Text(text) => {
                    f.write_str(text)?;
                    continue;
                }
                Step::Node(node, min) => (node, min),
            };
            if prec(node) < min {
                f.write_str("(")?;
                stack.push(Step::Text(")"));
            }
            match node {
                Filter::Present(path) => write!(f, "{path} pr")?,
                Filter::Compare(path, op, value) => write!(f, "{path} {op} {value}")?,
                Filter::And(l, r) | Filter::Or(l, r) => {
                    let p = prec(node);
                    stack.push(Step::Node(r, p + 1));
                    stack.push(Step::Text(if p == AND { " and " } else { " or " }));
                    stack.push(Step::Node(l, p));
                }
                Filter::Not(inner) => {
                    f.write_str("not (")?;
                    stack.push(Step::Text(")"));
                    stack.push(Step::Node(inner, 0));
                }
                Filter::ValuePath { attr, filter } => {
                    write!(f, "{attr}[")?;
                    stack.push(Step::Text("]"));
                    stack.push(Step::Node(filter, 0));
                }
            }
        }
        Ok(())
    }
}

/// An equality the directory can answer from an index (see [`ValidFilter::index_hint`]).
/// The value is as the client wrote it; case folding for `userName` and
/// `displayName` (caseExact false) is the index's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexHint {
    /// `id eq "..."`
    Id(String),
    /// `userName eq "..."` (users)
    UserName(String),
    /// `externalId eq "..."`
    ExternalId(String),
    /// `displayName eq "..."` (groups)
    DisplayName(String),
}

/// A filter resolved against the schema, ready to evaluate.
#[derive(Debug, Clone)]
pub struct ValidFilter {
    raw: Filter,
    root: Node,
    hint: Option<IndexHint>,
    mentions: Vec<String>,
}

impl ValidFilter {
    /// Whether `resource` matches. `resource` is the rendered JSON: canonical names,
    /// common attributes (`id`, `externalId`, `meta`) at the top level, extension
    /// attributes under their schema URN, `groups` / `members` when the caller wants
    /// them evaluated (see [`ValidFilter::mentions`]). For a filter from
    /// [`Filter::validate_within`], `resource` is one value of the parent attribute.
    ///
    /// RFC 7644 §3.4.2.2 semantics: a multi-valued attribute matches if any value
    /// does; `ne` is exactly `not eq` (true when the attribute is absent);
    /// `eq null` means "not present"; a stored value of the wrong JSON type never
    /// matches a comparison.
    pub fn matches(&self, resource: &Value) -> bool {
        self.root.eval(resource)
    }

    /// The filter as parsed.
    pub fn filter(&self) -> &Filter {
        &self.raw
    }

    /// An indexed equality the directory can use to find candidates: `id`,
    /// `externalId` and `userName` (users) or `displayName` (groups) `eq` a string,
    /// as the whole filter or as one conjunct of a top-level `and` chain. When several
    /// conjuncts qualify, `id` wins, then `userName`/`displayName`, then `externalId`.
    /// The caller still evaluates [`ValidFilter::matches`] on each candidate.
    pub fn index_hint(&self) -> Option<IndexHint> {
        self.hint.clone()
    }

    /// Whether the filter reads this top-level attribute (canonical name, compared
    /// case-insensitively, e.g. `members`, `groups`) or extension schema URN.
    pub fn mentions(&self, attr: &str) -> bool {
        self.mentions.iter().any(|m| m.eq_ignore_ascii_case(attr))
    }
}

// ---------------------------------------------------------------------------
// The resolved tree, built by validation and read by evaluation

/// Where a comparison finds its values, relative to the scope it is evaluated in
/// (the resource, or one element of a multi-valued complex attribute).
#[derive(Debug, Clone)]
struct Target {
    /// The extension URN the attribute lives under (resource scope only).
    ext: Option<String>,
    /// The attribute's canonical name in the scope.
    attr: String,
    /// The canonical sub-attribute name, read in each value of `attr`.
    sub: Option<String>,
}

#[derive(Debug, Clone)]
enum Operand {
    /// A string; `folded` is the case-folded text when the attribute is not caseExact.
    Str {
        text: String,
        folded: Option<String>,
    },
    Bool(bool),
    Num(Number),
    Date(DateTime<FixedOffset>),
}

#[derive(Debug, Clone)]
enum Node {
    Present(Target),
    Compare(Target, CompareOp, Operand),
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    /// Some value of `target` (resource scope, no sub) satisfies `filter`, evaluated
    /// with that value as its scope.
    Element(Target, Box<Node>),
}

fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    use fmt::Write as _;
    f.write_char('"')?;
    let mut from = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        f.write_str(&s[from..i])?;
        if escape.is_empty() {
            write!(f, "\\u{:04x}", c as u32)?;
        } else {
            f.write_str(escape)?;
        }
        from = i + c.len_utf8();
    }
    f.write_str(&s[from..])?;
    f.write_char('"')
}

fn invalid(detail: String) -> ScimError {
    ScimError::InvalidFilter(detail)
}

/// Shows at most `max` characters of `text`.
fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}
