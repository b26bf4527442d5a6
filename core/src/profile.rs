//! Constants of `PROFILE.md` (version 2), the contract between host, model and terminals.

use crate::hexfmt::hex_array;

/// SSSE application AID: "sx1.sh." followed by GBK "社会保障".
pub const SSSE_AID: [u8; 15] = hex_array("7378312E73682EC9E7BBE1B1A3D5CF");
/// Default SSC ATR of the model (T=1, "SSCARD01", TCK).
pub const SSC_ATR: [u8; 12] = hex_array("3B880153534341524430319C");
/// Default PSAM ATR of the model (T=0, "PSAM-SS1").
pub const PSAM_ATR: [u8; 12] = hex_array("3B6800005053414D2D535331");

/// File identifiers.
pub mod fid {
    pub const MF: u16 = 0x3F00;
    pub const EF05: u16 = 0xEF05;
    pub const EF06: u16 = 0xEF06;
    pub const EF07: u16 = 0xEF07;
    pub const DF01: u16 = 0xDF01;
    pub const EF01: u16 = 0xEF01;
    pub const EF02: u16 = 0xEF02;
    /// PSAM: issuer/serial info, transparent.
    pub const EF15: u16 = 0xEF15;
    /// PSAM: terminal number, transparent.
    pub const EF16: u16 = 0xEF16;
}

/// Short file identifiers.
pub mod sfi {
    pub const EF05: u8 = 0x05;
    pub const EF06: u8 = 0x06;
    pub const EF07: u8 = 0x07;
    pub const EF01: u8 = 0x01;
    pub const EF02: u8 = 0x02;
    pub const EF15: u8 = 0x15;
    pub const EF16: u8 = 0x16;
}

/// Key ids (PROFILE section 3).
pub mod kid {
    pub const TK: u8 = 0x00;
    pub const UK_N: u8 = 0x03;
    pub const IRK: u8 = 0x08;
    pub const RKSSSE: u8 = 0x0A;
    pub const EAK_L: u8 = 0x11;
    pub const UK_L: u8 = 0x12;
    pub const RPK: u8 = 0x21;
    pub const UPK: u8 = 0x22;
    pub const PIN: u8 = 0x30;
    /// Every key a personalised card holds (the PIN object aside).
    pub const CARD_KEYS: [u8; 7] = [IRK, RKSSSE, UK_N, EAK_L, UK_L, RPK, UPK];
    /// Keys of the national hierarchy (diversified national → province → city → card).
    pub const fn is_national(kid: u8) -> bool {
        matches!(kid, IRK | RKSSSE | UK_N)
    }
    /// Keys valid in DF01 only: used in SSSE they answer `6A88` (PROFILE section 3).
    pub const fn is_local_only(kid: u8) -> bool {
        matches!(kid, EAK_L | UK_L)
    }
    /// A readable name for messages.
    pub const fn name(kid: u8) -> &'static str {
        match kid {
            TK => "TK",
            UK_N => "UK_N",
            IRK => "IRK",
            RKSSSE => "RKSSSE",
            EAK_L => "EAK_L",
            UK_L => "UK_L",
            RPK => "RPK",
            UPK => "UPK",
            PIN => "PIN",
            _ => "unknown key",
        }
    }
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

    /// The master of a key id (national masters for IRK/RKSSSE/UK_N, city masters for local keys).
    pub fn master(kid: u8) -> Option<[u8; 16]> {
        use super::kid::*;
        Some(match kid {
            IRK => IRK_M,
            RKSSSE => RKSSSE_M,
            UK_N => UK_N_M,
            EAK_L => EAK_L_M,
            UK_L => UK_L_M,
            RPK => RPK_M,
            UPK => UPK_M,
            TK => TRANSPORT,
            _ => return None,
        })
    }
    const IRK_M: [u8; 16] = IRK;
    const RKSSSE_M: [u8; 16] = RKSSSE;
    const UK_N_M: [u8; 16] = UK_N;
    const EAK_L_M: [u8; 16] = EAK_L;
    const UK_L_M: [u8; 16] = UK_L;
    const RPK_M: [u8; 16] = RPK;
    const UPK_M: [u8; 16] = UPK;
}

/// Check character of a 9-character card number (PROFILE section 2).
pub fn card_number_check(first8: &str) -> Option<char> {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    if first8.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first8.chars().zip(W) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        r => char::from_digit(r, 10).unwrap_or('0'),
    })
}

/// Check character of an 18-character citizen ID (ISO 7064 MOD 11-2).
pub fn citizen_id_check(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut sum = 0u32;
    for (i, b) in first17.bytes().enumerate() {
        let w = (1u32 << (17 - i)) % 11;
        sum += (b - b'0') as u32 * w;
    }
    let r = (12 - sum % 11) % 11;
    Some(if r == 10 {
        'X'
    } else {
        char::from_digit(r, 10).unwrap_or('0')
    })
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

    #[test]
    fn card_number_check_of_profile_example() {
        assert_eq!(card_number_check("A1234567"), Some('4'));
    }

    #[test]
    fn citizen_id_check_known_value() {
        // GB 11643 example number.
        assert_eq!(citizen_id_check("11010519491231002"), Some('X'));
        assert_eq!(citizen_id_check("1101051949123100"), None);
    }
}
