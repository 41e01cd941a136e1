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

impl Filter {
    /// Parses filter text (already URL-decoded). Every problem, including the
    /// limits, is [`ScimError::InvalidFilter`].
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(invalid(format!(
                "filter is {} bytes long; the limit is {MAX_FILTER_LEN}",
                text.len()
            )));
        }
        let mut parser = Parser {
            lexer: Lexer { src: text, pos: 0 },
            peeked: None,
            depth: 0,
            terms: 0,
        };
        if parser.peek()?.0 == Tok::End {
            return Err(invalid("filter is empty".to_string()));
        }
        let filter = parser.parse_or(false)?;
        match parser.bump()? {
            (Tok::End, _) => Ok(filter),
            (tok, pos) => Err(unexpected(tok, pos, "'and', 'or' or the end of the filter")),
        }
    }

    /// Resolves every path against the schemas of `kind` and checks each operator
    /// against its attribute's type. Unknown attributes and meaningless comparisons
    /// (`gt` on a boolean, `co` on a number, a complex attribute without a
    /// sub-attribute, ...) are [`ScimError::InvalidFilter`].
    pub fn validate(
        &self,
        registry: &SchemaRegistry,
        kind: ResourceKind,
    ) -> Result<ValidFilter, ScimError> {
        let mut v = Validator {
            registry,
            terms: 0,
            mentions: Vec::new(),
            kind,
        };
        let root = v.node(self, &Scope::Resource, 0)?;
        let hint = index_hint_of(&root, kind);
        Ok(ValidFilter {
            raw: self.clone(),
            root,
            hint,
            mentions: v.mentions,
        })
    }

    /// Like [`Filter::validate`], but the paths name sub-attributes of the complex
    /// attribute `parent` (PATCH paths such as `members[value eq "x"]`), and the
    /// result's [`ValidFilter::matches`] takes one value (element) of `parent`.
    pub fn validate_within(
        &self,
        registry: &SchemaRegistry,
        kind: ResourceKind,
        parent: &AttrPath,
    ) -> Result<ValidFilter, ScimError> {
        let shown = show_path(parent);
        let resolved = registry
            .resolve(kind, parent)
            .ok_or_else(|| invalid(format!("unknown attribute '{shown}' in filter")))?;
        if resolved.sub.is_some() || !resolved.attr.is_complex() {
            return Err(invalid(format!(
                "attribute '{shown}' is not complex, so it cannot take a value filter"
            )));
        }
        let mut v = Validator {
            registry,
            terms: 0,
            mentions: vec![resolved.attr.name.clone()],
            kind,
        };
        let scope = Scope::Element {
            parent: resolved.attr,
            shown: &shown,
        };
        let root = v.node(self, &scope, 0)?;
        Ok(ValidFilter {
            raw: self.clone(),
            root,
            hint: None,
            mentions: v.mentions,
        })
    }
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
// Lexer and parser (RFC 7644 §3.4.2.2, Figure 1)

fn invalid(detail: String) -> ScimError {
    ScimError::InvalidFilter(detail)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A run of anything but whitespace, parentheses, brackets and quotes: a path,
    /// a keyword, an operator or an unquoted value.
    Word(&'a str),
    /// The text between double quotes, escapes not yet decoded.
    Str(&'a str),
    End,
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'(' | b')' | b'[' | b']' | b'"')
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// The next token and its byte offset.
    fn next(&mut self) -> Result<(Tok<'a>, usize), ScimError> {
        let bytes = self.src.as_bytes();
        while bytes.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&first) = bytes.get(start) else {
            return Ok((Tok::End, start));
        };
        let single = match first {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = single {
            self.pos += 1;
            return Ok((tok, start));
        }
        let mut end = start + 1;
        if first == b'"' {
            loop {
                match bytes.get(end) {
                    None => {
                        return Err(invalid(format!(
                            "unterminated string starting at position {}",
                            start + 1
                        )))
                    }
                    Some(b'\\') => end += 2,
                    Some(b'"') => break,
                    Some(_) => end += 1,
                }
            }
            self.pos = end + 1;
            return match self.src.get(start + 1..end) {
                Some(text) => Ok((Tok::Str(text), start)),
                None => Err(invalid(format!(
                    "malformed string at position {}",
                    start + 1
                ))),
            };
        }
        while bytes.get(end).is_some_and(|&b| !is_delimiter(b)) {
            end += 1;
        }
        self.pos = end;
        match self.src.get(start..end) {
            Some(word) => Ok((Tok::Word(word), start)),
            None => Err(invalid(format!(
                "malformed token at position {}",
                start + 1
            ))),
        }
    }
}

/// Shows at most `max` characters of `text`.
fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Describes a token for an error detail without echoing values: string literals
/// and words that do not look like names or operators are not shown.
fn describe(tok: Tok<'_>) -> String {
    match tok {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Str(_) => "a string".into(),
        Tok::End => "the end of the filter".into(),
        Tok::Word(w)
            if w.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'$' | b'-' | b'_')
            }) =>
        {
            format!("'{}'", truncated(w, SHOWN_TOKEN))
        }
        Tok::Word(_) => "a word".into(),
    }
}

fn unexpected(tok: Tok<'_>, pos: usize, expected: &str) -> ScimError {
    invalid(format!(
        "expected {expected} at position {}, found {}",
        pos + 1,
        describe(tok)
    ))
}

fn is_keyword(tok: Tok<'_>, keyword: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
}

/// RFC 7644 `ATTRNAME = ALPHA *(nameChar)`, plus a leading `$` for `$ref`.
fn is_attr_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'$' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses `[URN ":"] ATTRNAME ["." ATTRNAME]` syntactically. The URN is everything
/// before the last `:` (URNs contain dots, as in `2.0`, so the URN is split off
/// first); [`SchemaRegistry::resolve`] decides later whether it is a known schema.
fn parse_attr_path(word: &str, pos: usize) -> Result<AttrPath, ScimError> {
    let malformed = || {
        invalid(format!(
            "malformed attribute path '{}' at position {}",
            truncated(word, SHOWN_PATH),
            pos + 1
        ))
    };
    let is_urn = word
        .as_bytes()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"urn:"));
    let (urn, rest) = if is_urn {
        match word.rfind(':') {
            Some(at) if at > 4 => (Some(&word[..at]), &word[at + 1..]),
            _ => return Err(malformed()),
        }
    } else {
        (None, word)
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((attr, sub)) => (attr, Some(sub)),
        None => (rest, None),
    };
    if !is_attr_name(attr) || sub.is_some_and(|s| !is_attr_name(s)) {
        return Err(malformed());
    }
    Ok(AttrPath {
        urn: urn.map(str::to_string),
        attr: attr.to_string(),
        sub: sub.map(str::to_string),
    })
}

/// JSON number grammar (RFC 8259 §6).
fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Parses JSON number text exactly: integers as integers where they fit, everything
/// else as a correctly rounded `f64`.
fn parse_number(text: &str) -> Option<Number> {
    let integral = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if integral {
        if let Ok(n) = text.parse::<u64>() {
            return Some(n.into());
        }
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.into());
        }
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

fn decode_string(raw: &str, pos: usize) -> Result<String, ScimError> {
    if !raw.bytes().any(|b| b == b'\\' || b < 0x20) {
        return Ok(raw.to_string());
    }
    let mut quoted = String::with_capacity(raw.len() + 2);
    quoted.push('"');
    quoted.push_str(raw);
    quoted.push('"');
    serde_json::from_str(&quoted).map_err(|_| {
        invalid(format!(
            "invalid escape or control character in the string at position {}",
            pos + 1
        ))
    })
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Tok<'a>, usize)>,
    depth: usize,
    terms: usize,
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<(Tok<'a>, usize), ScimError> {
        if let Some(t) = self.peeked {
            return Ok(t);
        }
        let t = self.lexer.next()?;
        self.peeked = Some(t);
        Ok(t)
    }

    fn bump(&mut self) -> Result<(Tok<'a>, usize), ScimError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    fn enter(&mut self, pos: usize) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(invalid(format!(
                "filter nests deeper than {MAX_FILTER_DEPTH} levels of parentheses, \
                 'not' and '[ ]' (at position {})",
                pos + 1
            )));
        }
        Ok(())
    }

    fn close(&mut self, want: Tok<'static>, what: &str) -> Result<(), ScimError> {
        match self.bump()? {
            (tok, _) if tok == want => {
                self.depth -= 1;
                Ok(())
            }
            (tok, pos) => Err(unexpected(tok, pos, what)),
        }
    }

    fn term(&mut self, pos: usize) -> Result<(), ScimError> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(invalid(format!(
                "filter has more than {MAX_FILTER_TERMS} attribute expressions \
                 (at position {})",
                pos + 1
            )));
        }
        Ok(())
    }

    /// `or`-chain of `and`-chains, left-associative, built iteratively.
    fn parse_or(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        let mut left = self.parse_and(in_brackets)?;
        while is_keyword(self.peek()?.0, "or") {
            self.bump()?;
            let right = self.parse_and(in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        let mut left = self.parse_unary(in_brackets)?;
        while is_keyword(self.peek()?.0, "and") {
            self.bump()?;
            let right = self.parse_unary(in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        match self.bump()? {
            (Tok::LParen, pos) => {
                self.enter(pos)?;
                let inner = self.parse_or(in_brackets)?;
                self.close(Tok::RParen, "')'")?;
                Ok(inner)
            }
            (Tok::Word(w), pos)
                if w.eq_ignore_ascii_case("not") && self.peek()?.0 == Tok::LParen =>
            {
                self.bump()?;
                self.enter(pos)?;
                let inner = self.parse_or(in_brackets)?;
                self.close(Tok::RParen, "')'")?;
                Ok(Filter::Not(Box::new(inner)))
            }
            (Tok::Word(w), pos) => self.parse_attr_expr(w, pos, in_brackets),
            (tok, pos) => Err(unexpected(tok, pos, "an attribute path, '(' or 'not'")),
        }
    }

    /// `attrPath "pr"`, `attrPath op value`, `attrPath "[" valFilter "]"`, and Entra's
    /// `attrPath "[" valFilter "]" "." sub (op value | "pr")`.
    fn parse_attr_expr(
        &mut self,
        word: &str,
        pos: usize,
        in_brackets: bool,
    ) -> Result<Filter, ScimError> {
        let path = parse_attr_path(word, pos)?;
        if self.peek()?.0 == Tok::LBracket {
            let (_, open) = self.bump()?;
            if in_brackets {
                return Err(invalid(format!(
                    "a value filter cannot contain another value filter (at position {})",
                    open + 1
                )));
            }
            self.enter(open)?;
            let mut inner = self.parse_or(true)?;
            self.close(Tok::RBracket, "']'")?;
            if let (Tok::Word(w), at) = self.peek()? {
                if let Some(sub) = w.strip_prefix('.') {
                    self.bump()?;
                    if !is_attr_name(sub) {
                        return Err(invalid(format!(
                            "malformed sub-attribute '{}' at position {}",
                            truncated(w, SHOWN_TOKEN),
                            at + 1
                        )));
                    }
                    let tail = self.parse_operation(AttrPath::new(sub, None), at)?;
                    inner = Filter::And(Box::new(inner), Box::new(tail));
                }
            }
            return Ok(Filter::ValuePath {
                attr: path,
                filter: Box::new(inner),
            });
        }
        self.parse_operation(path, pos)
    }

    /// `"pr"` or `compareOp SP compValue` after a path.
    fn parse_operation(&mut self, path: AttrPath, pos: usize) -> Result<Filter, ScimError> {
        let (tok, at) = self.bump()?;
        if is_keyword(tok, "pr") {
            self.term(pos)?;
            return Ok(Filter::Present(path));
        }
        let op = match tok {
            Tok::Word(w) => CompareOp::from_keyword(w),
            _ => None,
        };
        let Some(op) = op else {
            return Err(unexpected(
                tok,
                at,
                "an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr)",
            ));
        };
        let value = self.parse_value(op)?;
        self.term(pos)?;
        Ok(Filter::Compare(path, op, value))
    }

    fn parse_value(&mut self, op: CompareOp) -> Result<CompValue, ScimError> {
        match self.bump()? {
            (Tok::Str(raw), pos) => Ok(CompValue::String(decode_string(raw, pos)?)),
            (Tok::Word(w), pos) => {
                if w.eq_ignore_ascii_case("true") {
                    Ok(CompValue::Bool(true))
                } else if w.eq_ignore_ascii_case("false") {
                    Ok(CompValue::Bool(false))
                } else if w.eq_ignore_ascii_case("null") {
                    Ok(CompValue::Null)
                } else if is_json_number(w) {
                    parse_number(w).map(CompValue::Number).ok_or_else(|| {
                        invalid(format!("number out of range at position {}", pos + 1))
                    })
                } else if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or") {
                    Err(unexpected(
                        Tok::Word(w),
                        pos,
                        &format!("a value after '{op}'"),
                    ))
                } else {
                    // Entra's older documentation sends `externalId eq jyoung`.
                    Ok(CompValue::String(w.to_string()))
                }
            }
            (tok, pos) => Err(unexpected(tok, pos, &format!("a value after '{op}'"))),
        }
    }
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

// ---------------------------------------------------------------------------
// Validation: the resolved tree

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

enum Scope<'r, 's> {
    Resource,
    Element {
        parent: &'r AttributeDef,
        shown: &'s str,
    },
}

/// What a path resolved to.
struct Leaf {
    target: Target,
    kind: AttrType,
    case_exact: bool,
    /// For a complex attribute named without a sub-attribute: its `value`
    /// sub-attribute's (name, type, caseExact), which comparisons use (§3.4.2.2).
    value_sub: Option<(String, AttrType, bool)>,
}

struct Validator<'r> {
    registry: &'r SchemaRegistry,
    kind: ResourceKind,
    terms: usize,
    mentions: Vec<String>,
}

fn show_path(path: &AttrPath) -> String {
    truncated(&path.to_string(), SHOWN_PATH)
}

impl<'r> Validator<'r> {
    fn node(&mut self, f: &Filter, scope: &Scope<'r, '_>, depth: usize) -> Result<Node, ScimError> {
        if depth > MAX_TREE_DEPTH {
            return Err(invalid(format!(
                "filter nests deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        match f {
            Filter::And(..) | Filter::Or(..) => {
                let is_and = matches!(f, Filter::And(..));
                // Flatten the chain iteratively, keeping left-to-right order.
                let mut operands = Vec::new();
                let mut stack = vec![f];
                while let Some(n) = stack.pop() {
                    match (n, is_and) {
                        (Filter::And(l, r), true) | (Filter::Or(l, r), false) => {
                            stack.push(r);
                            stack.push(l);
                        }
                        (other, _) => operands.push(self.node(other, scope, depth + 1)?),
                    }
                }
                Ok(if is_and {
                    Node::All(operands)
                } else {
                    Node::Any(operands)
                })
            }
            Filter::Not(inner) => Ok(Node::Not(Box::new(self.node(inner, scope, depth + 1)?))),
            Filter::Present(path) => {
                self.term()?;
                Ok(Node::Present(self.resolve(path, scope)?.target))
            }
            Filter::Compare(path, op, value) => {
                self.term()?;
                self.compare(path, *op, value, scope)
            }
            Filter::ValuePath { attr, filter } => {
                let shown = show_path(attr);
                if let Scope::Element { shown: parent, .. } = scope {
                    return Err(invalid(format!(
                        "value filter on '{shown}' inside the value filter of '{parent}'"
                    )));
                }
                let resolved = self.lookup(attr)?;
                if attr.sub.is_some() || !resolved.attr.is_complex() {
                    return Err(invalid(format!(
                        "attribute '{shown}' is not complex, so it cannot take a value filter"
                    )));
                }
                let target = self.target_of(resolved.container, resolved.attr, None);
                let inner_scope = Scope::Element {
                    parent: resolved.attr,
                    shown: &shown,
                };
                let inner = self.node(filter, &inner_scope, depth + 1)?;
                Ok(Node::Element(target, Box::new(inner)))
            }
        }
    }

    fn term(&mut self) -> Result<(), ScimError> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(invalid(format!(
                "filter has more than {MAX_FILTER_TERMS} attribute expressions"
            )));
        }
        Ok(())
    }

    fn mention(&mut self, name: &str) {
        if !self.mentions.iter().any(|m| m == name) {
            self.mentions.push(name.to_string());
        }
    }

    fn lookup(&mut self, path: &AttrPath) -> Result<super::schema::Resolved<'r>, ScimError> {
        let resolved = self
            .registry
            .resolve(self.kind, path)
            .ok_or_else(|| invalid(format!("unknown attribute '{}' in filter", show_path(path))))?;
        if resolved.attr.returned == Returned::Never
            || resolved.sub.is_some_and(|s| s.returned == Returned::Never)
        {
            return Err(invalid(format!(
                "attribute '{}' cannot be used in a filter",
                show_path(path)
            )));
        }
        Ok(resolved)
    }

    fn target_of(
        &mut self,
        container: Container<'_>,
        attr: &AttributeDef,
        sub: Option<&AttributeDef>,
    ) -> Target {
        let ext = match container {
            Container::Top => None,
            Container::Extension(urn) => {
                self.mention(urn);
                Some(urn.to_string())
            }
        };
        self.mention(&attr.name);
        Target {
            ext,
            attr: attr.name.clone(),
            sub: sub.map(|s| s.name.clone()),
        }
    }

    fn resolve(&mut self, path: &AttrPath, scope: &Scope<'r, '_>) -> Result<Leaf, ScimError> {
        let value_sub = |def: &AttributeDef| {
            def.sub_attr("value")
                .filter(|_| def.is_complex())
                .map(|v| (v.name.clone(), v.kind, v.case_exact))
        };
        match scope {
            Scope::Resource => {
                // RFC 7644 §3.4.2.2: clients may filter on `schemas`.
                if path.urn.is_none()
                    && path.sub.is_none()
                    && path.attr.eq_ignore_ascii_case("schemas")
                {
                    self.mention("schemas");
                    return Ok(Leaf {
                        target: Target {
                            ext: None,
                            attr: "schemas".into(),
                            sub: None,
                        },
                        kind: AttrType::Reference,
                        case_exact: false,
                        value_sub: None,
                    });
                }
                let resolved = self.lookup(path)?;
                let leaf = resolved.leaf();
                Ok(Leaf {
                    target: self.target_of(resolved.container, resolved.attr, resolved.sub),
                    kind: leaf.kind,
                    case_exact: leaf.case_exact,
                    value_sub: if resolved.sub.is_none() {
                        value_sub(resolved.attr)
                    } else {
                        None
                    },
                })
            }
            Scope::Element { parent, shown } => {
                let def = if path.urn.is_none() && path.sub.is_none() {
                    parent.sub_attr(&path.attr)
                } else {
                    None
                };
                let def = def.ok_or_else(|| {
                    invalid(format!(
                        "'{}' is not a sub-attribute of '{shown}'",
                        show_path(path)
                    ))
                })?;
                if def.returned == Returned::Never {
                    return Err(invalid(format!(
                        "attribute '{shown}.{}' cannot be used in a filter",
                        def.name
                    )));
                }
                Ok(Leaf {
                    target: Target {
                        ext: None,
                        attr: def.name.clone(),
                        sub: None,
                    },
                    kind: def.kind,
                    case_exact: def.case_exact,
                    value_sub: None,
                })
            }
        }
    }

    fn compare(
        &mut self,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
        scope: &Scope<'r, '_>,
    ) -> Result<Node, ScimError> {
        let shown = show_path(path);
        let leaf = self.resolve(path, scope)?;
        if let CompValue::Null = value {
            return match op {
                CompareOp::Eq => Ok(Node::Not(Box::new(Node::Present(leaf.target)))),
                CompareOp::Ne => Ok(Node::Present(leaf.target)),
                _ => Err(invalid(format!(
                    "'{op}' cannot compare attribute '{shown}' with null"
                ))),
            };
        }
        let (mut target, kind, case_exact) = (leaf.target, leaf.kind, leaf.case_exact);
        let (kind, case_exact) = if kind == AttrType::Complex {
            match leaf.value_sub {
                Some((name, kind, case_exact)) => {
                    target.sub = Some(name);
                    (kind, case_exact)
                }
                None => {
                    return Err(invalid(format!(
                        "attribute '{shown}' is complex; compare one of its sub-attributes"
                    )))
                }
            }
        } else {
            (kind, case_exact)
        };
        let type_name = match kind {
            AttrType::String => "string",
            AttrType::Reference => "reference",
            AttrType::Boolean => "boolean",
            AttrType::Binary => "binary",
            AttrType::DateTime => "dateTime",
            AttrType::Integer => "integer",
            AttrType::Decimal => "decimal",
            AttrType::Complex => "complex",
        };
        let op_refused = || {
            invalid(format!(
                "'{op}' is not defined for {type_name} attribute '{shown}'"
            ))
        };
        let value_refused = |want: &str| {
            invalid(format!(
                "attribute '{shown}' is {type_name}; compare it with {want}"
            ))
        };
        let operand = match kind {
            AttrType::String | AttrType::Reference | AttrType::Binary => {
                if kind == AttrType::Binary && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                    return Err(op_refused());
                }
                // Input tolerance: a bare number or boolean given for a string.
                let text = match value {
                    CompValue::String(s) => s.clone(),
                    CompValue::Number(n) => n.to_string(),
                    CompValue::Bool(b) => b.to_string(),
                    CompValue::Null => return Err(value_refused("a string")),
                };
                let case_exact = case_exact || kind == AttrType::Binary;
                Operand::Str {
                    folded: (!case_exact).then(|| fold(&text)),
                    text,
                }
            }
            AttrType::Boolean => {
                if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                    return Err(op_refused());
                }
                match value {
                    CompValue::Bool(b) => Operand::Bool(*b),
                    // Entra writes booleans as "True" / "False".
                    CompValue::String(s) if s.eq_ignore_ascii_case("true") => Operand::Bool(true),
                    CompValue::String(s) if s.eq_ignore_ascii_case("false") => Operand::Bool(false),
                    _ => return Err(value_refused("true or false")),
                }
            }
            AttrType::DateTime => {
                if op.is_substring() {
                    return Err(op_refused());
                }
                match value {
                    CompValue::String(s) => match parse_instant(s) {
                        Some(t) => Operand::Date(t),
                        None => return Err(value_refused("an RFC 3339 date-time string")),
                    },
                    _ => return Err(value_refused("an RFC 3339 date-time string")),
                }
            }
            AttrType::Integer | AttrType::Decimal => {
                if op.is_substring() {
                    return Err(op_refused());
                }
                match value {
                    CompValue::Number(n) => Operand::Num(n.clone()),
                    CompValue::String(s) => match parse_number(s.trim()) {
                        Some(n) if is_json_number(s.trim()) => Operand::Num(n),
                        _ => return Err(value_refused("a number")),
                    },
                    _ => return Err(value_refused("a number")),
                }
            }
            AttrType::Complex => {
                return Err(invalid(format!(
                    "attribute '{shown}' is complex; compare one of its sub-attributes"
                )))
            }
        };
        Ok(Node::Compare(target, op, operand))
    }
}

fn index_hint_of(root: &Node, kind: ResourceKind) -> Option<IndexHint> {
    fn of(node: &Node, kind: ResourceKind) -> Option<(u8, IndexHint)> {
        let Node::Compare(target, CompareOp::Eq, Operand::Str { text, .. }) = node else {
            return None;
        };
        if target.ext.is_some() || target.sub.is_some() {
            return None;
        }
        match (target.attr.as_str(), kind) {
            ("id", _) => Some((0, IndexHint::Id(text.clone()))),
            ("userName", ResourceKind::User) => Some((1, IndexHint::UserName(text.clone()))),
            ("displayName", ResourceKind::Group) => Some((1, IndexHint::DisplayName(text.clone()))),
            ("externalId", _) => Some((2, IndexHint::ExternalId(text.clone()))),
            _ => None,
        }
    }
    match root {
        Node::All(operands) => operands
            .iter()
            .filter_map(|n| of(n, kind))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, hint)| hint),
        other => of(other, kind).map(|(_, hint)| hint),
    }
}

// ---------------------------------------------------------------------------
// Evaluation

/// Case folding for caseExact=false comparisons: per-character Unicode lowercase
/// (the same mapping on both sides, so results are consistent).
fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

fn folded_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().flat_map(char::to_lowercase)
}

/// RFC 3339, and xsd:dateTime without an offset read as UTC.
fn parse_instant(text: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t);
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().fixed_offset())
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// A key of an object: the canonical name first, then any case.
fn member<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// RFC 7644 §3.4.2.2 `pr`: a non-empty value, or a non-empty node.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(map) => !map.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// `pred` on one value, or on any element of an array.
fn any_of(value: &Value, pred: &mut impl FnMut(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(pred),
        other => pred(other),
    }
}

impl Target {
    /// The attribute's value in `scope`.
    fn base<'v>(&self, scope: &'v Value) -> Option<&'v Value> {
        let container = match &self.ext {
            Some(urn) => member(scope, urn)?,
            None => scope,
        };
        member(container, &self.attr)
    }

    /// Whether any value of the target satisfies `pred`.
    fn any(&self, scope: &Value, mut pred: impl FnMut(&Value) -> bool) -> bool {
        let Some(base) = self.base(scope) else {
            return false;
        };
        match &self.sub {
            None => any_of(base, &mut pred),
            Some(sub) => any_of(base, &mut |item: &Value| {
                member(item, sub).is_some_and(|v| any_of(v, &mut pred))
            }),
        }
    }
}

impl Operand {
    /// `value op self`, for every op but `ne` (which is `not eq`).
    fn test(&self, op: CompareOp, value: &Value) -> bool {
        match self {
            Operand::Str { text, folded } => {
                let Value::String(s) = value else {
                    return false;
                };
                match folded {
                    None => match op {
                        CompareOp::Co => s.contains(text.as_str()),
                        CompareOp::Sw => s.starts_with(text.as_str()),
                        CompareOp::Ew => s.ends_with(text.as_str()),
                        _ => op.accepts(s.as_str().cmp(text.as_str())),
                    },
                    Some(needle) => folded_test(op, s, needle),
                }
            }
            Operand::Bool(b) => value.as_bool().is_some_and(|v| op.accepts(v.cmp(b))),
            Operand::Num(n) => match value {
                Value::Number(v) => compare_numbers(v, n).is_some_and(|o| op.accepts(o)),
                _ => false,
            },
            Operand::Date(t) => value
                .as_str()
                .and_then(parse_instant)
                .is_some_and(|v| op.accepts(v.cmp(t))),
        }
    }
}

/// A caseExact=false comparison of `hay` with the already folded `needle`; ASCII
/// text is compared in place, anything else folded on the fly.
fn folded_test(op: CompareOp, hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if hay.is_ascii() && needle.is_ascii() {
        return match op {
            CompareOp::Co => n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)),
            CompareOp::Sw => h.len() >= n.len() && h[..n.len()].eq_ignore_ascii_case(n),
            CompareOp::Ew => h.len() >= n.len() && h[h.len() - n.len()..].eq_ignore_ascii_case(n),
            _ => op.accepts(h.iter().map(u8::to_ascii_lowercase).cmp(n.iter().copied())),
        };
    }
    match op {
        CompareOp::Co => fold(hay).contains(needle),
        CompareOp::Sw => {
            let mut chars = folded_chars(hay);
            needle.chars().all(|c| chars.next() == Some(c))
        }
        CompareOp::Ew => fold(hay).ends_with(needle),
        _ => op.accepts(folded_chars(hay).cmp(needle.chars())),
    }
}

impl Node {
    fn eval(&self, scope: &Value) -> bool {
        match self {
            Node::Present(target) => target.any(scope, is_present),
            Node::Compare(target, CompareOp::Ne, operand) => {
                !target.any(scope, |v| operand.test(CompareOp::Eq, v))
            }
            Node::Compare(target, op, operand) => target.any(scope, |v| operand.test(*op, v)),
            Node::All(nodes) => nodes.iter().all(|n| n.eval(scope)),
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(scope)),
            Node::Not(inner) => !inner.eval(scope),
            Node::Element(target, inner) => match target.base(scope) {
                Some(Value::Array(items)) => items.iter().any(|item| inner.eval(item)),
                Some(object @ Value::Object(_)) => inner.eval(object),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::ENTERPRISE_USER_SCHEMA;
    use proptest::prelude::*;
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_SCHEMA;

    fn reg() -> SchemaRegistry {
        SchemaRegistry::builtin().unwrap()
    }

    fn user() -> Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                ENT
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Bjensen-Ext",
            "userName": "Bjensen@Example.com",
            "name": {"familyName": "O'Malley", "givenName": "Barbara"},
            "displayName": "Babs Jensen",
            "title": "Tour Guide",
            "userType": "Employee",
            "nickName": "",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.example.org", "type": "home"}
            ],
            "ims": [{"value": "babs@chat.example.com", "type": "xmpp"}],
            "phoneNumbers": [],
            "groups": [{"value": "g-1", "display": "Finance"}],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"3694e05e9dff591\"",
                "location": "https://example.com/v2/Users/2819c223"
            },
            ENT: {
                "department": "Finance",
                "employeeNumber": "701984",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    }

    fn group() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Cowork Pilot",
            "members": [
                {"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"},
                {"value": "902c246b-6245-4190-8e05-00816be7344a", "type": "Group"}
            ],
            "meta": {"resourceType": "Group"}
        })
    }

    fn parse(text: &str) -> Filter {
        Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn valid(text: &str, kind: ResourceKind) -> ValidFilter {
        parse(text)
            .validate(&reg(), kind)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn user_matches(text: &str) -> bool {
        valid(text, ResourceKind::User).matches(&user())
    }

    fn invalid_detail(text: &str, kind: ResourceKind) -> String {
        let err = match Filter::parse(text) {
            Err(e) => e,
            Ok(f) => match f.validate(&reg(), kind) {
                Err(e) => e,
                Ok(_) => panic!("{text}: accepted"),
            },
        };
        assert_eq!(err.scim_type(), Some("invalidFilter"), "{text}");
        assert_eq!(err.status(), 400);
        err.detail().to_string()
    }

    fn check_table(kind: ResourceKind, resource: &Value, cases: &[(&str, bool)]) {
        let r = reg();
        for (text, want) in cases {
            let f = parse(text)
                .validate(&r, kind)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(f.matches(resource), *want, "{text}");
        }
    }

    fn cmp(attr: &str, op: CompareOp, v: CompValue) -> Filter {
        Filter::Compare(AttrPath::new(attr, None), op, v)
    }

    fn s(text: &str) -> CompValue {
        CompValue::String(text.into())
    }

    #[test]
    fn rfc_7644_example_filters_all_parse_and_validate() {
        let examples = [
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            r#"title pr"#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ];
        let r = reg();
        for text in examples {
            let f = parse(text);
            assert_eq!(Filter::parse(&f.to_string()).unwrap(), f, "{text}");
            f.validate(&r, ResourceKind::User)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn rfc_7644_examples_evaluate_as_the_rfc_describes() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (r#"userName eq "bjensen@example.com""#, true),
                (r#"name.familyName co "O'Malley""#, true),
                (r#"userName sw "B""#, true),
                (
                    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b""#,
                    true,
                ),
                (r#"title pr"#, true),
                (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
                (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
                (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
                (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true),
                (r#"title pr and userType eq "Employee""#, true),
                (r#"title pr or userType eq "Intern""#, true),
                (
                    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user""#,
                    true,
                ),
                (
                    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                    true,
                ),
                (
                    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                    false,
                ),
                (
                    r#"userType eq "Employee" and (emails.type eq "work")"#,
                    true,
                ),
                (
                    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
                    true,
                ),
                (
                    r#"userType eq "Employee" and emails[type eq "home" and value co "@example.com"]"#,
                    false,
                ),
                (
                    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                    true,
                ),
            ],
        );
    }

    #[test]
    fn each_operator_on_strings_follows_the_rfc() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (r#"title eq "Tour Guide""#, true),
                (r#"title eq "Tour""#, false),
                (r#"title ne "Tour""#, true),
                (r#"title ne "tour guide""#, false),
                (r#"title co "our G""#, true),
                (r#"title co "xyz""#, false),
                (r#"title co """#, true),
                (r#"title sw "Tour""#, true),
                (r#"title sw "Guide""#, false),
                (r#"title ew "Guide""#, true),
                (r#"title ew "Tour""#, false),
                (r#"title gt "Tour""#, true),
                (r#"title gt "Tour Guide""#, false),
                (r#"title ge "Tour Guide""#, true),
                (r#"title lt "Tour Guidf""#, true),
                (r#"title lt "Tour Guide""#, false),
                (r#"title le "Tour Guide""#, true),
                (r#"title le "A""#, false),
                (r#"title pr"#, true),
                (r#"nickName pr"#, false),
                (r#"locale pr"#, false),
                (r#"locale eq "en""#, false),
                (r#"locale ne "en""#, true),
            ],
        );
    }

    #[test]
    fn string_comparisons_honour_case_exact() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                // userName, emails.value, title: caseExact false.
                (r#"userName eq "BJENSEN@EXAMPLE.COM""#, true),
                (r#"userName ne "bjensen@example.com""#, false),
                (r#"userName sw "bjENSEN""#, true),
                (r#"userName ew "EXAMPLE.com""#, true),
                (r#"userName co "N@eX""#, true),
                (r#"userName gt "BJENSEN@EXAMPLE.CO""#, true),
                (r#"userName le "bjensen@example.com""#, true),
                (r#"emails.value eq "BJensen@Example.COM""#, true),
                (r#"emails eq "BJensen@Example.COM""#, true),
                // id, externalId, meta.resourceType: caseExact true.
                (r#"externalId eq "Bjensen-Ext""#, true),
                (r#"externalId eq "bjensen-ext""#, false),
                (r#"externalId ne "bjensen-ext""#, true),
                (r#"externalId sw "bjensen""#, false),
                (r#"externalId co "Ext""#, true),
                (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
                (r#"meta.resourceType eq "user""#, false),
                (r#"meta.resourceType eq "User""#, true),
            ],
        );
    }

    #[test]
    fn case_insensitive_comparison_folds_unicode() {
        let r = reg();
        let resource = json!({"userName": "JOSÉ.Ünal@Example.com", "title": "ΣΊΣΥΦΟΣ"});
        for (text, want) in [
            (r#"userName eq "josé.ünal@example.com""#, true),
            (r#"userName sw "JOSÉ.ü""#, true),
            (r#"userName co "é.Ün""#, true),
            (r#"userName ew "ÜNAL@EXAMPLE.COM""#, true),
            (r#"userName eq "jose.unal@example.com""#, false),
            (r#"userName gt "josé""#, true),
            (r#"title eq "σίσυφοσ""#, true),
        ] {
            let f = parse(text).validate(&r, ResourceKind::User).unwrap();
            assert_eq!(f.matches(&resource), want, "{text}");
        }
    }

    #[test]
    fn datetime_comparisons_are_chronological() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                // Same instant, written with another offset.
                (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
                (r#"meta.lastModified ne "2011-05-13T06:42:34+02:00""#, false),
                (r#"meta.lastModified gt "2011-05-13T05:42:34+02:00""#, true),
                (r#"meta.lastModified lt "2011-05-13T04:42:34.001Z""#, true),
                (r#"meta.lastModified ge "2011-05-13T04:42:34""#, true),
                (r#"meta.created lt "2011-01-01T00:00:00Z""#, true),
                (r#"meta.created gt "2011-01-01T00:00:00Z""#, false),
            ],
        );
        // A stored value that is not a date never matches.
        let f = valid(
            r#"meta.created lt "2011-01-01T00:00:00Z""#,
            ResourceKind::User,
        );
        assert!(!f.matches(&json!({"meta": {"created": "yesterday"}})));
        assert!(!f.matches(&json!({"meta": {"created": 5}})));
    }

    #[test]
    fn numeric_comparisons_are_numeric() {
        // No served schema has an integer or decimal attribute, so exercise the
        // operand directly.
        let five = Operand::Num(5.into());
        let half = Operand::Num(Number::from_f64(0.5).unwrap());
        for (operand, op, stored, want) in [
            (&five, CompareOp::Eq, json!(5), true),
            (&five, CompareOp::Eq, json!(5.0), true),
            (&five, CompareOp::Eq, json!("5"), false),
            (&five, CompareOp::Gt, json!(10), true),
            (&five, CompareOp::Gt, json!(5), false),
            (&five, CompareOp::Ge, json!(5), true),
            (&five, CompareOp::Lt, json!(-3), true),
            (&five, CompareOp::Le, json!(6), false),
            (&five, CompareOp::Gt, json!(u64::MAX), true),
            (&half, CompareOp::Lt, json!(0.25), true),
            (&half, CompareOp::Gt, json!(1), true),
            (&half, CompareOp::Eq, json!(0.5), true),
        ] {
            assert_eq!(operand.test(op, &stored), want, "{op} {stored}");
        }
    }

    #[test]
    fn booleans_compare_only_with_eq_and_ne() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                ("active eq true", true),
                ("active eq false", false),
                ("active ne false", true),
                ("active eq True", true),
                (r#"active eq "True""#, true),
                (r#"active eq "false""#, false),
                ("emails[primary eq true and type eq \"work\"]", true),
                ("emails[primary eq true and type eq \"home\"]", false),
            ],
        );
        for text in ["active gt true", "active co true", "active le false"] {
            let detail = invalid_detail(text, ResourceKind::User);
            assert!(
                detail.contains("boolean") && detail.contains("active"),
                "{detail}"
            );
        }
        let detail = invalid_detail(r#"active eq "yes""#, ResourceKind::User);
        assert!(detail.contains("true or false"), "{detail}");
        invalid_detail(r#"x509Certificates.value gt "AAAA""#, ResourceKind::User);
        invalid_detail(r#"x509Certificates co "AAAA""#, ResourceKind::User);
        valid(r#"x509Certificates.value eq "AAAA""#, ResourceKind::User);
    }

    #[test]
    fn operators_that_mean_nothing_for_a_type_are_invalid_filters() {
        for text in [
            r#"meta.lastModified co "2011""#,
            r#"meta.lastModified sw "2011""#,
            r#"meta.lastModified gt "last tuesday""#,
            r#"meta.lastModified gt 5"#,
            r#"name eq "Barbara""#,
            r#"name co "Barbara""#,
            r#"meta gt "x""#,
            r#"title gt null"#,
            r#"title[value eq "x"]"#,
            r#"emails.value[value eq "x"]"#,
            r#"emails[value eq "x" and ims[value pr]]"#,
            r#"emails[display.value eq "x"]"#,
            r#"emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "x"]"#,
            r#"emails[nosuch eq "x"]"#,
            r#"password eq "hunter2""#,
            r#"password pr"#,
        ] {
            invalid_detail(text, ResourceKind::User);
        }
    }

    #[test]
    fn and_binds_tighter_than_or_and_both_associate_left() {
        let a = || cmp("a", CompareOp::Eq, CompValue::Number(1.into()));
        let b = || cmp("b", CompareOp::Eq, CompValue::Number(2.into()));
        let c = || cmp("c", CompareOp::Eq, CompValue::Number(3.into()));
        let bx = Box::new;
        assert_eq!(
            parse("a eq 1 or b eq 2 and c eq 3"),
            Filter::Or(bx(a()), bx(Filter::And(bx(b()), bx(c()))))
        );
        assert_eq!(
            parse("a eq 1 and b eq 2 or c eq 3"),
            Filter::Or(bx(Filter::And(bx(a()), bx(b()))), bx(c()))
        );
        assert_eq!(
            parse("a eq 1 and b eq 2 and c eq 3"),
            Filter::And(bx(Filter::And(bx(a()), bx(b()))), bx(c()))
        );
        assert_eq!(
            parse("(a eq 1 or b eq 2) and c eq 3"),
            Filter::And(bx(Filter::Or(bx(a()), bx(b()))), bx(c()))
        );
        assert_eq!(
            parse("a eq 1 and (b eq 2 and c eq 3)"),
            Filter::And(bx(a()), bx(Filter::And(bx(b()), bx(c()))))
        );
        assert_eq!(
            parse("not (a eq 1) and b eq 2"),
            Filter::And(bx(Filter::Not(bx(a()))), bx(b()))
        );
        assert_eq!(parse("((a eq 1))"), a());
        // Evaluated with the same precedence.
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (r#"title eq "x" or title pr and active eq false"#, false),
                (r#"(title eq "x" or title pr) and active eq true"#, true),
                (r#"title pr or title eq "x" and active eq false"#, true),
                (r#"not (title pr) or active eq true"#, true),
                (r#"not (title pr or active eq true)"#, false),
                (r#"not (not (title pr))"#, true),
            ],
        );
    }

    #[test]
    fn not_needs_parentheses() {
        assert_eq!(
            parse("not(title pr)"),
            Filter::Not(Box::new(Filter::Present(AttrPath::new("title", None))))
        );
        invalid_detail("not title pr", ResourceKind::User);
        invalid_detail("not", ResourceKind::User);
        invalid_detail("not ()", ResourceKind::User);
    }

    #[test]
    fn keywords_operators_and_names_are_case_insensitive() {
        let f = parse(r#"UserName EQ "x" And NOT (Title PR) oR Emails[Type Eq "work"]"#);
        assert_eq!(
            f.to_string(),
            r#"UserName eq "x" and not (Title pr) or Emails[Type eq "work"]"#
        );
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (r#"USERNAME EQ "bjensen@example.com""#, true),
                (r#"Name.FamilyName Co "malley""#, true),
                (r#"META.LASTMODIFIED GE "2011-05-13T04:42:34Z""#, true),
                (r#"EMAILS[TYPE EQ "WORK" AND PRIMARY EQ TRUE]"#, true),
                (
                    r#"emails[type eq "work"].VALUE EQ "BJENSEN@example.com""#,
                    true,
                ),
                (
                    r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department EQ "finance""#,
                    true,
                ),
            ],
        );
    }

    #[test]
    fn urn_qualified_paths_split_at_the_last_colon() {
        let f = parse(&format!(r#"{ENT}:department eq "Finance""#));
        let Filter::Compare(path, CompareOp::Eq, _) = &f else {
            panic!("{f:?}")
        };
        assert_eq!(path.urn.as_deref(), Some(ENT));
        assert_eq!(path.attr, "department");
        let f = parse(&format!(r#"{ENT}:manager.value pr"#));
        assert_eq!(
            f,
            Filter::Present(AttrPath {
                urn: Some(ENT.into()),
                attr: "manager".into(),
                sub: Some("value".into())
            })
        );
        let f = parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "B""#);
        let Filter::Compare(path, ..) = &f else {
            panic!("{f:?}")
        };
        assert_eq!(
            path.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert_eq!(
            (path.attr.as_str(), path.sub.as_deref()),
            ("name", Some("givenName"))
        );
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (&format!(r#"{ENT}:department eq "Finance""#), true),
                (r#"department eq "finance""#, true),
                (r#"department eq "Sales""#, false),
                (
                    &format!(r#"{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#),
                    true,
                ),
                (r#"manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#, true),
                (r#"manager[value sw "2611"]"#, true),
                (&format!(r#"{ENT}:employeeNumber pr"#), true),
                (r#"urn:ietf:params:scim:schemas:core:2.0:User:id pr"#, true),
                (
                    r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "barbara""#,
                    true,
                ),
                (r#"costCenter pr"#, false),
            ],
        );
        invalid_detail(
            r#"urn:example:unknown:1.0:User:department eq "x""#,
            ResourceKind::User,
        );
        invalid_detail(&format!(r#"{ENT}:department eq "x""#), ResourceKind::Group);
        invalid_detail(r#"urn: eq "x""#, ResourceKind::User);
        invalid_detail(r#"urn:x eq "x""#, ResourceKind::User);
    }

    #[test]
    fn ref_is_a_sub_attribute_name() {
        let f = parse(r#"members.$ref eq "https://example.com/v2/Users/1""#);
        assert_eq!(
            f.to_string(),
            r#"members.$ref eq "https://example.com/v2/Users/1""#
        );
        let v = f.validate(&reg(), ResourceKind::Group).unwrap();
        assert!(v.matches(
            &json!({"members": [{"value": "1", "$ref": "https://example.com/v2/Users/1"}]})
        ));
        valid(r#"groups[$ref pr]"#, ResourceKind::User);
    }

    #[test]
    fn value_paths_evaluate_their_filter_on_each_element() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (r#"emails[type eq "work"]"#, true),
                (r#"emails[type eq "other"]"#, false),
                (r#"emails[type eq "home" and value ew ".org"]"#, true),
                // Both conditions must hold on the SAME element.
                (r#"emails[type eq "home" and primary eq true]"#, false),
                (r#"emails[type eq "home" or primary eq true]"#, true),
                (r#"emails[not (type eq "work") and value co "babs"]"#, true),
                (
                    r#"emails[(type eq "home" or type eq "work") and value sw "BJ"]"#,
                    true,
                ),
                (r#"not (emails[type eq "other"])"#, true),
                (r#"phoneNumbers[type eq "work"]"#, false),
                (r#"addresses[type eq "work"]"#, false),
                (r#"name[givenName eq "barbara"]"#, true),
                (r#"groups[display eq "finance"]"#, true),
                (r#"emails [type eq "work"]"#, true),
            ],
        );
        check_table(
            ResourceKind::Group,
            &group(),
            &[
                (
                    r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
                    true,
                ),
                (
                    r#"members[value eq "2819c223-7f76-453a-919d-413861904646" and type eq "Group"]"#,
                    false,
                ),
                (r#"members[type eq "Group"]"#, true),
                (
                    r#"members.value eq "902c246b-6245-4190-8e05-00816be7344a""#,
                    true,
                ),
                (r#"members eq "902c246b-6245-4190-8e05-00816be7344a""#, true),
                (r#"members pr"#, true),
            ],
        );
        // No members array: no match, and not present.
        let f = valid(r#"members[type eq "User"]"#, ResourceKind::Group);
        assert!(!f.matches(&json!({"displayName": "x"})));
        assert!(!f.matches(&json!({"members": "not an array"})));
    }

    #[test]
    fn entra_trailing_sub_attribute_form_means_the_same_element() {
        let f = parse(r#"emails[type eq "work"].value eq "user@contoso.com""#);
        assert_eq!(
            f,
            Filter::ValuePath {
                attr: AttrPath::new("emails", None),
                filter: Box::new(Filter::And(
                    Box::new(cmp("type", CompareOp::Eq, s("work"))),
                    Box::new(cmp("value", CompareOp::Eq, s("user@contoso.com"))),
                )),
            }
        );
        assert_eq!(
            f.to_string(),
            r#"emails[type eq "work" and value eq "user@contoso.com"]"#
        );
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
        let f = parse(r#"emails[type eq "work" or type eq "home"].value pr"#);
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (
                    r#"emails[type eq "work"].value eq "bjensen@example.com""#,
                    true,
                ),
                (
                    r#"emails[type eq "work"].value eq "babs@jensen.example.org""#,
                    false,
                ),
                (
                    r#"emails[type eq "home"].value eq "babs@jensen.example.org""#,
                    true,
                ),
                (
                    r#"emails[type eq "work"].value eq "BJENSEN@EXAMPLE.COM" and active eq true"#,
                    true,
                ),
                (r#"emails[type eq "work"].primary eq true"#, true),
            ],
        );
        invalid_detail(r#"emails[type eq "work"].value"#, ResourceKind::User);
        invalid_detail(r#"emails[type eq "work"].1x eq "a""#, ResourceKind::User);
        invalid_detail(
            r#"emails[type eq "work"].nosuch eq "a""#,
            ResourceKind::User,
        );
    }

    #[test]
    fn multi_valued_attributes_match_when_any_value_matches() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                (r#"emails.value eq "babs@jensen.example.org""#, true),
                (r#"emails.type eq "home""#, true),
                (r#"emails co "@example.com""#, true),
                (r#"emails co "@nowhere.example""#, false),
                (r#"emails sw "babs""#, true),
                (r#"emails pr"#, true),
                (r#"emails.primary pr"#, true),
                (r#"phoneNumbers pr"#, false),
                (r#"emails.display pr"#, false),
            ],
        );
    }

    #[test]
    fn ne_is_the_negation_of_any_value_being_equal() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                // One email is "work": ne is false even though the other is not.
                (r#"emails.type ne "work""#, false),
                (r#"emails.type ne "other""#, true),
                // Absent attribute: ne is true, eq is false.
                (r#"locale ne "en""#, true),
                (r#"phoneNumbers.value ne "555""#, true),
                (r#"phoneNumbers.value eq "555""#, false),
            ],
        );
        // A stored value of the wrong type is "not equal".
        let f = valid(r#"title ne "x""#, ResourceKind::User);
        assert!(f.matches(&json!({"title": 5})));
        let f = valid(r#"title eq "x""#, ResourceKind::User);
        assert!(!f.matches(&json!({"title": 5})));
    }

    #[test]
    fn eq_null_means_absent_and_ne_null_means_present() {
        check_table(
            ResourceKind::User,
            &user(),
            &[
                ("locale eq null", true),
                ("locale ne null", false),
                ("title eq null", false),
                ("title ne null", true),
                ("nickName eq null", true),
                ("phoneNumbers eq null", true),
                ("emails ne null", true),
                ("name eq NULL", false),
            ],
        );
    }

    #[test]
    fn present_ignores_null_empty_strings_arrays_and_objects() {
        let r = reg();
        for (resource, want) in [
            (json!({"title": "x"}), true),
            (json!({"title": ""}), false),
            (json!({"title": null}), false),
            (json!({}), false),
        ] {
            let f = parse("title pr").validate(&r, ResourceKind::User).unwrap();
            assert_eq!(f.matches(&resource), want, "{resource}");
        }
        for (resource, want) in [
            (json!({"emails": [{"value": "a@example.com"}]}), true),
            (json!({"emails": []}), false),
            (json!({"emails": [{}]}), false),
            (json!({"emails": null}), false),
            (json!({"name": {}}), false),
        ] {
            let f = parse("emails pr").validate(&r, ResourceKind::User).unwrap();
            assert_eq!(f.matches(&resource), want, "{resource}");
        }
        let f = valid("name pr", ResourceKind::User);
        assert!(!f.matches(&json!({"name": {}})));
        assert!(f.matches(&json!({"name": {"givenName": "B"}})));
    }

    #[test]
    fn runtime_type_mismatches_never_match() {
        let weird = json!({
            "userName": ["a"],
            "active": "yes",
            "emails": {"value": 7},
            "name": "Barbara",
            "meta": [],
            ENT: "not an object",
        });
        for text in [
            r#"userName eq "b""#,
            r#"active eq true"#,
            r#"emails.value eq "x""#,
            r#"emails[value eq "x"]"#,
            r#"name.givenName sw "B""#,
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"department eq "x""#,
        ] {
            assert!(!valid(text, ResourceKind::User).matches(&weird), "{text}");
            assert!(
                !valid(text, ResourceKind::User).matches(&json!(null)),
                "{text}"
            );
            assert!(
                !valid(text, ResourceKind::User).matches(&json!([1, 2])),
                "{text}"
            );
        }
    }

    #[test]
    fn string_escapes_are_decoded_and_printed_back() {
        let f = parse(r#"title eq "a \"quoted\" \\ back\/slash \u00e9 \ud83d\ude00 \n""#);
        assert_eq!(
            f,
            cmp(
                "title",
                CompareOp::Eq,
                s("a \"quoted\" \\ back/slash é 😀 \n")
            )
        );
        assert_eq!(
            f.to_string(),
            r#"title eq "a \"quoted\" \\ back/slash é 😀 \n""#
        );
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
        let f = parse(r#"displayName eq "Cowork (Pilot) [EU] and or not""#);
        assert_eq!(
            f,
            cmp(
                "displayName",
                CompareOp::Eq,
                s("Cowork (Pilot) [EU] and or not")
            )
        );
        for bad in [
            r#"title eq "unterminated"#,
            r#"title eq "bad \q escape""#,
            r#"title eq "half \ud83d surrogate""#,
            "title eq \"raw \u{1} control\"",
            r#"title eq "trailing backslash\"#,
        ] {
            invalid_detail(bad, ResourceKind::User);
        }
    }

    #[test]
    fn literals_numbers_and_bare_words_parse_as_json_values() {
        for (text, value) in [
            ("a eq true", CompValue::Bool(true)),
            ("a eq FALSE", CompValue::Bool(false)),
            ("a eq null", CompValue::Null),
            ("a eq 42", CompValue::Number(42.into())),
            ("a eq -7", CompValue::Number((-7).into())),
            (
                "a eq 1.5",
                CompValue::Number(Number::from_f64(1.5).unwrap()),
            ),
            (
                "a eq 2.5e3",
                CompValue::Number(Number::from_f64(2500.0).unwrap()),
            ),
            (
                "a eq -1E-2",
                CompValue::Number(Number::from_f64(-0.01).unwrap()),
            ),
            (
                "a eq 18446744073709551615",
                CompValue::Number(u64::MAX.into()),
            ),
            // Entra's older docs: unquoted values are strings.
            ("a eq jyoung", s("jyoung")),
            ("a eq dale.mohr@example.com", s("dale.mohr@example.com")),
            ("a eq 007", s("007")),
            ("a eq 1.", s("1.")),
            ("a eq +1", s("+1")),
        ] {
            assert_eq!(parse(text), cmp("a", CompareOp::Eq, value), "{text}");
        }
        invalid_detail("a eq 1e999", ResourceKind::User);
        invalid_detail("a eq and b pr", ResourceKind::User);
        // Bare words and numbers given for string attributes compare as text.
        check_table(
            ResourceKind::User,
            &user(),
            &[
                ("externalId eq Bjensen-Ext", true),
                ("userName eq bjensen@example.com", true),
                ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984", true),
            ],
        );
    }

    #[test]
    fn whitespace_between_tokens_is_flexible() {
        let want = parse(r#"userName eq "x" and (title pr)"#);
        for text in [
            "  userName   eq\t\"x\"   and  ( title pr )  ",
            "userName eq\"x\"and(title pr)",
            "userName\teq \"x\"\tand\t(title\tpr)",
        ] {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn display_is_canonical_and_adds_only_needed_parentheses() {
        for (text, canonical) in [
            (r#"a EQ "x""#, r#"a eq "x""#),
            ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
            (
                "(a eq 1 or b eq 2) and c eq 3",
                "(a eq 1 or b eq 2) and c eq 3",
            ),
            (
                "a eq 1 and (b eq 2 and c eq 3)",
                "a eq 1 and (b eq 2 and c eq 3)",
            ),
            (
                "a eq 1 or (b eq 2 or c eq 3)",
                "a eq 1 or (b eq 2 or c eq 3)",
            ),
            ("((a eq 1) and (b eq 2))", "a eq 1 and b eq 2"),
            ("not(a pr)", "not (a pr)"),
            (
                "x[a eq 1 or b pr] and c eq jyoung",
                r#"x[a eq 1 or b pr] and c eq "jyoung""#,
            ),
            ("a eq 1.0", "a eq 1.0"),
        ] {
            let f = parse(text);
            assert_eq!(f.to_string(), canonical, "{text}");
            assert_eq!(parse(canonical), f, "{text}");
        }
    }

    #[test]
    fn unknown_attributes_are_invalid_filters_that_name_them() {
        let detail = invalid_detail(r#"nosuch eq "x""#, ResourceKind::User);
        assert!(detail.contains("nosuch"), "{detail}");
        let detail = invalid_detail(r#"name.nosuch eq "x""#, ResourceKind::User);
        assert!(detail.contains("name.nosuch"), "{detail}");
        let detail = invalid_detail(r#"userName eq "x""#, ResourceKind::Group);
        assert!(detail.contains("userName"), "{detail}");
        let detail = invalid_detail(r#"emails[kind eq "x"]"#, ResourceKind::User);
        assert!(
            detail.contains("kind") && detail.contains("emails"),
            "{detail}"
        );
    }

    #[test]
    fn garbage_is_an_invalid_filter() {
        for text in [
            "",
            "   ",
            "userName",
            "userName eq",
            r#"userName eq "x" extra"#,
            r#"userName xx "x""#,
            r#"eq "x""#,
            r#""x" eq userName"#,
            "(userName pr",
            "userName pr)",
            "userName pr and",
            "and userName pr",
            "userName pr or or title pr",
            "emails[type eq \"work\"",
            "emails]",
            "emails[]",
            "1abc pr",
            "a.b.c pr",
            "a..b pr",
            ".a pr",
            "a. pr",
            "é pr",
            "userName eq (x)",
            "[",
            ")",
            "\"",
            "userName pr title pr",
            "userName eq \"x\" and not",
        ] {
            let err = Filter::parse(text).unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidFilter"), "{text:?}");
            assert_eq!(err.to_body()["scimType"], "invalidFilter");
            assert!(!err.detail().is_empty());
        }
    }

    #[test]
    fn error_details_give_positions_and_do_not_echo_values() {
        let err = Filter::parse(r#"userName eq "secret@example.com" bogus"#).unwrap_err();
        assert!(err.detail().contains("position 34"), "{}", err.detail());
        assert!(!err.detail().contains("secret"), "{}", err.detail());
        let err = Filter::parse(r#"userName eq "x" jane.doe@example.com"#).unwrap_err();
        assert!(!err.detail().contains("jane"), "{}", err.detail());
        let long = "a".repeat(500);
        let err = Filter::parse(&format!("{long} xx 1")).unwrap_err();
        assert!(err.detail().len() < 200, "{}", err.detail());
        let err = Filter::parse(&format!("userName zz{long}")).unwrap_err();
        assert!(err.detail().len() < 200, "{}", err.detail());
    }

    fn nested_not(levels: usize) -> String {
        let mut text = "title pr".to_string();
        for _ in 0..levels {
            text = format!("not ({text})");
        }
        text
    }

    #[test]
    fn filter_depth_over_limit_is_rejected() {
        let detail = invalid_detail(&nested_not(MAX_FILTER_DEPTH + 1), ResourceKind::User);
        assert!(detail.contains("deeper"), "{detail}");
        let parens = format!(
            "{}title pr{}",
            "(".repeat(MAX_FILTER_DEPTH + 1),
            ")".repeat(MAX_FILTER_DEPTH + 1)
        );
        invalid_detail(&parens, ResourceKind::User);
        // Unbalanced deep openings fail on depth, not on the stack.
        invalid_detail(&"(".repeat(MAX_FILTER_LEN), ResourceKind::User);
        invalid_detail(&"not (".repeat(800), ResourceKind::User);
    }

    #[test]
    fn filter_at_depth_limit_is_accepted_and_evaluates() {
        assert!(user_matches(&nested_not(MAX_FILTER_DEPTH)));
        // Every level mixes or, and, not, the deepest shape a parse can produce:
        // 1 (outer parentheses) + 13 (not) + 1 (brackets) + 1 (inner not) = 16.
        let mut text =
            r#"emails[type eq "work" or value pr and not (primary eq true)]"#.to_string();
        for _ in 0..MAX_FILTER_DEPTH - 3 {
            text = format!(r#"title eq "x" or title pr and not ({text})"#);
        }
        let f = parse(&format!("userType pr and ({text})"));
        f.validate(&reg(), ResourceKind::User).unwrap();
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
        let deeper = format!("userType pr and (title pr and not ({text}))");
        invalid_detail(&deeper, ResourceKind::User);
    }

    #[test]
    fn filter_length_over_limit_is_rejected() {
        let pad = MAX_FILTER_LEN - r#"title eq """#.len();
        let at_limit = format!(r#"title eq "{}""#, "x".repeat(pad));
        assert_eq!(at_limit.len(), MAX_FILTER_LEN);
        parse(&at_limit);
        let over = format!(r#"title eq "{}""#, "x".repeat(pad + 1));
        let detail = invalid_detail(&over, ResourceKind::User);
        assert!(detail.contains("4096"), "{detail}");
    }

    #[test]
    fn filter_term_count_over_limit_is_rejected() {
        let chain = |n: usize, op: &str| vec!["title pr"; n].join(&format!(" {op} "));
        let f = parse(&chain(MAX_FILTER_TERMS, "and"));
        assert!(f
            .validate(&reg(), ResourceKind::User)
            .unwrap()
            .matches(&user()));
        assert!(f.to_string().len() > 100);
        let detail = invalid_detail(&chain(MAX_FILTER_TERMS + 1, "and"), ResourceKind::User);
        assert!(detail.contains("64"), "{detail}");
        invalid_detail(&chain(MAX_FILTER_TERMS + 1, "or"), ResourceKind::User);
        // Terms inside value paths and Entra's trailing form count too.
        let many =
            vec![r#"emails[type eq "a"].value eq "b""#; MAX_FILTER_TERMS / 2 + 1].join(" or ");
        invalid_detail(&many, ResourceKind::User);
    }

    #[test]
    fn long_hand_built_chains_neither_overflow_nor_validate() {
        let mut f = Filter::Present(AttrPath::new("title", None));
        for _ in 0..5000 {
            f = Filter::And(
                Box::new(f),
                Box::new(Filter::Present(AttrPath::new("title", None))),
            );
        }
        assert!(f.to_string().len() > 5000 * 10);
        let err = f.validate(&reg(), ResourceKind::User).unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidFilter"));
        let mut f = Filter::Present(AttrPath::new("title", None));
        for _ in 0..2000 {
            f = Filter::Not(Box::new(f));
        }
        assert!(f.to_string().starts_with("not (not ("));
        assert!(f.validate(&reg(), ResourceKind::User).is_err());
    }

    #[test]
    fn validate_within_evaluates_one_element_of_the_parent() {
        let r = reg();
        let members = AttrPath::new("members", None);
        let f = parse(r#"value eq "2819c223-7f76-453a-919d-413861904646""#)
            .validate_within(&r, ResourceKind::Group, &members)
            .unwrap();
        assert!(
            f.matches(&json!({"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"}))
        );
        assert!(!f.matches(&json!({"value": "other"})));
        assert!(!f.matches(&json!("2819c223-7f76-453a-919d-413861904646")));
        assert!(f.mentions("members"));
        assert_eq!(f.index_hint(), None);

        let emails = AttrPath::new("EMAILS", None);
        let f = parse(r#"type eq "WORK" and not (primary eq false)"#)
            .validate_within(&r, ResourceKind::User, &emails)
            .unwrap();
        assert!(f.matches(&json!({"type": "work", "primary": true, "value": "a@example.com"})));
        assert!(!f.matches(&json!({"type": "home"})));

        let f = parse(r#"value co "@example.com""#)
            .validate_within(&r, ResourceKind::User, &emails)
            .unwrap();
        assert!(f.matches(&json!({"Value": "a@EXAMPLE.com"})));

        let ent_manager = AttrPath {
            urn: Some(ENT.into()),
            attr: "manager".into(),
            sub: None,
        };
        parse(r#"value pr"#)
            .validate_within(&r, ResourceKind::User, &ent_manager)
            .unwrap();

        for (text, parent) in [
            (r#"nosuch eq "x""#, &members),
            (r#"members.value eq "x""#, &members),
            (r#"display[value eq "x"]"#, &members),
            (r#"value gt 5"#, &emails),
        ] {
            let err = parse(text)
                .validate_within(&r, ResourceKind::Group, parent)
                .and_then(|_| parse(text).validate_within(&r, ResourceKind::User, parent))
                .unwrap_err();
            assert_eq!(err.scim_type(), Some("invalidFilter"), "{text}");
        }
        let title = AttrPath::new("title", None);
        assert!(parse("value pr")
            .validate_within(&r, ResourceKind::User, &title)
            .is_err());
        let nosuch = AttrPath::new("nosuch", None);
        assert!(parse("value pr")
            .validate_within(&r, ResourceKind::User, &nosuch)
            .is_err());
    }

    #[test]
    fn index_hint_names_an_indexed_equality() {
        let u = ResourceKind::User;
        let g = ResourceKind::Group;
        for (text, kind, want) in [
            (
                r#"userName eq "x""#,
                u,
                Some(IndexHint::UserName("x".into())),
            ),
            (
                r#"USERNAME EQ "Alice@Example.com""#,
                u,
                Some(IndexHint::UserName("Alice@Example.com".into())),
            ),
            (
                r#"userName eq "x" and active eq true"#,
                u,
                Some(IndexHint::UserName("x".into())),
            ),
            (
                r#"active eq true and (title pr and externalId eq "e")"#,
                u,
                Some(IndexHint::ExternalId("e".into())),
            ),
            (
                r#"externalId eq "e" and userName eq "x""#,
                u,
                Some(IndexHint::UserName("x".into())),
            ),
            (
                r#"externalId eq "e" and id eq "i" and userName eq "x""#,
                u,
                Some(IndexHint::Id("i".into())),
            ),
            (
                r#"externalId eq jyoung"#,
                u,
                Some(IndexHint::ExternalId("jyoung".into())),
            ),
            (
                r#"externalId eq 12345"#,
                u,
                Some(IndexHint::ExternalId("12345".into())),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
                u,
                Some(IndexHint::UserName("x".into())),
            ),
            (r#"id eq "i""#, g, Some(IndexHint::Id("i".into()))),
            (
                r#"displayName eq "Cowork Pilot""#,
                g,
                Some(IndexHint::DisplayName("Cowork Pilot".into())),
            ),
            (
                r#"externalId eq "e""#,
                g,
                Some(IndexHint::ExternalId("e".into())),
            ),
            (r#"userName eq "x" or title pr"#, u, None),
            (r#"userName co "x""#, u, None),
            (r#"userName ne "x""#, u, None),
            (r#"userName eq null"#, u, None),
            (r#"not (userName eq "x")"#, u, None),
            (r#"displayName eq "x""#, u, None),
            (r#"emails[type eq "work"].value eq "x""#, u, None),
            (r#"title pr"#, u, None),
        ] {
            assert_eq!(valid(text, kind).index_hint(), want, "{text}");
        }
    }

    #[test]
    fn mentions_lists_the_top_level_attributes_read() {
        let f = valid(
            r#"groups[value eq "g"] and userName pr and department eq "x""#,
            ResourceKind::User,
        );
        assert!(f.mentions("groups"));
        assert!(f.mentions("userName"));
        assert!(f.mentions("USERNAME"));
        assert!(f.mentions("department"));
        assert!(f.mentions(ENT));
        assert!(!f.mentions("emails"));
        assert!(!f.mentions("members"));
        let f = valid(r#"members.value eq "u""#, ResourceKind::Group);
        assert!(f.mentions("members"));
        let f = valid(r#"displayName eq "x""#, ResourceKind::Group);
        assert!(!f.mentions("members"));
        assert_eq!(f.filter(), &parse(r#"displayName eq "x""#));
    }

    // ----- property tests -----

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[a-zA-Z][a-zA-Z0-9_-]{0,10}",
            1 => Just("$ref".to_string()),
            1 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "urn", "true", "null"])
                .prop_map(str::to_string),
        ]
    }

    fn path() -> impl Strategy<Value = AttrPath> {
        let urn = prop_oneof![
            Just(ENT.to_string()),
            Just("urn:ietf:params:scim:schemas:core:2.0:User".to_string()),
            "urn:[a-z]{1,6}(:[a-zA-Z0-9.-]{1,6}){0,4}",
        ];
        (
            prop::option::weighted(0.2, urn),
            name(),
            prop::option::of(name()),
        )
            .prop_map(|(urn, attr, sub)| AttrPath { urn, attr, sub })
    }

    fn op() -> impl Strategy<Value = CompareOp> {
        prop::sample::select(vec![
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ])
    }

    fn comp_value() -> impl Strategy<Value = CompValue> {
        prop_oneof![
            Just(CompValue::Null),
            any::<bool>().prop_map(CompValue::Bool),
            any::<i64>().prop_map(|n| CompValue::Number(n.into())),
            any::<u64>().prop_map(|n| CompValue::Number(n.into())),
            (-1e300f64..1e300).prop_map(|x| CompValue::Number(Number::from_f64(x).unwrap())),
            any::<String>().prop_map(CompValue::String),
            "[a-z@. ()\\[\\]\"\\\\]{0,12}".prop_map(CompValue::String),
        ]
    }

    fn leaf() -> impl Strategy<Value = Filter> {
        prop_oneof![
            path().prop_map(Filter::Present),
            (path(), op(), comp_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
        ]
    }

    fn logic(inner: impl Strategy<Value = Filter> + Clone) -> impl Strategy<Value = Filter> {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let bracketed = leaf().prop_recursive(2, 6, 2, logic);
        let atom = prop_oneof![
            3 => leaf(),
            1 => (path(), bracketed).prop_map(|(attr, f)| Filter::ValuePath { attr, filter: Box::new(f) }),
        ];
        atom.prop_recursive(4, 16, 2, logic)
    }

    fn terms(f: &Filter) -> usize {
        match f {
            Filter::Present(_) | Filter::Compare(..) => 1,
            Filter::And(a, b) | Filter::Or(a, b) => terms(a) + terms(b),
            Filter::Not(a) | Filter::ValuePath { filter: a, .. } => terms(a),
        }
    }

    fn filterish_token() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "(",
                ")",
                "[",
                "]",
                "\"",
                "\\",
                ".",
                ":",
                "not",
                "and",
                "or",
                "pr",
                "eq",
                "ne",
                "co",
                "gt",
                "true",
                "null",
                "-1.5e3",
                "userName",
                "emails",
                "emails[",
                "].value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "\"x\"",
                "\"\\u00e9\"",
                "\"\\ud83d\"",
                "name.givenName",
                "$ref",
                "é",
                "\t",
                " ",
            ])
            .prop_map(str::to_string),
            "[ -~]{0,4}",
        ]
    }

    fn known_path() -> impl Strategy<Value = AttrPath> {
        prop::sample::select(vec![
            "userName",
            "USERNAME",
            "title",
            "active",
            "emails",
            "emails.value",
            "emails.primary",
            "emails.type",
            "name",
            "name.givenName",
            "meta",
            "meta.lastModified",
            "meta.created",
            "id",
            "externalId",
            "department",
            "manager",
            "manager.value",
            "groups",
            "members",
            "members.value",
            "members.$ref",
            "displayName",
            "schemas",
            "x509Certificates.value",
            "value",
            "type",
            "primary",
            "display",
        ])
        .prop_map(|text| parse_attr_path(text, 0).unwrap())
    }

    fn known_value() -> impl Strategy<Value = CompValue> {
        prop_oneof![
            comp_value(),
            prop::sample::select(vec![
                "2011-05-13T04:42:34Z",
                "work",
                "True",
                "bjensen@example.com",
                "5",
                "",
                "É",
            ])
            .prop_map(|v| CompValue::String(v.to_string())),
        ]
    }

    fn known_filter() -> impl Strategy<Value = Filter> {
        let leaf = prop_oneof![
            known_path().prop_map(Filter::Present),
            (known_path(), op(), known_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
        ];
        let atom = prop_oneof![
            3 => leaf.clone(),
            1 => (known_path(), leaf.clone().prop_recursive(2, 4, 2, logic))
                .prop_map(|(attr, f)| Filter::ValuePath { attr, filter: Box::new(f) }),
        ];
        atom.prop_recursive(3, 8, 2, logic)
    }

    proptest! {
        #[test]
        fn validate_and_match_never_panic_on_schema_shaped_filters(f in known_filter()) {
            let r = reg();
            let odd = json!({"emails": "x", "name": [1], "active": "yes", "meta": {"lastModified": 3}, ENT: []});
            for kind in [ResourceKind::User, ResourceKind::Group] {
                if let Ok(v) = f.validate(&r, kind) {
                    for resource in [user(), group(), odd.clone(), json!(null)] {
                        v.matches(&resource);
                    }
                    v.index_hint();
                }
                for parent in ["emails", "members", "name"] {
                    if let Ok(v) = f.validate_within(&r, kind, &AttrPath::new(parent, None)) {
                        v.matches(&json!({"value": "x", "type": "work", "primary": true}));
                        v.matches(&json!("x"));
                    }
                }
            }
        }

        #[test]
        fn display_then_parse_gives_back_the_same_filter(f in filter()) {
            prop_assume!(terms(&f) <= MAX_FILTER_TERMS);
            let text = f.to_string();
            prop_assert_eq!(Filter::parse(&text), Ok(f), "{}", text);
        }

        #[test]
        fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
            let _ = Filter::parse(&text);
        }

        #[test]
        fn parse_validate_and_match_never_panic_on_filterish_text(
            tokens in prop::collection::vec(filterish_token(), 0..40),
            glue in prop::sample::select(vec!["", " "]),
        ) {
            let text = tokens.join(glue);
            if let Ok(f) = Filter::parse(&text) {
                let r = reg();
                for kind in [ResourceKind::User, ResourceKind::Group] {
                    if let Ok(v) = f.validate(&r, kind) {
                        v.matches(&user());
                        v.matches(&group());
                        v.matches(&json!({"emails": "x", "name": [1], ENT: []}));
                        v.index_hint();
                    }
                }
            }
        }
    }
}
