//! The HTML report: one self-contained page (inline CSS and SVG, no external assets) for an
//! acceptance file — the run, the reader's identity, the card, the summary verdict, latency
//! bands on a log scale (outliers stay readable), and every check with its threshold.

use super::check::Verdict;
use super::identity::Reported;
use super::latency::Latency;
use super::report::{Mode, Overall, Report};
use std::fmt::Write;

/// `s` as HTML text or attribute value (`&`, `<`, `>`, `"` escaped): for every HTML report.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's style, shared with `compare`.
pub(super) const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}.pass{color:#080}.fail{color:#c00;font-weight:bold}.na{color:#777}.nr{color:#888;font-style:italic}.badge{display:inline-block;padding:4px 14px;border-radius:4px;color:#fff;font-weight:bold}.b-pass{background:#2a7d2a}.b-fail{background:#c00}.b-inconclusive{background:#888}small{color:#666}";

fn verdict_cell(v: Verdict) -> String {
    let class = match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::NotApplicable => "na",
    };
    format!("<td class=\"{class}\">{}</td>", v.word())
}

pub(super) fn badge(v: Overall) -> String {
    let class = match v {
        Overall::Pass => "b-pass",
        Overall::Fail => "b-fail",
        Overall::Inconclusive => "b-inconclusive",
    };
    format!(
        "<span class=\"badge {class}\" title=\"{}\">{}</span>",
        esc(v.meaning()),
        v.word()
    )
}

pub(super) fn reported(v: &Reported) -> String {
    match v {
        Reported::Value { text, .. } => esc(text),
        Reported::NotReported { .. } => format!("<span class=\"nr\">{}</span>", esc(&v.display())),
    }
}

/// The latency chart's axis: from a microsecond to about three hours (the longest limit a
/// threshold profile may set is ten minutes).
const AXIS_MIN_MS: f64 = 1e-3;
const AXIS_MAX_MS: f64 = 1e7;

/// One row of the latency chart: label, figures, limits (p95, p99) if any.
pub(super) type LatencyRow<'a> = (&'a str, &'a Latency, Option<(f64, f64)>);

/// A row per command: whisker min–max, band p50–p95 and p95–p99, a mark at p50, a dot at
/// max, the limits as red ticks; log-scale axis in decades.
pub(super) fn latency_svg(rows: &[LatencyRow<'_>]) -> String {
    if rows.is_empty() {
        return "<p class=\"na\">No latency was measured.</p>".into();
    }
    let (label_w, plot_w, row_h, top) = (250.0, 620.0, 26.0, 30.0);
    let w = label_w + plot_w + 40.0;
    let h = top + row_h * rows.len() as f64 + 40.0;
    let smallest = rows
        .iter()
        .map(|(_, l, _)| l.min_ms)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    // The axis spans at most AXIS_MIN_MS to AXIS_MAX_MS: figures of a report read back by
    // `compare` may be anything, and the decades are drawn one by one.
    let largest = rows
        .iter()
        .map(|(_, l, lim)| l.max_ms.max(lim.map_or(0.0, |x| x.1)))
        .fold(0.0, f64::max)
        .min(AXIS_MAX_MS);
    let lo = 10f64.powf(smallest.min(largest).max(AXIS_MIN_MS).log10().floor());
    let hi = 10f64.powf(largest.max(lo * 10.0).log10().ceil());
    let x = |v: f64| {
        let v = v.clamp(lo, hi);
        label_w + (v.log10() - lo.log10()) / (hi.log10() - lo.log10()) * plot_w
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-size=\"11\" role=\"img\" aria-label=\"latency per command, log scale\">\n"
    );
    let bottom = top + row_h * rows.len() as f64;
    let mut d = lo;
    while d <= hi * 1.0001 {
        let xd = x(d);
        let label = if d >= 1.0 {
            format!("{d:.0} ms")
        } else {
            format!("{d} ms")
        };
        let _ = writeln!(
            svg,
            "<line x1=\"{xd:.1}\" y1=\"{top}\" x2=\"{xd:.1}\" y2=\"{bottom}\" stroke=\"#ddd\"/><text x=\"{xd:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            bottom + 14.0
        );
        for m in [2.0, 5.0] {
            if d * m < hi {
                let xm = x(d * m);
                let _ = writeln!(
                    svg,
                    "<line x1=\"{xm:.1}\" y1=\"{top}\" x2=\"{xm:.1}\" y2=\"{bottom}\" stroke=\"#f0f0f0\"/>"
                );
            }
        }
        d *= 10.0;
    }
    for (i, (label, l, limits)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let title = format!(
            "{}: min {:.3}, p50 {:.3}, p95 {:.3}, p99 {:.3}, max {:.3} ms ({} samples)",
            label, l.min_ms, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.samples
        );
        let _ = writeln!(
            svg,
            "<g><title>{}</title><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#999\"/>\n<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"#4c78a8\"/>\n<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"#9ecae9\"/>\n<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#111\" stroke-width=\"2\"/>\n<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#e45756\"/></g>",
            esc(&title),
            label_w - 8.0,
            y + 4.0,
            esc(label),
            x(l.min_ms),
            x(l.max_ms),
            x(l.p50_ms),
            y - 6.0,
            (x(l.p95_ms) - x(l.p50_ms)).max(1.0),
            x(l.p95_ms),
            y - 6.0,
            (x(l.p99_ms) - x(l.p95_ms)).max(1.0),
            x(l.p50_ms),
            y - 8.0,
            x(l.p50_ms),
            y + 8.0,
            x(l.max_ms),
        );
        if let Some((p95, p99)) = limits {
            for (v, name) in [(p95, "p95 limit"), (p99, "p99 limit")] {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#c00\" stroke-dasharray=\"2,2\"><title>{name} {v} ms</title></line>",
                    x(*v),
                    y - 10.0,
                    y + 10.0
                );
            }
        }
    }
    let legend = [
        ("#4c78a8", "p50–p95"),
        ("#9ecae9", "p95–p99"),
        ("#111", "p50"),
        ("#e45756", "max"),
        ("#c00", "limits (p95, p99)"),
    ];
    let with_limits = rows.iter().any(|(_, _, lim)| lim.is_some());
    let shown = if with_limits {
        &legend[..]
    } else {
        &legend[..4]
    };
    for (i, (color, name)) in shown.iter().enumerate() {
        let lx = label_w + i as f64 * 120.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"17\">{name}</text>",
            lx + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A self-contained page.
pub fn html(r: &Report) -> String {
    let t = &r.thresholds.thresholds;
    let mut run = String::new();
    for (k, v) in [
        ("Date and time (UTC)", esc(&r.started)),
        ("sscard version", esc(&r.sscard_version)),
        ("Host", esc(&r.host)),
        (
            "Mode",
            match r.mode {
                Mode::Quick => "quick (sampled lengths, 50 latency samples per command)".into(),
                Mode::Full => "full (every short length, 300 latency samples per command)".into(),
            },
        ),
        (
            "Threshold profile",
            format!(
                "{} <small>({})</small><br><small>{}</small>",
                esc(&t.name),
                esc(&r.thresholds.source),
                esc(&t.description)
            ),
        ),
        ("Duration", format!("{:.1} s", r.seconds)),
    ] {
        let _ = writeln!(run, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    let mut reader = format!(
        "<tr><th>PC/SC name</th><td>{}</td></tr>\n",
        esc(&r.reader.name)
    );
    for p in &r.reader.properties {
        let _ = writeln!(
            reader,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(&p.label),
            reported(&p.value)
        );
    }
    let mut card = String::new();
    for c in std::iter::once(&r.card).chain(r.psam.as_ref()) {
        let _ = writeln!(
            card,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&c.reader),
            esc(&c.atr),
            c.protocol
                .as_deref()
                .map_or_else(|| "<span class=\"nr\">not reported</span>".to_string(), esc),
            if c.applications.is_empty() {
                "<span class=\"na\">no known application</span>".to_string()
            } else {
                esc(&c.applications.join(", "))
            }
        );
    }
    let mut rows = String::new();
    for (i, c) in r.checks.iter().enumerate() {
        let figure = match (&c.verdict, &c.reason) {
            (Verdict::Fail, Some(why)) if *why != c.figure => {
                format!("{}<br><strong>{}</strong>", esc(&c.figure), esc(why))
            }
            _ => esc(&c.figure),
        };
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td>{}<td>{figure}</td><td>{}</td><td>{:.3}</td></tr>",
            i + 1,
            esc(&c.name),
            esc(&c.id),
            esc(c.needs.describe()),
            esc(&c.threshold),
            verdict_cell(c.verdict),
            c.apdus,
            c.seconds
        );
    }
    let lat: Vec<LatencyRow<'_>> = r
        .checks
        .iter()
        .filter_map(|c| c.latency.as_ref().map(|l| (l.command.as_str(), l)))
        .map(|(name, l)| {
            let lim = t.latency_for(name);
            (name, l, Some((lim.p95_ms, lim.p99_ms)))
        })
        .collect();
    let s = &r.summary;
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sscard reader-test: {reader_name}</title>\n<style>{STYLE}</style></head>\n<body><h1>Reader qualification: {reader_name}</h1>\n<p>Verdict: {badge} · {p} passed · {f} failed · {n} not applicable · {total} checks</p>\n{meaning}<h2>Run</h2>\n<table>\n{run}</table>\n<h2>Reader</h2>\n<table>\n{reader}</table>\n<h2>Cards</h2>\n<table><tr><th>reader</th><th>ATR</th><th>protocol</th><th>holds</th></tr>\n{card}</table>\n<h2>Latency per command (log scale)</h2>\n{svg}\n<h2>Checks</h2>\n<table><tr><th>#</th><th>check</th><th>needs</th><th>threshold</th><th>verdict</th><th>figure / reason</th><th>APDUs</th><th>s</th></tr>\n{rows}</table>\n<p><small>sscard reader-test · schema {schema} · docs/reader-test.md</small></p>\n</body></html>\n",
        reader_name = esc(&r.reader.name),
        badge = badge(s.verdict),
        meaning = if s.verdict == Overall::Inconclusive {
            format!("<p class=\"na\">{}</p>\n", esc(s.verdict.meaning()))
        } else {
            String::new()
        },
        p = s.passed,
        f = s.failed,
        n = s.not_applicable,
        total = r.checks.len(),
        svg = latency_svg(&lat),
        schema = esc(&r.schema),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(min_ms: f64, max_ms: f64) -> Latency {
        Latency {
            command: "X".into(),
            samples: 1,
            min_ms,
            p50_ms: min_ms,
            p90_ms: max_ms,
            p95_ms: max_ms,
            p99_ms: max_ms,
            max_ms,
            apdus_per_s: 1.0,
        }
    }

    #[test]
    fn the_chart_of_any_figures_ends_on_its_bounded_axis() {
        // Figures as a report file read back by compare may carry them: the decades stop at
        // AXIS_MAX_MS, every mark stays on the plot.
        let l = latency(0.0005, 1.5e308);
        let svg = latency_svg(&[("X", &l, Some((f64::MAX, 1e300)))]);
        assert_eq!(svg.matches("text-anchor=\"middle\"").count(), 11, "{svg}");
        assert!(svg.contains(">10000000 ms</text>") && svg.contains(">0.001 ms</text>"));
        assert!(!svg.contains("inf") && !svg.contains("NaN"));
        let xs: Vec<f64> = svg
            .split("x1=\"")
            .skip(1)
            .map(|t| t[..t.find('"').unwrap()].parse().unwrap())
            .collect();
        assert!(xs.iter().all(|x| (250.0..=870.0).contains(x)), "{xs:?}");
    }
}
