//! `sscard perso run | status | report`: batch personalisation on several readers with an
//! exactly-once journal.

use crate::connect::TraceOpts;
use crate::exit::{BadInput, Reported};
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard::keys::{self, KeySpec};
use sscard_core::profile::Kid;
use sscard_perso::state::{Stage, State};
use sscard_perso::{batch, journal::Journal, station};
use sscard_transport::pcsc::{establish, list_readers, resolve_reader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum Perso {
    /// Personalise the batch's holders on blank cards, one worker per reader. Exits non-zero
    /// while any holder is unresolved (pending, failed, review, or on its way without a station).
    Run(RunArgs),
    /// Create the journal's schema (PostgreSQL: as an admin role, granting the station role
    /// only what a station needs).
    JournalInit {
        #[arg(long)]
        journal: String,
        /// The PostgreSQL role the stations connect as.
        #[arg(long)]
        station_role: Option<String>,
    },
    /// Holders per state in the journal.
    Status {
        #[arg(long)]
        journal: String,
    },
    /// Holders in one state (all holders without --state), streamed.
    List {
        #[arg(long)]
        journal: String,
        /// pending | blank | authenticated | keys_loaded | written | verified | issued | failed | review, or `claimed` for every state with a card on its way.
        #[arg(long)]
        state: Option<String>,
    },
    /// Issued cards (card number, card identification code), streamed.
    Report {
        #[arg(long)]
        journal: String,
    },
    /// Put a failed or reviewed holder (or an issued one whose card was spoiled) back to pending.
    Requeue(RequeueArgs),
    /// Take a card out of circulation: it is recorded and never claimed again.
    Spoil(SpoilArgs),
    /// Check the audit log: its keyed chain, every holder's state against it, and the anchor.
    AuditVerify {
        #[arg(long)]
        journal: String,
        /// The anchor file (default: beside an SQLite journal, JOURNAL.anchor).
        #[arg(long)]
        anchor: Option<PathBuf>,
        /// The key source holding the audit key.
        #[arg(long, default_value = "test")]
        keys: String,
    },
}

#[derive(clap::Args)]
pub struct OperatorArgs {
    #[arg(long)]
    journal: String,
    /// The key source holding the audit key.
    #[arg(long, default_value = "test")]
    keys: String,
    /// Who does this (recorded in the audit log).
    #[arg(long)]
    operator: String,
    /// This station's name in the journal (default: the host name); unique among the stations
    /// sharing a journal.
    #[arg(long)]
    station: Option<String>,
    /// The anchor file (default: beside an SQLite journal, JOURNAL.anchor).
    #[arg(long)]
    anchor: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RequeueArgs {
    /// Card number, SSN or journal row id.
    holder: String,
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    op: OperatorArgs,
}

#[derive(clap::Args)]
pub struct SpoilArgs {
    /// The card identification code (hex).
    card_id: String,
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    op: OperatorArgs,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// CSV with a header, or JSON lines (docs/batch.md), at most 64 MiB; `-` reads it from
    /// standard input.
    #[arg(long)]
    batch: PathBuf,
    /// The batch's text encoding: auto | utf-8 | gbk | utf-16le | utf-16be.
    #[arg(long, default_value = "auto")]
    encoding: batch::Encoding,
    /// Readers (index or name), comma separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "all_readers")]
    readers: Vec<String>,
    #[arg(long)]
    all_readers: bool,
    /// test | soft:FILE | pkcs11:MODULE:TOKEN (one library per process, a session per worker) |
    /// remote:https://HOST:PORT (a key service; a connection per worker).
    #[arg(long, default_value = "test")]
    keys: String,
    /// sqlite:PATH or postgres://…
    #[arg(long)]
    journal: String,
    /// Who runs the station (recorded in the audit log).
    #[arg(long)]
    operator: String,
    /// The anchor file the audit chain's head is appended to after the run (default: beside an
    /// SQLite journal, JOURNAL.anchor).
    #[arg(long)]
    anchor: Option<PathBuf>,
    /// The city whose blank cards this station accepts.
    #[arg(long, default_value = "110100")]
    region: String,
    /// This station's name in the journal (default: the host name); unique among the stations
    /// sharing a journal.
    #[arg(long)]
    station: Option<String>,
    /// Personalise the valid lines of a batch that has errors (each refused line is still named).
    #[arg(long)]
    skip_invalid: bool,
    /// Seconds to wait for the next card before a reader's worker stops; also the longest wait
    /// for a key service (remote:) that is down or went away (docs/keyd-client.md).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle: u64,
    /// Seconds after its last heartbeat when another station's rows on their way count as
    /// orphaned.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease: u64,
    /// Take over orphaned rows (this station's rows on readers not in this run, other stations'
    /// rows whose lease expired): untouched claims go back to pending, the others to review.
    #[arg(long)]
    take_over: bool,
    #[command(flatten)]
    trace: TraceOpts,
}

fn station_name(given: &Option<String>) -> String {
    given
        .clone()
        .unwrap_or_else(sscard_perso::journal::host_name)
}

fn anchor_path(journal: &str, anchor: &Option<PathBuf>) -> PathBuf {
    anchor
        .clone()
        .unwrap_or_else(|| sscard_perso::journal::default_anchor_path(journal))
}

/// The audit key's source, opened once for the journal of this process.
fn audit_key(keys: &str) -> Result<Box<dyn sscard::keys::KeySource>> {
    let spec: KeySpec = keys.parse()?;
    let pin = crate::connect::token_pin_for(&spec)?;
    Ok(keys::open(
        &spec,
        &sscard_transport::trace::Trace::off(),
        pin.as_ref().map(|p| p.as_str()),
    )?)
}

/// Runs `attempt` (opening a key source, a first request to it, a journal change audited by
/// it) until it succeeds or fails other than with a key service that is not available right
/// now, at most until `until`; says `waiting` once when the service is away and `resumed` when
/// it answers again. A station started while its key service is down waits for it as a
/// station whose service goes away in the middle of a batch does.
fn waiting_for_keys<T, E: std::fmt::Display>(
    until: Option<Instant>,
    say: &mut dyn FnMut(&str, String),
    unavailable: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    let mut told = false;
    let r = station::while_unavailable(until, &unavailable, || {
        let r = attempt();
        if let Err(e) = &r {
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            // Nothing is said when there is no time left to wait (a last try).
            if unavailable(e) && !told && left.is_none_or(|l| !l.is_zero()) {
                let left = left.map_or(0, |l| l.as_secs_f64().ceil() as u64);
                say(
                    "waiting",
                    format!("{e}; waiting up to {left} s for the key service"),
                );
                told = true;
            }
        }
        r
    });
    if told && r.is_ok() {
        say(
            "resumed",
            format!(
                "the key service answers again after {:.1} s",
                started.elapsed().as_secs_f64()
            ),
        );
    }
    r
}

/// A `waiting`/`resumed` line of the run itself (before its workers): an event object with
/// `--json`, a line on standard error otherwise.
fn say_for_run(out: &Output) -> impl FnMut(&str, String) + '_ {
    move |event, detail| {
        if out.json() {
            crate::output::line(&json!({ "event": event, "detail": detail }).to_string());
        } else {
            eprintln!("sscard: {event}: {detail}");
        }
    }
}

fn states_json(counts: &[(State, i64)]) -> serde_json::Value {
    json!(counts
        .iter()
        .map(|(s, n)| (s.to_string(), json!(*n)))
        .collect::<serde_json::Map<_, _>>())
}

pub fn run(out: &Output, p: Perso) -> Result<()> {
    match p {
        Perso::JournalInit {
            journal,
            station_role,
        } => {
            Journal::init(&journal, station_role.as_deref())?;
            out.result(json!({ "initialised": true }), || {
                "journal schema ready".to_string()
            });
            Ok(())
        }
        Perso::Status { journal } => {
            let counts = Journal::open(&journal)?.counts()?;
            out.result(json!({ "states": states_json(&counts) }), || {
                counts
                    .iter()
                    .map(|(s, n)| format!("{s:<13} {n}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Perso::List { journal, state } => {
            let wanted: Vec<Option<State>> = match state.as_deref() {
                None => vec![None],
                Some("claimed") => Stage::ALL
                    .into_iter()
                    .map(State::Card)
                    .filter(|s| s.in_flight())
                    .map(Some)
                    .collect(),
                Some(s) => vec![Some(
                    s.parse::<State>()
                        .map_err(|e| BadInput(format!("--state: {e}")))?,
                )],
            };
            let mut j = Journal::open(&journal)?;
            for st in wanted {
                j.list(st, &mut |r| {
                    if out.json() {
                        crate::output::line(&serde_json::to_string(&r).unwrap_or_default());
                    } else {
                        crate::output::line(&format!(
                            "{:>6} line {:<5} {} {:<13} {} {} {}",
                            r.id,
                            r.line,
                            r.card_number,
                            r.state,
                            r.card_id.as_deref().unwrap_or("-"),
                            r.reader.as_deref().unwrap_or("-"),
                            r.reason.as_deref().unwrap_or("")
                        ));
                    }
                    Ok(())
                })?;
            }
            Ok(())
        }
        Perso::Report { journal } => {
            let mut j = Journal::open(&journal)?;
            // Streamed: one line per issued card (a JSON object per line with --json).
            j.issued(&mut |number, card_id| {
                if out.json() {
                    crate::output::line(
                        &json!({ "card_number": number, "card_id": card_id }).to_string(),
                    );
                } else {
                    crate::output::line(&format!("{number} {card_id}"));
                }
                Ok(())
            })?;
            Ok(())
        }
        Perso::Requeue(a) => {
            let mut j = Journal::open_audited(
                &a.op.journal,
                audit_key(&a.op.keys)?,
                &station_name(&a.op.station),
                &a.op.operator,
            )?;
            let id = j.requeue(&a.holder, &a.reason)?;
            j.anchor(&anchor_path(&a.op.journal, &a.op.anchor))?;
            out.result(json!({ "requeued": id }), || {
                format!("holder row {id} is pending again")
            });
            Ok(())
        }
        Perso::Spoil(a) => {
            let mut j = Journal::open_audited(
                &a.op.journal,
                audit_key(&a.op.keys)?,
                &station_name(&a.op.station),
                &a.op.operator,
            )?;
            let holder = j.spoil(&a.card_id, &a.reason)?;
            j.anchor(&anchor_path(&a.op.journal, &a.op.anchor))?;
            out.result(
                json!({ "spoiled": a.card_id, "holder_row": holder }),
                || match holder {
                    Some(h) => format!(
                    "card {} spoiled; it held holder row {h} (requeue the holder for a new card)",
                    a.card_id
                ),
                    None => format!("card {} spoiled", a.card_id),
                },
            );
            Ok(())
        }
        Perso::AuditVerify {
            journal,
            anchor,
            keys,
        } => {
            let anchor = anchor_path(&journal, &anchor);
            let mut j = Journal::open_audited(&journal, audit_key(&keys)?, "", "")?;
            match j.audit_verify(&anchor)? {
                Ok(v) => {
                    out.result(
                        json!({ "entries": v.entries, "holders": v.holders, "head": v.head, "anchor": anchor.display().to_string(), "verified": true }),
                        || {
                            format!(
                                "audit log verified: {} entries, {} holders match their last audited state, anchor {}",
                                v.entries,
                                v.holders,
                                anchor.display()
                            )
                        },
                    );
                    Ok(())
                }
                Err(e) => {
                    let message = format!("audit log broken: {e}");
                    out.result(
                        json!({ "verified": false, "error": message, "anchor": anchor.display().to_string() }),
                        || message.clone(),
                    );
                    Err(Reported(message).into())
                }
            }
        }
        Perso::Run(a) => run_batch(out, a),
    }
}

/// The batch's name in messages: `-` is standard input.
fn batch_name(path: &std::path::Path) -> String {
    match path.to_str() {
        Some("-") => "standard input".into(),
        _ => path.display().to_string(),
    }
}

fn run_batch(out: &Output, a: RunArgs) -> Result<()> {
    let b = batch::load_with(&a.batch, a.encoding)
        .map_err(|e| BadInput(format!("{}: {e}", batch_name(&a.batch))))?;
    let refused: Vec<String> = b
        .errors
        .iter()
        .map(|e| format!("{}: {e}", batch_name(&a.batch)))
        .collect();
    if !refused.is_empty() && !a.skip_invalid {
        return Err(BadInput(format!(
            "{} invalid line(s), nothing personalised (--skip-invalid personalises the rest): {}",
            refused.len(),
            refused.join("; ")
        ))
        .into());
    }
    // Skipped lines are named, never dropped silently.
    for line in &refused {
        if out.json() {
            crate::output::line(&json!({ "event": "skipped", "detail": line }).to_string());
        } else {
            eprintln!("sscard: skipped {line}");
        }
    }
    if b.holders.is_empty() {
        return Err(BadInput(format!(
            "{}: the batch holds no valid holder",
            batch_name(&a.batch)
        ))
        .into());
    }
    let spec: KeySpec = a.keys.parse()?;
    if matches!(spec, KeySpec::Psam(_)) {
        return Err(BadInput(
            "a PSAM cannot serve several workers at once; use soft:, pkcs11: or remote: keys for perso run"
                .into(),
        )
        .into());
    }
    // Asked once here, not by every worker.
    let pin = crate::connect::token_pin_for(&spec)?.map(Arc::new);
    if let Some(w) = spec.warning() {
        eprintln!("sscard: warning: {w}");
    }
    let open_keys = |spec: &KeySpec, pin: &Option<Arc<zeroize::Zeroizing<String>>>| {
        keys::open(
            spec,
            &sscard_transport::trace::Trace::off(),
            pin.as_ref().map(|p| p.as_str()),
        )
    };
    // A key service that is down when the station starts is waited for as long as one that
    // goes away during the batch: --idle.
    let idle = Duration::from_secs(a.idle);
    let until = Instant::now().checked_add(idle);
    let mut say = say_for_run(out);
    // Preflight, before any claim: every key the flow needs (and the audit key) is in the key
    // source, and the source serves the station's region.
    let (served, described) = waiting_for_keys(
        until,
        &mut say,
        sscard::keys::KeyError::is_unavailable,
        || {
            let mut keys = open_keys(&spec, &pin)?;
            let needed: Vec<Kid> = Kid::CARD_KEYS.into_iter().chain([Kid::Tk]).collect();
            keys.preflight(&needed)?;
            Ok((keys.region()?, keys.describe()))
        },
    )?;
    if let Some(served) = served {
        if served != a.region {
            return Err(BadInput(format!(
                "--region {}: the key source ({described}) serves region {served}",
                a.region,
            ))
            .into());
        }
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
    let anchor = anchor_path(&a.journal, &a.anchor);
    // One station's SQLite journal is made on its first run; a shared PostgreSQL journal by
    // its administrator (perso journal-init).
    if !sscard_perso::journal::is_postgres(&a.journal) {
        Journal::init(&a.journal, None)?;
    }
    let station = station_name(&a.station);
    let audit = waiting_for_keys(
        until,
        &mut say,
        sscard::keys::KeyError::is_unavailable,
        || open_keys(&spec, &pin),
    )?;
    let mut journal = Journal::open_audited(&a.journal, audit, &station, &a.operator)?;
    journal.check_station(Duration::from_secs(a.lease))?;
    journal.heartbeat()?;
    let added = waiting_for_keys(
        until,
        &mut say,
        |e: &sscard_perso::journal::JournalError| e.unavailable_key().is_some(),
        || journal.add(&a.batch.display().to_string(), &b.holders),
    )?;
    // Rows on their way that no worker of this run will look after.
    for o in journal.orphans(&readers, Duration::from_secs(a.lease))? {
        let taken = if a.take_over {
            Some(journal.take_over(&o)?)
        } else {
            None
        };
        let detail = match taken {
            Some(st) => format!("{}; taken over: now {st}", o.why),
            None => format!("{} (--take-over takes it over)", o.why),
        };
        if out.json() {
            crate::output::line(
                &json!({ "event": "orphan", "holder_row": o.row.id, "card_id": o.row.card_id, "stage": o.row.stage, "detail": detail })
                    .to_string(),
            );
        } else {
            eprintln!(
                "sscard: holder row {} (card {}, at {}): {detail}",
                o.row.id, o.row.card_id, o.row.stage
            );
        }
    }
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut workers = Vec::new();
    for reader in readers.clone() {
        let w = station::Worker {
            station: station.clone(),
            reader,
            region: a.region.clone(),
            journal: a.journal.clone(),
            operator: a.operator.clone(),
            idle: Duration::from_secs(a.idle),
            trace: trace.clone(),
        };
        let (tx, spec, pin) = (tx.clone(), spec.clone(), pin.clone());
        workers.push(std::thread::spawn(
            move || -> anyhow::Result<station::Stats> {
                let p = pin.as_ref().map(|p| p.as_str());
                // The service may go away between the preflight and here: the worker waits
                // for it as it would in the middle of the batch.
                let reader = w.reader.clone();
                let mut say = |event: &str, detail: String| {
                    let _ = tx.send(station::Event {
                        reader: reader.clone(),
                        event: event.into(),
                        card_id: None,
                        card_number: None,
                        detail: Some(detail),
                        millis: start.elapsed().as_millis() as u64,
                    });
                };
                let until = Instant::now().checked_add(w.idle);
                let unavailable = sscard::keys::KeyError::is_unavailable;
                let mut keys = waiting_for_keys(until, &mut say, unavailable, || {
                    keys::open(&spec, &w.trace, p)
                })?;
                let audit = waiting_for_keys(until, &mut say, unavailable, || {
                    keys::open(&spec, &sscard_transport::trace::Trace::off(), p)
                })?;
                Ok(station::run(&w, keys.as_mut(), audit, &tx)?)
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
        let rate = |done: u64| {
            let mins = start.elapsed().as_secs_f64() / 60.0;
            format!("{:.1} cards/min", done as f64 / mins.max(1e-9))
        };
        match e.event.as_str() {
            "issued" => {
                done += 1;
                overall.set_position(done.min(total));
                overall.set_message(rate(done));
            }
            // The key service went away: every reader waits for it, and the bar says so.
            "waiting" => overall.set_message("waiting for the key service"),
            "resumed" => overall.set_message(rate(done)),
            _ => {}
        }
    }
    overall.finish();
    let mut issued = 0;
    // Kept typed: a worker that stopped on a key service that stayed away exits as its error
    // says (no service, 5), not as a reported failure.
    let mut stopped: Vec<anyhow::Error> = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(st)) => issued += st.issued,
            Ok(Err(e)) => stopped.push(e),
            Err(_) => stopped.push(anyhow::anyhow!("a worker panicked")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // The chain's head leaves the journal: deleting the newest entries is detectable from now.
    // A key service away at the end is waited for as during the run, unless a worker already
    // waited for it in vain; an anchor not written is the next run's (the summary still says
    // what was done).
    let anchor_until = if stopped.is_empty() {
        Instant::now().checked_add(idle)
    } else {
        Some(Instant::now())
    };
    if let Err(e) = waiting_for_keys(
        anchor_until,
        &mut say,
        |e: &sscard_perso::journal::JournalError| e.unavailable_key().is_some(),
        || journal.anchor(&anchor),
    ) {
        stopped.push(anyhow::Error::new(e).context("the audit chain's anchor was not written"));
    }
    let errors: Vec<String> = stopped.iter().map(|e| format!("{e:#}")).collect();
    let counts = journal.counts()?;
    let mut unresolved: Vec<(State, i64)> = journal.unresolved()?;
    // Rows on their way for another live station are that station's business.
    let ours_or_orphaned = journal.orphans(&[], Duration::from_secs(a.lease))?.len() as i64;
    unresolved.retain(|(s, _)| !s.in_flight());
    if ours_or_orphaned > 0 {
        unresolved.push((State::Card(Stage::Blank), ours_or_orphaned));
    }
    let summary = json!({ "added": added, "issued_now": issued, "seconds": secs, "cards_per_min": issued as f64 * 60.0 / secs.max(1e-9), "states": states_json(&counts), "errors": errors, "anchor": anchor.display().to_string() });
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
    if let Some(first) = stopped.into_iter().next() {
        return Err(if errors.len() > 1 {
            first.context(format!(
                "{} errors in this run; besides the one that follows: {}",
                errors.len(),
                errors[1..].join("; ")
            ))
        } else {
            first
        });
    }
    if !unresolved.is_empty() {
        return Err(Reported(format!(
            "holders unresolved: {} (perso list --state STATE shows them)",
            unresolved
                .iter()
                .map(|(s, n)| if s.in_flight() {
                    format!("{n} on their way without a worker")
                } else {
                    format!("{n} {s}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    Ok(())
}
