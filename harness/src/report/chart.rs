//! The probes' [`Figure`]s as inline SVG for the HTML report: a flood as the calls served and
//! refused over time against the expected limit, paired timing differences as a histogram
//! with zero and the median marked, resident memory over a flood of distinct values.
//!
//! Small code rather than a plotting crate: three fixed kinds of chart, a few dozen elements
//! each, no fonts to embed and nothing to configure; the tests pin the output (well-formed
//! XML, the elements each figure must have, no NaN, every text escaped).
//!
//! Cost: linear in the figure, which is bounded ([`crate::probe::figure`]). Failure: none; a
//! figure with nothing to draw gives a short note instead of a chart.

use super::html::escape;
use crate::probe::figure::{Figure, MemorySample, TimedCall};
use std::fmt::Write;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;

const SERVED: &str = "#17b26a";
const REFUSED: &str = "#d92d20";
const EXPECTED: &str = "#475467";
const BARS: &str = "#2e90fa";

/// The SVG of `figure`, with a one-line caption.
pub fn render(figure: &Figure) -> String {
    match figure {
        Figure::CallTimeline {
            calls,
            calls_not_shown,
            expected_burst,
            expected_per_second,
        } => timeline(
            calls,
            *calls_not_shown,
            *expected_burst,
            *expected_per_second,
        ),
        Figure::Differences {
            compared,
            low_ns,
            high_ns,
            bins,
            below,
            above,
            median_ns,
            pairs,
            decision,
        } => differences(
            compared, *low_ns, *high_ns, bins, *below, *above, *median_ns, *pairs, decision,
        ),
        Figure::Memory { samples } => memory(samples),
    }
}

/// Maps data to the plot area: x from `x0..x1`, y from `y0..y1` (both ranges non-empty).
struct Plot {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Plot {
    fn new(x0: f64, x1: f64, y0: f64, y1: f64) -> Self {
        let widen = |a: f64, b: f64| if b > a { (a, b) } else { (a, a + 1.0) };
        let (x0, x1) = widen(x0, x1);
        let (y0, y1) = widen(y0, y1);
        Self { x0, x1, y0, y1 }
    }

    fn x(&self, value: f64) -> f64 {
        LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)
    }

    /// The opening tag, the axes, and their end labels.
    fn open(&self, label: &str, x_label: &str, y_label: &str, format: fn(f64) -> String) -> String {
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" font-family=\"system-ui,sans-serif\" font-size=\"11\">",
            escape(label)
        );
        let (left, right) = (LEFT, WIDTH - RIGHT);
        let (top, bottom) = (TOP, HEIGHT - BOTTOM);
        let _ = write!(
            out,
            "<path d=\"M{left} {top}V{bottom}H{right}\" fill=\"none\" stroke=\"#98a2b3\"/>\
<text x=\"{left}\" y=\"{}\" text-anchor=\"start\">{}</text>\
<text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{}</text>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
<text x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">{}</text>\
<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{}</text>",
            bottom + 14.0,
            escape(&format(self.x0)),
            bottom + 14.0,
            escape(&format(self.x1)),
            (left + right) / 2.0,
            bottom + 32.0,
            escape(x_label),
            left - 4.0,
            escape(&trim(self.y0)),
            left - 4.0,
            top + 8.0,
            escape(&trim(self.y1)),
            (top + bottom) / 2.0,
            (top + bottom) / 2.0,
            escape(y_label)
        );
        out
    }

    /// A polyline through `points` (data coordinates).
    fn line(&self, points: &[(f64, f64)], colour: &str, dashed: bool, title: &str) -> String {
        let mut path = String::new();
        for (i, (x, y)) in points.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                self.x(*x),
                self.y(*y)
            );
        }
        format!(
            "<path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{}><title>{}</title></path>",
            if dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            escape(title)
        )
    }
}

/// A number without a useless fraction.
fn trim(value: f64) -> String {
    if value.fract().abs() < 1e-9 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn seconds(ms: f64) -> String {
    format!("{:.1} s", ms / 1000.0)
}

fn nanoseconds(ns: f64) -> String {
    crate::probe::time::format_ns(ns)
}

fn legend(entries: &[(&str, &str, bool)]) -> String {
    let mut out = String::new();
    let mut x = LEFT + 8.0;
    for (colour, label, dashed) in entries {
        let _ = write!(
            out,
            "<path d=\"M{x} {y}h18\" stroke=\"{colour}\" stroke-width=\"2\"{}/><text x=\"{}\" y=\"{}\">{}</text>",
            if *dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            x + 22.0,
            TOP + 12.0,
            escape(label),
            y = TOP + 8.0,
        );
        x += 30.0 + 6.5 * label.len() as f64;
    }
    out
}

fn caption(svg: String, text: &str) -> String {
    format!(
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        escape(text)
    )
}

/// One line of a [`series`] chart: a colour, a label, dashed or not, and `(x, y)` points.
pub struct Series<'a> {
    pub colour: &'a str,
    pub label: &'a str,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// The colours of the standard lines, for callers of [`series`].
pub const SERVED_COLOUR: &str = SERVED;
pub const REFUSED_COLOUR: &str = REFUSED;
pub const EXPECTED_COLOUR: &str = EXPECTED;
pub const OTHER_COLOUR: &str = BARS;

/// Lines over seconds (the load report's calls per second and latency per second), with
/// a caption; a note when no line has a point.
pub fn series(
    label: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Series<'_>],
    text: &str,
) -> String {
    let points = || lines.iter().flat_map(|l| l.points.iter());
    if points().next().is_none() {
        return "<p>(nothing to draw)</p>".to_owned();
    }
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let x1 = points().map(|p| finite(p.0)).fold(0.0, f64::max);
    let y1 = points().map(|p| finite(p.1)).fold(0.0, f64::max);
    let plot = Plot::new(0.0, x1, 0.0, y1);
    let mut svg = plot.open(label, x_label, y_label, |s| format!("{s:.0} s"));
    for line in lines.iter().filter(|l| !l.points.is_empty()) {
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|&(x, y)| (finite(x), finite(y)))
            .collect();
        svg.push_str(&plot.line(&points, line.colour, line.dashed, line.label));
    }
    let entries: Vec<(&str, &str, bool)> = lines
        .iter()
        .map(|l| (l.colour, l.label, l.dashed))
        .collect();
    svg.push_str(&legend(&entries));
    svg.push_str("</svg>");
    caption(svg, text)
}

/// The calls served and refused so far, over time, against `burst + rate x t`.
fn timeline(
    calls: &[TimedCall],
    not_shown: usize,
    burst: Option<u32>,
    per_second: Option<f64>,
) -> String {
    if calls.is_empty() {
        return "<p>(the flood got no answer to draw)</p>".to_owned();
    }
    let end_ms = calls.iter().map(|c| c.at_ms).max().unwrap_or(0) as f64;
    let (mut served, mut refused) = (vec![(0.0, 0.0)], vec![(0.0, 0.0)]);
    let (mut served_so_far, mut refused_so_far) = (0usize, 0usize);
    for call in calls {
        let at = call.at_ms as f64;
        if call.served {
            served_so_far += 1;
            served.push((at, served_so_far as f64));
        } else {
            refused_so_far += 1;
            refused.push((at, refused_so_far as f64));
        }
    }
    served.push((end_ms, served_so_far as f64));
    refused.push((end_ms, refused_so_far as f64));
    let expected = burst.map(|burst| {
        let rate = per_second.unwrap_or(0.0);
        let at_end = burst as f64 + rate * end_ms / 1000.0;
        [(0.0, burst as f64), (end_ms, at_end)]
    });
    let top = served_so_far
        .max(refused_so_far)
        .max(expected.map_or(0, |e| e[1].1.ceil() as usize)) as f64;
    let plot = Plot::new(0.0, end_ms, 0.0, top);
    let mut svg = plot.open(
        "calls served and refused over time",
        "time since the flood began",
        "calls",
        seconds,
    );
    svg.push_str(&plot.line(&served, SERVED, false, "served so far"));
    svg.push_str(&plot.line(&refused, REFUSED, false, "refused so far"));
    let mut entries = vec![(SERVED, "served", false), (REFUSED, "refused", false)];
    if let Some(expected) = expected {
        svg.push_str(&plot.line(
            &expected,
            EXPECTED,
            true,
            "the most the expected limit serves",
        ));
        entries.push((EXPECTED, "expected limit (burst + rate x t)", true));
    }
    svg.push_str(&legend(&entries));
    svg.push_str("</svg>");
    let mut text = format!(
        "{served_so_far} served and {refused_so_far} refused in {:.1} s",
        end_ms / 1000.0
    );
    if not_shown > 0 {
        let _ = write!(text, " (the next {not_shown} calls are not drawn)");
    }
    if expected.is_none() {
        text.push_str("; no --expect-burst was given, so no limit line is drawn");
    }
    caption(svg, &text)
}

/// A histogram of paired differences with zero and the median marked.
#[allow(clippy::too_many_arguments)]
fn differences(
    compared: &str,
    low_ns: f64,
    high_ns: f64,
    bins: &[u32],
    below: u32,
    above: u32,
    median_ns: f64,
    pairs: usize,
    decision: &str,
) -> String {
    let tallest = bins.iter().copied().max().unwrap_or(0);
    if bins.is_empty()
        || tallest == 0
        || high_ns.partial_cmp(&low_ns) != Some(std::cmp::Ordering::Greater)
    {
        return "<p>(no paired difference to draw)</p>".to_owned();
    }
    let plot = Plot::new(low_ns, high_ns, 0.0, tallest as f64);
    let mut svg = plot.open(
        &format!("distribution of {compared}"),
        &format!("{compared} (1st to 99th percentile)"),
        "pairs",
        nanoseconds,
    );
    let width = (high_ns - low_ns) / bins.len() as f64;
    for (i, count) in bins.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        let from = low_ns + width * i as f64;
        let (x0, x1) = (plot.x(from), plot.x(from + width));
        let y = plot.y(*count as f64);
        let _ = write!(
            svg,
            "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{BARS}\"><title>{count} pairs from {} to {}</title></rect>",
            (x1 - x0 - 1.0).max(0.5),
            plot.y(0.0) - y,
            escape(&nanoseconds(from)),
            escape(&nanoseconds(from + width))
        );
    }
    for (value, colour, label) in [
        (0.0, EXPECTED, "no difference"),
        (median_ns, REFUSED, "median"),
    ] {
        if value >= low_ns && value <= high_ns {
            let x = plot.x(value);
            let _ = write!(
                svg,
                "<path d=\"M{x:.1} {TOP}V{}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"4 3\"><title>{}</title></path>",
                HEIGHT - BOTTOM,
                escape(&format!("{label}: {}", nanoseconds(value)))
            );
        }
    }
    svg.push_str(&legend(&[
        (EXPECTED, "zero", true),
        (REFUSED, "median", true),
    ]));
    svg.push_str("</svg>");
    caption(
        svg,
        &format!(
            "{pairs} pairs, median {}; {below} below and {above} above the range drawn; verdict: {decision}",
            nanoseconds(median_ns)
        ),
    )
}

/// Resident memory over time.
fn memory(samples: &[MemorySample]) -> String {
    if samples.len() < 2 {
        return "<p>(too few memory readings to draw)</p>".to_owned();
    }
    let end_ms = samples.iter().map(|s| s.at_ms).max().unwrap_or(0) as f64;
    let mb = |kb: u64| kb as f64 / 1024.0;
    let lowest = samples.iter().map(|s| s.kb).min().unwrap_or(0);
    let highest = samples.iter().map(|s| s.kb).max().unwrap_or(0);
    let plot = Plot::new(0.0, end_ms, 0.0, mb(highest).ceil().max(1.0));
    let mut svg = plot.open(
        "resident memory over time",
        "time since the flood began",
        "MB resident",
        seconds,
    );
    let points: Vec<(f64, f64)> = samples.iter().map(|s| (s.at_ms as f64, mb(s.kb))).collect();
    svg.push_str(&plot.line(&points, BARS, false, "resident memory"));
    for sample in samples {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{BARS}\"><title>{} MB after {} calls</title></circle>",
            plot.x(sample.at_ms as f64),
            plot.y(mb(sample.kb)),
            trim(mb(sample.kb).round()),
            sample.calls
        );
    }
    svg.push_str("</svg>");
    let last = samples.last().map_or(0, |s| s.calls);
    caption(
        svg,
        &format!(
            "{} readings over {last} calls: {:.0} to {:.0} MB",
            samples.len(),
            mb(lowest),
            mb(highest)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses the SVG inside a chart's `<figure>` and returns it with the element names.
    fn svg_elements(chart: &str) -> Vec<String> {
        let document = roxmltree::Document::parse(chart).unwrap_or_else(|e| panic!("{e}: {chart}"));
        document
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name().to_owned())
            .collect()
    }

    fn flood() -> Figure {
        let calls = (0..60)
            .map(|i| TimedCall {
                at_ms: i * 50,
                served: i < 20 || i % 3 == 0,
            })
            .collect();
        Figure::CallTimeline {
            calls,
            calls_not_shown: 7,
            expected_burst: Some(20),
            expected_per_second: Some(10.0),
        }
    }

    #[test]
    fn a_flood_draws_served_refused_and_the_expected_limit() {
        let chart = render(&flood());
        let elements = svg_elements(&chart);
        assert_eq!(
            elements.iter().filter(|e| *e == "path").count(),
            1 + 3 + 3,
            "{chart}"
        );
        assert!(chart.contains("stroke-dasharray"), "the limit is dashed");
        assert!(chart.contains("the next 7 calls are not drawn"), "{chart}");
        assert!(!chart.contains("NaN") && !chart.contains("inf"), "{chart}");
        insta::assert_snapshot!("chart_flood", chart);
    }

    #[test]
    fn a_flood_without_expectations_says_why_no_limit_is_drawn() {
        let Figure::CallTimeline { calls, .. } = flood() else {
            unreachable!()
        };
        let chart = render(&Figure::CallTimeline {
            calls,
            calls_not_shown: 0,
            expected_burst: None,
            expected_per_second: None,
        });
        svg_elements(&chart);
        assert!(chart.contains("no --expect-burst was given"), "{chart}");
        assert!(!chart.contains("stroke-dasharray"), "{chart}");
        let empty = render(&Figure::CallTimeline {
            calls: Vec::new(),
            calls_not_shown: 0,
            expected_burst: None,
            expected_per_second: None,
        });
        assert!(!empty.contains("<svg"), "{empty}");
    }

    #[test]
    fn a_distribution_marks_zero_and_the_median_and_escapes_its_texts() {
        let values: Vec<f64> = (0..500).map(|i| (i % 50) as f64 * 20.0 - 300.0).collect();
        let figure = Figure::differences("b <minus> a", &values, "pass & \"quiet\"").unwrap();
        let chart = render(&figure);
        let elements = svg_elements(&chart);
        assert!(
            elements.iter().filter(|e| *e == "rect").count() >= 20,
            "{chart}"
        );
        assert!(chart.contains("b &lt;minus&gt; a"), "{chart}");
        assert!(chart.contains("pass &amp; &quot;quiet&quot;"), "{chart}");
        assert!(
            chart.contains("<title>no difference: 0 ns</title>"),
            "{chart}"
        );
        assert!(chart.contains("<title>median: "), "{chart}");
        assert!(!chart.contains("NaN"), "{chart}");
        insta::assert_snapshot!("chart_differences", chart);
    }

    #[test]
    fn memory_readings_are_a_line_with_a_dot_each() {
        let samples: Vec<MemorySample> = (0..10)
            .map(|i| MemorySample {
                at_ms: i * 300,
                calls: i as usize * 1000,
                kb: 40_000 + u64::from(i) * 2_048,
            })
            .collect();
        let chart = render(&Figure::Memory { samples });
        let elements = svg_elements(&chart);
        assert_eq!(elements.iter().filter(|e| *e == "circle").count(), 10);
        assert!(
            chart.contains("10 readings over 9000 calls: 39 to 57 MB"),
            "{chart}"
        );
        insta::assert_snapshot!("chart_memory", chart);
        let one = render(&Figure::Memory {
            samples: vec![MemorySample {
                at_ms: 0,
                calls: 0,
                kb: 1,
            }],
        });
        assert!(!one.contains("<svg"), "{one}");
    }
}
