//! PC/SC reader properties that can be checked against what the connection saw: the ATR and
//! the current protocol the reader reports (`SCARD_ATTR_ATR_STRING`,
//! `SCARD_ATTR_CURRENT_PROTOCOL_TYPE`) must be the card's.

use super::check::{Finding, Needs};
use super::failure::CheckFailure;
use super::identity::{ReaderIdentity, Reported};
use super::runner::Runner;
use sscard_core::hexfmt::to_hex;

pub(super) fn run(r: &mut Runner<'_>, identity: &ReaderIdentity) {
    const ID: &str = "reader.properties";
    const NAME: &str = "PC/SC reader properties agree with the card";
    const THRESHOLD: &str =
        "SCARD_ATTR_ATR_STRING = the card's ATR; SCARD_ATTR_CURRENT_PROTOCOL_TYPE = the connection's protocol";
    let atr = to_hex(r.conn().atr());
    let protocol = r.conn().protocol().map(|p| p.name().to_string());
    let reported_atr = identity.get("atr_attribute").cloned();
    let reported_protocol = identity.get("current_protocol").cloned();
    r.check(ID, NAME, Needs::AnyCard, THRESHOLD, |_| {
        let mut compared = Vec::new();
        if let Some(Reported::Value { text, .. }) = &reported_atr {
            if *text != atr {
                return Err(CheckFailure::PropertyDiffers {
                    reported: format!("ATR {text}"),
                    actual: format!("ATR {atr}"),
                });
            }
            compared.push(format!("ATR {atr}"));
        }
        if let (Some(Reported::Value { text, .. }), Some(p)) = (&reported_protocol, &protocol) {
            if text != p {
                return Err(CheckFailure::PropertyDiffers {
                    reported: format!("protocol {text}"),
                    actual: format!("protocol {p}"),
                });
            }
            compared.push(format!("protocol {p}"));
        }
        Ok(if compared.is_empty() {
            Finding::NotApplicable(
                "the reader reports neither SCARD_ATTR_ATR_STRING nor SCARD_ATTR_CURRENT_PROTOCOL_TYPE".into(),
            )
        } else {
            Finding::Pass(format!("{} as the card's", compared.join(", ")))
        })
    });
}
