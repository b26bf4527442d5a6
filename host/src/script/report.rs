//! Reports shared by the conformance runner and reader qualification: a summary line, JUnit
//! XML and JSON.

use super::run::{FileResult, Outcome};
use serde_json::json;
use std::fmt::Write;

/// (passed, failed, skipped) over all files.
pub fn counts(files: &[FileResult]) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for case in files.iter().flat_map(|f| &f.cases) {
        match case.outcome {
            Outcome::Passed => c.0 += 1,
            Outcome::Failed(_) => c.1 += 1,
            Outcome::Skipped(_) => c.2 += 1,
        }
    }
    c
}

fn xml(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => " ".into(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML (the Ant/Jenkins schema: testsuites › testsuite › testcase › failure|skipped).
pub fn junit(files: &[FileResult], suite_name: &str) -> String {
    let (p, f, s) = counts(files);
    let total: f64 = files.iter().map(|x| x.duration.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\" time=\"{total:.3}\">", xml(suite_name), p + f + s);
    for file in files {
        let (fp, ff, fs) = counts(std::slice::from_ref(file));
        let alg = file.algorithm.map(|a| a.name()).unwrap_or("unknown");
        let _ = writeln!(
            out,
            "  <testsuite name=\"{} ({alg})\" tests=\"{}\" failures=\"{ff}\" errors=\"0\" skipped=\"{fs}\" time=\"{:.3}\">",
            xml(&file.path),
            fp + ff + fs,
            file.duration.as_secs_f64()
        );
        for c in &file.cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.4}\"",
                xml(&file.path),
                xml(&c.name),
                c.duration.as_secs_f64()
            );
            match &c.outcome {
                Outcome::Passed => out.push_str("/>\n"),
                Outcome::Failed(m) => {
                    let _ = write!(out, ">\n      <failure message=\"{}\" type=\"assertion\">{}</failure>\n    </testcase>\n", xml(m), xml(m));
                }
                Outcome::Skipped(m) => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml(m)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The same results as JSON.
pub fn json_report(files: &[FileResult]) -> serde_json::Value {
    let (p, f, s) = counts(files);
    json!({
        "passed": p, "failed": f, "skipped": s,
        "files": files.iter().map(|file| json!({
            "path": file.path,
            "algorithm": file.algorithm.map(|a| a.name()),
            "seconds": file.duration.as_secs_f64(),
            "cases": file.cases.iter().map(|c| json!({
                "name": c.name, "line": c.line, "apdus": c.apdus, "seconds": c.duration.as_secs_f64(),
                "outcome": match &c.outcome { Outcome::Passed => "passed", Outcome::Failed(_) => "failed", Outcome::Skipped(_) => "skipped" },
                "message": match &c.outcome { Outcome::Passed => None, Outcome::Failed(m) | Outcome::Skipped(m) => Some(m) },
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
