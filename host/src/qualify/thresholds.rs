//! The threshold profile of a run: what "pass" means for each measured check, from a TOML file
//! (`--thresholds FILE`) or the built-in profile for social security terminals
//! (`docs/reader-test-thresholds.toml` is that profile, documented).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The built-in profile, as a file a lab can copy and edit.
pub const BUILT_IN: &str = include_str!("../../../docs/reader-test-thresholds.toml");

/// The commands whose latency reader-test measures: the names a `[command."NAME"]` table may
/// give (any other is a misspelling that would pass silently, and is refused).
pub const COMMANDS: &[&str] = &[
    "SELECT",
    "READ RECORD",
    "GET CHALLENGE",
    "INTERNAL AUTHENTICATE",
    "READ BINARY",
    "DES CRYPT + GET RESPONSE",
    "NOOP",
    "ECHO 16 bytes",
    "ECHO 64 bytes",
    "ECHO 128 bytes",
    "ECHO 255 bytes",
];

/// A threshold profile is a few hundred bytes; a file larger than this is something else.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The longest time limit a profile may set (ms): ten minutes, far past any reader's APDU.
pub const MAX_MS: f64 = 600_000.0;

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
    #[error("cannot read the threshold profile {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("threshold profile {} is over {MAX_FILE_BYTES} bytes: not a threshold profile", path.display())]
    TooLarge { path: PathBuf },
    /// The TOML parser's message, without its quote of the line (a file of one huge line would
    /// otherwise come back whole).
    #[error("threshold profile {}, line {line}, column {column}: {message} (docs/reader-test.md lists the keys)", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("threshold profile {}: {what} must be above 0 and at most {max}", path.display())]
    OutOfRange {
        path: PathBuf,
        what: String,
        max: f64,
    },
    #[error("threshold profile {}: [command.{name:?}] is no command reader-test measures; the commands are {}", path.display(), COMMANDS.join(", "))]
    UnknownCommand { path: PathBuf, name: String },
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
        let read = |source| ThresholdsError::Read {
            path: path.into(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
            .map_err(read)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(ThresholdsError::TooLarge { path: path.into() });
        }
        Ok(Self {
            source: path.display().to_string(),
            thresholds: parse(&text, path)?,
        })
    }
}

/// Line and column (from 1) of byte `at` of `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, column)
}

fn parse(text: &str, path: &Path) -> Result<Thresholds, ThresholdsError> {
    let t: Thresholds = toml::from_str(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        ThresholdsError::Parse {
            path: path.into(),
            line,
            column,
            message: super::failure::clip(e.message()),
        }
    })?;
    let out_of_range = |what: String, max: f64| ThresholdsError::OutOfRange {
        path: path.into(),
        what,
        max,
    };
    if let Some(name) = t.command.keys().find(|k| !COMMANDS.contains(&k.as_str())) {
        return Err(ThresholdsError::UnknownCommand {
            path: path.into(),
            name: super::failure::clip(name),
        });
    }
    let limits = std::iter::once(("latency".to_string(), t.latency)).chain(
        t.command
            .iter()
            .map(|(k, v)| (format!("command.{k:?}"), *v)),
    );
    // Above zero (a zero limit fails every run) and below MAX_MS (NaN, infinity and 1e308 are
    // no limits a lab means).
    for (what, l) in limits {
        for (name, v) in [("p95_ms", l.p95_ms), ("p99_ms", l.p99_ms)] {
            if !(v > 0.0 && v <= MAX_MS) {
                return Err(out_of_range(format!("{what}.{name}"), MAX_MS));
            }
        }
    }
    for (what, v) in [
        ("removal_seen_within_ms", t.removal_seen_within_ms),
        ("reinsertion_within_ms", t.reinsertion_within_ms),
    ] {
        if v == 0 || v as f64 > MAX_MS {
            return Err(out_of_range(what.into(), MAX_MS));
        }
    }
    if !(1..=super::loopback::MAX_ECHO).contains(&t.min_extended_bytes) {
        return Err(out_of_range(
            "min_extended_bytes".into(),
            super::loopback::MAX_ECHO as f64,
        ));
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
            matches!(
                e,
                ThresholdsError::Parse {
                    line: 10,
                    column: 1,
                    ..
                }
            ) && e.to_string().starts_with(
                "threshold profile t.toml, line 10, column 1: unknown field `min_extendd_bytes`"
            ),
            "{e}"
        );
        let zero = BUILT_IN.replacen("p95_ms = 100.0", "p95_ms = 0.0", 1);
        let e = parse(&zero, Path::new("t.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "threshold profile t.toml: latency.p95_ms must be above 0 and at most 600000"
        );
    }

    fn refused(from: &str, to: &str) -> String {
        let text = BUILT_IN.replacen(from, to, 1);
        assert_ne!(text, BUILT_IN, "{from} is not in the built-in profile");
        parse(&text, Path::new("t.toml")).unwrap_err().to_string()
    }

    #[test]
    fn limits_that_are_no_limits_are_refused() {
        let p95 = "threshold profile t.toml: latency.p95_ms must be above 0 and at most 600000";
        for v in ["-5.0", "nan", "inf", "-inf", "1e308", "600000.5"] {
            assert_eq!(
                refused("p95_ms = 100.0", &format!("p95_ms = {v}")),
                p95,
                "{v}"
            );
        }
        assert_eq!(
            refused(
                "removal_seen_within_ms = 1000",
                "removal_seen_within_ms = 0"
            ),
            "threshold profile t.toml: removal_seen_within_ms must be above 0 and at most 600000"
        );
        assert_eq!(
            refused(
                "reinsertion_within_ms = 5000",
                "reinsertion_within_ms = 4000000000"
            ),
            "threshold profile t.toml: reinsertion_within_ms must be above 0 and at most 600000"
        );
        assert_eq!(
            refused("min_extended_bytes = 256", "min_extended_bytes = 0"),
            "threshold profile t.toml: min_extended_bytes must be above 0 and at most 65526"
        );
        assert_eq!(
            refused("min_extended_bytes = 256", "min_extended_bytes = 65527"),
            "threshold profile t.toml: min_extended_bytes must be above 0 and at most 65526"
        );
        assert_eq!(
            refused("removal_seen_within_ms = 1000", "removal_seen_within_ms = -1"),
            "threshold profile t.toml, line 14, column 26: invalid value: integer `-1`, expected u64 (docs/reader-test.md lists the keys)"
        );
    }

    #[test]
    fn a_misspelt_command_is_refused_not_ignored() {
        let e = refused(
            "[command.\"INTERNAL AUTHENTICATE\"]",
            "[command.\"INTERNAL AUTHENTICATION\"]",
        );
        assert!(
            e.starts_with(
                "threshold profile t.toml: [command.\"INTERNAL AUTHENTICATION\"] is no command reader-test measures; the commands are SELECT, READ RECORD,"
            ),
            "{e}"
        );
        let head = "name = \"lab\"\nmin_extended_bytes = 256\nremoval_seen_within_ms = 1\nreinsertion_within_ms = 1\n[latency]\np95_ms = 1.0\np99_ms = 2.0\n";
        for c in COMMANDS {
            let text = format!("{head}[command.{c:?}]\np95_ms = 1.0\np99_ms = 2.0\n");
            assert!(parse(&text, Path::new("t.toml")).is_ok(), "{c}");
        }
    }

    #[test]
    fn a_huge_file_is_refused_unread_and_a_long_line_is_not_quoted() {
        let dir = std::env::temp_dir().join(format!("sscard-thr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.toml");
        std::fs::write(&big, "a".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
        let e = Profile::load(&big).unwrap_err();
        assert!(matches!(e, ThresholdsError::TooLarge { .. }), "{e}");
        let long = dir.join("long.toml");
        std::fs::write(&long, "a".repeat(60_000)).unwrap();
        let e = Profile::load(&long).unwrap_err().to_string();
        assert!(e.len() < 400, "{} bytes: {}", e.len(), &e[..400]);
        assert!(
            e.ends_with(
                "line 1, column 60001: key with no value, expected `=` (docs/reader-test.md lists the keys)"
            ),
            "{e}"
        );
        let e = Profile::load(&dir.join("none.toml")).unwrap_err();
        assert!(
            matches!(&e, ThresholdsError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
