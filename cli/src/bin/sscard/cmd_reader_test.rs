//! `sscard reader-test`: qualify a reader with the loopback test application.

use crate::connect::TraceOpts;
use crate::exit::Reported;
use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;
use sscard::qualify::{self, CallbackError, Options, Removal};
use sscard::script::report;
use sscard_core::fsutil::write_private;
use sscard_transport::pcsc::{
    establish, list_readers, resolve_reader, wait_for_card_state, PcscBackend,
};
use sscard_transport::Connection;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    reader: String,
    /// A few lengths of each case, 50 samples per latency size (default).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Every short length, 300 samples per latency size, delays up to 5 s.
    #[arg(long)]
    full: bool,
    /// Write the JSON report to this file (the global --json prints it on stdout instead).
    #[arg(long = "json-file")]
    json_file: Option<PathBuf>,
    #[arg(long)]
    html: Option<PathBuf>,
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Ask the operator to remove and reinsert the card (real readers).
    #[arg(long)]
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

/// The model's control socket refused a command.
#[derive(Debug, thiserror::Error)]
#[error("the model's control socket answered {0:?}")]
struct ControlRefused(String);

fn control(path: &PathBuf, line: &str) -> Result<(), CallbackError> {
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(s, "{line}")?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    match answer.trim() {
        "ok" => Ok(()),
        other => Err(ControlRefused(other.to_string()).into()),
    }
}

pub fn run(out: &Output, a: Args) -> Result<()> {
    let trace = a.trace.open()?;
    let ctx = establish()?;
    let name = resolve_reader(&list_readers(&ctx)?, &a.reader)?;
    let mut conn =
        Connection::new(PcscBackend::connect_named(&ctx, &name, false)?).traced(&trace, "card");
    let removal = match (&a.model_control, a.interactive) {
        (Some(path), _) => {
            let (path, slot) = (path.clone(), a.model_slot);
            Removal::Callback(Box::new(move |insert| {
                control(
                    &path,
                    &format!("{} {slot}", if insert { "insert" } else { "remove" }),
                )
            }))
        }
        (None, true) => Removal::Callback(Box::new(|insert| {
            eprint!(
                "{} the card, then press Enter: ",
                if insert { "Insert" } else { "Remove" }
            );
            // Bounded: whatever is typed before Enter is read and dropped.
            crate::prompt::read_secret_line(&mut std::io::stdin().lock(), "standard input")
                .map(drop)
                .map_err(Into::into)
        })),
        (None, false) => Removal::Unavailable(
            "needs --interactive (real reader) or --model-control (virtual reader)".into(),
        ),
    };
    let reconnect_name = name.clone();
    let reconnect_trace = trace.clone();
    let reconnect: qualify::Reconnect = Box::new(move || {
        let ctx = establish()?;
        wait_for_card_state(&ctx, &reconnect_name, true, Duration::from_secs(10))?;
        Ok(
            Connection::new(PcscBackend::connect_named(&ctx, &reconnect_name, false)?)
                .traced(&reconnect_trace, "card"),
        )
    });
    let unplug: Option<Box<dyn FnMut() -> Result<String, CallbackError>>> = if a.interactive {
        let name = name.clone();
        Some(Box::new(move || watch_unplug(&name)))
    } else {
        None
    };
    let report = qualify::run(
        &mut conn,
        &name,
        Options {
            full: a.full,
            removal,
            reconnect: Some(reconnect),
            unplug,
        },
    );
    let file = report.as_file_result();
    let mut value = report::json_report(std::slice::from_ref(&file));
    value["reader"] = json!(report.reader);
    value["latency"] = serde_json::to_value(&report.latency)?;
    value["checks"] = json!(report
        .checks
        .iter()
        .map(|c| json!({ "name": c.name, "figure": c.figure, "apdus": c.apdus }))
        .collect::<Vec<_>>());
    if let Some(p) = &a.json_file {
        write_private(p, (serde_json::to_string_pretty(&value)? + "\n").as_bytes())
            .with_context(|| format!("--json-file {}", p.display()))?;
    }
    if let Some(p) = &a.html {
        write_private(p, qualify::html(&report).as_bytes())
            .with_context(|| format!("--html {}", p.display()))?;
    }
    if let Some(p) = &a.junit {
        write_private(
            p,
            report::junit(std::slice::from_ref(&file), "sscard reader-test").as_bytes(),
        )
        .with_context(|| format!("--junit {}", p.display()))?;
    }
    let (passed, failed, skipped) = report::counts(std::slice::from_ref(&file));
    out.result(value, || {
        let mut t = format!("reader-test {}\n", report.reader);
        for c in &report.checks {
            let word = match c.outcome {
                sscard::script::Outcome::Passed => "pass",
                sscard::script::Outcome::Failed(_) => "FAIL",
                sscard::script::Outcome::Skipped(_) => "skip",
            };
            t += &format!("{word:<5} {:<48} {}\n", c.name, c.figure);
        }
        t + &format!(
            "{passed} passed, {failed} failed, {skipped} skipped ({:.1} s)",
            report.duration.as_secs_f64()
        )
    });
    if failed > 0 {
        return Err(Reported(format!("{failed} reader check(s) failed")).into());
    }
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
