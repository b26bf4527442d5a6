//! The report of a run, one model for every output: text, JSON (`docs/reader-test-schema.json`),
//! HTML, JUnit, and `compare`, which reads two JSON reports back.

use super::check::{Check, Verdict};
use super::identity::ReaderIdentity;
use super::thresholds::Profile;
use serde::{Deserialize, Serialize};
use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;
use std::time::SystemTime;

/// The `schema` value of this report format.
pub const SCHEMA: &str = "sscard-reader-test/1";

/// How thorough the run was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A sample of lengths, 50 latency samples per command.
    Quick,
    /// Every short length, 300 samples per command, delays up to 5 s.
    Full,
}

/// A card the run talked to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardInfo {
    pub reader: String,
    /// The ATR, hex.
    pub atr: String,
    /// `T=0`, `T=1`, or `None` when PC/SC did not say.
    pub protocol: Option<String>,
    /// What the card holds: `SSSE`, `loopback`, `PSAM`.
    pub applications: Vec<String>,
}

/// The verdict of the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overall {
    /// None failed, and at least one check that exercises a card passed.
    Pass,
    /// At least one check failed.
    Fail,
    /// None failed, and no check that exercises a card passed (every one not applicable): the
    /// reader's properties or unplugging alone qualify nothing.
    Inconclusive,
}

impl Overall {
    pub fn word(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Inconclusive => "INCONCLUSIVE",
        }
    }

    /// What the verdict means, in the words of a report.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Pass => "no check failed, and checks that exercise a card passed",
            Self::Fail => "at least one check failed",
            Self::Inconclusive => {
                "no check failed, but none that exercises a card could run: the reader's \
                 properties alone qualify nothing (use a card holding the SSSE or the loopback \
                 application)"
            }
        }
    }
}

/// An inconclusive run, as the error of the command that ran it: the card class of exit
/// (`sscard` exit 4) and the unified return code of a wrong card (-1), since what is missing is
/// a card that offers checks — distinct from a failed check (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("no check that exercises a card could run ({passed} reader check(s) passed, {not_applicable} not applicable): the run qualifies nothing; use a card holding the SSSE or the loopback application")]
pub struct Inconclusive {
    pub passed: usize,
    pub not_applicable: usize,
}

impl Classified for Inconclusive {
    fn return_code(&self) -> i32 {
        codes::WRONG_CARD
    }
    fn exit_class(&self) -> ExitClass {
        ExitClass::Card
    }
}

/// Counts and the overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub verdict: Overall,
    pub passed: usize,
    pub failed: usize,
    pub not_applicable: usize,
}

impl Summary {
    /// The summary of `checks`.
    pub fn of(checks: &[Check]) -> Self {
        let count = |v| checks.iter().filter(|c| c.verdict == v).count();
        let (passed, failed, not_applicable) = (
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::NotApplicable),
        );
        let card_passed = checks
            .iter()
            .any(|c| c.verdict == Verdict::Pass && c.needs.exercises_a_card());
        Self {
            verdict: if failed > 0 {
                Overall::Fail
            } else if card_passed {
                Overall::Pass
            } else {
                Overall::Inconclusive
            },
            passed,
            failed,
            not_applicable,
        }
    }
}

/// Everything a run found, and how it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// When the run started, UTC, RFC 3339.
    pub started: String,
    pub sscard_version: String,
    /// The host the reader is attached to.
    pub host: String,
    pub mode: Mode,
    pub thresholds: Profile,
    pub reader: ReaderIdentity,
    pub card: CardInfo,
    /// The PSAM, when a PSAM reader was given and holds a card.
    pub psam: Option<CardInfo>,
    pub checks: Vec<Check>,
    pub summary: Summary,
    pub seconds: f64,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.summary.verdict != Overall::Fail
    }

    /// The check `id`.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The human text of the report.
    pub fn text(&self) -> String {
        let mut t = format!(
            "reader-test {} · {} · sscard {} · host {} · {} mode · thresholds {} ({})\n",
            self.reader.name,
            self.started,
            self.sscard_version,
            self.host,
            match self.mode {
                Mode::Quick => "quick",
                Mode::Full => "full",
            },
            self.thresholds.thresholds.name,
            self.thresholds.source
        );
        for p in &self.reader.properties {
            t += &format!("  {:<56} {}\n", p.label, p.value.display());
        }
        t += &format!(
            "card ATR {} protocol {} holds {}\n",
            self.card.atr,
            self.card.protocol.as_deref().unwrap_or("not reported"),
            if self.card.applications.is_empty() {
                "no known application".to_string()
            } else {
                self.card.applications.join(", ")
            }
        );
        if let Some(p) = &self.psam {
            t += &format!("PSAM in {} ATR {}\n", p.reader, p.atr);
        }
        for c in &self.checks {
            t += &format!("{:<5} {:<60} {}\n", c.verdict.word(), c.name, c.figure);
            // A failure over a threshold: the figure alone does not say which limit.
            if let (Verdict::Fail, Some(why)) = (c.verdict, &c.reason) {
                if *why != c.figure {
                    t += &format!("      {why} (threshold: {})\n", c.threshold);
                }
            }
        }
        t += &format!(
            "{}: {} passed, {} failed, {} not applicable ({:.1} s)",
            self.summary.verdict.word(),
            self.summary.passed,
            self.summary.failed,
            self.summary.not_applicable,
            self.seconds
        );
        if self.summary.verdict == Overall::Inconclusive {
            t += &format!("\n{}", Overall::Inconclusive.meaning());
        }
        t
    }
}

/// `t` as RFC 3339 UTC (`2026-12-02T21:05:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(id: &str, verdict: Verdict) -> Check {
        Check {
            id: id.into(),
            name: id.into(),
            // A check that exercises a card (a reader-only one alone is inconclusive: the
            // in-process qualification tests).
            needs: super::super::check::Needs::Ssse,
            verdict,
            reason: None,
            figure: String::new(),
            threshold: String::new(),
            apdus: 0,
            seconds: 0.0,
            latency: None,
        }
    }

    #[test]
    fn not_applicable_is_never_a_pass() {
        let na = [
            check("a", Verdict::NotApplicable),
            check("b", Verdict::NotApplicable),
        ];
        assert_eq!(
            Summary::of(&na),
            Summary {
                verdict: Overall::Inconclusive,
                passed: 0,
                failed: 0,
                not_applicable: 2
            }
        );
        let mixed = [
            check("a", Verdict::Pass),
            check("b", Verdict::NotApplicable),
        ];
        assert_eq!(Summary::of(&mixed).verdict, Overall::Pass);
        let failed = [check("a", Verdict::Pass), check("b", Verdict::Fail)];
        assert_eq!(Summary::of(&failed).verdict, Overall::Fail);
    }

    #[test]
    fn the_text_says_which_limit_a_failure_broke() {
        let mut slow = check("latency.select-ssse", Verdict::Fail);
        slow.name = "latency SELECT".into();
        slow.figure = "p50 20.5 ms, p95 21.2 ms".into();
        slow.reason = Some("p95 21.200 ms over 10 ms".into());
        slow.threshold = "p95 ≤ 10 ms, p99 ≤ 15 ms".into();
        let mut broken = check("ssse.case1", Verdict::Fail);
        broken.figure = "INS 10: answered 6A86, 6D00 expected".into();
        broken.reason = Some(broken.figure.clone());
        let checks = vec![slow, broken];
        let r = Report {
            schema: SCHEMA.into(),
            started: rfc3339(SystemTime::UNIX_EPOCH),
            sscard_version: "0".into(),
            host: "h".into(),
            mode: Mode::Quick,
            thresholds: Profile::built_in(),
            reader: ReaderIdentity {
                name: "R".into(),
                properties: vec![],
            },
            card: CardInfo {
                reader: "R".into(),
                atr: "3B00".into(),
                protocol: None,
                applications: vec![],
            },
            psam: None,
            summary: Summary::of(&checks),
            checks,
            seconds: 0.0,
        };
        let text = r.text();
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "FAIL  latency SELECT                                               p50 20.5 ms, p95 21.2 ms",
                "      p95 21.200 ms over 10 ms (threshold: p95 ≤ 10 ms, p99 ≤ 15 ms)",
                "FAIL  ssse.case1                                                   INS 10: answered 6A86, 6D00 expected",
                "FAIL: 0 passed, 2 failed, 0 not applicable (0.0 s)",
            ]
        );
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let at = |s| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_796_245_262), "2026-12-02T21:01:02Z");
    }
}
