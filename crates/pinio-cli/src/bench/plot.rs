//! The SVG plot: one panel per metric (throughput, CPU time per byte, p99
//! latency). Along x, every workload of the run, labelled with its block
//! size, pattern, direction and queue depth; within each workload one marker
//! per configuration at the median of the repeats, with a whisker from the
//! smallest to the largest repeat. Nothing joins different workloads: they
//! are different experiments, not points of one curve.
//!
//! Written by hand rather than through a plotting crate so that the same
//! markup is both `results.svg` and the figure inlined in `results.html`,
//! and stays well-formed XML for both.

use super::escape::esc;
use super::report::{Results, Spread, workload_label};
use super::runner::Sample;
use std::fmt::Write;

/// One panel.
pub struct Metric {
    /// Panel title.
    pub title: &'static str,
    /// Y axis title, with the unit.
    pub axis: &'static str,
    /// Unit in tooltips.
    pub unit: &'static str,
    /// The value of one sample.
    pub value: fn(&Sample) -> f64,
}

/// The panels, top to bottom.
pub const METRICS: [Metric; 3] = [
    Metric {
        title: "Throughput (higher is better)",
        axis: "MB/s (log scale)",
        unit: "MB/s",
        value: |s| s.gbps() * 1e3,
    },
    Metric {
        title: "CPU time per byte moved (lower is better)",
        axis: "CPU ns per byte (log scale)",
        unit: "ns/B",
        value: Sample::cpu_ns_per_byte,
    },
    Metric {
        title: "Latency, 99th percentile (lower is better)",
        axis: "p99 latency, µs (log scale)",
        unit: "µs",
        value: |s| s.lat_p99_us,
    },
];

/// Okabe–Ito colours (distinguishable with the common colour-vision
/// deficiencies, all dark enough to read on white), then two more.
const COLORS: [&str; 8] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B"];
/// Marker shapes, cycled with the colours so that no two backends share both.
const SHAPES: [Shape; 5] = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Diamond, Shape::TriangleDown];

#[derive(Debug, Clone, Copy)]
enum Shape {
    Circle,
    Square,
    Triangle,
    Diamond,
    TriangleDown,
}

/// The colour and shape of configuration `i`.
fn style(i: usize) -> (&'static str, Shape) {
    (COLORS[i % COLORS.len()], SHAPES[i % SHAPES.len()])
}

fn marker(o: &mut String, shape: Shape, x: f64, y: f64, color: &str) {
    let r = 5.0;
    let attrs = format!(r##"fill="{color}" stroke="#ffffff" stroke-width="1""##);
    let _ = match shape {
        Shape::Circle => writeln!(o, r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" {attrs}/>"#),
        Shape::Square => writeln!(
            o,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" {attrs}/>"#,
            x - r * 0.9,
            y - r * 0.9,
            r * 1.8,
            r * 1.8
        ),
        Shape::Triangle => writeln!(
            o,
            r#"<path d="M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" {attrs}/>"#,
            y - r * 1.2,
            x + r * 1.1,
            y + r * 0.8,
            x - r * 1.1,
            y + r * 0.8
        ),
        Shape::TriangleDown => writeln!(
            o,
            r#"<path d="M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" {attrs}/>"#,
            y + r * 1.2,
            x + r * 1.1,
            y - r * 0.8,
            x - r * 1.1,
            y - r * 0.8
        ),
        Shape::Diamond => writeln!(
            o,
            r#"<path d="M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} Z" {attrs}/>"#,
            y - r * 1.3,
            x + r * 1.3,
            y + r * 1.3,
            x - r * 1.3
        ),
    };
}

/// A tick value for the axis: `1`, `20`, `500`, `2k`, `1M`, `0.05`.
pub fn tick_label(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim_float(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim_float(v / 1e3))
    } else {
        trim_float(v)
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A value in a tooltip, three significant digits.
fn value_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    format!("{v:.digits$}")
}

/// A logarithmic y axis over `[lo, hi]` (both positive).
struct LogAxis {
    lo: f64,
    hi: f64,
    top: f64,
    height: f64,
}

impl LogAxis {
    /// An axis that shows every value in `values` with some room.
    fn fit(values: impl Iterator<Item = f64>, top: f64, height: f64) -> Option<LogAxis> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v.log10());
            hi = hi.max(v.log10());
        }
        if !lo.is_finite() {
            return None;
        }
        // At least one decade, so there are ticks to read, and 8% room.
        if hi - lo < 1.0 {
            let mid = (hi + lo) / 2.0;
            (lo, hi) = (mid - 0.5, mid + 0.5);
        }
        let pad = (hi - lo) * 0.08;
        Some(LogAxis { lo: lo - pad, hi: hi + pad, top, height })
    }

    fn y(&self, v: f64) -> f64 {
        let t = (v.log10() - self.lo) / (self.hi - self.lo);
        self.top + self.height * (1.0 - t.clamp(0.0, 1.0))
    }

    /// Tick values: 1-2-5 in each decade, only powers of ten when that makes
    /// too many.
    fn ticks(&self) -> Vec<f64> {
        let (d0, d1) = (self.lo.floor() as i32, self.hi.ceil() as i32);
        let pick = |mantissas: &[f64]| -> Vec<f64> {
            let mut t = Vec::new();
            for d in d0..=d1 {
                for m in mantissas {
                    let v = m * 10f64.powi(d);
                    let l = v.log10();
                    if l >= self.lo - 1e-9 && l <= self.hi + 1e-9 {
                        t.push(v);
                    }
                }
            }
            t
        };
        let t = pick(&[1.0, 2.0, 5.0]);
        if t.len() > 9 { pick(&[1.0]) } else { t }
    }
}

const LEFT: f64 = 84.0;
const RIGHT: f64 = 16.0;
const PLOT_H: f64 = 210.0;
const PANEL_TITLE: f64 = 30.0;
const X_LABELS: f64 = 46.0;

/// The plot of `results` as a standalone SVG document (no XML declaration,
/// so it can also be inlined in HTML).
pub fn svg(results: &Results) -> String {
    let (workloads, contenders) = (results.workloads(), results.contenders());
    let (n, m) = (workloads.len().max(1), contenders.len().max(1));
    let group_w = (m as f64 * 24.0 + 40.0).max(150.0);
    let width = (LEFT + RIGHT + group_w * n as f64).max(760.0);
    let group_w = (width - LEFT - RIGHT) / n as f64;

    // Legend rows: one item per configuration, wrapped to the width.
    let mut legend = Vec::new();
    let (mut lx, mut ly) = (LEFT + 6.0, 52.0);
    for (i, c) in contenders.iter().enumerate() {
        let w = 12.0 + 7.0 * c.label.chars().count() as f64 + 24.0;
        if lx + w > width - RIGHT && lx > LEFT + 6.0 {
            lx = LEFT + 6.0;
            ly += 20.0;
        }
        legend.push((i, lx, ly, c.label));
        lx += w;
    }
    let header = ly + 22.0;
    let panel_h = PANEL_TITLE + PLOT_H + X_LABELS;
    let height = header + panel_h * METRICS.len() as f64 + 8.0;

    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12" fill="#222222">"##
    );
    let repeats = results.repeats();
    let _ = writeln!(
        o,
        "<title>pinio bench: median of {repeats} repeats per workload and configuration, whiskers from min to max</title>"
    );
    let _ = writeln!(o, r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##);
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">pinio bench: median of {repeats} repeat{} (marker), min to max (bar)</text>"#,
        if repeats == 1 { "" } else { "s" }
    );
    for (i, x, y, label) in &legend {
        let (color, shape) = style(*i);
        let _ = writeln!(
            o,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-width="1.5"/>"#,
            y - 9.0,
            y + 3.0
        );
        marker(&mut o, shape, *x, y - 3.0, color);
        let _ = writeln!(o, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, x + 12.0, y + 1.0, esc(label));
    }

    for (pi, metric) in METRICS.iter().enumerate() {
        let top = header + panel_h * pi as f64;
        let plot_top = top + PANEL_TITLE;
        let plot_bottom = plot_top + PLOT_H;
        let _ = writeln!(o, r#"<g class="panel">"#);
        let _ = writeln!(
            o,
            r#"<text x="{LEFT}" y="{:.1}" font-size="14" font-weight="bold">{}</text>"#,
            top + 20.0,
            esc(metric.title)
        );
        // Per workload and configuration: the spread of the positive values.
        let spreads: Vec<Vec<Option<(Spread, usize)>>> = (0..workloads.len())
            .map(|wi| {
                (0..contenders.len())
                    .map(|ci| {
                        let v: Vec<f64> = results
                            .samples(wi, ci)
                            .iter()
                            .map(metric.value)
                            .filter(|v| v.is_finite() && *v > 0.0)
                            .collect();
                        let dropped = results.samples(wi, ci).len() - v.len();
                        (!v.is_empty()).then(|| (Spread::of(v), dropped))
                    })
                    .collect()
            })
            .collect();
        let all = spreads.iter().flatten().flatten().flat_map(|(s, _)| [s.min, s.max]);
        let Some(axis) = LogAxis::fit(all, plot_top, PLOT_H) else {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no positive values to plot</text>"#,
                width / 2.0,
                plot_top + PLOT_H / 2.0
            );
            let _ = writeln!(o, "</g>");
            continue;
        };
        // Grid and y ticks.
        for t in axis.ticks() {
            let y = axis.y(t);
            let _ = writeln!(
                o,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3" stroke-width="1"/>"##,
                width - RIGHT
            );
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                tick_label(t)
            );
        }
        // Workload groups: separators and two-line labels.
        for (wi, w) in workloads.iter().enumerate() {
            let x0 = LEFT + group_w * wi as f64;
            if wi > 0 {
                let _ = writeln!(
                    o,
                    r##"<line x1="{x0:.1}" y1="{plot_top:.1}" x2="{x0:.1}" y2="{plot_bottom:.1}" stroke="#bbbbbb" stroke-width="1" stroke-dasharray="3,3"/>"##
                );
            }
            let label = workload_label(w);
            let (first, depth) = label.rsplit_once(' ').unwrap_or((label.as_str(), ""));
            let cx = x0 + group_w / 2.0;
            let _ = writeln!(
                o,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                plot_bottom + 17.0,
                esc(first)
            );
            let _ = writeln!(
                o,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                plot_bottom + 32.0,
                esc(depth)
            );
        }
        // Axes.
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{plot_top:.1}" x2="{LEFT}" y2="{plot_bottom:.1}" stroke="#444444" stroke-width="1"/>"##
        );
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" y1="{plot_bottom:.1}" x2="{:.1}" y2="{plot_bottom:.1}" stroke="#444444" stroke-width="1"/>"##,
            width - RIGHT
        );
        let ymid = plot_top + PLOT_H / 2.0;
        let _ = writeln!(
            o,
            r#"<text x="18" y="{ymid:.1}" text-anchor="middle" transform="rotate(-90 18 {ymid:.1})">{}</text>"#,
            esc(metric.axis)
        );
        // Whiskers and medians.
        let step = ((group_w - 24.0) / m as f64).min(30.0);
        for (wi, row) in spreads.iter().enumerate() {
            let cx = LEFT + group_w * (wi as f64 + 0.5);
            for (ci, cell) in row.iter().enumerate() {
                let Some((s, dropped)) = cell else { continue };
                let (color, shape) = style(ci);
                let x = cx + (ci as f64 - (m as f64 - 1.0) / 2.0) * step;
                let (y_min, y_med, y_max) = (axis.y(s.min), axis.y(s.median), axis.y(s.max));
                let note = if *dropped > 0 {
                    format!("; {dropped} repeat(s) without a positive value left out")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    "<g><title>{} — {}: median {} {unit}, min {}, max {}{note}</title>",
                    esc(contenders[ci].label),
                    esc(&workload_label(&workloads[wi])),
                    value_label(s.median),
                    value_label(s.min),
                    value_label(s.max),
                    unit = esc(metric.unit),
                );
                let _ = writeln!(
                    o,
                    r#"<line x1="{x:.1}" y1="{y_min:.1}" x2="{x:.1}" y2="{y_max:.1}" stroke="{color}" stroke-width="1.5"/>"#
                );
                for y in [y_min, y_max] {
                    let _ = writeln!(
                        o,
                        r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="1.5"/>"#,
                        x - 4.0,
                        x + 4.0
                    );
                }
                marker(&mut o, shape, x, y_med, color);
                let _ = writeln!(o, "</g>");
            }
        }
        let _ = writeln!(o, "</g>");
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::fixture::sample_results;

    #[test]
    fn ticks_and_labels() {
        assert_eq!(tick_label(1.0), "1");
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(2000.0), "2k");
        assert_eq!(tick_label(5e6), "5M");
        let a = LogAxis::fit([3.0, 700.0].into_iter(), 0.0, 100.0).unwrap();
        let t = a.ticks();
        assert!(t.contains(&5.0) && t.contains(&500.0), "{t:?}");
        assert!(a.y(3.0) > a.y(700.0), "larger values are higher up");
        let wide = LogAxis::fit([1e-3, 1e6].into_iter(), 0.0, 100.0).unwrap();
        assert!(wide.ticks().iter().all(|t| (t.log10() - t.log10().round()).abs() < 1e-9));
        let flat = LogAxis::fit([42.0, 42.0].into_iter(), 0.0, 100.0).unwrap();
        assert!(flat.ticks().len() >= 2, "one value still gets a readable axis");
        assert!(LogAxis::fit([0.0, -1.0, f64::NAN].into_iter(), 0.0, 1.0).is_none());
        assert_eq!(value_label(1234.6), "1235");
        assert_eq!(value_label(0.012345), "0.0123");
    }

    #[test]
    fn every_workload_and_configuration_is_plotted() {
        let r = sample_results();
        let svg = svg(&r);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
        let panels: Vec<_> = root.children().filter(|n| n.attribute("class") == Some("panel")).collect();
        assert_eq!(panels.len(), METRICS.len());
        let texts: Vec<String> =
            doc.descendants().filter(|n| n.is_text()).map(|n| n.text().unwrap().to_string()).collect();
        for (wi, w) in r.workloads().iter().enumerate() {
            let label = workload_label(w);
            let (first, depth) = label.rsplit_once(' ').unwrap();
            assert!(texts.iter().any(|t| t == first) && texts.iter().any(|t| t == depth), "{label}");
            for c in r.contenders() {
                // A tooltip per panel for every (workload, configuration).
                let tip = format!("{} — {label}: median", c.label);
                let n = texts.iter().filter(|t| t.starts_with(&tip)).count();
                assert_eq!(n, METRICS.len(), "{tip}");
            }
            let _ = wi;
        }
        for c in r.contenders() {
            assert!(texts.iter().any(|t| t == c.label), "legend has {}", c.label);
        }
        for m in METRICS {
            assert!(texts.iter().any(|t| t == m.axis), "axis title {}", m.axis);
        }
        // No polyline or path joins points of different workloads: paths
        // are only the triangle and diamond markers (closed, 3-4 points).
        assert!(!svg.contains("<polyline"));
        for p in doc.descendants().filter(|n| n.has_tag_name("path")) {
            let d = p.attribute("d").unwrap();
            assert!(d.ends_with('Z') && d.matches('L').count() <= 3, "{d}");
        }
    }

    #[test]
    fn labels_are_escaped() {
        let mut r = sample_results();
        r.contenders_mut()[0].label = "a<b & \"c\"";
        let svg = svg(&r);
        roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
    }
}
