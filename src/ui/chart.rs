//! Server-rendered SVG charts: horizontal bars ([`bars`]), bars grouped by category
//! with one bar per series ([`grouped_bars`]) and budget meters ([`meters`]), each
//! with its values written beside the bars (readable without colour, and as text by
//! a screen reader through the chart's `<title>` and `<desc>` and the table the page
//! shows next to it). Presentation attributes and classes only, so the strict CSP
//! needs no inline styles. Pure: markup in, markup out.

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

/// One bar of a grouped chart: its length and the text written beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The length, in any unit shared by the chart.
    pub value: f64,
    /// What is written after the bar (`$500.00`, `3 (67 %)`).
    pub label: String,
}

impl Bar {
    /// A bar of `value` labelled `label`.
    pub fn new(value: f64, label: impl Into<String>) -> Self {
        Self {
            value,
            label: label.into(),
        }
    }
}

/// A series of a grouped chart: its name (written beside each of its bars, so the
/// chart reads without colour) and its fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    /// Name, as in the legend.
    pub name: &'static str,
    /// Fill colour (contrast at least 3:1 on white).
    pub fill: &'static str,
}

/// Fills for up to five series, distinguishable and at least 3:1 on white.
pub const FILLS: [&str; 5] = ["#0b5cad", "#116329", "#7a4d00", "#6f42c1", "#a40e26"];

/// A category of a grouped chart: its heading and one bar per series (`None`: the
/// series has no figure here, written as "none").
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// The heading (a group's name).
    pub label: String,
    /// One entry per series, in the series' order.
    pub bars: Vec<Option<Bar>>,
}

/// The text alternative of a chart: `id` makes its `<title>` and `<desc>` ids unique
/// on the page, and `desc` says in words what the chart shows.
#[derive(Debug, Clone, Copy)]
pub struct Alt<'a> {
    /// Unique on the page.
    pub id: &'a str,
    /// The chart's title.
    pub title: &'a str,
    /// What it shows, for a screen reader.
    pub desc: &'a str,
}

const ROW_H: f64 = 20.0;
const NAME_W: f64 = 190.0;
const BAR_W: f64 = 340.0;
const VALUE_W: f64 = 170.0;
const WIDTH: f64 = NAME_W + BAR_W + VALUE_W;
/// A meter's text is longer (spent, budget, share, level, threshold).
const METER_W: f64 = NAME_W + BAR_W + 350.0;

fn bar_width(value: f64, max: f64) -> f64 {
    if max > 0.0 && value > 0.0 {
        (value / max * BAR_W).clamp(1.0, BAR_W)
    } else {
        0.0
    }
}

/// Where each legend entry starts: left to right, wrapping to a new line before an
/// entry would pass the chart's width (text measured at about 7 px a character).
fn legend_positions(series: &[Series]) -> Vec<(f64, f64)> {
    let (mut x, mut y) = (0.0_f64, 0.0_f64);
    series
        .iter()
        .map(|s| {
            let w = 16.0 + 7.0 * s.name.chars().count() as f64 + 24.0;
            if x > 0.0 && x + w > WIDTH {
                x = 0.0;
                y += 20.0;
            }
            let at = (x, y);
            x += w;
            at
        })
        .collect()
}

/// Horizontal bars grouped by category: a legend, then per category its heading and
/// one bar per series, each named and valued in text, all scaled to the largest
/// value in the chart. Presentation attributes and classes only (CSP-clean).
pub fn grouped_bars(alt: Alt<'_>, series: &[Series], categories: &[Category]) -> Markup {
    let legend = legend_positions(series);
    let legend_h = legend.last().map_or(0.0, |(_, y)| y + 20.0);
    let per_cat = ROW_H * (series.len() as f64 + 1.0) + 6.0;
    let height = legend_h + per_cat * categories.len().max(1) as f64;
    let max = categories
        .iter()
        .flat_map(|c| c.bars.iter().flatten())
        .map(|b| b.value)
        .fold(0.0_f64, f64::max);
    let title_id = format!("{}-title", alt.id);
    let desc_id = format!("{}-desc", alt.id);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" id=(alt.id)
            width=(WIDTH) height=(height) viewBox={ "0 0 " (WIDTH) " " (height) }
            aria-labelledby={ (title_id) " " (desc_id) } {
            title id=(title_id) { (alt.title) }
            desc id=(desc_id) { (alt.desc) }
            @for (s, (x, y)) in series.iter().zip(&legend) {
                rect x=(x) y=(y + 4.0) width="12" height="12" fill=(s.fill) {}
                text x=(x + 16.0) y=(y + 14.0) { (s.name) }
            }
            @if categories.is_empty() {
                text x="0" y=(legend_h + 16.0) { "nothing to show yet" }
            }
            @for (c, cat) in categories.iter().enumerate() {
                @let top = legend_h + c as f64 * per_cat;
                text class="category" x="0" y=(top + 14.0) { (truncate(&cat.label, 60)) }
                @for (i, s) in series.iter().enumerate() {
                    @let y = top + ROW_H * (i as f64 + 1.0);
                    text x="12" y=(y + 13.0) { (s.name) }
                    @match cat.bars.get(i).and_then(Option::as_ref) {
                        Some(b) => {
                            @let w = bar_width(b.value, max);
                            rect x=(NAME_W) y=(y + 2.0) width=(format!("{w:.1}")) height=(ROW_H - 6.0) fill=(s.fill) {}
                            text x=(NAME_W + w + 6.0) y=(y + 13.0) { (b.label) }
                        },
                        None => text x=(NAME_W) y=(y + 13.0) class="muted" { "none" },
                    }
                }
            }
        }
    }
}

/// One row of a [`meters`] chart: how much of a budget is spent.
#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    /// The row's label (a group's name).
    pub label: String,
    /// Spent, in the budget's unit.
    pub spent: f64,
    /// The budget.
    pub total: f64,
    /// The warning threshold as a share of the budget (a tick on the track).
    pub warn_at: Option<f64>,
    /// What is written after the track (`$85.00 of $100.00 (85 %), warn`).
    pub text: String,
}

/// Budget meters: per row a track as long as the budget, filled as far as it is
/// spent (full when spent beyond it), with a tick at the warning threshold.
pub fn meters(alt: Alt<'_>, rows: &[Meter]) -> Markup {
    let row_h = 26.0;
    let height = row_h * rows.len().max(1) as f64 + 8.0;
    let title_id = format!("{}-title", alt.id);
    let desc_id = format!("{}-desc", alt.id);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" id=(alt.id)
            width=(METER_W) height=(height) viewBox={ "0 0 " (METER_W) " " (height) }
            aria-labelledby={ (title_id) " " (desc_id) } {
            title id=(title_id) { (alt.title) }
            desc id=(desc_id) { (alt.desc) }
            @if rows.is_empty() {
                text x="0" y="16" { "nothing to show yet" }
            }
            @for (i, m) in rows.iter().enumerate() {
                @let y = i as f64 * row_h + 4.0;
                @let share = if m.total > 0.0 { (m.spent / m.total).clamp(0.0, 1.0) } else { 1.0 };
                text x="0" y=(y + 14.0) { (truncate(&m.label, 28)) }
                rect x=(NAME_W) y=(y) width=(BAR_W) height=(row_h - 8.0) fill="#ffffff" stroke="#4a5563" {}
                @if share > 0.0 {
                    rect x=(NAME_W) y=(y) width=(format!("{:.1}", share * BAR_W)) height=(row_h - 8.0)
                        fill=(if share >= 1.0 { FILLS[4] } else if m.warn_at.is_some_and(|w| share >= w) { FILLS[2] } else { FILLS[0] }) {}
                }
                @if let Some(w) = m.warn_at {
                    @let x = NAME_W + w.clamp(0.0, 1.0) * BAR_W;
                    line x1=(format!("{x:.1}")) x2=(format!("{x:.1}")) y1=(y - 2.0) y2=(y + row_h - 6.0) stroke="#1b1f24" stroke-width="2" {}
                }
                text x=(NAME_W + BAR_W + 8.0) y=(y + 14.0) { (m.text) }
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

    const ALT: Alt<'static> = Alt {
        id: "c1",
        title: "Adoption",
        desc: "members and active users per group",
    };

    #[test]
    fn grouped_bars_name_every_bar_scale_to_the_largest_and_describe_the_chart() {
        let series = [
            Series {
                name: "members",
                fill: FILLS[0],
            },
            Series {
                name: "active 7 days",
                fill: FILLS[1],
            },
        ];
        let cats = [
            Category {
                label: "<Pilot>".into(),
                bars: vec![Some(Bar::new(4.0, "4")), Some(Bar::new(1.0, "1 (25 %)"))],
            },
            Category {
                label: "Finance".into(),
                bars: vec![Some(Bar::new(2.0, "2")), None],
            },
        ];
        let svg = grouped_bars(ALT, &series, &cats).into_string();
        assert!(
            svg.contains("aria-labelledby=\"c1-title c1-desc\""),
            "{svg}"
        );
        assert!(
            svg.contains("<title id=\"c1-title\">Adoption</title>"),
            "{svg}"
        );
        assert!(svg.contains("<desc id=\"c1-desc\">members and active users per group</desc>"));
        // 4 is the largest: the full width; 1 a quarter; 2 a half.
        assert!(svg.contains("width=\"340.0\""), "{svg}");
        assert!(svg.contains("width=\"85.0\""), "{svg}");
        assert!(svg.contains("width=\"170.0\""), "{svg}");
        assert!(svg.contains(">1 (25 %)<"), "{svg}");
        assert!(svg.contains("&lt;Pilot&gt;"), "{svg}");
        // Each series is named on each of its rows (2 categories) and in the legend.
        assert_eq!(svg.matches(">active 7 days<").count(), 3, "{svg}");
        assert!(svg.contains(">none<"), "a missing figure is written: {svg}");
        assert!(!svg.contains("style="), "{svg}");
        let many: Vec<Series> = (0..5)
            .map(|_| Series {
                name: "Cowork users, 30 days",
                fill: FILLS[0],
            })
            .collect();
        let rows = legend_positions(&many);
        assert!(
            rows.iter().all(|(x, _)| x + 16.0 + 7.0 * 21.0 <= WIDTH),
            "{rows:?}"
        );
        assert!(
            rows.last().unwrap().1 > 0.0,
            "a long legend wraps: {rows:?}"
        );
        let empty = grouped_bars(ALT, &series, &[]).into_string();
        assert!(empty.contains("nothing to show yet"));
    }

    #[test]
    fn a_zero_bar_draws_nothing_and_an_all_zero_chart_does_not_divide_by_zero() {
        let series = [Series {
            name: "cost",
            fill: FILLS[0],
        }];
        let cats = [Category {
            label: "Pilot".into(),
            bars: vec![Some(Bar::new(0.0, "$0.00"))],
        }];
        let svg = grouped_bars(ALT, &series, &cats).into_string();
        assert!(svg.contains("width=\"0.0\""), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn meters_fill_as_far_as_spent_stop_at_the_budget_and_tick_the_warning() {
        let rows = [
            Meter {
                label: "Pilot".into(),
                spent: 50.0,
                total: 100.0,
                warn_at: Some(0.8),
                text: "$0.50 of $1.00 (50 %)".into(),
            },
            Meter {
                label: "Finance".into(),
                spent: 300.0,
                total: 100.0,
                warn_at: None,
                text: "$3.00 of $1.00 (300 %), capped".into(),
            },
        ];
        let svg = meters(ALT, &rows).into_string();
        assert!(svg.contains("width=\"170.0\""), "half spent: {svg}");
        // Spent beyond the budget fills the track and no more, in the capped colour.
        assert!(
            svg.contains(&format!(
                "width=\"340.0\" height=\"18\" fill=\"{}\"",
                FILLS[4]
            )),
            "{svg}"
        );
        // The tick at 80 % of 340 after the 190 of the label.
        assert!(svg.contains("x1=\"462.0\""), "{svg}");
        assert!(svg.contains("(300 %), capped"), "{svg}");
        assert!(!svg.contains("style="), "{svg}");
    }
}
