//! The error taxonomy every sscard library shares: an error knows its unified-interface return
//! code (PROFILE section 7, [`crate::profile::codes`]) and the class of process exit it means.
//! Each library error type answers both in its own `impl`, once; front ends (the CLI, the C
//! library) only render them.

/// What kind of failure an error is, for a process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitClass {
    /// The card answered, but not what was expected (a status word, a refused PIN or
    /// authentication).
    UnexpectedStatus,
    /// Bad input found before or without touching a card: hex, APDUs, arguments, files.
    BadInput,
    /// No reader, an unknown or ambiguous reader name.
    Reader,
    /// No card, a card removed, mute, not genuine, or not the card wanted.
    Card,
    /// A service is away: pcscd is not running, or a key service is unreachable, timed out or
    /// rate-limiting. Trying again later may work.
    NoService,
    /// The key source, or anything else.
    Other,
    /// A command that changes the card got no answer: the card may or may not have changed.
    OutcomeUnknown,
}

impl ExitClass {
    /// The process exit code (`sscard --help` lists them).
    pub const fn exit_code(self) -> i32 {
        match self {
            Self::UnexpectedStatus => 1,
            Self::BadInput => 2,
            Self::Reader => 3,
            Self::Card => 4,
            Self::NoService => 5,
            Self::Other => 6,
            Self::OutcomeUnknown => 7,
        }
    }
}

/// An error that knows its unified return code and its exit class.
pub trait Classified {
    /// The unified interface's return code (PROFILE section 7).
    fn return_code(&self) -> i32;
    /// The class of process exit.
    fn exit_class(&self) -> ExitClass;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let all = [
            ExitClass::UnexpectedStatus,
            ExitClass::BadInput,
            ExitClass::Reader,
            ExitClass::Card,
            ExitClass::NoService,
            ExitClass::Other,
            ExitClass::OutcomeUnknown,
        ];
        assert_eq!(all.map(ExitClass::exit_code), [1, 2, 3, 4, 5, 6, 7]);
    }
}
