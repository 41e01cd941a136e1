//! Server-rendered SVG charts: horizontal bars with their values written beside
//! them (readable without colour, and as text by a screen reader through the
//! chart's title and a table the page shows next to it). Presentation attributes
//! only, so the strict CSP needs no inline styles.

use maud::{html, Markup};

/// A horizontal bar chart of `(label, value)` rows, scaled to the largest value.
pub fn bars(title: &str, rows: &[(String, f64)], unit: &str) -> Markup {
    let row_h = 22.0;
    let label_w = 180.0;
    let bar_w = 360.0;
    let height = row_h * rows.len().max(1) as f64 + 8.0;
    let max = rows.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" width=(label_w + bar_w + 120.0) height=(height)
            viewBox={ "0 0 " (label_w + bar_w + 120.0) " " (height) } aria-label=(title) {
            title { (title) }
            @if rows.is_empty() {
                text x="0" y="16" { "nothing to show yet" }
            }
            @for (i, (label, value)) in rows.iter().enumerate() {
                @let y = i as f64 * row_h + 4.0;
                @let w = if max > 0.0 { (value / max * bar_w).max(1.0) } else { 1.0 };
                text x="0" y=(y + 14.0) { (truncate(label, 26)) }
                rect x=(label_w) y=(y) width=(format!("{w:.1}")) height=(row_h - 6.0) fill="#0b5cad" {}
                text x=(label_w + w + 6.0) y=(y + 14.0) { (format_value(*value)) " " (unit) }
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let svg = bars(
            "Run durations",
            &[("<run 1>".into(), 10.0), ("run 2".into(), 5.0)],
            "ms",
        )
        .into_string();
        assert!(svg.contains("width=\"360.0\""), "{svg}");
        assert!(svg.contains("width=\"180.0\""), "{svg}");
        assert!(svg.contains("&lt;run 1&gt;"), "{svg}");
        assert!(!svg.contains("style="), "{svg}");
        assert!(bars("x", &[], "")
            .into_string()
            .contains("nothing to show yet"));
    }
}
