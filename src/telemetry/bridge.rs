//! The Prometheus registry, mirrored into OpenTelemetry instruments: each counter
//! becomes a monotonic sum, each gauge a gauge, the request latency a histogram with
//! the same bucket bounds, under the same names and labels. Units follow the name's
//! suffix (`_seconds` → `s`, `_bytes` → `By`).
//!
//! Instruments are created the first time a name is seen and kept; a lookup is one
//! read lock on a small map.

use std::collections::HashMap;

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};
use opentelemetry::KeyValue;
use parking_lot::RwLock;

use crate::metrics::MetricSink;

/// The latency histogram's name (the Prometheus family name).
pub const LATENCY: &str = "cowork_sync_http_request_duration_seconds";

fn unit_of(name: &str) -> &'static str {
    if name.ends_with("_seconds") || name.contains("_seconds_") {
        "s"
    } else if name.ends_with("_bytes") || name.contains("_bytes_") {
        "By"
    } else {
        ""
    }
}

fn attributes(labels: &[(&str, &str)]) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
        .collect()
}

/// The sink installed on the registry when telemetry is on.
pub struct OtelSink {
    meter: Meter,
    counters: RwLock<HashMap<String, Counter<f64>>>,
    gauges: RwLock<HashMap<String, Gauge<f64>>>,
    latency: Histogram<f64>,
}

impl std::fmt::Debug for OtelSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelSink").finish_non_exhaustive()
    }
}

impl OtelSink {
    /// Instruments on `meter`.
    pub fn new(meter: Meter) -> Self {
        let latency = meter
            .f64_histogram(LATENCY)
            .with_description("HTTP request latency by route pattern.")
            .with_unit("s")
            .with_boundaries(crate::metrics::latency_buckets())
            .build();
        Self {
            meter,
            counters: RwLock::new(HashMap::new()),
            gauges: RwLock::new(HashMap::new()),
            latency,
        }
    }
}

impl MetricSink for OtelSink {
    fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)], by: f64) {
        if let Some(c) = self.counters.read().get(name) {
            c.add(by, &attributes(labels));
            return;
        }
        let mut counters = self.counters.write();
        let c = counters.entry(name.to_string()).or_insert_with(|| {
            self.meter
                .f64_counter(name.to_string())
                .with_description(help.to_string())
                .with_unit(unit_of(name))
                .build()
        });
        c.add(by, &attributes(labels));
    }

    fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(g) = self.gauges.read().get(name) {
            g.record(value, &attributes(labels));
            return;
        }
        let mut gauges = self.gauges.write();
        let g = gauges.entry(name.to_string()).or_insert_with(|| {
            self.meter
                .f64_gauge(name.to_string())
                .with_description(help.to_string())
                .with_unit(unit_of(name))
                .build()
        });
        g.record(value, &attributes(labels));
    }

    fn latency(&self, route: &str, seconds: f64) {
        self.latency
            .record(seconds, &[KeyValue::new("route", route.to_string())]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_the_prometheus_suffixes() {
        assert_eq!(unit_of("cowork_sync_http_request_duration_seconds"), "s");
        assert_eq!(unit_of("cowork_sync_reconcile_duration_seconds_last"), "s");
        assert_eq!(unit_of("cowork_sync_store_bytes"), "By");
        assert_eq!(unit_of("cowork_sync_http_requests_total"), "");
    }
}
