//! VERIFY, CHANGE PIN, RELOAD PIN, UNBLOCK PIN. The PIN is key object `30` whose value holds
//! its digits in ASCII; it shares the try-counter logic of the keys.

use super::{key_in_scope, OnWrong, Ssc};
use crate::reply::{ok, Fail, Reply};
use sscard_core::apdu::Command;
use sscard_core::crypto::ct_eq;
use sscard_core::profile::{Df, Kid};
use sscard_core::status::StatusWord;
use zeroize::Zeroizing;

/// Decodes a PIN in BCD (2–6 digits, an odd count padded with `F`): `6A80` when malformed.
pub fn decode_pin(bcd: &[u8]) -> Result<Zeroizing<Vec<u8>>, Fail> {
    if bcd.is_empty() || bcd.len() > 3 {
        return Err(StatusWord::WRONG_DATA.into());
    }
    let mut digits = Zeroizing::new(Vec::with_capacity(6));
    for (i, b) in bcd.iter().enumerate() {
        for (j, nibble) in [b >> 4, b & 0x0F].into_iter().enumerate() {
            match nibble {
                0..=9 => digits.push(b'0' + nibble),
                0x0F if i == bcd.len() - 1 && j == 1 => {}
                _ => return Err(StatusWord::WRONG_DATA.into()),
            }
        }
    }
    if digits.len() < 2 {
        return Err(StatusWord::WRONG_DATA.into());
    }
    Ok(digits)
}

/// The longest PIN the card stores, in digits (PROFILE section 3).
const MAX_PIN_DIGITS: usize = 6;

/// A PIN as a fixed-size block: its length, then its digits padded with zeros, so that two PINs
/// compare in constant time whatever their lengths. `None` beyond [`MAX_PIN_DIGITS`].
fn pin_block(digits: &[u8]) -> Option<Zeroizing<[u8; MAX_PIN_DIGITS + 1]>> {
    let mut block = Zeroizing::new([0u8; MAX_PIN_DIGITS + 1]);
    block[0] = u8::try_from(digits.len()).ok()?;
    block.get_mut(1..=digits.len())?.copy_from_slice(digits);
    Some(block)
}

/// Whether `candidate` is the stored PIN. Both are compared as whole padded blocks with the
/// lengths folded in, so a length mismatch takes as long as a wrong digit and leaks nothing.
fn pin_matches(stored: &[u8], candidate: &[u8]) -> bool {
    let empty = Zeroizing::new([0xFFu8; MAX_PIN_DIGITS + 1]);
    let stored_block = pin_block(stored);
    let candidate_block = pin_block(candidate);
    let both_fit = stored_block.is_some() & candidate_block.is_some();
    let a = stored_block.as_deref().unwrap_or(&empty);
    let b = candidate_block.as_deref().unwrap_or(&empty);
    both_fit & ct_eq(a, b)
}

impl Ssc {
    fn pin_in_scope(&self) -> Result<(), Fail> {
        if self.mem.key(Kid::Pin).is_none()
            || !key_in_scope(Kid::Pin, self.vol.df.unwrap_or(Df::Mf))
        {
            return Err(StatusWord::REF_DATA_NOT_FOUND.into());
        }
        if self.mem.key(Kid::Pin).is_some_and(|s| s.blocked()) {
            return Err(StatusWord::AUTH_BLOCKED.into());
        }
        Ok(())
    }

    /// Compares a candidate under the PIN try counter.
    fn check_pin(&mut self, candidate: &[u8]) -> Result<(), Fail> {
        self.pin_in_scope()?;
        let matches = self
            .mem
            .key(Kid::Pin)
            .is_some_and(|s| pin_matches(&s.value.0, candidate));
        self.counted_check(Kid::Pin, matches, OnWrong::TriesLeft)
    }

    fn set_pin(&mut self, digits: &[u8]) -> Result<(), Fail> {
        let slot = self
            .mem
            .key_mut(Kid::Pin)
            .ok_or(StatusWord::REF_DATA_NOT_FOUND)?;
        slot.value.0 = digits.to_vec();
        slot.tries_left = slot.try_limit;
        self.persist()
    }

    pub(super) fn verify(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        if cmd.data.is_empty() {
            // ISO 7816-4: VERIFY without data asks for the tries left.
            self.pin_in_scope()?;
            let left = self.mem.key(Kid::Pin).map_or(0, |s| s.tries_left);
            return Err(StatusWord::new(0x63, 0xC0 | left.min(15)).into());
        }
        // OwnerPIN rule: every VERIFY that carries a PIN revokes the grant first; only a right
        // PIN gives it back (PROFILE section 4).
        if self.revokes() {
            self.vol.security.revoke_pin();
        }
        if cmd.data.len() > 3 {
            return Err(StatusWord::WRONG_LENGTH.into());
        }
        let pin = decode_pin(&cmd.data)?;
        self.check_pin(&pin)?;
        self.vol.security.grant_pin();
        ok()
    }

    pub(super) fn change_pin(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0x01 || cmd.p2 != 0x00 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        if self.revokes() {
            self.vol.security.revoke_pin();
        }
        let sep = cmd
            .data
            .iter()
            .position(|&b| b == 0xFF)
            .ok_or(StatusWord::WRONG_DATA)?;
        let old = decode_pin(&cmd.data[..sep])?;
        let new = decode_pin(&cmd.data[sep + 1..])?;
        self.check_pin(&old)?;
        self.set_pin(&new)?;
        self.vol.security.grant_pin();
        ok()
    }

    pub(super) fn reload_pin(&mut self, cmd: &Command, challenge: Option<&[u8]>) -> Reply {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        self.pin_object_present()?;
        let body = self.check_mac(Kid::Rpk, cmd, challenge)?;
        let new = decode_pin(&body)?;
        self.set_pin(&new)?;
        ok()
    }

    pub(super) fn unblock_pin(&mut self, cmd: &Command, challenge: Option<&[u8]>) -> Reply {
        if cmd.p1 != 0x00 || cmd.p2 != 0x01 {
            return Err(StatusWord::INCORRECT_P1P2.into());
        }
        if cmd.data.len() != 4 {
            return Err(StatusWord::WRONG_LENGTH.into());
        }
        self.pin_object_present()?;
        self.check_mac(Kid::Upk, cmd, challenge)?;
        let slot = self
            .mem
            .key_mut(Kid::Pin)
            .ok_or(StatusWord::REF_DATA_NOT_FOUND)?;
        slot.tries_left = slot.try_limit;
        self.persist()?;
        ok()
    }

    fn pin_object_present(&self) -> Result<(), Fail> {
        match self.mem.key(Kid::Pin) {
            Some(_) => Ok(()),
            None => Err(StatusWord::REF_DATA_NOT_FOUND.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_pins() {
        assert_eq!(&decode_pin(&[0x12, 0x34, 0x56]).unwrap()[..], b"123456");
        assert_eq!(&decode_pin(&[0x12, 0x3F]).unwrap()[..], b"123");
        assert_eq!(decode_pin(&[0x1F]), Err(Fail::Sw(StatusWord::WRONG_DATA)));
        assert_eq!(decode_pin(&[0xF1]), Err(Fail::Sw(StatusWord::WRONG_DATA)));
        assert_eq!(decode_pin(&[0x1A]), Err(Fail::Sw(StatusWord::WRONG_DATA)));
    }

    #[test]
    fn pins_compare_as_padded_blocks_with_their_lengths() {
        assert!(pin_matches(b"123456", b"123456"));
        assert!(pin_matches(b"12", b"12"));
        assert!(!pin_matches(b"123456", b"12345"), "a prefix is not the PIN");
        assert!(!pin_matches(b"12345", b"123450"), "padding is not a digit");
        assert!(!pin_matches(b"123456", b"123457"));
        assert!(
            !pin_matches(b"1234567", b"1234567"),
            "beyond the stored maximum"
        );
        assert_eq!(&pin_block(b"12").unwrap()[..], &[2, b'1', b'2', 0, 0, 0, 0]);
    }
}
