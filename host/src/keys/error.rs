use crate::channel::ChannelError;
use sscard_core::crypto::CryptoError;
use sscard_core::status::StatusWord;

/// Why a key source could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key source has no key {kid:02X} ({name})")]
    MissingKey { kid: u8, name: &'static str },
    /// The PSAM answered DES INIT with 6A88: it holds no such key.
    #[error("the PSAM has no key {kid:02X} ({name})")]
    PsamMissingKey { kid: u8, name: &'static str },
    #[error("the PSAM's level ({level}) holds no {name} (KID {kid:02X}): local keys need a city PSAM (-24)")]
    LevelTooLow {
        kid: u8,
        name: &'static str,
        level: u8,
    },
    #[error("the PSAM serves {psam}, the card needs {card} (-2202)")]
    AlgorithmMismatch {
        psam: &'static str,
        card: &'static str,
    },
    #[error("PSAM {command} answered {sw} ({meaning})", meaning = sw.meaning())]
    Psam {
        command: &'static str,
        sw: StatusWord,
    },
    #[error("PSAM: {0}")]
    PsamChannel(#[from] ChannelError),
    #[error("PSAM EF15 is malformed: {0}")]
    BadPsamInfo(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("key file {path}: {detail}")]
    KeyFile { path: String, detail: String },
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run chmod 600 {path}"
    )]
    KeyFileTooOpen { path: String, mode: u32 },
    #[error("bad --keys {spec:?}: {detail}")]
    BadSpec { spec: String, detail: String },
    #[error("no PSAM: {0}")]
    NoPsam(String),
    #[error("{0}")]
    Unsupported(String),
}
