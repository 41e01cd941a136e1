//! The lexer and parser of filter text (RFC 7644 §3.4.2.2, Figure 1): text to a
//! [`Filter`] syntax tree, bounded in length, depth and terms, without knowing any schema.

use super::*;

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
pub(super) fn parse_attr_path(word: &str, pos: usize) -> Result<AttrPath, ScimError> {
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
pub(super) fn is_json_number(text: &str) -> bool {
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
pub(super) fn parse_number(text: &str) -> Option<Number> {
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
