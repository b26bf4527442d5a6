//! The threshold profile of a run: what "pass" means for each measured check, from a TOML file
//! (`--thresholds FILE`) or the built-in profile for social security terminals
//! (`docs/reader-test-thresholds.toml` is that profile, documented).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in profile, as a file a lab can copy and edit.
pub const BUILT_IN: &str = include_str!("../../../docs/reader-test-thresholds.toml");

/// Latency limits of one command, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyLimits {
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// What "pass" means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// The profile's name, printed in every report.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Latency limits of every command without its own entry in `command`.
    pub latency: LatencyLimits,
    /// Latency limits by command (`"INTERNAL AUTHENTICATE"`, `"DES CRYPT"`, `"ECHO 255 bytes"`).
    #[serde(default)]
    pub command: BTreeMap<String, LatencyLimits>,
    /// The smallest "largest extended ECHO" that passes (loopback application only).
    pub min_extended_bytes: usize,
    /// A removed card must be reported within this time.
    pub removal_seen_within_ms: u64,
    /// A reinserted card must answer within this time.
    pub reinsertion_within_ms: u64,
}

impl Thresholds {
    /// The limits for `command`.
    pub fn latency_for(&self, command: &str) -> LatencyLimits {
        self.command.get(command).copied().unwrap_or(self.latency)
    }
}

/// A threshold file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdsError {
    #[error("cannot read the threshold profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("threshold profile {}: {source} (docs/reader-test.md lists the keys)", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("threshold profile {}: {what} must be a positive number", path.display())]
    NotPositive { path: PathBuf, what: String },
}

impl sscard_core::classify::Classified for ThresholdsError {
    fn return_code(&self) -> i32 {
        sscard_core::profile::codes::INVALID_DATA
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        sscard_core::classify::ExitClass::BadInput
    }
}

/// The thresholds of a run and where they came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// `built-in` or the file's path.
    pub source: String,
    pub thresholds: Thresholds,
}

impl Profile {
    /// The built-in profile for social security terminals.
    pub fn built_in() -> Self {
        Self {
            source: "built-in".into(),
            thresholds: parse(BUILT_IN, Path::new("built-in"))
                .expect("the built-in profile parses"),
        }
    }

    /// The profile in `path`.
    pub fn load(path: &Path) -> Result<Self, ThresholdsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ThresholdsError::Read {
            path: path.into(),
            source,
        })?;
        Ok(Self {
            source: path.display().to_string(),
            thresholds: parse(&text, path)?,
        })
    }
}

fn parse(text: &str, path: &Path) -> Result<Thresholds, ThresholdsError> {
    let t: Thresholds = toml::from_str(text).map_err(|source| ThresholdsError::Parse {
        path: path.into(),
        source,
    })?;
    let limits = std::iter::once(("latency".to_string(), t.latency)).chain(
        t.command
            .iter()
            .map(|(k, v)| (format!("command.{k:?}"), *v)),
    );
    for (what, l) in limits {
        for (name, v) in [("p95_ms", l.p95_ms), ("p99_ms", l.p99_ms)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ThresholdsError::NotPositive {
                    path: path.into(),
                    what: format!("{what}.{name}"),
                });
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_profile_is_the_documented_one() {
        let p = Profile::built_in();
        assert_eq!(p.thresholds.name, "social-security-terminal");
        assert_eq!(
            p.thresholds.latency,
            LatencyLimits {
                p95_ms: 100.0,
                p99_ms: 250.0
            }
        );
        assert_eq!(
            p.thresholds.latency_for("INTERNAL AUTHENTICATE"),
            LatencyLimits {
                p95_ms: 200.0,
                p99_ms: 400.0
            }
        );
        assert_eq!(
            p.thresholds.latency_for("READ RECORD"),
            p.thresholds.latency
        );
        assert_eq!(p.thresholds.min_extended_bytes, 256);
        assert_eq!(p.thresholds.removal_seen_within_ms, 1000);
        assert_eq!(p.thresholds.reinsertion_within_ms, 5000);
    }

    #[test]
    fn an_unknown_key_or_a_zero_limit_is_refused() {
        let bad = BUILT_IN.replace("min_extended_bytes", "min_extendd_bytes");
        let e = parse(&bad, Path::new("t.toml")).unwrap_err();
        assert!(
            matches!(e, ThresholdsError::Parse { .. })
                && e.to_string().contains("min_extendd_bytes"),
            "{e}"
        );
        let zero = BUILT_IN.replacen("p95_ms = 100.0", "p95_ms = 0.0", 1);
        let e = parse(&zero, Path::new("t.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "threshold profile t.toml: latency.p95_ms must be a positive number"
        );
    }
}
