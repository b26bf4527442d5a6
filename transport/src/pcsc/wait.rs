//! Waiting for pcscd's own poll of a reader to see a card leave or arrive, through PC/SC only.
//!
//! "The reader shows no card" is not "pcscd saw the card go". pcsc-lite (1.9.9) keeps two views
//! of a reader: the state clients read, and its event thread's last observation. A client whose
//! reset or power-up finds the card gone writes "absent" into the first without the event thread
//! looking; when the card comes back before the event thread's next poll, that poll finds a card,
//! as it believed all along, and reports nothing: the reader reads empty with the card in it, or
//! the new card is never powered up ("the card does not answer"). Only the event thread counts
//! insertions and removals — the reader's event count, the high 16 bits of `dwEventState` — so
//! a change is seen when the count moved *and* the state is the one awaited. A card is taken
//! out, the removal waited for, only then put back, and the insertion waited for: each side of
//! the change is one the event thread itself saw.

use crate::TransportError;
use pcsc::{Context, ReaderState, State};
use std::ffi::CString;
use std::time::{Duration, Instant};

/// pcscd's view of a reader at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderView {
    /// pcscd shows a card in the reader.
    pub present: bool,
    /// The insertions and removals pcscd's event thread has counted in this reader (16 bits,
    /// wrapping): it moves only when the event thread itself saw the card come or go.
    pub events: u32,
}

impl std::fmt::Display for ReaderView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, event count {}",
            if self.present { "a card" } else { "no card" },
            self.events
        )
    }
}

/// The change of a reader to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardChange {
    /// The card left the reader.
    Removed,
    /// A card arrived in the reader.
    Inserted,
}

impl CardChange {
    /// What was awaited, in the words of an error message.
    pub fn awaited(self) -> &'static str {
        match self {
            Self::Removed => "the card's removal",
            Self::Inserted => "a card's insertion",
        }
    }

    fn reached(self, view: ReaderView, since: ReaderView) -> bool {
        view.events != since.events && view.present == (self == Self::Inserted)
    }
}

fn reader_state(reader: &str) -> Result<ReaderState, TransportError> {
    let name = CString::new(reader).map_err(|_| TransportError::UnknownReader {
        wanted: reader.into(),
        present: String::new(),
    })?;
    Ok(ReaderState::new(name, State::UNAWARE))
}

fn view_of(state: &ReaderState) -> Result<ReaderView, TransportError> {
    let flags = state.event_state();
    if flags.intersects(State::UNKNOWN | State::UNAVAILABLE) {
        return Err(TransportError::NoReader);
    }
    Ok(ReaderView {
        present: flags.contains(State::PRESENT),
        events: state.event_count(),
    })
}

/// pcscd's view of `reader` now.
pub fn reader_view(ctx: &Context, reader: &str) -> Result<ReaderView, TransportError> {
    let mut states = [reader_state(reader)?];
    ctx.get_status_change(Duration::ZERO, &mut states)
        .map_err(super::checked)?;
    view_of(&states[0])
}

/// Waits until pcscd's event thread has seen `change` in `reader` since `since` (a view taken
/// before the card was moved): the event count moved and the reader shows the card gone
/// ([`CardChange::Removed`]) or there ([`CardChange::Inserted`]). Returns the view then.
///
/// Bounded by `timeout`: [`TransportError::CardChangeUnseen`] names the change awaited and
/// what pcscd showed last. The view is read afresh at least every 200 ms, as a client's own
/// write of the state wakes no one.
pub fn wait_for_card_change(
    ctx: &Context,
    reader: &str,
    since: ReaderView,
    change: CardChange,
    timeout: Duration,
) -> Result<ReaderView, TransportError> {
    const LOOK_AGAIN: Duration = Duration::from_millis(200);
    let start = Instant::now();
    let mut states = [reader_state(reader)?];
    let mut last = since;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match ctx.get_status_change(left.min(LOOK_AGAIN), &mut states) {
            Ok(()) => {
                last = view_of(&states[0])?;
                if change.reached(last, since) {
                    return Ok(last);
                }
                states[0].sync_current_state();
            }
            Err(pcsc::Error::Timeout) => {}
            // pcscd gone under the wait is ServiceNotRunning, not a card that does not answer.
            Err(e) => return Err(super::checked(e)),
        }
        if left.is_zero() {
            return Err(TransportError::CardChangeUnseen {
                reader: reader.into(),
                awaited: change.awaited(),
                waited_ms: start.elapsed().as_millis() as u64,
                shown: format!("{since} before, {last} last").into(),
            });
        }
    }
}

/// One reader watched across a card's moves: each wait is for a change since the view the
/// last one ended with (or the one taken at [`ReaderWatch::new`] / [`ReaderWatch::mark`]).
pub struct ReaderWatch {
    ctx: Context,
    reader: String,
    last: ReaderView,
}

impl ReaderWatch {
    /// Watches `reader` from its view now.
    pub fn new(ctx: &Context, reader: &str) -> Result<Self, TransportError> {
        Ok(Self {
            last: reader_view(ctx, reader)?,
            ctx: ctx.clone(),
            reader: reader.into(),
        })
    }

    /// Takes the view again: the next wait is for a change from now.
    pub fn mark(&mut self) -> Result<ReaderView, TransportError> {
        self.last = reader_view(&self.ctx, &self.reader)?;
        Ok(self.last)
    }

    /// Waits (within `timeout`) for pcscd's event thread to see `change` since the last view
    /// ([`wait_for_card_change`]); that view becomes the last.
    pub fn wait(
        &mut self,
        change: CardChange,
        timeout: Duration,
    ) -> Result<ReaderView, TransportError> {
        self.last = wait_for_card_change(&self.ctx, &self.reader, self.last, change, timeout)?;
        Ok(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(present: bool, events: u32) -> ReaderView {
        ReaderView { present, events }
    }

    #[test]
    fn a_change_is_seen_only_when_the_event_thread_counted_it_and_the_state_agrees() {
        let before = v(true, 4);
        // The reader reads empty, but the event thread did not count a removal: a client's
        // write, not the event thread's observation.
        assert!(!CardChange::Removed.reached(v(false, 4), before));
        // Counted, and empty.
        assert!(CardChange::Removed.reached(v(false, 5), before));
        // Counted twice (gone and back) before anyone looked: not "removed" now.
        assert!(!CardChange::Removed.reached(v(true, 6), before));
        let gone = v(false, 5);
        assert!(!CardChange::Inserted.reached(v(true, 5), gone));
        assert!(CardChange::Inserted.reached(v(true, 6), gone));
    }

    #[test]
    fn an_unseen_change_names_what_was_awaited_and_what_pcscd_showed() {
        use sscard_core::classify::{Classified, ExitClass};
        let e = TransportError::CardChangeUnseen {
            reader: "Virtual PCD 00 00".into(),
            awaited: CardChange::Inserted.awaited(),
            waited_ms: 10_000,
            shown: format!("{} before, {} last", v(false, 7), v(false, 7)).into(),
        };
        assert_eq!(
            e.to_string(),
            "Virtual PCD 00 00: pcscd did not see a card's insertion within 10000 ms (it showed \
             no card, event count 7 before, no card, event count 7 last): check that the card \
             was really taken out or put in, and for a virtual reader that its card server runs"
        );
        assert_eq!((e.return_code(), e.exit_class()), (-4, ExitClass::Card));
    }
}
