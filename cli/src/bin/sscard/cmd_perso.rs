//! `sscard perso run | status | report`: batch personalisation on several readers with an
//! exactly-once journal.

use crate::connect::TraceOpts;
use crate::exit::{BadInput, Reported};
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard::keys::{self, KeySpec};
use sscard_perso::{batch, journal::Journal, station};
use sscard_transport::pcsc::{establish, list_readers, resolve_reader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum Perso {
    /// Personalise the batch's holders on blank cards, one worker per reader.
    Run(RunArgs),
    /// Holders per state in the journal.
    Status {
        #[arg(long)]
        journal: String,
    },
    /// Issued cards (card number, card identification code).
    Report {
        #[arg(long)]
        journal: String,
    },
    /// Check the audit log's hash chain.
    AuditVerify {
        #[arg(long)]
        journal: String,
    },
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// CSV with a header, or JSON lines.
    #[arg(long)]
    batch: PathBuf,
    /// Readers (index or name), comma separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "all_readers")]
    readers: Vec<String>,
    #[arg(long)]
    all_readers: bool,
    /// test | soft:FILE | pkcs11:MODULE:TOKEN (each reader's worker opens its own session).
    #[arg(long, default_value = "test")]
    keys: String,
    /// sqlite:PATH
    #[arg(long)]
    journal: String,
    /// The city whose blank cards this station accepts.
    #[arg(long, default_value = "110100")]
    region: String,
    /// This station's name in the journal.
    #[arg(long, default_value = "station-1")]
    station: String,
    /// Personalise the valid lines of a batch that has errors.
    #[arg(long)]
    skip_invalid: bool,
    /// Seconds to wait for the next blank card before a reader's worker stops.
    #[arg(long, default_value_t = 30)]
    idle: u64,
    #[command(flatten)]
    trace: TraceOpts,
}

pub fn run(out: &Output, p: Perso) -> Result<()> {
    match p {
        Perso::Status { journal } => {
            let counts = Journal::open(&journal)?.counts()?;
            out.result(json!({ "states": counts.iter().map(|(s, n)| (s.to_string(), json!(*n))).collect::<serde_json::Map<_, _>>() }), || {
                counts.iter().map(|(s, n)| format!("{s:<9} {n}")).collect::<Vec<_>>().join("\n")
            });
            Ok(())
        }
        Perso::Report { journal } => {
            let issued = Journal::open(&journal)?.issued()?;
            out.result(json!({ "issued": issued.iter().map(|(n, c)| json!({ "card_number": n, "card_id": c })).collect::<Vec<_>>() }), || {
                issued.iter().map(|(n, c)| format!("{n} {c}")).collect::<Vec<_>>().join("\n")
            });
            Ok(())
        }
        Perso::AuditVerify { journal } => match Journal::open(&journal)?.audit_verify()? {
            Ok(n) => {
                out.result(json!({ "entries": n, "verified": true }), || {
                    format!("audit log verified: {n} entries")
                });
                Ok(())
            }
            Err(e) => Err(Reported(format!("audit log broken: {e}")).into()),
        },
        Perso::Run(a) => run_batch(out, a),
    }
}

fn run_batch(out: &Output, a: RunArgs) -> Result<()> {
    let b = batch::load(&a.batch).map_err(|e| BadInput(format!("{}: {e}", a.batch.display())))?;
    if !b.errors.is_empty() && !a.skip_invalid {
        let lines: Vec<String> = b
            .errors
            .iter()
            .map(|e| format!("{}: {e}", a.batch.display()))
            .collect();
        return Err(BadInput(format!(
            "{} invalid line(s), nothing personalised (--skip-invalid personalises the rest): {}",
            b.errors.len(),
            lines.join("; ")
        ))
        .into());
    }
    let spec: KeySpec = a.keys.parse()?;
    if matches!(spec, KeySpec::Psam(_)) {
        return Err(BadInput(
            "a PSAM cannot serve several workers at once; use soft: or pkcs11: keys for perso run"
                .into(),
        )
        .into());
    }
    // Asked once here, not by every worker.
    let pin = match spec.needs_token_pin() {
        true => Some(Arc::new(crate::connect::token_pin()?)),
        false => None,
    };
    if let Some(w) = spec.warning() {
        eprintln!("sscard: warning: {w}");
    }
    let trace = a.trace.open()?;
    let ctx = establish()?;
    let all = list_readers(&ctx)?;
    let readers: Vec<String> = if a.all_readers {
        all.clone()
    } else {
        a.readers
            .iter()
            .map(|r| resolve_reader(&all, r))
            .collect::<Result<_, _>>()?
    };
    if readers.is_empty() {
        return Err(
            BadInput("name the readers with --readers R1,R2 or --all-readers".into()).into(),
        );
    }
    let mut journal = Journal::open(&a.journal)?;
    let added = journal.add(&a.batch.display().to_string(), &b.holders)?;
    journal.audit(
        &a.station,
        "batch",
        &format!(
            "{} valid holders from {} ({added} new), keys {}",
            b.holders.len(),
            a.batch.display(),
            a.keys
        ),
    )?;
    drop(journal);
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut workers = Vec::new();
    for reader in readers {
        let w = station::Worker {
            station: a.station.clone(),
            reader,
            region: a.region.clone(),
            journal: a.journal.clone(),
            idle: Duration::from_secs(a.idle),
            trace: trace.clone(),
        };
        let (tx, spec, pin) = (tx.clone(), spec.clone(), pin.clone());
        workers.push(std::thread::spawn(
            move || -> anyhow::Result<station::Stats> {
                let pin = pin.as_ref().map(|p| p.as_str());
                let mut keys = keys::open(&spec, &w.trace, pin)?;
                Ok(station::run(&w, keys.as_mut(), &tx)?)
            },
        ));
    }
    drop(tx);
    // Progress: a line per reader and an overall bar with ETA and cards/min (stderr; --json
    // prints one event object per line instead).
    let total = b.holders.len() as u64;
    let multi = indicatif::MultiProgress::with_draw_target(if out.json() {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    });
    let overall = multi.add(indicatif::ProgressBar::new(total));
    overall.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} cards  {msg}  ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut lines: std::collections::BTreeMap<String, indicatif::ProgressBar> =
        std::collections::BTreeMap::new();
    let mut done = 0u64;
    for e in rx {
        if out.json() {
            crate::output::line(&serde_json::to_string(&e)?);
            continue;
        }
        let line = lines.entry(e.reader.clone()).or_insert_with(|| {
            let p = multi.insert_before(&overall, indicatif::ProgressBar::new_spinner());
            p.set_style(
                indicatif::ProgressStyle::with_template("{prefix:<22} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            p.set_prefix(e.reader.clone());
            p
        });
        line.set_message(format!(
            "{} {} {}",
            e.event,
            e.card_number.as_deref().unwrap_or(""),
            e.detail.as_deref().unwrap_or("")
        ));
        if e.event.contains("issued") {
            done += 1;
            overall.set_position(done.min(total));
            let mins = start.elapsed().as_secs_f64() / 60.0;
            overall.set_message(format!("{:.1} cards/min", done as f64 / mins.max(1e-9)));
        }
    }
    overall.finish();
    let mut issued = 0;
    let mut errors = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(st)) => issued += st.issued,
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("a worker panicked".into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let counts = Journal::open(&a.journal)?.counts()?;
    let summary = json!({ "added": added, "issued_now": issued, "seconds": secs, "cards_per_min": issued as f64 * 60.0 / secs.max(1e-9), "states": counts.iter().map(|(s, n)| (s.to_string(), json!(*n))).collect::<serde_json::Map<_, _>>(), "errors": errors });
    out.result(summary, || {
        format!(
            "{issued} card(s) issued in {secs:.1} s ({:.1} cards/min); journal: {}",
            issued as f64 * 60.0 / secs.max(1e-9),
            counts
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    if !errors.is_empty() {
        return Err(Reported(errors.join("; ")).into());
    }
    Ok(())
}
