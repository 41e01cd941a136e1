//! Every beta feature of the Admin API the client uses, with its `anthropic-beta`
//! header value: the one place to update when Anthropic renames or graduates one
//! (reference §1.10: verify the names against the live docs before a release).
//!
//! A beta endpoint answers 404 without its header, and also 404 with it when the
//! feature is not available to the organization (for example the Plugins API on an
//! org with HIPAA readiness). The client then reports the feature as unavailable
//! once ([`BetaFeatures`]) and stops calling it, so a missing beta never turns into
//! an error loop and never blocks the stable endpoints. Imports nothing of ours.

use std::sync::atomic::{AtomicBool, Ordering};

/// The header that opts a request into beta features.
pub const HEADER: &str = "anthropic-beta";

/// A beta feature of the Admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Beta {
    /// The Plugins API: plugins and their installation settings.
    Plugins,
    /// Reads of spend limits of every scope (`GET /spend_limits`, `scope_type[]`).
    SpendLimitReads,
}

impl Beta {
    /// Every beta feature.
    pub const ALL: [Beta; 2] = [Beta::Plugins, Beta::SpendLimitReads];

    /// The `anthropic-beta` value.
    pub fn header_value(self) -> &'static str {
        match self {
            Beta::Plugins => "ce-plugins-2026-09-01",
            Beta::SpendLimitReads => "spend-limit-reads-2026-09-26",
        }
    }

    /// What operators call it.
    pub fn label(self) -> &'static str {
        match self {
            Beta::Plugins => "the Plugins API",
            Beta::SpendLimitReads => "spend-limit reads",
        }
    }

    /// The beta a request header value opts into, if any.
    pub fn from_header_value(value: &str) -> Vec<Beta> {
        value
            .split(',')
            .map(str::trim)
            .filter_map(|v| Beta::ALL.into_iter().find(|b| b.header_value() == v))
            .collect()
    }

    fn index(self) -> usize {
        match self {
            Beta::Plugins => 0,
            Beta::SpendLimitReads => 1,
        }
    }
}

/// Which beta features turned out not to be available to the organization.
#[derive(Debug, Default)]
pub struct BetaFeatures {
    unavailable: [AtomicBool; 2],
}

impl BetaFeatures {
    /// Whether the feature answered 404 before.
    pub fn is_unavailable(&self, beta: Beta) -> bool {
        self.unavailable[beta.index()].load(Ordering::Relaxed)
    }

    /// Records that the feature answered 404; `true` the first time (the caller
    /// reports it then, and only then).
    pub fn mark_unavailable(&self, beta: Beta) -> bool {
        !self.unavailable[beta.index()].swap(true, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip_and_unavailability_is_reported_once() {
        for b in Beta::ALL {
            assert_eq!(Beta::from_header_value(b.header_value()), vec![b]);
        }
        assert_eq!(
            Beta::from_header_value("ce-plugins-2026-09-01, spend-limit-reads-2026-09-26"),
            vec![Beta::Plugins, Beta::SpendLimitReads]
        );
        let f = BetaFeatures::default();
        assert!(!f.is_unavailable(Beta::Plugins));
        assert!(f.mark_unavailable(Beta::Plugins));
        assert!(!f.mark_unavailable(Beta::Plugins));
        assert!(f.is_unavailable(Beta::Plugins));
        assert!(!f.is_unavailable(Beta::SpendLimitReads));
    }
}
