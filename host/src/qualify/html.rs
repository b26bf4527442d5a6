//! The HTML report: a table of checks and an inline SVG latency plot (no web dependencies).

use super::Report;
use crate::script::run::Outcome;
use std::fmt::Write;

/// `s` as HTML text or attribute value (`&`, `<`, `>`, `"` escaped): for every HTML report.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained page.
pub fn html(r: &Report) -> String {
    let mut rows = String::new();
    for c in &r.checks {
        let (class, word) = match c.outcome {
            Outcome::Passed => ("pass", "pass"),
            Outcome::Failed(_) => ("fail", "FAIL"),
            Outcome::Skipped(_) => ("skip", "skipped"),
        };
        let _ = writeln!(
            rows,
            "<tr class=\"{class}\"><td>{}</td><td>{word}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.figure),
            c.apdus
        );
    }
    // Latency plot: one group of bars (p50, p95, p99, max) per APDU size.
    let (w, h, pad) = (640.0, 300.0, 40.0);
    let max = r.latency.iter().map(|l| l.max_ms).fold(0.001, f64::max);
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"latency per APDU size\">\n<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"#333\"/>\n", h - pad, w - 10.0, h - pad, h - pad);
    let _ = writeln!(svg, "<text x=\"4\" y=\"{}\" font-size=\"11\">{max:.2} ms</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text>", pad + 4.0, h - pad);
    let groups = r.latency.len().max(1) as f64;
    let gw = (w - pad - 20.0) / groups;
    let colors = ["#4c78a8", "#f58518", "#e45756", "#72b7b2"];
    for (i, l) in r.latency.iter().enumerate() {
        let x0 = pad + 10.0 + i as f64 * gw;
        for (j, v) in [l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms].iter().enumerate() {
            let bh = (v / max) * (h - 2.0 * pad);
            let _ = writeln!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} bytes {}: {v:.3} ms</title></rect>",
                x0 + j as f64 * gw / 5.0,
                h - pad - bh,
                gw / 5.0 - 2.0,
                colors[j],
                l.bytes,
                ["p50", "p95", "p99", "max"][j]
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{} B</text>",
            x0,
            h - pad + 14.0,
            l.bytes
        );
    }
    for (j, name) in ["p50", "p95", "p99", "max"].iter().enumerate() {
        let _ = writeln!(svg, "<rect x=\"{}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"17\" font-size=\"11\">{name}</text>", w - 220.0 + j as f64 * 52.0, colors[j], w - 206.0 + j as f64 * 52.0);
    }
    svg.push_str("</svg>");
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sscard reader-test: {reader}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.pass td:nth-child(2){{color:#080}}.fail td:nth-child(2){{color:#c00;font-weight:bold}}.skip td:nth-child(2){{color:#888}}</style></head>\n<body><h1>Reader qualification: {reader}</h1>\n<p>Verdict: <strong>{verdict}</strong> · {n} checks · {secs:.1} s</p>\n<h2>Latency per APDU size</h2>\n{svg}\n<h2>Checks</h2>\n<table><tr><th>check</th><th>result</th><th>figure</th><th>APDUs</th></tr>\n{rows}</table>\n</body></html>\n",
        reader = esc(&r.reader),
        n = r.checks.len(),
        secs = r.duration.as_secs_f64(),
    )
}
