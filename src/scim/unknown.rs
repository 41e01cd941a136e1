//! Attributes no schema declares (`adreses`, `name.nickName`, an undeclared attribute
//! of a declared extension): what a write does with them.
//!
//! RFC 7644 §3.12 lets a service provider refuse a body that "did not conform to the
//! request schema" (`invalidSyntax`, or `invalidPath` for a PATCH path), and that is
//! [`UnknownAttributes::Reject`]. IdPs' attribute mappings routinely carry one
//! attribute the server does not know, and refusing it stops that user's provisioning
//! for good; so the default, [`UnknownAttributes::Ignore`], drops such attributes and
//! lists their names in [`Unknowns`] for the caller to count and log (names only,
//! never values). What `/Schemas` advertises is unaffected either way.
//!
//! Pure: no I/O. Must not import actix_web, sled, reqwest, nor anything of ours
//! outside `scim`.

use super::ScimError;

/// Most distinct names one request's [`Unknowns`] keeps (the count stays exact).
pub const MAX_NAMES_PER_REQUEST: usize = 16;

/// Longest name kept, in characters; longer ones are cut and end in `…`.
pub const MAX_NAME_CHARS: usize = 100;

/// The `[scim] unknown_attributes` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownAttributes {
    /// Drop attributes no schema declares and report their names (default).
    #[default]
    Ignore,
    /// Refuse the request with the error it would get without this setting:
    /// `invalidSyntax` in a POST/PUT body, `invalidPath` for a PATCH path,
    /// `invalidValue` for an unknown sub-attribute inside a value.
    Reject,
}

/// The unknown attributes one request carried and the policy applied to them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unknowns {
    policy: UnknownAttributes,
    names: Vec<String>,
    count: usize,
}

impl Unknowns {
    /// An empty record under `policy`.
    pub fn new(policy: UnknownAttributes) -> Self {
        Self {
            policy,
            names: Vec::new(),
            count: 0,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> UnknownAttributes {
        self.policy
    }

    /// An attribute named `name` is not declared: under `Ignore` it is noted (the
    /// caller drops it) and `Ok` returned; under `Reject` the error `refusal` builds.
    pub fn drop_or(
        &mut self,
        name: &str,
        refusal: impl FnOnce() -> ScimError,
    ) -> Result<(), ScimError> {
        match self.policy {
            UnknownAttributes::Reject => Err(refusal()),
            UnknownAttributes::Ignore => {
                self.note(name);
                Ok(())
            }
        }
    }

    /// Records `name` as dropped.
    fn note(&mut self, name: &str) {
        self.count += 1;
        if self.names.len() >= MAX_NAMES_PER_REQUEST {
            return;
        }
        let name = bounded_name(name);
        if !self.names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            self.names.push(name);
        }
    }

    /// Adds what `other` dropped to this record.
    pub fn merge(&mut self, other: Unknowns) {
        let extra = other.count.saturating_sub(other.names.len());
        for name in other.names {
            self.note(&name);
        }
        self.count += extra;
    }

    /// Attribute values dropped (every occurrence counts).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The distinct names dropped (at most [`MAX_NAMES_PER_REQUEST`], each at most
    /// [`MAX_NAME_CHARS`] characters), in the order met.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// `name` cut to [`MAX_NAME_CHARS`] characters.
pub fn bounded_name(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        name.to_string()
    } else {
        let mut cut: String = name.chars().take(MAX_NAME_CHARS).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_returns_the_refusal_and_notes_nothing() {
        let mut u = Unknowns::new(UnknownAttributes::Reject);
        let err = u
            .drop_or("adreses", || ScimError::InvalidSyntax("no".into()))
            .unwrap_err();
        assert_eq!(err, ScimError::InvalidSyntax("no".into()));
        assert!(u.is_empty());
    }

    #[test]
    fn ignore_notes_each_name_once_and_counts_every_occurrence() {
        let mut u = Unknowns::new(UnknownAttributes::Ignore);
        for name in ["adreses", "Adreses", "nickName"] {
            u.drop_or(name, || unreachable!()).unwrap();
        }
        assert_eq!(u.count(), 3);
        assert_eq!(u.names(), ["adreses", "nickName"]);
    }

    #[test]
    fn names_are_bounded_in_number_and_length() {
        let mut u = Unknowns::new(UnknownAttributes::Ignore);
        for i in 0..1000 {
            u.drop_or(&format!("x{i}"), || unreachable!()).unwrap();
        }
        u.drop_or(&"y".repeat(5000), || unreachable!()).unwrap();
        assert_eq!(u.count(), 1001);
        assert_eq!(u.names().len(), MAX_NAMES_PER_REQUEST);
        assert_eq!(
            bounded_name(&"y".repeat(5000)).chars().count(),
            MAX_NAME_CHARS + 1
        );
    }

    #[test]
    fn merge_keeps_the_exact_count() {
        let mut a = Unknowns::new(UnknownAttributes::Ignore);
        a.drop_or("one", || unreachable!()).unwrap();
        let mut b = Unknowns::new(UnknownAttributes::Ignore);
        for _ in 0..3 {
            b.drop_or("two", || unreachable!()).unwrap();
        }
        a.merge(b);
        assert_eq!(a.count(), 4);
        assert_eq!(a.names(), ["one", "two"]);
    }
}
