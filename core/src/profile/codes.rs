//! Return codes of the national unified reader interface (PROFILE section 7), and sscard's own
//! −23xx for a key service where the profile is silent. Library errors name theirs through
//! [`crate::classify::Classified`]; this is the table they pick from.

use crate::status::StatusWord;

pub const SUCCESS: i32 = 0;
pub const WRONG_CARD: i32 = -1;
pub const NO_CARD: i32 = -2;
pub const NOT_POWERED: i32 = -3;
pub const NO_ANSWER: i32 = -4;
pub const READER_CONNECTION: i32 = -11;
pub const NO_CONNECTION: i32 = -12;
pub const BAD_CARD_ID: i32 = -20;
pub const NOT_GENUINE: i32 = -21;
pub const DATA_MISMATCH: i32 = -22;
pub const INVALID_DATA: i32 = -23;
pub const PSAM_LEVEL_TOO_LOW: i32 = -24;
pub const HSM_DISAGREES: i32 = -25;
pub const PIN_CANCELLED: i32 = -31;
pub const PIN_TIMEOUT: i32 = -32;
pub const PIN_LENGTH: i32 = -33;
pub const PINS_DIFFER: i32 = -34;
pub const INITIAL_PIN: i32 = -35;
pub const NEW_PIN_IS_INITIAL: i32 = -36;
pub const WRONG_PIN: i32 = -51;
pub const PIN_LOCKED: i32 = -52;
pub const NO_PSAM: i32 = -2201;
pub const PSAM_ALGORITHM: i32 = -2202;
pub const PSAM_LACKS_RKSSSE: i32 = -2203;

// The encryption machine reached over the network (`--keys remote:`, `sscard keyd`): the
// profile has no code for a key service, so these are sscard's own, a range beside the PSAM's
// −22xx. A failure of the service's key source itself (HTTP 422) keeps that source's code.

/// No connection to the key service (TCP refused, no route, name not resolved).
pub const KEY_SERVICE_UNREACHABLE: i32 = -2301;
/// The key service did not answer in time.
pub const KEY_SERVICE_TIMED_OUT: i32 = -2302;
/// The key service did not accept this client: the TLS handshake failed (either side's
/// certificate) or it answered 401 (no policy rule names the client's certificate).
pub const KEY_SERVICE_UNAUTHORISED: i32 = -2303;
/// The key service's policy does not let this client do this (403).
pub const KEY_SERVICE_REFUSED: i32 = -2304;
/// The key service is rate-limiting this client (429): retry later.
pub const KEY_SERVICE_RATE_LIMITED: i32 = -2305;
/// The key service failed (5xx), refused the request as malformed (400), or answered
/// something that is not the protocol.
pub const KEY_SERVICE_FAILED: i32 = -2306;

pub const UNKNOWN: i32 = -999;

/// Any other status word from the card: −SW read as an unsigned 16-bit number, `6A82` → −27266.
pub fn from_status_word(sw: StatusWord) -> i32 {
    -(sw.0 as i32)
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
    }
}
