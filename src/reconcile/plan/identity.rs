//! Who is who: directory users are matched to downstream members by email, compared
//! as the Admin API compares them (ignoring case, and ignoring a `+tag` in the local
//! part). When several directory users claim one email, one is matched by a fixed
//! rule and the others are reported, so a plan never adds a member for one of them
//! and removes it for another (flapping):
//!
//! 1. an active user before an inactive one;
//! 2. a user the rules govern before one they do not;
//! 3. the user already linked to a downstream member before the others;
//! 4. the smallest SCIM id.

use std::collections::HashMap;

use super::index::FxMap;
use super::model::{Collision, PlanInput};

/// The email as the Admin API matches it: lowercased, a `+tag` in the local part
/// dropped (`Alice+cowork@Example.com` → `alice@example.com`).
pub fn canonical_email(email: &str) -> String {
    let lower = email.trim().to_lowercase();
    match lower.rsplit_once('@') {
        Some((local, domain)) => match local.split_once('+') {
            Some((base, _tag)) if !base.is_empty() => format!("{base}@{domain}"),
            _ => lower,
        },
        None => lower,
    }
}

/// The matched directory user of each canonical email, and the others.
pub(super) struct Identity<'a> {
    /// Canonical email → the SCIM id matched.
    pub(super) matched: HashMap<String, &'a str>,
    /// SCIM id of a user not matched → the SCIM id matched instead.
    pub(super) loser_of: FxMap<&'a str, &'a str>,
    /// Each email several users claim (without member ids; the context adds them).
    pub(super) collisions: Vec<(String, Collision)>,
}

impl<'a> Identity<'a> {
    pub(super) fn new(input: &PlanInput<'a>) -> Self {
        let mut claimants: HashMap<String, Vec<&'a str>> = HashMap::new();
        for (scim, u) in &input.directory.users {
            if let Some(email) = u.email.as_deref() {
                claimants
                    .entry(canonical_email(email))
                    .or_default()
                    .push(scim.as_str());
            }
        }
        let rank = |scim: &'a str| {
            let active = input.directory.users.get(scim).is_some_and(|u| u.active);
            let governed = input.desired.managed_users.contains_key(scim);
            let linked = input
                .ownership
                .links
                .get(scim)
                .is_some_and(|l| l.user_id.is_some());
            (!active, !governed, !linked, scim)
        };
        let mut matched = HashMap::with_capacity(claimants.len());
        let mut loser_of = FxMap::default();
        let mut collisions = Vec::new();
        for (email, mut scims) in claimants {
            scims.sort_by_key(|s| rank(s));
            let Some((&winner, others)) = scims.split_first() else {
                continue;
            };
            if !others.is_empty() {
                for o in others {
                    loser_of.insert(*o, winner);
                }
                let mut others: Vec<String> = others.iter().map(|s| s.to_string()).collect();
                others.sort();
                collisions.push((
                    email.clone(),
                    Collision {
                        member_id: None,
                        matched: winner.to_string(),
                        others,
                    },
                ));
            }
            matched.insert(email, winner);
        }
        collisions.sort_by(|a, b| a.1.matched.cmp(&b.1.matched));
        Identity {
            matched,
            loser_of,
            collisions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_emails_ignore_case_and_a_plus_tag() {
        assert_eq!(canonical_email("Alice@Example.com"), "alice@example.com");
        assert_eq!(
            canonical_email("alice+cowork@example.com"),
            "alice@example.com"
        );
        assert_eq!(canonical_email(" bob@example.com "), "bob@example.com");
        // A local part that is only a tag, or no domain, stays as it is.
        assert_eq!(canonical_email("+x@example.com"), "+x@example.com");
        assert_eq!(canonical_email("not-an-email"), "not-an-email");
    }
}
