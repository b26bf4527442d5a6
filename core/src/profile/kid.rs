//! Key ids (PROFILE section 3): the one table of names, ids, hierarchy, scope and try limits.

use std::fmt;

/// A key of the social security card, by its key id (KID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kid {
    /// `00`: the personalisation transport key (factory only).
    Tk,
    /// `03`: MAC on writes to national files.
    UkN,
    /// `08`: internal authentication (the card proves it is genuine).
    Irk,
    /// `0A`: external authentication, opens EF06 on `3.00` cards and EF07.
    Rkssse,
    /// `11`: external authentication for DF01.
    EakL,
    /// `12`: MAC on writes to DF01.
    UkL,
    /// `21`: PIN reload.
    Rpk,
    /// `22`: PIN unblock.
    Upk,
    /// `30`: the cardholder PIN object.
    Pin,
}

/// Where a key may be used (PROFILE section 3): a KID used outside its DF answers `6A88`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyScope {
    /// The SSSE application only (the national keys).
    Ssse,
    /// The local extension DF01 only.
    Df01,
    /// Both application DFs.
    Both,
}

impl Kid {
    /// Every key id: the card keys, then TK and the PIN object.
    pub const ALL: [Kid; 9] = [
        Kid::Irk,
        Kid::Rkssse,
        Kid::UkN,
        Kid::EakL,
        Kid::UkL,
        Kid::Rpk,
        Kid::Upk,
        Kid::Tk,
        Kid::Pin,
    ];

    /// Every key a personalised card holds (the PIN object aside; TK is gone once issued):
    /// the first seven of [`Kid::ALL`].
    pub const CARD_KEYS: [Kid; 7] = {
        let mut keys = [Kid::Tk; 7];
        let mut i = 0;
        while i < keys.len() {
            keys[i] = Kid::ALL[i];
            i += 1;
        }
        keys
    };

    /// The key id byte.
    pub const fn id(self) -> u8 {
        match self {
            Kid::Tk => 0x00,
            Kid::UkN => 0x03,
            Kid::Irk => 0x08,
            Kid::Rkssse => 0x0A,
            Kid::EakL => 0x11,
            Kid::UkL => 0x12,
            Kid::Rpk => 0x21,
            Kid::Upk => 0x22,
            Kid::Pin => 0x30,
        }
    }

    /// The key of a key id byte, if the profile has one.
    pub fn from_id(id: u8) -> Option<Kid> {
        Kid::ALL.into_iter().find(|k| k.id() == id)
    }

    /// The name key files, token labels, scripts and messages use (`RKSSSE`, `UK_N`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Kid::Tk => "TK",
            Kid::UkN => "UK_N",
            Kid::Irk => "IRK",
            Kid::Rkssse => "RKSSSE",
            Kid::EakL => "EAK_L",
            Kid::UkL => "UK_L",
            Kid::Rpk => "RPK",
            Kid::Upk => "UPK",
            Kid::Pin => "PIN",
        }
    }

    /// The key of a name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Kid> {
        Kid::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// Keys of the national hierarchy: diversified national → province → city → card. The
    /// others have a city (or manufacturer) master and only the card level.
    pub const fn is_national(self) -> bool {
        matches!(self, Kid::Irk | Kid::Rkssse | Kid::UkN)
    }

    /// Where the key may be used.
    pub const fn scope(self) -> KeyScope {
        match self {
            Kid::Irk | Kid::Rkssse | Kid::UkN => KeyScope::Ssse,
            Kid::EakL | Kid::UkL => KeyScope::Df01,
            Kid::Rpk | Kid::Upk | Kid::Pin | Kid::Tk => KeyScope::Both,
        }
    }

    /// The try limit written with the key at personalisation: the external-authentication keys
    /// count wrong cryptograms, the PIN wrong entries; `0` means no counter.
    pub const fn try_limit(self) -> u8 {
        match self {
            Kid::Rkssse | Kid::EakL => super::KEY_TRY_LIMIT,
            Kid::Pin => super::PIN_TRY_LIMIT,
            _ => 0,
        }
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// `{:02X}` prints the key id byte.
impl fmt::UpperHex for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperHex::fmt(&self.id(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_round_trip() {
        for k in Kid::ALL {
            assert_eq!(Kid::from_id(k.id()), Some(k));
            assert_eq!(Kid::from_name(k.name()), Some(k));
            assert_eq!(Kid::from_name(&k.name().to_lowercase()), Some(k));
        }
        assert_eq!(Kid::from_id(0x0A), Some(Kid::Rkssse));
        assert_eq!(
            Kid::CARD_KEYS.map(Kid::id),
            [0x08, 0x0A, 0x03, 0x11, 0x12, 0x21, 0x22]
        );
        assert_eq!(Kid::from_id(0x55), None);
        assert_eq!(Kid::from_name("RKSSSE"), Some(Kid::Rkssse));
        assert_eq!(Kid::EakL.to_string(), "EAK_L");
        assert_eq!(format!("{:02X} {:02X}", Kid::Tk, Kid::Rkssse), "00 0A");
    }

    #[test]
    fn hierarchy_scope_and_limits_follow_the_profile() {
        let national: Vec<Kid> = Kid::ALL.into_iter().filter(|k| k.is_national()).collect();
        assert_eq!(national, [Kid::Irk, Kid::Rkssse, Kid::UkN]);
        assert_eq!(Kid::EakL.scope(), KeyScope::Df01);
        assert_eq!(Kid::Pin.scope(), KeyScope::Both);
        assert_eq!(
            (
                Kid::Rkssse.try_limit(),
                Kid::Pin.try_limit(),
                Kid::Irk.try_limit()
            ),
            (5, 3, 0)
        );
    }
}
