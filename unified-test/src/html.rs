//! The HTML report: one self-contained page, a row per case (no web dependencies).

use crate::report::{Report, Verdict};
use sscard::qualify::html_escape as esc;
use std::fmt::Write;

/// The page for `--html FILE`.
pub fn html(r: &Report) -> String {
    let mut rows = String::new();
    for c in &r.cases {
        let class = c.verdict.word();
        let detail = if c.verdict == Verdict::Pass {
            String::new()
        } else {
            format!(
                "<div><b>call</b> {}</div><div><b>expected</b> <code>{}</code></div><div><b>got</b> <code>{}</code></div>",
                esc(&c.call),
                esc(&c.expected),
                esc(&c.got)
            )
        };
        let _ = writeln!(
            rows,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{class}</td><td>{}{detail}</td><td>{:.2}</td></tr>",
            esc(&c.id),
            esc(&c.title),
            esc(&c.checks),
            c.seconds
        );
    }
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    let missing = if r.missing.is_empty() {
        String::new()
    } else {
        format!("<p>Missing functions: {}</p>\n", esc(&r.missing.join(", ")))
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sscard unified-test: {lib}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}code{{white-space:pre-wrap;word-break:break-all}}.pass td:nth-child(3){{color:#080}}.fail td:nth-child(3),.error td:nth-child(3){{color:#c00;font-weight:bold}}</style></head>\n<body><h1>Unified interface qualification: {lib}</h1>\n<p>Verdict: <strong>{verdict}</strong> · {passed} of {total} cases passed · text {enc} · {secs:.1} s</p>\n{missing}<table><tr><th>case</th><th>title</th><th>verdict</th><th>checks</th><th>s</th></tr>\n{rows}</table>\n</body></html>\n",
        lib = esc(&r.library),
        passed = r.count(Verdict::Pass),
        total = r.cases.len(),
        enc = r.encoding.name(),
        secs = r.duration.as_secs_f64(),
    )
}
