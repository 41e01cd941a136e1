//! Attributes no schema declares that writes dropped (`[scim] unknown_attributes =
//! "ignore"`): counted in `cowork_sync_scim_unknown_attributes_total` by resource
//! type, and each name noted once in the log, without values, so an operator can fix
//! the IdP's attribute mapping. The set of names already noted is bounded: a client
//! sending random names cannot grow memory or the log without bound; once it is full
//! one line says so and further new names are only counted.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::metrics::Metrics;
use crate::scim::{ResourceKind, Unknowns};

/// Most distinct (resource type, name) pairs noted in the log per process.
pub const MAX_NOTED: usize = 256;

/// The metric counting dropped attributes.
pub const METRIC: &str = "cowork_sync_scim_unknown_attributes_total";

/// Names already noted, shared by every worker.
#[derive(Debug, Default)]
pub struct UnknownAttributeLog {
    noted: Mutex<Noted>,
}

#[derive(Debug, Default)]
struct Noted {
    names: HashSet<(ResourceKind, String)>,
    full: bool,
}

/// What [`UnknownAttributeLog::sightings`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sightings {
    /// Names not noted before (now noted).
    pub new: Vec<String>,
    /// The set became full with this call (say so once).
    pub now_full: bool,
}

impl UnknownAttributeLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The names among `names` not noted before for `kind`, noting them while room
    /// remains.
    pub fn sightings(&self, kind: ResourceKind, names: &[String]) -> Sightings {
        let mut noted = self.noted.lock();
        let mut out = Sightings::default();
        for name in names {
            let key = (kind, name.to_ascii_lowercase());
            if noted.names.contains(&key) {
                continue;
            }
            if noted.names.len() >= MAX_NOTED {
                if !noted.full {
                    noted.full = true;
                    out.now_full = true;
                }
                break;
            }
            noted.names.insert(key);
            out.new.push(name.clone());
        }
        out
    }

    /// Counts and notes what one write of `kind` dropped.
    pub fn record(&self, metrics: &Metrics, kind: ResourceKind, unknown: &Unknowns) {
        if unknown.is_empty() {
            return;
        }
        metrics.inc(
            METRIC,
            "Attributes no schema declares, dropped from SCIM writes ([scim] unknown_attributes = \"ignore\").",
            &[("resource", kind.name())],
            unknown.count() as f64,
        );
        let sightings = self.sightings(kind, unknown.names());
        for name in &sightings.new {
            tracing::warn!(
                resource = kind.name(),
                // Debug quoting: a client-chosen name cannot forge log lines.
                attribute = ?name,
                "a SCIM write carried an attribute no schema declares; it was dropped (map it in the IdP or remove the mapping; logged once per name, counted in {METRIC})"
            );
        }
        if sightings.now_full {
            tracing::warn!(
                noted = MAX_NOTED,
                "more attribute names no schema declares than are noted one by one; further names are only counted in {METRIC}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_name_is_noted_once_per_resource_type() {
        let log = UnknownAttributeLog::new();
        let first = log.sightings(ResourceKind::User, &names(&["adreses", "shoeSize"]));
        assert_eq!(first.new, names(&["adreses", "shoeSize"]));
        let again = log.sightings(ResourceKind::User, &names(&["Adreses", "shoeSize"]));
        assert!(again.new.is_empty());
        let group = log.sightings(ResourceKind::Group, &names(&["adreses"]));
        assert_eq!(group.new, names(&["adreses"]));
    }

    #[test]
    fn a_flood_of_random_names_is_bounded_and_said_once() {
        let log = UnknownAttributeLog::new();
        let mut logged = 0;
        let mut full_lines = 0;
        for i in 0..10 * MAX_NOTED {
            let s = log.sightings(ResourceKind::User, &[format!("random{i}")]);
            logged += s.new.len();
            full_lines += usize::from(s.now_full);
        }
        assert_eq!(logged, MAX_NOTED);
        assert_eq!(full_lines, 1);
        assert_eq!(log.noted.lock().names.len(), MAX_NOTED);
    }

    #[test]
    fn record_counts_every_dropped_value_by_resource_type() {
        let metrics = Metrics::new();
        let log = UnknownAttributeLog::new();
        let mut unknown = Unknowns::new(crate::scim::UnknownAttributes::Ignore);
        for _ in 0..3 {
            unknown.drop_or("adreses", || unreachable!()).unwrap();
        }
        log.record(&metrics, ResourceKind::User, &unknown);
        log.record(&metrics, ResourceKind::User, &Unknowns::default());
        assert_eq!(metrics.value(METRIC, &[("resource", "User")]), 3.0);
        assert_eq!(metrics.value(METRIC, &[("resource", "Group")]), 0.0);
    }
}
