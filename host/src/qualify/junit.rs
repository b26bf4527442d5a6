//! The JUnit XML of a run (`docs/junit.xsd`): one test case per check, a failure with its
//! reason, "not applicable" as skipped with its reason, the threshold and figure as the case's
//! output, and the reader's identity and threshold profile as the suite's. An inconclusive run
//! (no check that exercises a card passed) adds a test case `reader-test.summary` in error, so
//! that a CI server does not show a run of skipped cases green.

use super::check::Verdict;
use super::report::{Overall, Report};
use std::fmt::Write;

/// `text` as XML character data or attribute value: escaped as for HTML, and without the
/// control characters XML 1.0 forbids (a reader name or attribute may carry them).
fn xml(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect();
    super::html::esc(&allowed)
}

/// The JUnit XML of `r`.
pub fn junit(r: &Report) -> String {
    let s = &r.summary;
    let errors = usize::from(s.verdict == Overall::Inconclusive);
    let total = s.passed + s.failed + s.not_applicable + errors;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"sscard reader-test\" tests=\"{total}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\" time=\"{:.3}\">",
        s.failed, s.not_applicable, r.seconds
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\" hostname=\"{}\">",
        xml(&r.reader.name),
        s.failed,
        s.not_applicable,
        r.seconds,
        xml(&r.started),
        xml(&r.host)
    );
    for c in &r.checks {
        let _ = writeln!(
            out,
            "    <testcase classname=\"reader-test.{}\" name=\"{}\" time=\"{:.4}\">",
            xml(&c.id),
            xml(&c.name),
            c.seconds
        );
        let reason = c.reason.as_deref().unwrap_or("");
        match c.verdict {
            Verdict::Pass => {}
            Verdict::Fail => {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"threshold\">{}</failure>",
                    xml(reason),
                    xml(&c.figure)
                );
            }
            Verdict::NotApplicable => {
                let _ = writeln!(
                    out,
                    "      <skipped message=\"not applicable: {}\"/>",
                    xml(reason)
                );
            }
        }
        let _ = writeln!(
            out,
            "      <system-out>needs: {}; threshold: {}; figure: {}; APDUs: {}</system-out>\n    </testcase>",
            xml(c.needs.describe()),
            xml(&c.threshold),
            xml(&c.figure),
            c.apdus
        );
    }
    if errors > 0 {
        let _ = writeln!(
            out,
            "    <testcase classname=\"reader-test.summary\" name=\"summary verdict\" time=\"0\">\n      <error message=\"inconclusive: {}\" type=\"inconclusive\"/>\n    </testcase>",
            xml(s.verdict.meaning())
        );
    }
    let mut about = format!(
        "sscard {} on {}; mode {:?}; thresholds {} ({}); card ATR {}; verdict {}\n",
        r.sscard_version,
        r.host,
        r.mode,
        r.thresholds.thresholds.name,
        r.thresholds.source,
        r.card.atr,
        r.summary.verdict.word()
    );
    for p in &r.reader.properties {
        about += &format!("{}: {}\n", p.label, p.value.display());
    }
    let _ = writeln!(
        out,
        "    <system-out>{}</system-out>\n  </testsuite>\n</testsuites>",
        xml(&about)
    );
    out
}
