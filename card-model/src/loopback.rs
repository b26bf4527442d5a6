//! The loopback test application: lets `sscard reader-test` qualify readers and drivers.
//!
//! AID `F0 53 53 43 41 52 44 4C 42` ("\xF0SSCARDLB"), CLA `80`:
//!
//! | INS | case | what |
//! |---|---|---|
//! | `10` | 1 | NOOP: `9000` |
//! | `12` | 2 | RETURN: Le bytes of the pattern `i mod 251` (short or extended Le) |
//! | `14` | 3 | ACCEPT: takes the data, `9000` |
//! | `16` | 4 | ECHO: returns the data |
//! | `18` | 1 | DELAY: answers `9000` after P1P2 milliseconds |
//! | `1A` | 2 | LAST: the previous command exactly as received |
//! | `1C` | 2 | T0: P1 `01` answers `61xx` with P2 bytes waiting for GET RESPONSE; P1 `02` answers `6Cxx` (xx = P2) unless Le = P2, then P2 pattern bytes |
//! | `C0` (CLA `00`) | 2 | GET RESPONSE for `1C 01` |

use crate::card::Card;
use sscard_core::apdu::{Command, Response};
use sscard_core::status::StatusWord;
use std::time::Duration;

/// The loopback application's AID.
pub const AID: [u8; 9] = [0xF0, 0x53, 0x53, 0x43, 0x41, 0x52, 0x44, 0x4C, 0x42];
/// ATR when served alone: T=1, historical bytes "SSCARDLB", TCK.
pub const ATR: [u8; 12] = [
    0x3B, 0x88, 0x01, 0x53, 0x53, 0x43, 0x41, 0x52, 0x44, 0x4C, 0x42, 0x93,
];

/// Most data bytes an answer carries (a vpcd frame holds 65 535 bytes, the status word included).
pub const MAX_DATA: usize = 65_533;

/// The pattern byte at position `i` (251 is prime, so shifted data is caught).
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// The loopback application.
#[derive(Default)]
pub struct Loopback {
    last: Vec<u8>,
    pending: Option<Vec<u8>>,
}

impl Loopback {
    pub fn new() -> Self {
        Self::default()
    }

    /// Processes one command (the caller has parsed nothing yet).
    pub fn process(&mut self, apdu: &[u8]) -> Response {
        let previous = std::mem::replace(&mut self.last, apdu.to_vec());
        let cmd = match Command::parse(apdu) {
            Ok(c) => c,
            Err(_) => return Response::status(StatusWord::WRONG_LENGTH),
        };
        let pending = self.pending.take();
        match (cmd.cla, cmd.ins) {
            (0x00, 0xA4) if cmd.p1 == 0x04 && cmd.data == AID => Response::status(StatusWord::OK),
            (0x00, 0xA4) => Response::status(StatusWord::FILE_NOT_FOUND),
            (0x00, 0xC0) => match pending {
                Some(data) if cmd.le == Some(data.len()) => Response::new(data, StatusWord::OK),
                Some(data) => {
                    let sw = StatusWord::new(0x6C, data.len() as u8);
                    self.pending = Some(data);
                    Response::status(sw)
                }
                None => Response::status(StatusWord::CONDITIONS_NOT_SATISFIED),
            },
            // The answer must fit one vpcd frame (65 535 bytes with the status word).
            (0x80, 0x12) if cmd.le.unwrap_or(0) > MAX_DATA => {
                Response::status(StatusWord::WRONG_LENGTH)
            }
            (0x80, 0x16) if cmd.data.len() > MAX_DATA => Response::status(StatusWord::WRONG_LENGTH),
            (0x80, 0x10) => Response::status(StatusWord::OK),
            (0x80, 0x12) => match cmd.le {
                Some(n) => Response::new((0..n).map(pattern).collect(), StatusWord::OK),
                None => Response::status(StatusWord::WRONG_LENGTH),
            },
            (0x80, 0x14) => Response::status(StatusWord::OK),
            (0x80, 0x16) => Response::new(cmd.data.clone(), StatusWord::OK),
            (0x80, 0x18) => {
                std::thread::sleep(Duration::from_millis(
                    u16::from_be_bytes([cmd.p1, cmd.p2]) as u64
                ));
                Response::status(StatusWord::OK)
            }
            (0x80, 0x1A) => Response::new(previous, StatusWord::OK),
            (0x80, 0x1C) => {
                let n = cmd.p2 as usize;
                let data: Vec<u8> = (0..n).map(pattern).collect();
                match cmd.p1 {
                    0x01 => {
                        self.pending = Some(data);
                        Response::status(StatusWord::new(0x61, n as u8))
                    }
                    0x02 if cmd.le == Some(n) => Response::new(data, StatusWord::OK),
                    0x02 => Response::status(StatusWord::new(0x6C, n as u8)),
                    _ => Response::status(StatusWord::INCORRECT_P1P2),
                }
            }
            (0x80, _) => Response::status(StatusWord::INS_NOT_SUPPORTED),
            _ => Response::status(StatusWord::CLA_NOT_SUPPORTED),
        }
    }
}

/// The loopback application alone on a card.
pub struct LoopbackCard {
    app: Loopback,
}

impl LoopbackCard {
    pub fn new() -> Self {
        Self {
            app: Loopback::new(),
        }
    }
}

impl Default for LoopbackCard {
    fn default() -> Self {
        Self::new()
    }
}

impl Card for LoopbackCard {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }
    fn reset(&mut self) {
        self.app = Loopback::new();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        Some(self.app.process(apdu).to_bytes())
    }
}

/// A card with the social security application and the loopback application side by side:
/// SELECT by AID switches between them.
pub struct WithLoopback<C: Card> {
    card: C,
    loopback: Loopback,
    loopback_active: bool,
}

impl<C: Card> WithLoopback<C> {
    pub fn new(card: C) -> Self {
        Self {
            card,
            loopback: Loopback::new(),
            loopback_active: false,
        }
    }
}

impl<C: Card> Card for WithLoopback<C> {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn reset(&mut self) {
        self.loopback = Loopback::new();
        self.loopback_active = false;
        self.card.reset();
    }
    fn power_off(&mut self) {
        self.loopback_active = false;
        self.card.power_off();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let is_select_by_aid =
            apdu.len() > 5 && apdu[0] == 0x00 && apdu[1] == 0xA4 && apdu[2] == 0x04;
        if is_select_by_aid {
            self.loopback_active = apdu[5..].starts_with(&AID) && apdu[4] as usize == AID.len();
        }
        if self.loopback_active {
            Some(self.loopback.process(apdu).to_bytes())
        } else {
            self.card.transmit(apdu)
        }
    }
    fn arm_tearing(&mut self, nth_write: u64) -> bool {
        self.card.arm_tearing(nth_write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(c: &mut impl Card, apdu: &[u8]) -> Vec<u8> {
        c.transmit(apdu).unwrap()
    }

    #[test]
    fn every_instruction() {
        let mut c = LoopbackCard::new();
        assert_eq!(
            tx(
                &mut c,
                &[
                    0x00, 0xA4, 0x04, 0x00, 0x09, 0xF0, 0x53, 0x53, 0x43, 0x41, 0x52, 0x44, 0x4C,
                    0x42
                ]
            ),
            vec![0x90, 0]
        );
        assert_eq!(tx(&mut c, &[0x80, 0x10, 0, 0]), vec![0x90, 0]);
        assert_eq!(tx(&mut c, &[0x80, 0x12, 0, 0, 3]), vec![0, 1, 2, 0x90, 0]);
        assert_eq!(
            tx(&mut c, &[0x80, 0x16, 0, 0, 2, 7, 8, 0]),
            vec![7, 8, 0x90, 0]
        );
        assert_eq!(
            tx(&mut c, &[0x80, 0x1A, 0, 0, 0]),
            vec![0x80, 0x16, 0, 0, 2, 7, 8, 0, 0x90, 0]
        );
        assert_eq!(tx(&mut c, &[0x80, 0x1C, 1, 3, 0]), vec![0x61, 3]);
        assert_eq!(tx(&mut c, &[0x00, 0xC0, 0, 0, 2]), vec![0x6C, 3]);
        assert_eq!(tx(&mut c, &[0x00, 0xC0, 0, 0, 3]), vec![0, 1, 2, 0x90, 0]);
        assert_eq!(tx(&mut c, &[0x80, 0x1C, 2, 4, 1]), vec![0x6C, 4]);
        assert_eq!(
            tx(&mut c, &[0x80, 0x1C, 2, 4, 4]),
            vec![0, 1, 2, 3, 0x90, 0]
        );
        let r = tx(&mut c, &[0x80, 0x12, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(r.len(), 302, "extended Le 300");
        assert_eq!(r[250..252], [250, 0], "the pattern wraps at 251");
        assert_eq!(tx(&mut c, &[0x80, 0x55, 0, 0]), vec![0x6D, 0]);
        assert_eq!(
            LoopbackCard::new()
                .atr()
                .iter()
                .skip(1)
                .fold(0, |a, b| a ^ b),
            0,
            "TCK holds"
        );
    }

    #[test]
    fn beside_the_ssc() {
        let (ssc, _) = crate::test_pair(sscard_core::crypto::Algorithm::Tdes);
        let mut c = WithLoopback::new(ssc);
        let mut sel = vec![0x00, 0xA4, 0x04, 0x00, 0x09];
        sel.extend_from_slice(&AID);
        assert_eq!(tx(&mut c, &sel), vec![0x90, 0]);
        assert_eq!(tx(&mut c, &[0x80, 0x16, 0, 0, 1, 9]), vec![9, 0x90, 0]);
        let mut ssse = vec![0x00, 0xA4, 0x04, 0x00, 0x0F];
        ssse.extend_from_slice(&sscard_core::profile::SSSE_AID);
        assert_eq!(tx(&mut c, &ssse), vec![0x90, 0]);
        assert_eq!(
            tx(&mut c, &[0x00, 0xB2, 0x07, 0x2C, 0x00])[..2],
            [0x07, 0x09]
        );
    }
}
