//! `sscard unified-test`: qualify a vendor library exposing the national unified interface
//! against model cards this process serves through vpcd (docs/unified-test.md).

use crate::exit::Reported;
use crate::output::Output;
use anyhow::{Context, Result};
use sscard_core::fsutil::write_private;
use sscard_unified_test::bench::BenchConfig;
use sscard_unified_test::terminal::TerminalError;
use sscard_unified_test::{html::html, qualify, Options, PinTerminal, TextEncoding};
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Encoding {
    Gbk,
    #[value(name = "utf-8")]
    Utf8,
}

const EXIT_CODES: &str = "Exit codes: 0 every case passed · 1 a case failed or could not run (the report names it) · 2 the library cannot be loaded, or no case id starts with --case · 3 a reader is missing · 4 a reader is busy (a card already in the served readers, or another reader holds a card with the SSSE application or a PSAM), or pcscd did not see a served card · 5 pcscd is not running · 6 other errors.";

#[derive(clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// The shared library under test (any vendor's, e.g. target/debug/libsscard_unified.so).
    #[arg(long, value_name = "PATH", required_unless_present = "list")]
    lib: Option<PathBuf>,
    /// Print the cases (id, title, what each checks) and exit; needs no library or reader.
    #[arg(long)]
    list: bool,
    /// The vpcd port of the card reader; the PSAM is served on the next port.
    #[arg(long, default_value_t = 35963)]
    port: u16,
    /// The reader pcscd names for --port.
    #[arg(long, default_value = "Virtual PCD 00 00")]
    card_reader: String,
    /// The reader pcscd names for --port + 1.
    #[arg(long, default_value = "Virtual PCD 00 01")]
    psam_reader: String,
    /// The library's text encoding (its configuration's; GBK unless configured otherwise).
    #[arg(long, value_enum, default_value = "gbk")]
    encoding: Encoding,
    /// The terminal device number the library is configured with (used when the reader
    /// reports no serial number).
    #[arg(long)]
    device_number: Option<String>,
    /// Run only the cases whose id starts with this (repeatable).
    #[arg(long = "case", value_name = "ID")]
    cases: Vec<String>,
    /// Write the JSON report to this file (the global --json prints it on stdout instead).
    #[arg(long = "json-file", value_name = "FILE")]
    json_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(out: &Output, a: Args) -> Result<()> {
    let Some(lib) = a.lib.filter(|_| !a.list) else {
        return list(out);
    };
    let options = Options {
        bench: BenchConfig {
            port: a.port,
            card_reader: a.card_reader,
            psam_reader: a.psam_reader,
        },
        encoding: match a.encoding {
            Encoding::Gbk => TextEncoding::Gbk,
            Encoding::Utf8 => TextEncoding::Utf8,
        },
        device_number: a.device_number,
        only: a.cases,
    };
    let terminal = pin_terminal()?;
    let report = qualify(&lib, &options, terminal.as_ref())?;
    let value = report.json();
    if let Some(p) = &a.json_file {
        write_private(p, (serde_json::to_string_pretty(&value)? + "\n").as_bytes())
            .with_context(|| format!("--json-file {}", p.display()))?;
    }
    if let Some(p) = &a.junit {
        write_private(p, report.junit().as_bytes())
            .with_context(|| format!("--junit {}", p.display()))?;
    }
    if let Some(p) = &a.html {
        write_private(p, html(&report).as_bytes())
            .with_context(|| format!("--html {}", p.display()))?;
    }
    out.result(value, || report.text());
    if !report.passed() {
        return Err(Reported(format!(
            "{} of {} unified-interface case(s) did not pass: {}",
            report.cases.len() - report.count(sscard_unified_test::Verdict::Pass),
            report.cases.len(),
            report.not_passed().join(", ")
        ))
        .into());
    }
    Ok(())
}

/// Marks the child this command re-runs itself as, in a session of its own.
const SESSION_CHILD: &str = "SSCARD_UNIFIED_TEST_SESSION";

/// The terminal PINs are typed on (libraries without a PIN pad ask on `/dev/tty`). Taking one
/// needs a session of its own; a process group leader (a command started from an interactive
/// shell) cannot start one, so the command runs again as a child that can, and exits with its
/// exit code.
fn pin_terminal() -> Result<Option<PinTerminal>> {
    match PinTerminal::attach() {
        Ok(t) => Ok(Some(t)),
        Err(TerminalError::Session(_)) if std::env::var_os(SESSION_CHILD).is_none() => {
            let status = std::process::Command::new(std::env::current_exe()?)
                .args(std::env::args_os().skip(1))
                .env(SESSION_CHILD, "1")
                .status()
                .context("running unified-test in a session of its own")?;
            std::process::exit(status.code().unwrap_or(6));
        }
        Err(e) => {
            eprintln!("sscard: warning: {e}; the cases that type a PIN on the terminal are errors");
            Ok(None)
        }
    }
}

fn list(out: &Output) -> Result<()> {
    let cases = sscard_unified_test::cases::all(&Default::default());
    let value = serde_json::json!(cases
        .iter()
        .map(|c| serde_json::json!({ "id": c.id, "title": c.title, "checks": c.checks }))
        .collect::<Vec<_>>());
    out.result(value, || {
        cases
            .iter()
            .map(|c| format!("{:<28} {}\n{:<28} checks: {}", c.id, c.title, "", c.checks))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
