//! Process exit codes and unified return codes of errors (documented in `sscard --help`).

use sscard::channel::ChannelError;
use sscard::keys::KeyError;
use sscard::ssc::SscError;
use sscard::transport::TransportError;

pub const UNEXPECTED_STATUS: i32 = 1;
pub const BAD_INPUT: i32 = 2;
pub const READER: i32 = 3;
pub const CARD: i32 = 4;
pub const NO_PCSCD: i32 = 5;
pub const OTHER: i32 = 6;

/// Bad input found before any card was touched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A failure already reported in the command's output (e.g. failed test cases): exit non-zero
/// without a second message in `--json` mode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// The card answered, but not what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnexpectedStatus(pub String);

fn transport_exit(t: &TransportError) -> i32 {
    match t {
        TransportError::ServiceNotRunning => NO_PCSCD,
        TransportError::NoReader
        | TransportError::UnknownReader { .. }
        | TransportError::AmbiguousReader { .. } => READER,
        _ => CARD,
    }
}

/// (exit code, unified return code) of an error.
pub fn classify(e: &anyhow::Error) -> (i32, i32) {
    if let Some(s) = e.downcast_ref::<SscError>() {
        let code = sscard::unified::return_code(s);
        let exit = match s {
            SscError::Channel(ChannelError::Transport(t)) => transport_exit(t),
            SscError::Channel(_) | SscError::Malformed { .. } => CARD,
            SscError::Keys(KeyError::PsamChannel(ChannelError::Transport(t))) => transport_exit(t),
            SscError::Keys(_) => OTHER,
            SscError::WrongCard(_)
            | SscError::NotIssued
            | SscError::AlgorithmNotSupported { .. }
            | SscError::NotGenuine
            | SscError::BadCardId(_) => CARD,
            SscError::PinLength
            | SscError::PinCancelled
            | SscError::NewPinIsInitial
            | SscError::WeakPin(_)
            | SscError::PinsDiffer
            | SscError::InvalidData(_) => BAD_INPUT,
            SscError::Card { .. } | SscError::WrongPin { .. } | SscError::PinLocked => {
                UNEXPECTED_STATUS
            }
        };
        return (exit, code);
    }
    if let Some(t) = e.downcast_ref::<TransportError>() {
        let code = match transport_exit(t) {
            NO_PCSCD | READER => -11,
            _ => -2,
        };
        return (transport_exit(t), code);
    }
    if let Some(ChannelError::Transport(t)) = e.downcast_ref::<ChannelError>() {
        return (transport_exit(t), -2);
    }
    if let Some(k) = e.downcast_ref::<KeyError>() {
        let code = sscard::unified::return_code(&SscError::Keys(k.clone()));
        let exit = if matches!(
            k,
            KeyError::BadSpec { .. } | KeyError::KeyFile { .. } | KeyError::KeyFileTooOpen { .. }
        ) {
            BAD_INPUT
        } else {
            OTHER
        };
        return (exit, code);
    }
    if e.downcast_ref::<BadInput>().is_some() || e.downcast_ref::<clap::Error>().is_some() {
        return (BAD_INPUT, -23);
    }
    if e.downcast_ref::<UnexpectedStatus>().is_some() || e.downcast_ref::<Reported>().is_some() {
        return (UNEXPECTED_STATUS, -999);
    }
    (OTHER, -999)
}
