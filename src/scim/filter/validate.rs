//! Validation: every path of a [`Filter`] resolved against the [`SchemaRegistry`] and
//! every operator checked against its attribute's type, giving a [`ValidFilter`].

use super::eval::{fold, parse_instant};
use super::parse::{is_json_number, parse_number};
use super::*;

impl Filter {
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

    fn lookup(&mut self, path: &AttrPath) -> Result<crate::scim::schema::Resolved<'r>, ScimError> {
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
