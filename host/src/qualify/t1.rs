//! T=1 behaviour: the connection runs T=1 as the ATR offers, a case-4 command comes back in one
//! exchange (no `61xx`, which is T=0's), and a response longer than the default IFSC (32 bytes)
//! arrives whole, so the reader chains blocks.

use super::check::{Finding, Needs};
use super::failure::CheckFailure;
use super::runner::Runner;
use sscard_core::atr::Atr;
use sscard_core::status::StatusWord;
use sscard_transport::backend::ActiveProtocol;

/// The default information field size of a T=1 card (ISO 7816-3 11.4.2).
const DEFAULT_IFSC: usize = 32;

/// The T=1 check: `case4` is a case-4 command of the card's application (selected) that
/// answers `9000` with data; `long` one whose answer is longer than 32 bytes. `None` when the
/// card holds no application to send them to: on a T=1 card the check then says so, on another
/// card that it is not T=1 (the reason that holds whatever the card holds).
pub(super) fn run(r: &mut Runner<'_>, commands: Option<(&[u8], &[u8])>) {
    const ID: &str = "card.t1";
    const NAME: &str = "T=1 behaviour";
    const THRESHOLD: &str =
        "T=1 connection as the ATR offers; case 4 in one exchange; a response over IFSC 32 bytes whole";
    let atr = r.conn().atr().to_vec();
    let offered = Atr::parse(&atr).map(|a| a.protocols).unwrap_or_default();
    let connected = r.conn().protocol();
    if connected != Some(ActiveProtocol::T1) && !(connected.is_none() && offered.contains(&1)) {
        let why = match connected {
            Some(p) => format!(
                "the card is connected with {} (ATR offers T={offered:?})",
                p.name()
            ),
            None => "neither SCardStatus nor the ATR says T=1".to_string(),
        };
        r.not_applicable(ID, NAME, Needs::T1Card, THRESHOLD, &why);
        return;
    }
    let Some((case4, long)) = commands else {
        r.not_applicable(
            ID,
            NAME,
            Needs::T1Card,
            THRESHOLD,
            "the card holds neither the SSSE nor the loopback application: no command to send",
        );
        return;
    };
    r.check(ID, NAME, Needs::T1Card, THRESHOLD, |r| {
        if !offered.contains(&1) {
            return Err(CheckFailure::PropertyDiffers {
                reported: "T=1".into(),
                actual: format!("an ATR offering T={offered:?}"),
            });
        }
        let (one, long_len) = r.in_tx(|tx| {
            let before = tx.apdu_count();
            let resp = tx.transmit_raw(case4)?;
            if resp.sw != StatusWord::OK || resp.data.is_empty() {
                return Err(CheckFailure::Response {
                    len: resp.data.len(),
                    sw: resp.sw,
                });
            }
            let one = tx.apdu_count() - before;
            let big = tx.transmit_raw(long)?;
            if big.sw != StatusWord::OK {
                return Err(CheckFailure::Answered(big.sw));
            }
            Ok((one, big.data.len()))
        })?;
        if long_len <= DEFAULT_IFSC {
            return Ok(Finding::NotApplicable(format!(
                "the card's longest answer here is {long_len} bytes, not over IFSC {DEFAULT_IFSC}"
            )));
        }
        Ok(Finding::Pass(format!(
            "T=1 ({}), case 4 in {one} exchange, {long_len}-byte response whole",
            if connected.is_some() {
                "SCardStatus"
            } else {
                "ATR"
            }
        )))
    });
}
