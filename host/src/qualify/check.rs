//! One check of a qualification run: what it needs, what it measured, its threshold and its
//! verdict. A check that cannot run here is "not applicable" with the reason, never a pass.

use super::latency::Latency;
use serde::{Deserialize, Serialize};

/// What a check needs to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Needs {
    /// Any card in the reader.
    AnyCard,
    /// A card holding the social security application (SSSE).
    Ssse,
    /// A card holding the loopback test application (`sscard-model serve`).
    Loopback,
    /// A card connected with T=1.
    T1Card,
    /// A PSAM in a second reader (`--psam-reader`).
    Psam,
    /// A way to take the card out and put it back (`--interactive` or `--model-control`).
    Removal,
    /// A reader that can be unplugged and an operator (`--interactive`).
    Unplug,
}

impl Needs {
    /// Whether a check of this need exercises a card through the reader (APDUs to a card, its
    /// removal), rather than only the reader: its PC/SC properties (`reader.properties`, with
    /// any card) or its unplugging. A run in which no such check passed qualifies nothing.
    pub fn exercises_a_card(self) -> bool {
        !matches!(self, Self::AnyCard | Self::Unplug)
    }

    /// The words of a report.
    pub fn describe(self) -> &'static str {
        match self {
            Self::AnyCard => "any card",
            Self::Ssse => "a card with the SSSE application",
            Self::Loopback => "a card with the loopback test application",
            Self::T1Card => "a card connected with T=1",
            Self::Psam => "a PSAM (--psam-reader)",
            Self::Removal => "card removal (--interactive or --model-control)",
            Self::Unplug => "an unpluggable reader (--interactive)",
        }
    }
}

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    NotApplicable,
}

impl Verdict {
    /// `pass`, `FAIL`, `n/a`: the words of the text and HTML reports.
    pub fn word(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::NotApplicable => "n/a",
        }
    }
}

/// One check and what it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier (`ssse.read-record-le`): `compare` matches runs by it.
    pub id: String,
    pub name: String,
    pub needs: Needs,
    pub verdict: Verdict,
    /// Why it failed or could not run; `None` for a pass.
    pub reason: Option<String>,
    /// The measured figure ("91 bytes", "p95 0.21 ms", …); for a failure, what went wrong.
    pub figure: String,
    /// What "pass" meant, from the threshold profile or the card's specification.
    pub threshold: String,
    pub apdus: u64,
    pub seconds: f64,
    /// The latency figures of a latency check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// What a check's body found when it ran to the end.
#[derive(Debug)]
pub enum Finding {
    /// Passed, with the figure.
    Pass(String),
    /// Ran, but the figure is over the threshold.
    OverThreshold { figure: String, why: String },
    /// Could not run on this card or reader, with the reason.
    NotApplicable(String),
}
