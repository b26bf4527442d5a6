//! The states of a holder's journal row. While a card is being personalised for the holder, the
//! row's state is the card's [`Stage`] — the same states as the typed state machine of
//! [`crate::card`], stored by name. An unknown stored name is an error, never a default.

use std::fmt;
use std::str::FromStr;

/// Where one card is in its personalisation: Blank → Authenticated → KeysLoaded → Written →
/// Verified → Issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// A blank card claimed for the holder; nothing written yet.
    Blank,
    /// The station authenticated with the card's transport key.
    Authenticated,
    /// Every key and the PIN object loaded.
    KeysLoaded,
    /// The holder's records written.
    Written,
    /// The records read back equal to what was written.
    Verified,
    /// END PERSONALISATION done and the acceptance test passed.
    Issued,
}

impl Stage {
    /// Every stage in order.
    pub const ALL: [Stage; 6] = [
        Stage::Blank,
        Stage::Authenticated,
        Stage::KeysLoaded,
        Stage::Written,
        Stage::Verified,
        Stage::Issued,
    ];

    /// The name the journal stores.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Blank => "blank",
            Stage::Authenticated => "authenticated",
            Stage::KeysLoaded => "keys_loaded",
            Stage::Written => "written",
            Stage::Verified => "verified",
            Stage::Issued => "issued",
        }
    }

    /// The stage after this one (`None` after Issued).
    pub fn next(self) -> Option<Stage> {
        let i = Stage::ALL.iter().position(|s| *s == self)?;
        Stage::ALL.get(i + 1).copied()
    }
}

/// A holder row's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Waiting for a card.
    Pending,
    /// A card is (or was) being personalised for the holder, and got this far.
    Card(Stage),
    /// Personalisation failed; the reason is stored with the row.
    Failed,
    /// Found in an unclear state after a crash: an operator decides.
    Review,
}

impl State {
    /// The name the journal stores.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Card(s) => s.as_str(),
            State::Failed => "failed",
            State::Review => "review",
        }
    }

    /// Whether a card is on its way for the holder but not issued (what a restart resumes).
    pub fn in_flight(self) -> bool {
        matches!(self, State::Card(s) if s != Stage::Issued)
    }
}

/// A stored state name that is not one of [`State`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the journal holds the unknown state {0:?}: it was written by another version of sscard or edited by hand")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        match s {
            "pending" => Ok(State::Pending),
            "failed" => Ok(State::Failed),
            "review" => Ok(State::Review),
            _ => Stage::ALL
                .into_iter()
                .find(|st| st.as_str() == s)
                .map(State::Card)
                .ok_or_else(|| UnknownState(s.into())),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for s in [State::Pending, State::Failed, State::Review]
            .into_iter()
            .chain(Stage::ALL.map(State::Card))
        {
            assert_eq!(s.as_str().parse::<State>(), Ok(s));
        }
        assert_eq!(
            "claimd".parse::<State>(),
            Err(UnknownState("claimd".into()))
        );
        assert_eq!(Stage::Written.next(), Some(Stage::Verified));
        assert_eq!(Stage::Issued.next(), None);
        assert!(State::Card(Stage::KeysLoaded).in_flight());
        assert!(!State::Card(Stage::Issued).in_flight() && !State::Pending.in_flight());
    }
}
