//! Return codes of the national unified reader interface (PROFILE section 7).

use crate::channel::ChannelError;
use crate::keys::KeyError;
use crate::ssc::SscError;
use crate::transport::TransportError;
use sscard_core::status::StatusWord;

/// −SW read as an unsigned 16-bit number: `6A82` → −27266.
pub fn from_status_word(sw: StatusWord) -> i32 {
    -(sw.0 as i32)
}

fn transport_code(e: &TransportError) -> i32 {
    match e {
        TransportError::NoCard { .. } | TransportError::CardRemoved => -2,
        TransportError::Unresponsive
        | TransportError::Timeout
        | TransportError::MalformedResponse(_) => -4,
        TransportError::ServiceNotRunning
        | TransportError::NoReader
        | TransportError::UnknownReader { .. }
        | TransportError::AmbiguousReader { .. } => -11,
        TransportError::SharingViolation | TransportError::CardReset | TransportError::Pcsc(_) => {
            -12
        }
    }
}

/// The unified return code of an error.
pub fn return_code(e: &SscError) -> i32 {
    match e {
        SscError::Channel(ChannelError::Transport(t)) => transport_code(t),
        SscError::Channel(_) => -4,
        SscError::Keys(k) => match k {
            KeyError::AlgorithmMismatch { .. } => -2202,
            KeyError::NoPsam(_) => -2201,
            // -2203 is the PSAM's own code; a key file or token without RKSSSE is -999.
            KeyError::PsamMissingKey { kid: 0x0A, .. } => -2203,
            KeyError::LevelTooLow { .. } => -24,
            KeyError::PsamChannel(ChannelError::Transport(t)) => match transport_code(t) {
                -2 => -2201,
                c => c,
            },
            _ => -999,
        },
        SscError::Card { sw, .. } => from_status_word(*sw),
        SscError::WrongCard(_) | SscError::AlgorithmNotSupported { .. } | SscError::NotIssued => -1,
        SscError::BadCardId(_) => -20,
        SscError::NotGenuine => -21,
        SscError::WrongPin { .. } => -51,
        SscError::PinLocked => -52,
        SscError::PinLength => -33,
        SscError::PinCancelled => -31,
        SscError::NewPinIsInitial => -36,
        SscError::PinsDiffer => -34,
        SscError::WeakPin(_) | SscError::InvalidData(_) => -23,
        SscError::Malformed { .. } => -999,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_become_negative_codes() {
        assert_eq!(from_status_word(StatusWord(0x6982)), -27010);
        assert_eq!(from_status_word(StatusWord(0x6A82)), -27266);
        assert_eq!(from_status_word(StatusWord(0x6988)), -27016);
        assert_eq!(from_status_word(StatusWord(0x63C2)), -25538);
        assert_eq!(return_code(&SscError::WrongPin { tries_left: 2 }), -51);
        assert_eq!(
            return_code(&SscError::Card {
                command: "READ RECORD",
                sw: StatusWord(0x6A82)
            }),
            -27266
        );
    }
}
