//! Evaluation of a resolved filter against a rendered resource's JSON: case folding,
//! date and number comparison, multi-valued attributes matched by any value.

use super::*;

/// Case folding for caseExact=false comparisons: per-character Unicode lowercase
/// (the same mapping on both sides, so results are consistent).
pub(super) fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

fn folded_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().flat_map(char::to_lowercase)
}

/// RFC 3339, and xsd:dateTime without an offset read as UTC.
pub(super) fn parse_instant(text: &str) -> Option<DateTime<FixedOffset>> {
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
    pub(super) fn test(&self, op: CompareOp, value: &Value) -> bool {
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
    pub(super) fn eval(&self, scope: &Value) -> bool {
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
