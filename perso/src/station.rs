//! One worker per reader: take the card in the reader, ask the journal what it knows of it,
//! then claim a holder for a blank card, finish a card a crash left on its way, or refuse it.
//! A card is identified once: the identification, the claim, the personalisation and the
//! acceptance test run in one transaction, every stage on disk in the journal before the card
//! moves on. One PC/SC context per worker, kept while pcscd answers.

use crate::card::{accept, personalise, ListenerError, PersoError};
use crate::journal::{CardStatus, InFlight, Journal, JournalError};
use crate::state::Stage;
use sscard::keys::KeySource;
use sscard::ssc::Session;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::holder::Holder;
use sscard_core::profile::Kid;
use sscard_transport::pcsc::{establish, PcscBackend};
use sscard_transport::trace::Trace;
use sscard_transport::{Connection, TransportError};
use std::collections::HashSet;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Something a worker did, for progress lines and `--json` events.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Event {
    pub reader: String,
    pub event: String,
    pub card_id: Option<String>,
    pub card_number: Option<String>,
    pub detail: Option<String>,
    pub millis: u64,
}

/// A worker's settings.
#[derive(Debug)]
pub struct Worker {
    pub station: String,
    pub reader: String,
    pub region: String,
    pub journal: String,
    /// Who runs the station (recorded in the audit chain).
    pub operator: String,
    /// How long to wait for the next card before giving up.
    pub idle: Duration,
    /// Where the card's exchanges go (`--trace`, `--pcap`, `--trace-json`).
    pub trace: Trace,
}

/// Why one card was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Perso(#[from] PersoError),
    #[error("acceptance test: {0}")]
    Acceptance(PersoError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl From<sscard::ssc::SscError> for IssueError {
    fn from(e: sscard::ssc::SscError) -> Self {
        match e {
            sscard::ssc::SscError::Transport(t) => IssueError::Transport(t),
            e => IssueError::Perso(e.into()),
        }
    }
}

/// What a worker did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub issued: usize,
    /// APDUs sent to the cards issued (identification to acceptance).
    pub apdus: u64,
    /// Time spent in the journal.
    pub journal: Duration,
}

/// How often a worker tells the journal its station is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Pause between two looks at a reader with nothing to do.
const POLL: Duration = Duration::from_millis(100);

struct Run<'w> {
    w: &'w Worker,
    journal: Journal,
    events: &'w Sender<Event>,
    t0: Instant,
    ctx: Option<sscard_transport::pcsc::Context>,
    /// Cards refused in this run (another region, spoiled, failed here): left for the operator.
    refused: HashSet<String>,
    stats: Stats,
    beat: Instant,
    /// A card that could not be identified was reported (once until another card comes).
    unidentified: bool,
}

/// What the card in the reader turned out to be.
enum Outcome {
    /// Issued now (a claim or a resume).
    Issued { apdus: u64 },
    /// The journal already has it issued: it is waiting to be taken out.
    Done,
    /// Refused; the reason went out as an event.
    Refused,
    /// A blank card but no holder pending: the worker's work is over.
    NothingPending,
}

impl Run<'_> {
    fn event(
        &self,
        event: &str,
        card_id: Option<&str>,
        holder: Option<&Holder>,
        detail: Option<String>,
    ) {
        let _ = self.events.send(Event {
            reader: self.w.reader.clone(),
            event: event.into(),
            card_id: card_id.map(str::to_string),
            card_number: holder.map(|h| h.card_number.clone()),
            detail,
            millis: self.t0.elapsed().as_millis() as u64,
        });
    }

    fn heartbeat(&mut self) -> Result<(), JournalError> {
        if self.beat.elapsed() >= HEARTBEAT {
            self.journal.heartbeat()?;
            self.beat = Instant::now();
        }
        Ok(())
    }

    /// The card in the reader, on the worker's PC/SC context (made again when pcscd restarted).
    fn connect(&mut self) -> Option<Connection> {
        if self.ctx.is_none() {
            self.ctx = establish().ok();
        }
        let ctx = self.ctx.as_ref()?;
        match PcscBackend::connect_named(ctx, &self.w.reader, false) {
            Ok(b) => Some(Connection::new(b).traced(&self.w.trace, "card")),
            Err(TransportError::NoCard { .. }) => None,
            Err(_) => {
                // pcscd went away or restarted: a new context next time.
                self.ctx = None;
                None
            }
        }
    }
}

/// Moves the journal row from `at` up to `to`, stage by stage, each on disk before the next.
fn record_up_to(
    journal: &mut Journal,
    id: i64,
    at: &mut Stage,
    to: Stage,
    keys: &str,
) -> Result<(), JournalError> {
    while *at < to {
        let next = at.next().unwrap_or(Stage::Issued);
        journal.reached(id, *at, next, &stage_detail(next, keys))?;
        *at = next;
    }
    Ok(())
}

/// What the audit chain records of a stage: key ids and the key source, never key values.
fn stage_detail(stage: Stage, keys: &str) -> String {
    match stage {
        Stage::Authenticated => format!("TK {:02X} from {keys}", Kid::Tk.id()),
        Stage::KeysLoaded => {
            let ids: Vec<String> = Kid::CARD_KEYS
                .iter()
                .chain([&Kid::Pin])
                .map(|k| format!("{:02X}", k.id()))
                .collect();
            format!(
                "key ids {} loaded under TK {:02X}, from {keys}",
                ids.join(" "),
                Kid::Tk.id(),
            )
        }
        Stage::Issued => "END PERSONALISATION and the acceptance test passed".into(),
        s => s.to_string(),
    }
}

/// Finishes the card of `row` in session `s`: personalises it when still blank (again from the
/// start, recording only the stages after `row`'s), then the acceptance test, then Issued.
#[allow(clippy::too_many_arguments)]
fn finish(
    s: &mut Option<Session<'_, '_>>,
    id: sscard::ssc::CardIdentification,
    journal: &mut Journal,
    row: i64,
    mut at: Stage,
    holder: &Holder,
    region: &str,
    fresh: bool,
) -> Result<(), IssueError> {
    let mut session = s.take().expect("a session");
    if !session.is_issued() {
        let keys_name = session.key_source().describe();
        let (_, back) = personalise(session, id, holder, region, fresh, &mut |stage| {
            record_up_to(journal, row, &mut at, stage, &keys_name)
                .map_err(|e| Box::new(e) as ListenerError)
        })?;
        session = back;
    }
    // END PERSONALISATION done: the acceptance test decides the journal's last step.
    let accepted = accept(&mut session, holder);
    *s = Some(session);
    accepted.map_err(IssueError::Acceptance)?;
    let keys_name = s.as_mut().expect("put back").key_source().describe();
    record_up_to(journal, row, &mut at, Stage::Issued, &keys_name)?;
    Ok(())
}

/// Serves the card in `conn`: one transaction from identification to acceptance.
fn serve(
    run: &mut Run<'_>,
    conn: &mut Connection,
    keys: &mut dyn KeySource,
) -> Result<Outcome, IssueError> {
    let w = run.w;
    let mut tx = conn.transaction()?;
    let start = tx.apdu_count();
    // A card that is not a social security card, or whose identification does not parse, is
    // refused (and ejected), never retried: it would block the reader.
    let opened = Session::open(&mut tx, keys).and_then(|mut s| {
        let id = s.read_identification()?;
        Ok((s, id))
    });
    let (session, id) = match opened {
        Ok(o) => o,
        Err(sscard::ssc::SscError::Transport(e)) => return Err(e.into()),
        Err(e) => {
            if !run.unidentified {
                run.event(
                    "refused",
                    None,
                    None,
                    Some(format!("not a card this station can identify: {e}")),
                );
                run.unidentified = true;
            }
            return Ok(Outcome::Refused);
        }
    };
    run.unidentified = false;
    let card_id = to_hex(&id.card_id);
    if run.refused.contains(&card_id) {
        return Ok(Outcome::Refused);
    }
    let mut s = Some(session);
    // Rows of this reader whose card is not this one: that card left.
    settle_absent(run, Some(&card_id))?;
    let (row, at, holder) = match run.journal.card_status(&card_id)? {
        CardStatus::Issued { .. } => return Ok(Outcome::Done),
        CardStatus::Spoiled { reason } => {
            run.event(
                "refused",
                Some(&card_id),
                None,
                Some(format!("spoiled: {reason}")),
            );
            run.refused.insert(card_id);
            return Ok(Outcome::Refused);
        }
        CardStatus::InFlight(f) if f.station == w.station && f.reader == w.reader => {
            run.event(
                "resuming",
                Some(&card_id),
                Some(&f.holder),
                Some(format!("at {}", f.stage)),
            );
            (f.id, f.stage, f.holder)
        }
        CardStatus::InReview { holder: row, data } => {
            let session = s.as_mut().expect("the session");
            if session.is_issued() {
                // Issued before its row went to review: the acceptance test decides.
                return match accept(session, &data) {
                    Ok(()) => {
                        run.journal.resume_review(row, &card_id, &w.reader, true)?;
                        run.event(
                            "issued",
                            Some(&card_id),
                            Some(&data),
                            Some("after review".into()),
                        );
                        Ok(Outcome::Issued {
                            apdus: tx.apdu_count() - start,
                        })
                    }
                    Err(PersoError::Card(sscard::ssc::SscError::Transport(e))) => Err(e.into()),
                    Err(e) => {
                        run.event(
                            "refused",
                            Some(&card_id),
                            Some(&data),
                            Some(format!("in review; acceptance test: {e}")),
                        );
                        run.refused.insert(card_id);
                        Ok(Outcome::Refused)
                    }
                };
            }
            run.journal.resume_review(row, &card_id, &w.reader, false)?;
            run.event(
                "resuming",
                Some(&card_id),
                Some(&data),
                Some("from review".into()),
            );
            (row, Stage::Blank, *data)
        }
        CardStatus::InFlight(f) => {
            run.event(
                "refused",
                Some(&card_id),
                None,
                Some(format!(
                    "on its way for station {:?} reader {:?}",
                    f.station, f.reader
                )),
            );
            run.refused.insert(card_id);
            return Ok(Outcome::Refused);
        }
        CardStatus::Free => {
            let issued = s.as_ref().is_some_and(|s| s.is_issued());
            let why = if issued {
                Some("an issued card this journal did not issue".to_string())
            } else if id.region != w.region {
                // The key source could not make its keys: the holder stays pending for the
                // next card.
                Some(format!(
                    "a blank card of region {}, the key source serves {}",
                    id.region, w.region
                ))
            } else {
                None
            };
            if let Some(why) = why {
                run.event("refused", Some(&card_id), None, Some(why));
                run.refused.insert(card_id);
                return Ok(Outcome::Refused);
            }
            let claim = match run.journal.claim(&w.reader, &card_id) {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(Outcome::NothingPending),
                Err(e @ (JournalError::CardInUse { .. } | JournalError::Spoiled { .. })) => {
                    run.event("refused", Some(&card_id), None, Some(e.to_string()));
                    run.refused.insert(card_id);
                    return Ok(Outcome::Refused);
                }
                Err(e) => return Err(e.into()),
            };
            run.event(
                "claimed",
                Some(&card_id),
                Some(&claim.holder),
                Some(format!("batch line {}", claim.line)),
            );
            (claim.id, Stage::Blank, claim.holder)
        }
    };
    // A card no claim ever wrote to holds only its manufacture records.
    let fresh = at == Stage::Blank && run.journal.card_history(&card_id)? == 1;
    let done = finish(
        &mut s,
        id,
        &mut run.journal,
        row,
        at,
        &holder,
        &w.region,
        fresh,
    );
    let apdus = tx.apdu_count() - start;
    match done {
        Ok(()) => {
            run.event("issued", Some(&card_id), Some(&holder), None);
            Ok(Outcome::Issued { apdus })
        }
        Err(e) if e.is_transient() => {
            // The card left, pcscd went away, or the journal could not record a stage: the row
            // stays where the journal has it; the card, when it is back, resumes.
            Err(e)
        }
        Err(e) => {
            let reason = e.to_string();
            match current_stage(&mut run.journal, &w.reader, row)? {
                // The row is no longer this reader's: it stays as it is.
                None => run.event("refused", Some(&card_id), Some(&holder), Some(reason)),
                Some(Stage::Blank) => {
                    // Nothing was written: the holder goes back to pending, the card is refused.
                    run.journal.release(row, &w.reader, &reason)?;
                    run.event("refused", Some(&card_id), Some(&holder), Some(reason));
                }
                Some(_) if matches!(e, IssueError::Acceptance(_)) => {
                    // A physical, issued card that failed its acceptance test: an operator
                    // decides (spoil the card, requeue the holder).
                    run.journal.review(row, &w.reader, &reason)?;
                    run.event("review", Some(&card_id), Some(&holder), Some(reason));
                }
                Some(_) => {
                    run.journal.fail(row, &w.reader, &reason)?;
                    run.event("failed", Some(&card_id), Some(&holder), Some(reason));
                }
            }
            run.refused.insert(card_id);
            Ok(Outcome::Refused)
        }
    }
}

fn current_stage(
    journal: &mut Journal,
    reader: &str,
    row: i64,
) -> Result<Option<Stage>, JournalError> {
    Ok(journal
        .in_flight(reader)?
        .into_iter()
        .find(|f| f.id == row)
        .map(|f| f.stage))
}

/// Takes the card out of the reader (a feeder moves it to its output or reject bin). A reader
/// without a feeder refuses EJECT ICC: the operator takes the card out.
fn eject(run: &mut Run<'_>, conn: Connection) {
    match conn.eject() {
        Ok(sscard_transport::backend::Ejection::Ejected) => {}
        Ok(sscard_transport::backend::Ejection::Refused { .. }) => {}
        Err(e) => run.event("retry", None, None, Some(format!("eject: {e}"))),
    }
}

/// Rows of this reader left on their way whose card is not the one in the reader: untouched
/// (still Blank) they go back to pending; otherwise an operator must find the card.
fn settle_absent(run: &mut Run<'_>, present: Option<&str>) -> Result<(), JournalError> {
    let rows: Vec<InFlight> = run
        .journal
        .in_flight(&run.w.reader)?
        .into_iter()
        .filter(|f| Some(f.card_id.as_str()) != present)
        .collect();
    for f in rows {
        if f.stage == Stage::Blank {
            run.journal.release(
                f.id,
                &run.w.reader,
                "the card left the reader before anything was written",
            )?;
            run.event("released", Some(&f.card_id), Some(&f.holder), None);
        } else {
            let why = format!("the card left the reader at stage {}", f.stage);
            run.journal.review(f.id, &run.w.reader, &why)?;
            run.event("review", Some(&f.card_id), Some(&f.holder), Some(why));
        }
    }
    Ok(())
}

/// When a worker that has seen no card since `now` gives up: `None` (never) for an `idle` so
/// long that the clock cannot hold it (a library caller's `Duration::MAX`), which would
/// otherwise panic the worker's thread on `Instant + Duration`.
fn idle_deadline(now: Instant, idle: Duration) -> Option<Instant> {
    now.checked_add(idle)
}

/// Runs one reader's worker until no holder is pending or no card to work on comes within
/// `idle`. `audit_key` signs the journal's audit chain.
pub fn run(
    w: &Worker,
    keys: &mut dyn KeySource,
    audit_key: Box<dyn KeySource>,
    events: &Sender<Event>,
) -> Result<Stats, JournalError> {
    let journal = Journal::open_audited(&w.journal, audit_key, &w.station, &w.operator)?;
    let mut run = Run {
        w,
        journal,
        events,
        t0: Instant::now(),
        ctx: None,
        refused: HashSet::new(),
        stats: Stats::default(),
        beat: Instant::now(),
        unidentified: false,
    };
    run.journal.heartbeat()?;
    let mut deadline = idle_deadline(Instant::now(), w.idle);
    loop {
        run.heartbeat()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // The card of a row still on its way never came back.
            settle_absent(&mut run, None)?;
            run.event(
                "idle",
                None,
                None,
                Some(format!("no card to work on within {} s", w.idle.as_secs())),
            );
            break;
        }
        let Some(mut conn) = run.connect() else {
            std::thread::sleep(POLL);
            continue;
        };
        match serve(&mut run, &mut conn, keys) {
            Ok(Outcome::Issued { apdus }) => {
                run.stats.issued += 1;
                run.stats.apdus += apdus;
                deadline = idle_deadline(Instant::now(), w.idle);
                // The journal holds the card's outcome: now, and only now, it leaves the reader.
                eject(&mut run, conn);
            }
            Ok(Outcome::Done | Outcome::Refused) => {
                eject(&mut run, conn);
                std::thread::sleep(POLL);
            }
            Ok(Outcome::NothingPending) => {
                run.event("done", None, None, Some("no holder pending".into()));
                break;
            }
            Err(IssueError::Journal(e)) => return Err(e),
            Err(e) => {
                // A transient PC/SC failure or a pulled card: look again; a card that comes
                // back resumes where the journal has it.
                run.event("retry", None, None, Some(e.to_string()));
                drop(conn);
                std::thread::sleep(POLL);
            }
        }
    }
    run.stats.journal = run.journal.spent();
    Ok(run.stats)
}

impl IssueError {
    /// Whether the card or the journal went away (PC/SC errors, a card that stopped answering,
    /// the journal unreachable), as opposed to a card or key source that said no: the row stays
    /// where the journal has it and the card resumes when it is back.
    ///
    /// A card that keeps the host talking past the flow's transmit budget, or never ends its
    /// GET RESPONSE chain, did not go away: it misbehaves, and trying it again would only repeat
    /// that for ever. It is refused like a card that said no.
    pub fn is_transient(&self) -> bool {
        use sscard::ssc::SscError;
        match self {
            IssueError::Transport(e)
            | IssueError::Perso(PersoError::Card(SscError::Transport(e)))
            | IssueError::Acceptance(PersoError::Card(SscError::Transport(e))) => !matches!(
                e,
                TransportError::BudgetExceeded { .. } | TransportError::EndlessGetResponse { .. }
            ),
            IssueError::Journal(_) | IssueError::Perso(PersoError::Stopped { .. }) => true,
            _ => false,
        }
    }
}

impl sscard_core::classify::Classified for IssueError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Transport(e) => e.return_code(),
            Self::Perso(e) | Self::Acceptance(e) => e.return_code(),
            Self::Journal(e) => e.return_code(),
        }
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        match self {
            Self::Transport(e) => e.exit_class(),
            Self::Perso(e) | Self::Acceptance(e) => e.exit_class(),
            Self::Journal(e) => e.exit_class(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard::ssc::SscError;
    use sscard_transport::Budget;

    fn spent() -> TransportError {
        TransportError::BudgetExceeded {
            command: "00B20105".into(),
            apdus: 256,
            bytes: 2048,
            limit: Budget::new(256, 16384),
        }
    }

    #[test]
    fn a_card_past_its_budget_is_refused_not_retried() {
        for e in [
            IssueError::Transport(spent()),
            IssueError::Perso(PersoError::Card(SscError::Transport(spent()))),
            IssueError::Acceptance(PersoError::Card(SscError::Transport(spent()))),
            IssueError::Perso(PersoError::Card(SscError::Transport(
                TransportError::EndlessGetResponse {
                    command: "00B20105".into(),
                    rounds: 256,
                },
            ))),
        ] {
            assert!(!e.is_transient(), "{e}");
        }
        // A card that left, or pcscd that went away, is looked for again.
        for e in [
            IssueError::Transport(TransportError::CardRemoved),
            IssueError::Perso(PersoError::Card(SscError::Transport(
                TransportError::ServiceNotRunning,
            ))),
        ] {
            assert!(e.is_transient(), "{e}");
        }
    }

    #[test]
    fn an_idle_time_past_the_clock_never_expires_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(idle_deadline(now, Duration::MAX), None);
        assert_eq!(
            idle_deadline(now, Duration::from_secs(10)),
            Some(now + Duration::from_secs(10))
        );
    }
}
