//! Status words (ISO/IEC 7816-4 and PROFILE.md) and what they mean.

use std::fmt;

/// SW1-SW2 of a response.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(pub u16);

impl StatusWord {
    pub const OK: Self = Self(0x9000);
    pub const WRONG_LENGTH: Self = Self(0x6700);
    pub const NOT_RECORD_FILE: Self = Self(0x6981);
    pub const SECURITY_NOT_SATISFIED: Self = Self(0x6982);
    pub const AUTH_BLOCKED: Self = Self(0x6983);
    pub const REF_DATA_NOT_USABLE: Self = Self(0x6984);
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    pub const INCORRECT_SM: Self = Self(0x6988);
    pub const WRONG_DATA: Self = Self(0x6A80);
    pub const FUNC_NOT_SUPPORTED: Self = Self(0x6A81);
    pub const FILE_NOT_FOUND: Self = Self(0x6A82);
    pub const RECORD_NOT_FOUND: Self = Self(0x6A83);
    pub const NOT_ENOUGH_MEMORY: Self = Self(0x6A84);
    pub const INCORRECT_P1P2: Self = Self(0x6A86);
    pub const REF_DATA_NOT_FOUND: Self = Self(0x6A88);
    pub const WRONG_P1P2: Self = Self(0x6B00);
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);
    pub const UNKNOWN: Self = Self(0x6F00);
    pub const MEMORY_FAILURE: Self = Self(0x6581);

    pub const fn new(sw1: u8, sw2: u8) -> Self {
        Self((sw1 as u16) << 8 | sw2 as u16)
    }
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
    /// `9000` (and `61xx`, which T=0 hosts resolve with GET RESPONSE).
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000
    }
    /// `61xx`: xx bytes wait for GET RESPONSE (`00` means 256).
    pub fn bytes_available(self) -> Option<usize> {
        (self.sw1() == 0x61).then(|| {
            if self.sw2() == 0 {
                256
            } else {
                self.sw2() as usize
            }
        })
    }
    /// `6Cxx`: resend with Le = xx.
    pub fn correct_le(self) -> Option<u8> {
        (self.sw1() == 0x6C).then_some(self.sw2())
    }
    /// `63Cx`: x tries left.
    pub fn tries_left(self) -> Option<u8> {
        (self.sw1() == 0x63 && self.sw2() & 0xF0 == 0xC0).then_some(self.sw2() & 0x0F)
    }

    /// A short English meaning, from ISO/IEC 7816-4 and PROFILE.md section 4.
    pub fn meaning(self) -> String {
        let fixed = match self.0 {
            0x9000 => "success",
            0x6200 => "warning: state of non-volatile memory unchanged",
            0x6281 => "warning: part of returned data may be corrupted",
            0x6282 => "warning: end of file or record reached before reading Le bytes",
            0x6581 => "memory failure",
            0x6700 => "wrong length",
            0x6881 => "logical channel not supported",
            0x6882 => "secure messaging not supported",
            0x6981 => "command incompatible with file structure (not a record file)",
            0x6982 => "security status not satisfied",
            0x6983 => "authentication method blocked",
            0x6984 => "reference data not usable (no challenge)",
            0x6985 => "conditions of use not satisfied",
            0x6986 => "command not allowed (no current EF)",
            0x6988 => "incorrect secure messaging data object (MAC wrong)",
            0x6A80 => "incorrect parameters in the data field",
            0x6A81 => "function not supported",
            0x6A82 => "file or application not found",
            0x6A83 => "record not found",
            0x6A84 => "not enough memory space in the file",
            0x6A86 => "incorrect parameters P1-P2",
            0x6A88 => "referenced data or key not found",
            0x6B00 => "wrong parameters P1-P2 (offset outside the file)",
            0x6D00 => "instruction code not supported",
            0x6E00 => "class not supported",
            0x6F00 => "no precise diagnosis",
            _ => "",
        };
        if !fixed.is_empty() {
            return fixed.to_string();
        }
        if let Some(n) = self.bytes_available() {
            return format!("{n} response bytes available (GET RESPONSE)");
        }
        if let Some(le) = self.correct_le() {
            return format!("wrong Le: {le} bytes available");
        }
        if let Some(x) = self.tries_left() {
            return format!("verification failed, {x} tries left");
        }
        match self.sw1() {
            0x62 | 0x63 => "warning".into(),
            0x64..=0x66 => "execution error".into(),
            0x67..=0x6F => "checking error".into(),
            _ => "unknown status word".into(),
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusWord({:04X})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_parts_and_meanings() {
        let sw = StatusWord::new(0x63, 0xC2);
        assert_eq!(sw.tries_left(), Some(2));
        assert_eq!(sw.meaning(), "verification failed, 2 tries left");
        assert_eq!(StatusWord(0x6100).bytes_available(), Some(256));
        assert_eq!(StatusWord(0x6C10).correct_le(), Some(0x10));
        assert_eq!(StatusWord(0x6A82).to_string(), "6A82");
        assert_eq!(format!("{:?}", StatusWord(0x6A82)), "StatusWord(6A82)");
        assert_eq!(StatusWord::OK.meaning(), "success");
        assert_eq!(StatusWord(0x6300).tries_left(), None);
    }
}
