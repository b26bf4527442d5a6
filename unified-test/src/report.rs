//! The qualification report: one verdict per case with the deciding call, expected and got;
//! rendered as text, JSON and (through the conformance runner's writer) JUnit XML.

use crate::loader::TextEncoding;
use serde_json::json;
use sscard::script::run::{CaseResult, FileResult, Outcome};
use std::time::Duration;

/// A case's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The library answered, wrongly.
    Fail,
    /// The case could not be run: a missing function, a scene the bench could not set.
    Error,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
        }
    }
}

/// One case's result. PINs never appear: calls show them as `*`.
#[derive(Clone, Debug)]
pub struct CaseReport {
    pub id: String,
    pub title: String,
    pub checks: String,
    pub verdict: Verdict,
    /// The call that decided the verdict (the last one when the case passed).
    pub call: String,
    pub expected: String,
    pub got: String,
    pub seconds: f64,
}

/// A whole qualification.
#[derive(Clone, Debug)]
pub struct Report {
    pub library: String,
    pub encoding: TextEncoding,
    /// Functions of section 10 the library does not export.
    pub missing: Vec<&'static str>,
    /// The terminal device number the lines were expected with.
    pub device_number: String,
    pub cases: Vec<CaseReport>,
    pub duration: Duration,
}

impl Report {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }

    pub fn passed(&self) -> bool {
        self.count(Verdict::Pass) == self.cases.len()
    }

    /// The ids of the cases that did not pass, in report order.
    pub fn not_passed(&self) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| c.verdict != Verdict::Pass)
            .map(|c| c.id.as_str())
            .collect()
    }

    /// The JSON report (`--json FILE`).
    pub fn json(&self) -> serde_json::Value {
        json!({
            "library": self.library,
            "encoding": self.encoding.name(),
            "missing_functions": self.missing,
            "device_number": self.device_number,
            "total": self.cases.len(),
            "passed": self.count(Verdict::Pass),
            "failed": self.count(Verdict::Fail),
            "errors": self.count(Verdict::Error),
            "failing": self.not_passed(),
            "seconds": self.duration.as_secs_f64(),
            "cases": self.cases.iter().map(|c| json!({
                "id": c.id, "title": c.title, "checks": c.checks, "verdict": c.verdict.word(),
                "call": c.call, "expected": c.expected, "got": c.got, "seconds": c.seconds,
            })).collect::<Vec<_>>(),
        })
    }

    /// The shape the conformance runner's JUnit writer takes: one suite, a test case per case.
    pub fn as_file_result(&self) -> FileResult {
        FileResult {
            path: format!("unified-test {}", self.library),
            algorithm: None,
            cases: self
                .cases
                .iter()
                .map(|c| CaseResult {
                    name: format!("{}: {}", c.id, c.title),
                    file: self.library.clone(),
                    line: 0,
                    outcome: match c.verdict {
                        Verdict::Pass => Outcome::Passed,
                        Verdict::Fail => Outcome::Failed(format!(
                            "{}: expected {}, got {}",
                            c.call, c.expected, c.got
                        )),
                        Verdict::Error => {
                            Outcome::Failed(format!("error in {}: {}", c.call, c.got))
                        }
                    },
                    apdus: 0,
                    duration: Duration::from_secs_f64(c.seconds),
                })
                .collect(),
            duration: self.duration,
        }
    }

    /// JUnit XML (`--junit FILE`).
    pub fn junit(&self) -> String {
        sscard::script::report::junit(
            std::slice::from_ref(&self.as_file_result()),
            "sscard unified-test",
        )
    }

    /// The text summary: cases passed / total, then each case that did not pass with its
    /// call, expected and got.
    pub fn text(&self) -> String {
        let mut t = format!("unified-test {} ({})\n", self.library, self.encoding.name());
        if !self.missing.is_empty() {
            t += &format!("missing functions: {}\n", self.missing.join(", "));
        }
        for c in &self.cases {
            t += &format!("{:<5} {:<28} {}\n", c.verdict.word(), c.id, c.title);
            if c.verdict != Verdict::Pass {
                t += &format!("      call     {}\n", c.call);
                if !c.expected.is_empty() {
                    t += &format!("      expected {}\n", c.expected);
                }
                t += &format!("      got      {}\n", c.got);
            }
        }
        t + &format!(
            "{} of {} cases passed ({} failed, {} errors, {:.1} s)",
            self.count(Verdict::Pass),
            self.cases.len(),
            self.count(Verdict::Fail),
            self.count(Verdict::Error),
            self.duration.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let case = |id: &str, verdict| CaseReport {
            id: id.into(),
            title: "t".into(),
            checks: "c".into(),
            verdict,
            call: "iReadCardBas(1)".into(),
            expected: "code 0, \"a|\"".into(),
            got: "code 0, \"b|\"".into(),
            seconds: 0.5,
        };
        Report {
            library: "lib.so".into(),
            encoding: TextEncoding::Gbk,
            missing: vec![],
            device_number: String::new(),
            cases: vec![
                case("a", Verdict::Pass),
                case("b", Verdict::Fail),
                case("c", Verdict::Error),
            ],
            duration: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_json_counts_and_names_the_failing_cases() {
        let v = report().json();
        assert_eq!(v["total"], 3);
        assert_eq!(v["passed"], 1);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["failing"], json!(["b", "c"]));
        assert_eq!(v["cases"][1]["verdict"], "fail");
    }

    #[test]
    fn the_text_names_each_failing_case_with_expected_and_got() {
        let t = report().text();
        assert!(
            t.ends_with("1 of 3 cases passed (1 failed, 1 errors, 1.0 s)"),
            "{t}"
        );
        assert!(t.contains("fail  b "));
        assert!(t.contains("      expected code 0, \"a|\"\n      got      code 0, \"b|\"\n"));
    }

    #[test]
    fn junit_has_a_failure_per_case_not_passed() {
        let x = report().junit();
        assert_eq!(x.matches("<failure ").count(), 2);
        assert!(x.contains("tests=\"3\" failures=\"2\""));
    }
}
