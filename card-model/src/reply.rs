//! How a command handler ends: a response, a status word, or lost power.

use sscard_core::apdu::Response;
use sscard_core::status::StatusWord;

/// A handler that cannot answer with data answers with a status word, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fail {
    Sw(StatusWord),
    /// The tearing hook cut power during a persistent write.
    PowerLost,
}

impl From<StatusWord> for Fail {
    fn from(sw: StatusWord) -> Self {
        Fail::Sw(sw)
    }
}

pub type Reply = Result<Response, Fail>;

/// `9000` with no data.
pub fn ok() -> Reply {
    Ok(Response::status(StatusWord::OK))
}

/// Data under the profile's Le rule: no Le, `00` (256) or Le ≥ the data returns the data;
/// a smaller Le answers `6Cxx` with xx = the data length.
pub fn data_with_le(data: Vec<u8>, le: Option<usize>) -> Reply {
    match le {
        Some(le) if le < data.len() && le != 256 => {
            Err(StatusWord::new(0x6C, data.len().min(255) as u8).into())
        }
        _ => Ok(Response::new(data, StatusWord::OK)),
    }
}

/// Ends a transmit: response bytes, or `None` when the card went mute.
pub fn finish(reply: Reply) -> Option<Vec<u8>> {
    match reply {
        Ok(r) => Some(r.to_bytes()),
        Err(Fail::Sw(sw)) => Some(sw.to_bytes().to_vec()),
        Err(Fail::PowerLost) => None,
    }
}
