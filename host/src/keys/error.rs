use sscard_core::classify::{Classified, ExitClass};
use sscard_core::crypto::CryptoError;
use sscard_core::profile::psam::PsamInfoError;
use sscard_core::profile::{codes, Kid};
use sscard_core::status::StatusWord;
use sscard_transport::TransportError;

use super::ComponentError;

/// What is wrong with a key file, line by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileProblem {
    #[error("{reason}")]
    Unreadable { reason: String },
    #[error("line {line}: expected NAME = HEX")]
    NotAnAssignment { line: usize },
    #[error("line {line}: unknown key name {name:?}")]
    UnknownName { line: usize, name: String },
    /// A character of a key value that is not a hex digit. Key material is never quoted: the
    /// line and the column (1-based, in the line) say where it is.
    #[error("line {line}: the character at column {column} is not a hex digit (key material, not shown)")]
    BadHex { line: usize, column: usize },
    #[error(
        "line {line}: the value has an odd number of hex digits ({digits}): every byte needs two"
    )]
    OddHex { line: usize, digits: usize },
    #[error("line {line}: the value is not hex (key material, not shown)")]
    NotHex { line: usize },
    #[error("line {line}: {source}")]
    BadKey { line: usize, source: CryptoError },
    #[error("line {line}: AUDIT is a 32-byte key (64 hex digits), not {len} bytes")]
    BadAuditKey { line: usize, len: usize },
    #[error("line {line}: REGION is a 6-digit city code such as 110100")]
    BadRegion { line: usize },
}

/// Why there is no PSAM to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoPsamReason {
    #[error("no reader holds a PSAM")]
    NoneFound,
    #[error("{0}")]
    Reader(TransportError),
    #[error("the card in {reader:?} is not a PSAM ({source})")]
    NotAPsam {
        reader: String,
        source: Box<KeyError>,
    },
}

/// Why a key source could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("key source has no key {:02X} ({kid})", kid.id())]
    MissingKey { kid: Kid },
    /// The PSAM answered DES INIT with 6A88: it holds no such key.
    #[error("the PSAM has no key {:02X} ({kid})", kid.id())]
    PsamMissingKey { kid: Kid },
    #[error("the PSAM's level ({level}) holds no {kid} (KID {:02X}): local keys need a city PSAM (-24)", kid.id())]
    LevelTooLow { kid: Kid, level: u8 },
    /// A city PSAM (level 2) serves only its city's cards, a province PSAM (level 1) only its
    /// province's; a national PSAM (0) every card. A card from elsewhere would only fail
    /// internal authentication as "not genuine": refused before DES INIT instead (-24, a PSAM
    /// of a higher level is needed).
    #[error("the PSAM (level {level}, region {psam_region}) does not serve cards of region {card_region}: a PSAM of the card's {scope} or of a higher level is needed (-24)", scope = if *level == 2 { "city" } else { "province" })]
    OtherRegion {
        psam_region: String,
        card_region: String,
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
    PsamTransport(TransportError),
    #[error("{0}")]
    PsamInfo(#[from] PsamInfoError),
    #[error("PSAM DES CRYPT returned a {len}-byte MAC, at least 4 expected")]
    PsamShortMac { len: usize },
    /// A PSAM computes a MAC over one DES CRYPT (PROFILE section 6: IV block ‖ message in one
    /// short APDU, T=0): a longer command cannot be line-protected through it.
    #[error("the PSAM MACs at most {max} bytes of command in one DES CRYPT; this command has {len}: write {data_max} data bytes or fewer at a time")]
    PsamMessageTooLong {
        len: usize,
        max: usize,
        data_max: usize,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("key file {path}: {problem}")]
    KeyFile {
        path: String,
        problem: KeyFileProblem,
    },
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run chmod 600 {path}"
    )]
    KeyFileTooOpen { path: String, mode: u32 },
    #[error("bad --keys {spec:?}: expected {expected}")]
    BadSpec {
        spec: String,
        expected: &'static str,
    },
    #[error("no PSAM: {0}")]
    NoPsam(NoPsamReason),
    /// The source cannot export a key under another (a PSAM): it cannot load keys.
    #[error(
        "{source_name} cannot load key {kid} under TK; personalise with soft: or pkcs11: keys"
    )]
    CannotLoadKeys { source_name: String, kid: Kid },
    #[error("PKCS#11: {operation}: {detail}")]
    Pkcs11 {
        operation: &'static str,
        detail: String,
    },
    #[error("PKCS#11: no token labelled {token:?} in {module}")]
    Pkcs11NoToken { module: String, token: String },
    #[error("mechanism {mechanism} not supported by token {token:?}")]
    Pkcs11Mechanism { mechanism: String, token: String },
    #[error("this build of sscard has no PKCS#11 key source (cargo feature pkcs11)")]
    Pkcs11NotBuilt,
    #[error("this build of sscard has no PC/SC, so no PSAM key source (cargo feature pcsc)")]
    PcscNotBuilt,
    #[error("the token PIN was not given: set SSCARD_PKCS11_PIN or enter it at the prompt")]
    NoTokenPin,
    /// The source has no key for the journal's audit chain.
    #[error("{source_name} has no audit key: add AUDIT = <64 hex digits> to the key file, or create sscard:AUDIT in the token with sscard keys hsm-import")]
    NoAuditKey { source_name: String },
    /// A token key allows more than its role needs: a master that can encrypt, decrypt, wrap,
    /// unwrap, sign or verify gives the level below it in clear to anyone with the token PIN.
    #[error("PKCS#11 key {key} allows {} besides {allowed}: re-create it with sscard keys hsm-import", extra.join(", "))]
    Pkcs11ExtraUsage {
        key: String,
        extra: Vec<&'static str>,
        allowed: &'static str,
    },
    /// A token key lacks the one usage its role needs.
    #[error("PKCS#11 key {key} does not allow {usage}: re-create it with sscard keys hsm-import")]
    Pkcs11MissingUsage { key: String, usage: &'static str },
    /// A token key whose value can leave the token (CKA_SENSITIVE false or CKA_EXTRACTABLE
    /// true) is not used.
    #[error("PKCS#11 key {key} can leave the token ({attribute}): re-create it with sscard keys hsm-import")]
    Pkcs11Exposed {
        key: String,
        attribute: &'static str,
    },
    /// Two keys carry one label: which one the token returns first is not defined.
    #[error("PKCS#11 token holds {count} keys labelled {key}: remove all but one")]
    Pkcs11Duplicate { key: String, count: usize },
    /// The token's `sscard:REGION` object does not hold a 6-digit city code.
    #[error("token {token:?}: sscard:REGION holds {value:?}, not a 6-digit city code; rewrite it with sscard keys hsm-import --region CITY")]
    TokenRegion { token: String, value: String },
    /// A key component of a key ceremony was refused.
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error("this build of sscard has no key-service client (cargo feature remote)")]
    RemoteNotBuilt,
    /// The client's certificate, key or CA file (`SSCARD_REMOTE_CERT`, `_KEY`, `_CA`) is
    /// missing, unreadable or not PEM.
    #[error("key service client {what} {path}: {reason}")]
    RemoteConfig {
        what: &'static str,
        path: String,
        reason: String,
    },
    /// 403: the service knows the client but does not let it do this.
    #[error("key service {url} refused: {message}")]
    RemoteRefused { url: String, message: String },
    /// 401, or the TLS handshake failed (the service refused the client certificate, or the
    /// client did not trust the service's).
    #[error("key service {url} did not accept this client: {detail}")]
    RemoteUnauthorised { url: String, detail: String },
    /// No TCP connection.
    #[error("key service {url} is unreachable: {detail}")]
    RemoteUnreachable { url: String, detail: String },
    #[error("key service {url} did not answer within {seconds} s")]
    RemoteTimedOut { url: String, seconds: u64 },
    /// 429.
    #[error("key service {url} is rate-limiting this client: {message}")]
    RemoteRateLimited { url: String, message: String },
    /// 422: the service's key source failed; `code` is that failure's return code.
    #[error("key service {url}: {message} ({code})")]
    RemoteKey {
        url: String,
        code: i32,
        message: String,
    },
    /// 400, 500 or another status: the service could not serve a well-formed request.
    #[error("key service {url} answered {status}: {message}")]
    RemoteServer {
        url: String,
        status: u16,
        message: String,
    },
    /// An answer that is not the protocol's (not HTTP, not JSON, wrong lengths).
    #[error("key service {url} answered malformed: {detail}")]
    RemoteMalformed { url: String, detail: String },
}

impl KeyError {
    /// Whether the key service is not available right now — no connection, no answer in time,
    /// over its rate, or a server that cannot serve anything at the moment (500: keyd cannot
    /// record in its audit log or its key worker is gone; 502, 503, 504: a proxy in front of it
    /// has no service behind) — as opposed to a source that answered no. A caller that waits
    /// and asks again may succeed; a refusal, a key error or a malformed answer would only be
    /// repeated. Other 5xx (501, 505) say the server will never serve the request: not waited
    /// for. Local sources are never unavailable in this sense.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::RemoteUnreachable { .. }
            | Self::RemoteTimedOut { .. }
            | Self::RemoteRateLimited { .. } => true,
            Self::RemoteServer { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}

impl From<TransportError> for KeyError {
    fn from(e: TransportError) -> Self {
        Self::PsamTransport(e)
    }
}

impl Classified for KeyError {
    fn return_code(&self) -> i32 {
        match self {
            Self::AlgorithmMismatch { .. } => codes::PSAM_ALGORITHM,
            Self::NoPsam(_) => codes::NO_PSAM,
            // -2203 is the PSAM's own code; a key file or token without RKSSSE is -999.
            Self::PsamMissingKey { kid: Kid::Rkssse } => codes::PSAM_LACKS_RKSSSE,
            Self::LevelTooLow { .. } | Self::OtherRegion { .. } => codes::PSAM_LEVEL_TOO_LOW,
            Self::PsamMessageTooLong { .. } => codes::INVALID_DATA,
            Self::PsamInfo(e) => e.return_code(),
            // A PSAM that went away is no PSAM.
            Self::PsamTransport(t) => match t.return_code() {
                codes::NO_CARD => codes::NO_PSAM,
                c => c,
            },
            // The service's key source failed: its own code (-2203, -24, …).
            Self::RemoteKey { code, .. } => *code,
            Self::RemoteUnreachable { .. } => codes::KEY_SERVICE_UNREACHABLE,
            Self::RemoteTimedOut { .. } => codes::KEY_SERVICE_TIMED_OUT,
            Self::RemoteUnauthorised { .. } => codes::KEY_SERVICE_UNAUTHORISED,
            Self::RemoteRefused { .. } => codes::KEY_SERVICE_REFUSED,
            Self::RemoteRateLimited { .. } => codes::KEY_SERVICE_RATE_LIMITED,
            Self::RemoteServer { .. } | Self::RemoteMalformed { .. } => codes::KEY_SERVICE_FAILED,
            _ => codes::UNKNOWN,
        }
    }

    fn exit_class(&self) -> ExitClass {
        match self {
            Self::BadSpec { .. }
            | Self::KeyFile { .. }
            | Self::KeyFileTooOpen { .. }
            | Self::Component(_)
            | Self::PsamMessageTooLong { .. }
            | Self::RemoteConfig { .. } => ExitClass::BadInput,
            // The service cannot serve now: retrying later may succeed. A client it does not
            // accept or whose policy refuses, and a failing service, stay "key source" (6):
            // an administrator has to act.
            Self::RemoteUnreachable { .. }
            | Self::RemoteTimedOut { .. }
            | Self::RemoteRateLimited { .. } => ExitClass::NoService,
            Self::PsamTransport(t) => t.exit_class(),
            _ => ExitClass::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_key_errors() {
        assert_eq!(
            KeyError::PsamMissingKey { kid: Kid::Rkssse }.return_code(),
            -2203
        );
        assert_eq!(
            KeyError::MissingKey { kid: Kid::Rkssse }.return_code(),
            -999
        );
        assert_eq!(
            KeyError::PsamTransport(TransportError::CardRemoved).return_code(),
            -2201
        );
        assert_eq!(
            KeyError::PsamTransport(TransportError::Timeout).return_code(),
            -4
        );
        assert_eq!(
            KeyError::LevelTooLow {
                kid: Kid::EakL,
                level: 1
            }
            .to_string(),
            "the PSAM's level (1) holds no EAK_L (KID 11): local keys need a city PSAM (-24)"
        );
        assert_eq!(
            KeyError::BadSpec {
                spec: "hsm".into(),
                expected: "test"
            }
            .exit_class(),
            ExitClass::BadInput
        );
        assert_eq!(
            KeyError::from(ComponentError::WrongCheckValue {
                component: 2,
                entered: "000000".into()
            })
            .exit_class(),
            ExitClass::BadInput
        );
        assert_eq!(
            KeyError::NoAuditKey {
                source_name: "PSAM 1".into()
            }
            .return_code(),
            -999
        );
    }

    #[test]
    fn codes_of_remote_errors() {
        let url = || "https://k:1".to_string();
        let cases = [
            (KeyError::RemoteNotBuilt, -999, ExitClass::Other),
            (
                KeyError::RemoteConfig {
                    what: "key",
                    path: "/k".into(),
                    reason: "no such file".into(),
                },
                -999,
                ExitClass::BadInput,
            ),
            (
                KeyError::RemoteRefused {
                    url: url(),
                    message: "no".into(),
                },
                -2304,
                ExitClass::Other,
            ),
            (
                KeyError::RemoteUnauthorised {
                    url: url(),
                    detail: "401".into(),
                },
                -2303,
                ExitClass::Other,
            ),
            (
                KeyError::RemoteUnreachable {
                    url: url(),
                    detail: "refused".into(),
                },
                -2301,
                ExitClass::NoService,
            ),
            (
                KeyError::RemoteTimedOut {
                    url: url(),
                    seconds: 5,
                },
                -2302,
                ExitClass::NoService,
            ),
            (
                KeyError::RemoteRateLimited {
                    url: url(),
                    message: "later".into(),
                },
                -2305,
                ExitClass::NoService,
            ),
            (
                KeyError::RemoteKey {
                    url: url(),
                    code: -2203,
                    message: "no RKSSSE".into(),
                },
                -2203,
                ExitClass::Other,
            ),
            (
                KeyError::RemoteServer {
                    url: url(),
                    status: 500,
                    message: "x".into(),
                },
                -2306,
                ExitClass::Other,
            ),
            (
                KeyError::RemoteMalformed {
                    url: url(),
                    detail: "x".into(),
                },
                -2306,
                ExitClass::Other,
            ),
        ];
        for (e, code, class) in cases {
            assert_eq!((e.return_code(), e.exit_class()), (code, class), "{e}");
        }
    }
}
