//! `sscard reader-test`: qualify a reader with any card (the social security application, the
//! loopback test application, a PSAM), and `reader-test compare A.json B.json`.

use crate::connect::TraceOpts;
use crate::exit::{BadInput, Reported};
use crate::output::Output;
use anyhow::{Context, Result};
use sscard::qualify::{
    self, compare, thresholds::Profile, CallbackError, CardWatch, Mover, Options, PsamSlot,
    Removal, Unplug,
};
use sscard_core::fsutil::write_private;
use sscard_transport::pcsc::{
    establish, list_readers, resolve_reader, wait_for_card_state, CardChange, PcscBackend,
    ReaderWatch,
};
use sscard_transport::{Connection, TransportError};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The arguments of `reader-test` (docs/reader-test.md).
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Exit status: 0 when no check failed and one that exercises a card passed (verdict pass; some may be not applicable); 1 when one failed (fail); 2 bad arguments, threshold or report file; 3 reader; 4 card, including a card on which no check that exercises it could run, only the reader's own (inconclusive); 5 pcscd. docs/reader-test.md lists the checks."
)]
pub struct Args {
    #[command(subcommand)]
    compare: Option<Sub>,
    /// The reader under test (index, name or unique part of it).
    #[arg(long, short, required = true)]
    reader: Option<String>,
    /// The reader holding the PSAM (the terminal's SAM slot); without it the PSAM checks are
    /// not applicable.
    #[arg(long)]
    psam_reader: Option<String>,
    /// A few lengths of each case, 50 samples per latency command (default).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Every short length, 300 samples per latency command, delays up to 5 s.
    #[arg(long)]
    full: bool,
    /// Threshold profile (TOML, docs/reader-test-thresholds.toml); default: the built-in
    /// profile for social security terminals.
    #[arg(long)]
    thresholds: Option<PathBuf>,
    /// Write the JSON report (docs/reader-test-schema.json) to this file (the global --json
    /// prints it on stdout instead).
    #[arg(long = "json-file")]
    json_file: Option<PathBuf>,
    /// Write the HTML report (self-contained: inline CSS and SVG).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the JUnit XML report (docs/junit.xsd).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Ask the operator to remove and reinsert the card, and to unplug the reader (real
    /// readers).
    #[arg(long, conflicts_with = "model_control")]
    interactive: bool,
    /// The control socket of the sscard-model serving this reader (virtual readers).
    #[arg(long)]
    model_control: Option<PathBuf>,
    /// The model's reader slot behind --model-control.
    #[arg(long, default_value_t = 0)]
    model_slot: usize,
    #[command(flatten)]
    trace: TraceOpts,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Two JSON reports side by side (two readers, two firmware versions, two settings).
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// Also write the comparison as an HTML page.
        #[arg(long)]
        html: Option<PathBuf>,
    },
}

/// The model's control socket refused a command.
#[derive(Debug, thiserror::Error)]
#[error("the model's control socket answered {0:?}")]
struct ControlRefused(String);

fn control(path: &PathBuf, line: &str) -> Result<(), CallbackError> {
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // A model that does not answer fails the check instead of hanging the run; its answer is
    // one short line ("ok" or a refusal).
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(s, "{line}")?;
    let mut answer = String::new();
    BufReader::new(s).take(1024).read_line(&mut answer)?;
    match answer.trim() {
        "ok" => Ok(()),
        other => Err(ControlRefused(other.to_string()).into()),
    }
}

/// How long the removal check waits for pcscd to report the card gone, or back, once it was
/// taken out or put in (by the model at once; by an operator before pressing Enter): pcscd
/// polls a reader every 400 ms, a loaded machine may take a few polls.
const CARD_WAIT: Duration = Duration::from_secs(10);

/// The removal check's view of the reader through PC/SC: pcscd's event count and state.
struct PcscWatch(ReaderWatch);

impl CardWatch for PcscWatch {
    fn mark(&mut self) -> Result<(), TransportError> {
        self.0.mark().map(drop)
    }

    fn wait(&mut self, present: bool) -> Result<(), TransportError> {
        let change = if present {
            CardChange::Inserted
        } else {
            CardChange::Removed
        };
        self.0.wait(change, CARD_WAIT).map(drop)
    }
}

/// The host's name (the kernel's), for the report.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

pub fn run(out: &Output, a: Args) -> Result<()> {
    if let Some(Sub::Compare { a: fa, b: fb, html }) = a.compare {
        return run_compare(out, &fa, &fb, html.as_ref());
    }
    let wanted = a.reader.clone().context("--reader is required")?;
    check_paths(&a)?;
    let profile = match &a.thresholds {
        Some(p) => Profile::load(p)?,
        None => Profile::built_in(),
    };
    let trace = a.trace.open()?;
    let ctx = establish()?;
    let readers = list_readers(&ctx)?;
    let name = resolve_reader(&readers, &wanted)?;
    let mut conn =
        Connection::new(PcscBackend::connect_named(&ctx, &name, false)?).traced(&trace, "card");
    let psam = match &a.psam_reader {
        None => PsamSlot::Absent("no PSAM reader given (--psam-reader)".into()),
        Some(w) => {
            let psam_name = resolve_reader(&readers, w)?;
            match PcscBackend::connect_named(&ctx, &psam_name, false) {
                Ok(b) => PsamSlot::Connected(Connection::new(b).traced(&trace, "psam")),
                Err(e) => PsamSlot::Absent(format!("PSAM reader {psam_name}: {e}")),
            }
        }
    };
    let mover: Option<Mover> = match (&a.model_control, a.interactive) {
        (Some(path), _) => {
            let (path, slot) = (path.clone(), a.model_slot);
            Some(Box::new(move |insert| {
                control(
                    &path,
                    &format!("{} {slot}", if insert { "insert" } else { "remove" }),
                )
            }))
        }
        (None, true) => Some(Box::new(|insert| {
            eprint!(
                "{} the card, then press Enter: ",
                if insert { "Insert" } else { "Remove" }
            );
            // Bounded: whatever is typed before Enter is read and dropped.
            crate::prompt::read_secret_line(&mut std::io::stdin().lock(), "standard input")
                .map(drop)
                .map_err(Into::into)
        })),
        (None, false) => None,
    };
    let removal = match mover {
        Some(mover) => Removal::Driven {
            mover,
            watch: Box::new(PcscWatch(ReaderWatch::new(&ctx, &name)?)),
        },
        None => Removal::Unavailable(
            "needs --interactive (real reader) or --model-control (virtual reader)".into(),
        ),
    };
    let reconnect_name = name.clone();
    let reconnect_trace = trace.clone();
    let reconnect: qualify::Reconnect = Box::new(move || {
        let ctx = establish()?;
        if !wait_for_card_state(&ctx, &reconnect_name, true, CARD_WAIT)? {
            return Err(TransportError::NoCard {
                reader: reconnect_name.clone(),
            });
        }
        Ok(
            Connection::new(PcscBackend::connect_named(&ctx, &reconnect_name, false)?)
                .traced(&reconnect_trace, "card"),
        )
    });
    let unplug: Option<Unplug> = if a.interactive {
        let name = name.clone();
        Some(Box::new(move || watch_unplug(&name)))
    } else {
        None
    };
    let report = qualify::run(
        &mut conn,
        Options {
            full: a.full,
            removal,
            reconnect: Some(reconnect),
            unplug,
            thresholds: profile,
            psam,
            host: host_name(),
        },
    );
    let value = serde_json::to_value(&report)?;
    if let Some(p) = &a.json_file {
        write_private(p, (serde_json::to_string_pretty(&value)? + "\n").as_bytes())
            .with_context(|| format!("--json-file {}", p.display()))?;
    }
    if let Some(p) = &a.html {
        write_private(p, qualify::html(&report).as_bytes())
            .with_context(|| format!("--html {}", p.display()))?;
    }
    if let Some(p) = &a.junit {
        write_private(p, qualify::junit(&report).as_bytes())
            .with_context(|| format!("--junit {}", p.display()))?;
    }
    out.result(value, || report.text());
    match report.summary.verdict {
        qualify::Overall::Pass => Ok(()),
        qualify::Overall::Fail => {
            Err(Reported(format!("{} reader check(s) failed", report.summary.failed)).into())
        }
        // Reported: the report is the output (no second message with --json); the cause
        // decides the exit code (4, the card's class: the card offers nothing to check).
        qualify::Overall::Inconclusive => Err(anyhow::Error::new(qualify::Inconclusive {
            passed: report.summary.passed,
            not_applicable: report.summary.not_applicable,
        })
        .context(Reported("reader-test inconclusive".into()))),
    }
}

/// What would otherwise fail only after the run (a report file in a folder that does not
/// exist: the run's result lost) or fail a check for the operator's slip (no model behind
/// --model-control): refused before any card is touched.
fn check_paths(a: &Args) -> Result<(), BadInput> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(p) = &a.model_control {
        let socket = std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket());
        if !socket {
            return Err(BadInput(format!(
                "--model-control {}: no socket there (sscard-model serve --control {0} makes it)",
                p.display()
            )));
        }
    }
    for (flag, path) in [
        ("--json-file", &a.json_file),
        ("--html", &a.html),
        ("--junit", &a.junit),
    ] {
        let Some(p) = path else { continue };
        let folder = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(BadInput(format!(
                "{flag} {}: the folder {} does not exist",
                p.display(),
                folder.display()
            )));
        }
    }
    Ok(())
}

fn run_compare(out: &Output, fa: &Path, fb: &Path, html: Option<&PathBuf>) -> Result<()> {
    let (ra, rb) = (compare::load(fa)?, compare::load(fb)?);
    let names = (fa.display().to_string(), fb.display().to_string());
    if let Some(p) = html {
        write_private(p, compare::html(&ra, &rb, (&names.0, &names.1)).as_bytes())
            .with_context(|| format!("--html {}", p.display()))?;
    }
    let rows: Vec<serde_json::Value> = compare::rows(&ra, &rb)
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "a": r.a.map(|c| c.verdict),
                "b": r.b.map(|c| c.verdict),
                "figure_a": r.a.map(|c| &c.figure),
                "figure_b": r.b.map(|c| &c.figure),
                "latency_a": r.a.and_then(|c| c.latency.as_ref()),
                "latency_b": r.b.and_then(|c| c.latency.as_ref()),
            })
        })
        .collect();
    out.result(
        serde_json::json!({ "a": names.0, "b": names.1, "checks": rows,
            "verdict_a": ra.summary.verdict, "verdict_b": rb.summary.verdict }),
        || compare::text(&ra, &rb, (&names.0, &names.1)),
    );
    Ok(())
}

/// Asks the operator to unplug and replug the reader; waits (60 s each) for pcscd to report
/// the reader gone and back.
fn watch_unplug(name: &str) -> Result<String, CallbackError> {
    let ctx = establish()?;
    let present = || {
        list_readers(&ctx)
            .map(|r| r.iter().any(|x| x == name))
            .unwrap_or(false)
    };
    let wait = |want: bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while present() != want {
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "the reader was not {} within 60 s",
                    if want { "plugged back" } else { "unplugged" }
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    };
    eprintln!("Unplug the reader {name:?} now.");
    let t0 = std::time::Instant::now();
    wait(false)?;
    let gone = t0.elapsed();
    eprintln!("Plug it back in.");
    wait(true)?;
    Ok(format!(
        "removal seen after {:.1} s, return after {:.1} s",
        gone.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    ))
}
