//! Reader qualification against the loopback test application: ISO cases 1–4 at every short
//! length, the longest extended APDU, T=0 61xx/6Cxx handling, latency percentiles, delayed
//! answers, card removal. Each check passes or fails with its measured figure.

mod checks;
mod html;

pub use checks::{run, CallbackError, Check, CheckFailure, Options, Reconnect, Removal};
pub use html::{esc as html_escape, html};

use crate::script::run::{CaseResult, FileResult, Outcome};
use std::time::Duration;

/// Latency figures of one APDU size.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Latency {
    pub bytes: usize,
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub apdus_per_s: f64,
}

/// What `run` measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub reader: String,
    pub checks: Vec<Check>,
    pub latency: Vec<Latency>,
    pub duration: Duration,
}

impl Report {
    /// The same shape as a conformance run, for the shared JUnit/JSON writers.
    pub fn as_file_result(&self) -> FileResult {
        FileResult {
            path: format!("reader-test {}", self.reader),
            algorithm: None,
            cases: self
                .checks
                .iter()
                .map(|c| CaseResult {
                    name: c.name.clone(),
                    file: self.reader.clone(),
                    line: 0,
                    outcome: c.outcome.clone(),
                    apdus: c.apdus,
                    duration: c.duration,
                })
                .collect(),
            duration: self.duration,
        }
    }

    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed(_)))
    }
}

/// Percentile of sorted samples (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1000.0
}
