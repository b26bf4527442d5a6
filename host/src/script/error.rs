//! Why a script does not parse, or a step fails.

use crate::keys::KeyError;
use sscard_core::crypto::CryptoError;
use sscard_core::hexfmt::HexError;
use sscard_core::profile::commands::CommandError;
use sscard_core::status::StatusWord;
use sscard_core::tlv::TlvError;
use sscard_transport::TransportError;
use std::sync::Arc;

/// What is wrong with a script line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptProblem {
    #[error("status word pattern {text:?} needs 4 characters (e.g. 9000, 61xx, 63Cx)")]
    SwPatternLength { text: String },
    #[error("{ch:?} in status word pattern {text:?} is not hex, x or ?")]
    SwPatternChar { ch: char, text: String },
    #[error("data pattern {text:?} has an odd number of digits")]
    DataPatternOdd { text: String },
    #[error("data pattern {text:?} is not ASCII")]
    DataPatternNotAscii { text: String },
    #[error("{pair:?} in data pattern {text:?} is not a hex byte or ??")]
    DataPatternByte { pair: String, text: String },
    #[error("{word:?} is not a key id (IRK, RKSSSE, UK_N, EAK_L, UK_L, RPK, UPK, TK, PIN or the hex byte of one)")]
    NotAKeyId { word: String },
    #[error("missing key id")]
    MissingKeyId,
    #[error("p2 needs a byte (two hex digits, such as 00)")]
    MissingP2,
    #[error("{word:?} is not a P2 byte (two hex digits, such as 00)")]
    NotP2 { word: String },
    #[error("{word:?} is not a variable name")]
    NotAVariable { word: String },
    #[error("{word:?}: {source}")]
    BadHex { word: String, source: HexError },
    /// Bad hex in data that may be secret (a PIN or key command's data, a macro's data, a
    /// variable's value): the word and the offending character are not quoted.
    #[error("{preview}: {reason}")]
    BadSecretHex { preview: String, reason: String },
    #[error(transparent)]
    Hex(#[from] HexError),
    #[error("unexpected {word:?} after the macro's arguments")]
    Unexpected { word: String },
    #[error("save takes $name or $name[a..b], not {text:?}")]
    SaveSyntax { text: String },
    #[error("bad range in {text:?}")]
    RangeSyntax { text: String },
    #[error("bad range start in {text:?}")]
    RangeStart { text: String },
    #[error("bad range end in {text:?}")]
    RangeEnd { text: String },
    #[error("empty range in {text:?}")]
    EmptyRange { text: String },
    #[error("tries {word:?} is not a number")]
    NotTries { word: String },
    #[error("set $name = HEX")]
    SetSyntax,
    #[error("mac needs a 4-byte header")]
    MacNeedsHeader,
    #[error("{word:?} is not a 4-byte header")]
    NotAHeader { word: String },
    #[error("empty step")]
    EmptyStep,
    #[error("test needs a name")]
    TestNeedsName,
    #[error("only takes 3des or sm4, not {word:?}")]
    OnlyWhich { word: String },
    #[error("only belongs inside a test")]
    OnlyOutsideTest,
    #[error("includes nest deeper than {max}")]
    IncludeTooDeep { max: usize },
    #[error("cannot include {path}: {reason}")]
    CannotInclude { path: String, reason: String },
    /// A script file larger than [`MAX_SCRIPT_BYTES`](super::parse::MAX_SCRIPT_BYTES).
    #[error("{path} holds more than {limit} bytes, the most read for an APDU script")]
    TooLarge { path: String, limit: u64 },
    /// A script whose includes add up to more than
    /// [`MAX_SCRIPT_TOTAL_BYTES`](super::parse::MAX_SCRIPT_TOTAL_BYTES).
    #[error("the script and its includes hold more than {limit} bytes in all (an include repeated too often?)")]
    IncludesTooLarge { limit: u64 },
    #[error("{reason}")]
    Unreadable { reason: String },
}

/// A script error with its place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {problem}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub problem: ScriptProblem,
}

/// Why the card could not tell what it is before the tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardFactsError {
    #[error("reset: {0}")]
    Reset(TransportError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("SELECT SSSE answered {sw}: not a social security card")]
    NotSsc { sw: StatusWord },
    #[error("{0}")]
    Fci(TlvError),
    #[error(transparent)]
    Algorithm(#[from] CryptoError),
    #[error("EF05 record 1: {0}")]
    Ef05(TlvError),
    #[error("EF05 record 1 is not 16 bytes")]
    CardIdLength,
}

/// What went wrong in a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepProblem {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("reset: {0}")]
    Reset(TransportError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("unknown variable ${name}")]
    UnknownVariable { name: String },
    #[error("the script talks to @psam but no PSAM is attached")]
    NoPsam,
    #[error("GET CHALLENGE answered {sw} with {len} bytes")]
    Challenge { sw: StatusWord, len: usize },
    #[error("INTERNAL AUTHENTICATE: the cryptogram does not match the key source")]
    InternalAuthentication,
    #[error("expected {expected}, got {got} ({meaning})", meaning = got.meaning())]
    StatusWord { expected: String, got: StatusWord },
    #[error("expected data {expected}, got {got}")]
    Data { expected: String, got: String },
    #[error("save ${name}[{start}..{end}]: the response has {len} bytes")]
    SaveRange {
        name: String,
        start: usize,
        end: usize,
        len: usize,
    },
}

/// A failed step with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct StepError {
    pub file: Arc<str>,
    pub line: usize,
    pub problem: StepProblem,
}

impl sscard_core::classify::Classified for ParseError {
    fn return_code(&self) -> i32 {
        sscard_core::profile::codes::INVALID_DATA
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        sscard_core::classify::ExitClass::BadInput
    }
}
