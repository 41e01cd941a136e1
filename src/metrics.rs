//! Process metrics in the Prometheus text exposition format (version 0.0.4).
//!
//! A small registry of counters, gauges and one latency histogram family. Labels
//! carry route patterns, methods, statuses and action kinds, never ids or names, so
//! cardinality stays bounded. A [`MetricSink`] (the OTLP bridge) may receive every
//! update as well. Imports nothing of ours.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// Upper bounds of the request latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

type Labels = Vec<(String, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug, Default)]
struct Inner {
    values: BTreeMap<String, (Kind, String, BTreeMap<Labels, f64>)>,
    latency: BTreeMap<Labels, Histogram>,
}

/// Receives every update of the registry as it happens (the OTLP bridge).
pub trait MetricSink: Send + Sync + std::fmt::Debug {
    /// `by` was added to a counter.
    fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)], by: f64);
    /// A gauge was set.
    fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)], value: f64);
    /// One request took `seconds` (the latency histogram, by route pattern).
    fn latency(&self, route: &str, seconds: f64);
}

/// The upper bounds of the request latency histogram's buckets, in seconds.
pub fn latency_buckets() -> Vec<f64> {
    BUCKETS.to_vec()
}

/// The metrics registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    sink: OnceLock<Arc<dyn MetricSink>>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write_labels(out: &mut String, labels: &Labels, extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra)
    {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out.push('}');
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(
        &self,
        kind: Kind,
        name: &str,
        help: &str,
        pairs: &[(&str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        let mut inner = self.inner.lock();
        let entry = inner
            .values
            .entry(name.to_string())
            .or_insert_with(|| (kind, help.to_string(), BTreeMap::new()));
        f(entry.2.entry(labels(pairs)).or_insert(0.0));
    }

    /// Sends every later update to `sink` as well (once; a second sink is ignored).
    pub fn set_sink(&self, sink: Arc<dyn MetricSink>) {
        let _ = self.sink.set(sink);
    }

    /// Adds `by` to a counter.
    pub fn inc(&self, name: &str, help: &str, pairs: &[(&str, &str)], by: f64) {
        self.add(Kind::Counter, name, help, pairs, |v| *v += by);
        if let Some(sink) = self.sink.get() {
            sink.counter(name, help, pairs, by);
        }
    }

    /// Sets a gauge.
    pub fn set(&self, name: &str, help: &str, pairs: &[(&str, &str)], value: f64) {
        self.add(Kind::Gauge, name, help, pairs, |v| *v = value);
        if let Some(sink) = self.sink.get() {
            sink.gauge(name, help, pairs, value);
        }
    }

    /// Records one HTTP request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.inc(
            "cowork_sync_http_requests_total",
            "HTTP requests by route pattern, method and status.",
            &[("route", route), ("method", method), ("status", &status)],
            1.0,
        );
        let mut inner = self.inner.lock();
        let h = inner
            .latency
            .entry(labels(&[("route", route)]))
            .or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        drop(inner);
        if let Some(sink) = self.sink.get() {
            sink.latency(route, seconds);
        }
    }

    /// A counter's current value (for tests and status pages).
    pub fn value(&self, name: &str, pairs: &[(&str, &str)]) -> f64 {
        let inner = self.inner.lock();
        inner
            .values
            .get(name)
            .and_then(|(_, _, series)| series.get(&labels(pairs)))
            .copied()
            .unwrap_or(0.0)
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let inner = self.inner.lock();
        let mut out = String::new();
        for (name, (kind, help, series)) in &inner.values {
            let _ = writeln!(out, "# HELP {name} {help}");
            let kind = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in series {
                out.push_str(name);
                write_labels(&mut out, labels, None);
                let _ = writeln!(out, " {value}");
            }
        }
        let name = "cowork_sync_http_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} HTTP request latency by route pattern.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (labels, h) in &inner.latency {
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                out.push_str(name);
                out.push_str("_bucket");
                write_labels(&mut out, labels, Some(("le", &bound.to_string())));
                let _ = writeln!(out, " {count}");
            }
            out.push_str(name);
            out.push_str("_bucket");
            write_labels(&mut out, labels, Some(("le", "+Inf")));
            let _ = writeln!(out, " {}", h.count);
            out.push_str(name);
            out.push_str("_sum");
            write_labels(&mut out, labels, None);
            let _ = writeln!(out, " {}", h.sum);
            out.push_str(name);
            out.push_str("_count");
            write_labels(&mut out, labels, None);
            let _ = writeln!(out, " {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_help_type_and_cumulative_buckets() {
        let m = Metrics::new();
        m.observe_request("/scim/v2/Users/{id}", "GET", 200, 0.002);
        m.observe_request("/scim/v2/Users/{id}", "GET", 200, 0.2);
        m.set(
            "cowork_sync_directory_users",
            "Users in the directory.",
            &[],
            3.0,
        );
        let text = m.render();
        assert!(text.contains("# TYPE cowork_sync_http_requests_total counter"));
        assert!(text.contains(
            "cowork_sync_http_requests_total{route=\"/scim/v2/Users/{id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "cowork_sync_http_request_duration_seconds_bucket{route=\"/scim/v2/Users/{id}\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "cowork_sync_http_request_duration_seconds_bucket{route=\"/scim/v2/Users/{id}\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("cowork_sync_directory_users 3"));
        assert_eq!(
            m.value(
                "cowork_sync_http_requests_total",
                &[
                    ("route", "/scim/v2/Users/{id}"),
                    ("method", "GET"),
                    ("status", "200")
                ]
            ),
            2.0
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.inc("x_total", "x", &[("route", "a\"b")], 1.0);
        assert!(m.render().contains("x_total{route=\"a\\\"b\"} 1"));
    }
}
