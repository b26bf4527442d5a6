//! One worker per reader: take the card in the reader, ask the journal what it knows of it,
//! then claim a holder for a blank card, finish a card a crash left on its way, or refuse it.
//! A card is identified once: the identification, the claim, the personalisation and the
//! acceptance test run in one transaction, every stage on disk in the journal before the card
//! moves on. One PC/SC context per worker, kept while pcscd answers.
//!
//! A key service (`--keys remote:…`, the card keys' source and the journal's audit key) that
//! goes away does not fail a card: the worker leaves the card's row where the journal has it,
//! says `waiting`, asks the service ([`KeySource::available`]) 200 ms, 400 ms … at most 2 s
//! apart until it answers, says `resumed` and serves the card in the reader again through the
//! journal (a card left half-way is personalised again from the start, as after a crash; no
//! command is ever sent to a card a second time by itself). It waits at most `idle` from the
//! service's first failure until a card's flow next ends (issued, or refused for a reason of
//! its own), then stops with the service's error.

use crate::card::{accept, personalise, ListenerError, PersoError};
use crate::journal::{CardStatus, InFlight, Journal, JournalError};
use crate::state::Stage;
use sscard::keys::{KeyError, KeySource};
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
    /// How long to wait for the next card before giving up; also how long to wait for a key
    /// service that went away.
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
    /// When a key service went away and no card's flow has ended since: the waiting's bound
    /// runs from here, however often the service answers a probe in between (a service that
    /// answers its probe but fails every card's request is not waited for without end).
    outage: Option<Instant>,
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

    /// After `e`, a key service that is not available right now: says `waiting` (the service's
    /// error, no card or holder data), asks the card keys' source and the journal's audit key
    /// whether they answer ([`KeySource::available`]) with [`Backoff`]'s pauses, keeping the
    /// station's heartbeat, and says `resumed` when both do. A probe the service answers with
    /// a refusal counts as an answer: the card's flow hears the refusal itself. Past `idle`
    /// since the outage began (no card's flow ended since), `e` itself comes back. A journal that
    /// fails while waiting ends the worker as it would anywhere else.
    fn wait_for_keys(&mut self, keys: &mut dyn KeySource, e: IssueError) -> Result<(), IssueError> {
        let Some(k) = e.unavailable_key() else {
            return Err(e);
        };
        let since = *self.outage.get_or_insert_with(Instant::now);
        let until = idle_deadline(since, self.w.idle);
        let left = until.map_or(self.w.idle, |u| u.saturating_duration_since(Instant::now()));
        self.event(
            "waiting",
            None,
            None,
            Some(format!(
                "{k}; the card stays unissued, waiting up to {} s for the key service",
                left.as_secs_f64().ceil() as u64
            )),
        );
        let started = Instant::now();
        let (journal, beat) = (&mut self.journal, &mut self.beat);
        let probed = while_unavailable(
            until,
            |p: &Probe| matches!(p, Probe::Keys(k) if k.is_unavailable()),
            || {
                if beat.elapsed() >= HEARTBEAT {
                    journal.heartbeat().map_err(Probe::Journal)?;
                    *beat = Instant::now();
                }
                keys.available().map_err(Probe::Keys)?;
                journal.audit_key_available().map_err(Probe::Keys)
            },
        );
        match probed {
            Err(Probe::Journal(j)) => Err(j.into()),
            Err(Probe::Keys(k)) if k.is_unavailable() => Err(e),
            // Answered (perhaps with a refusal the card's flow will hear again).
            Ok(()) | Err(Probe::Keys(_)) => {
                self.event(
                    "resumed",
                    None,
                    None,
                    Some(format!(
                        "the key service answers again after {:.1} s; the card in the reader starts again from the journal",
                        started.elapsed().as_secs_f64()
                    )),
                );
                Ok(())
            }
        }
    }
}

/// What a probe of the key services met: a key source's answer, or the journal's own failure
/// (its heartbeat).
enum Probe {
    Keys(KeyError),
    Journal(JournalError),
}

/// The pauses between two looks at a key service that is not available: 200 ms, doubling,
/// at most 2 s — a service back after a restart is seen within 2 s, one that stays away is
/// asked once every 2 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(200);
    pub const MOST: Duration = Duration::from_secs(2);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (now * 2).min(Self::MOST);
        Some(now)
    }
}

/// Calls `attempt` until it succeeds or fails with an error `unavailable` does not call a key
/// service away, pausing as [`Backoff`] says between two calls; past `until` (`None`: never)
/// the last "unavailable" error comes back. The last pause is cut to end at `until`, so the
/// service is asked once more at the bound. For a station's probes, and for opening a key
/// service's source at the start of a run.
pub fn while_unavailable<T, E>(
    until: Option<Instant>,
    unavailable: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut pauses = Backoff::new();
    loop {
        match attempt() {
            Err(e) if unavailable(&e) => {
                let mut pause = pauses.next().unwrap_or(Backoff::MOST);
                if let Some(u) = until {
                    let left = u.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(e);
                    }
                    pause = pause.min(left);
                }
                std::thread::sleep(pause);
            }
            r => return r,
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
        // Not the card's fault: the worker waits for the key service.
        Err(sscard::ssc::SscError::Keys(k)) if k.is_unavailable() => {
            return Err(sscard::ssc::SscError::Keys(k).into())
        }
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
                    Err(e) if e.unavailable_key().is_some() => Err(IssueError::Acceptance(e)),
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
        Err(e) if e.is_transient() || e.unavailable_key().is_some() => {
            // The card left, pcscd went away, the journal could not record a stage, or the key
            // service went away: the row stays where the journal has it; the card, when it is
            // back (or the service is), resumes.
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
) -> Result<Stats, IssueError> {
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
        outage: None,
    };
    run.journal.heartbeat()?;
    let mut deadline = idle_deadline(Instant::now(), w.idle);
    loop {
        run.heartbeat()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // The card of a row still on its way never came back.
            loop {
                match settle_absent(&mut run, None) {
                    Err(e) if e.unavailable_key().is_some() => run.wait_for_keys(keys, e.into())?,
                    r => break r?,
                }
            }
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
                run.outage = None;
                deadline = idle_deadline(Instant::now(), w.idle);
                // The journal holds the card's outcome: now, and only now, it leaves the reader.
                eject(&mut run, conn);
            }
            Ok(Outcome::Done | Outcome::Refused) => {
                run.outage = None;
                eject(&mut run, conn);
                std::thread::sleep(POLL);
            }
            Ok(Outcome::NothingPending) => {
                run.event("done", None, None, Some("no holder pending".into()));
                break;
            }
            Err(e) if e.unavailable_key().is_some() => {
                // The card stays in the reader, its row where the journal has it.
                drop(conn);
                run.wait_for_keys(keys, e)?;
                // The time spent waiting was not the reader's idle time.
                deadline = idle_deadline(Instant::now(), w.idle);
            }
            Err(IssueError::Journal(e)) => return Err(e.into()),
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
    /// The key service's error when the card was not issued because a key service (the card
    /// keys' source or the journal's audit key) is not available right now
    /// ([`KeyError::is_unavailable`]): the station waits for it with the card unissued. `None`
    /// when the card, a key source or the journal said no, or the card or pcscd went away.
    pub fn unavailable_key(&self) -> Option<&KeyError> {
        match self {
            IssueError::Perso(p) | IssueError::Acceptance(p) => p.unavailable_key(),
            IssueError::Journal(j) => j.unavailable_key(),
            IssueError::Transport(_) => None,
        }
    }

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

    fn url() -> String {
        "https://keyd:8443".into()
    }
    fn unreachable() -> KeyError {
        KeyError::RemoteUnreachable {
            url: url(),
            detail: "Connection refused (os error 111)".into(),
        }
    }
    fn refused() -> KeyError {
        KeyError::RemoteRefused {
            url: url(),
            message: "policy rule \"desk\" does not allow the operation key-load-blocks".into(),
        }
    }
    fn server(status: u16) -> KeyError {
        KeyError::RemoteServer {
            url: url(),
            status,
            message: "m".into(),
        }
    }

    #[test]
    fn which_key_errors_mean_the_service_is_away() {
        let away = [
            unreachable(),
            KeyError::RemoteTimedOut {
                url: url(),
                seconds: 5,
            },
            KeyError::RemoteRateLimited {
                url: url(),
                message: "later".into(),
            },
            server(500),
            server(502),
            server(503),
            server(504),
        ];
        for e in &away {
            assert!(e.is_unavailable(), "{e}");
        }
        let said_no = [
            refused(),
            KeyError::RemoteUnauthorised {
                url: url(),
                detail: "401".into(),
            },
            KeyError::RemoteKey {
                url: url(),
                code: -2203,
                message: "no RKSSSE".into(),
            },
            KeyError::RemoteMalformed {
                url: url(),
                detail: "x".into(),
            },
            server(400),
            server(501),
            server(505),
            KeyError::MissingKey { kid: Kid::Rkssse },
            KeyError::PsamTransport(TransportError::CardRemoved),
            KeyError::RemoteNotBuilt,
        ];
        for e in &said_no {
            assert!(!e.is_unavailable(), "{e}");
        }
    }

    /// Which failures of a card's flow make the station wait (the card unissued, its row
    /// where the journal has it) and which fail or release the card.
    #[test]
    fn a_key_service_away_waits_a_key_source_that_said_no_fails_the_card() {
        use sscard_core::classify::{Classified, ExitClass};
        let stopped = |cause: ListenerError| {
            IssueError::Perso(PersoError::Stopped {
                stage: Stage::KeysLoaded,
                cause,
            })
        };
        let card_keys = |k: KeyError| IssueError::Perso(PersoError::Card(SscError::Keys(k)));
        // (error, the key service's error it waits for, transient).
        let cases: Vec<(IssueError, Option<KeyError>, bool)> = vec![
            // The card keys' source away: key-load blocks, a cryptogram, a MAC.
            (card_keys(unreachable()), Some(unreachable()), false),
            (
                IssueError::Acceptance(PersoError::Card(SscError::Keys(server(503)))),
                Some(server(503)),
                false,
            ),
            // The audit key away: a stage not recorded, a claim or the last stage refused.
            (
                stopped(Box::new(JournalError::AuditKey(unreachable()))),
                Some(unreachable()),
                true,
            ),
            (
                IssueError::Journal(JournalError::AuditKey(unreachable())),
                Some(unreachable()),
                true,
            ),
            // Said no: the card is released, failed or reviewed as before.
            (card_keys(refused()), None, false),
            (
                card_keys(KeyError::RemoteKey {
                    url: url(),
                    code: -2203,
                    message: "no RKSSSE".into(),
                }),
                None,
                false,
            ),
            (
                IssueError::Journal(JournalError::AuditKey(refused())),
                None,
                true,
            ),
            (stopped("journal is read-only".into()), None, true),
            (
                IssueError::Transport(TransportError::CardRemoved),
                None,
                true,
            ),
        ];
        for (e, waits_for, transient) in &cases {
            assert_eq!(
                (e.unavailable_key(), e.is_transient()),
                (waits_for.as_ref(), *transient),
                "{e}"
            );
        }
        // The listener's error is kept typed: its codes are the journal's, which are the
        // audit key's (key service unreachable, no service).
        let e = stopped(Box::new(JournalError::AuditKey(unreachable())));
        assert_eq!(
            (e.return_code(), e.exit_class()),
            (-2301, ExitClass::NoService)
        );
        let e = IssueError::Journal(JournalError::AuditKey(unreachable()));
        assert_eq!(
            (e.return_code(), e.exit_class()),
            (-2301, ExitClass::NoService)
        );
        let e = card_keys(unreachable());
        assert_eq!(
            (e.return_code(), e.exit_class()),
            (-2301, ExitClass::NoService)
        );
        assert_eq!(
            stopped(Box::new(JournalError::AuditKey(unreachable()))).to_string(),
            "personalisation stopped at KeysLoaded: audit key: key service https://keyd:8443 is unreachable: Connection refused (os error 111)"
        );
        let e = stopped("journal is read-only".into());
        assert_eq!((e.return_code(), e.exit_class()), (-999, ExitClass::Other));
    }

    #[test]
    fn the_pauses_double_from_200_ms_to_2_s() {
        let ms: Vec<u128> = Backoff::new().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 2000, 2000, 2000]);
    }

    #[test]
    fn waiting_ends_on_an_answer_or_at_the_bound() {
        // An answer that is a refusal ends the waiting with it.
        let mut calls = 0;
        let r: Result<(), KeyError> = while_unavailable(None, KeyError::is_unavailable, || {
            calls += 1;
            Err(if calls == 1 { unreachable() } else { refused() })
        });
        assert_eq!((r, calls), (Err(refused()), 2));
        // Past the bound: the service's last error, after one call.
        let mut calls = 0;
        let r: Result<(), KeyError> =
            while_unavailable(Some(Instant::now()), KeyError::is_unavailable, || {
                calls += 1;
                Err(unreachable())
            });
        assert_eq!((r, calls), (Err(unreachable()), 1));
        // Anything else is not waited for.
        let mut calls = 0;
        let r = while_unavailable(None, KeyError::is_unavailable, || {
            calls += 1;
            Ok::<_, KeyError>(7)
        });
        assert_eq!((r, calls), (Ok(7), 1));
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
