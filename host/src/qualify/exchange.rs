//! One exchange with what the check expects of it: the status word (`expect_raw` as sent,
//! `expect_sw` after completing a T=0 answer as a terminal does) and the length of the data.

use super::failure::CheckFailure;
use sscard_core::apdu::{Command, Response};
use sscard_core::profile::commands;
use sscard_core::status::StatusWord;
use sscard_transport::Transaction;

/// The bytes of `command`: one of the profile's builders (`sscard_core::profile::commands`),
/// or one made from it with another Le, as the checks send it raw. A builder's command always
/// encodes; were one not to, the empty APDU sent fails its check loudly, never passes.
pub(super) fn encoded(command: Command) -> Vec<u8> {
    command.to_bytes().unwrap_or_default()
}

/// Le as a short APDU's byte gives it: `00` is 256.
pub(super) fn le_of(byte: u8) -> usize {
    if byte == 0 {
        256
    } else {
        usize::from(byte)
    }
}

/// `r` when it answered `sw`.
fn with_status(
    command: &'static str,
    r: Response,
    sw: StatusWord,
) -> Result<Response, CheckFailure> {
    if r.sw != sw {
        return Err(CheckFailure::Status {
            command,
            expected: sw,
            got: r.sw,
        });
    }
    Ok(r)
}

/// Sends `apdu` as it is and expects `sw` (a `61xx` or `6Cxx` too: no T=0 completion).
pub(super) fn expect_raw(
    tx: &mut Transaction<'_>,
    command: &'static str,
    apdu: &[u8],
    sw: StatusWord,
) -> Result<Response, CheckFailure> {
    with_status(command, tx.transmit_raw(apdu)?, sw)
}

/// Sends `apdu` and completes a T=0 answer as a terminal does: `61xx` fetched with GET
/// RESPONSE, `6Cxx` sent again with Le xx. A T=1 card never answers either; the checks of those
/// two paths (`ssse.6cxx`, `ssse.61xx`) send raw instead.
pub(super) fn complete(tx: &mut Transaction<'_>, apdu: &[u8]) -> Result<Response, CheckFailure> {
    let r = tx.transmit_raw(apdu)?;
    match r.sw.sw1() {
        0x61 => {
            let rest = commands::get_response(le_of(r.sw.sw2())).command;
            Ok(tx.transmit_raw(&encoded(rest))?)
        }
        0x6C if apdu.len() >= 5 => {
            let mut again = apdu.to_vec();
            if let Some(le) = again.last_mut() {
                *le = r.sw.sw2();
            }
            Ok(tx.transmit_raw(&again)?)
        }
        _ => Ok(r),
    }
}

/// Sends `apdu`, completing a T=0 answer, and expects `sw`.
pub(super) fn expect_sw(
    tx: &mut Transaction<'_>,
    command: &'static str,
    apdu: &[u8],
    sw: StatusWord,
) -> Result<Response, CheckFailure> {
    with_status(command, complete(tx, apdu)?, sw)
}

pub(super) fn expect_len(
    command: &'static str,
    r: &Response,
    len: usize,
) -> Result<(), CheckFailure> {
    if r.data.len() != len {
        return Err(CheckFailure::Length {
            command,
            got: r.data.len(),
            expected: len,
        });
    }
    Ok(())
}
