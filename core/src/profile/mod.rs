//! `PROFILE.md` (version 3) in code, the contract between host, model and terminals, known in
//! this one place: key ids ([`Kid`]), the file table ([`files`]), field encodings ([`fields`]),
//! holder data ([`holder`]), every APDU of the profile ([`commands`]), the PSAM's files
//! ([`psam`]) and the unified interface's return codes ([`codes`]).

pub mod codes;
pub mod commands;
pub mod decode;
pub mod export;
pub mod fcp;
pub mod fields;
pub mod files;
pub mod holder;
mod kid;
pub mod psam;

pub use fields::{card_number_check, citizen_id_check};
pub use files::{Access, Df, FileDef, RecordDef};
pub use holder::Holder;
pub use kid::{KeyScope, Kid};

use crate::hexfmt::hex_array;

/// SSSE application AID: "sx1.sh." followed by GBK "社会保障".
pub const SSSE_AID: [u8; 15] = hex_array("7378312E73682EC9E7BBE1B1A3D5CF");
/// Default SSC ATR of the model (T=1, "SSCARD01", TCK).
pub const SSC_ATR: [u8; 12] = hex_array("3B880153534341524430319C");
/// Default PSAM ATR of the model (T=0, "PSAM-SS1").
pub const PSAM_ATR: [u8; 12] = hex_array("3B6800005053414D2D535331");

/// File identifiers outside the file table: the MF, the local DF, the PSAM's files.
pub mod fid {
    pub const MF: u16 = 0x3F00;
    pub const DF01: u16 = 0xDF01;
    /// PSAM: issuer/serial info, transparent.
    pub const EF15: u16 = 0xEF15;
    /// PSAM: terminal number, transparent.
    pub const EF16: u16 = 0xEF16;
}

/// FCI life-cycle byte.
pub mod life_cycle {
    pub const PERSONALISATION: u8 = 0x01;
    pub const ISSUED: u8 = 0x02;
}

/// Default try limit of external-authentication keys.
pub const KEY_TRY_LIMIT: u8 = 5;
/// Default PIN try limit.
pub const PIN_TRY_LIMIT: u8 = 3;
/// The PIN every new card carries; the holder must change it.
pub const INITIAL_PIN: &str = "123456";
/// Region of the test key set.
pub const TEST_PROVINCE: &str = "110000";
pub const TEST_CITY: &str = "110100";

/// The public test key set of PROFILE section 8. Never for production.
pub mod test_keys {
    use crate::hexfmt::hex_array;
    pub const IRK: [u8; 16] = hex_array("11111111111111112222222222222222");
    pub const RKSSSE: [u8; 16] = hex_array("33333333333333334444444444444444");
    pub const UK_N: [u8; 16] = hex_array("55555555555555556666666666666666");
    pub const EAK_L: [u8; 16] = hex_array("0102030405060708090A0B0C0D0E0F10");
    pub const UK_L: [u8; 16] = hex_array("1112131415161718191A1B1C1D1E1F20");
    pub const RPK: [u8; 16] = hex_array("2122232425262728292A2B2C2D2E2F30");
    pub const UPK: [u8; 16] = hex_array("3132333435363738393A3B3C3D3E3F40");
    pub const TRANSPORT: [u8; 16] = hex_array("404142434445464748494A4B4C4D4E4F");

    /// The master of a key (national masters for IRK/RKSSSE/UK_N, city masters for the local
    /// keys, the manufacturer's transport master for TK); the PIN object has none.
    pub fn master(kid: super::Kid) -> Option<[u8; 16]> {
        use super::Kid;
        Some(match kid {
            Kid::Irk => IRK,
            Kid::Rkssse => RKSSSE,
            Kid::UkN => UK_N,
            Kid::EakL => EAK_L,
            Kid::UkL => UK_L,
            Kid::Rpk => RPK,
            Kid::Upk => UPK,
            Kid::Tk => TRANSPORT,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aid_is_sx1_sh_plus_gbk() {
        assert_eq!(&SSSE_AID[..7], b"sx1.sh.");
        assert_eq!(SSSE_AID.len(), 15);
    }

    #[test]
    fn atr_checksums_hold() {
        assert_eq!(SSC_ATR[1..].iter().fold(0, |a, b| a ^ b), 0);
    }
}
