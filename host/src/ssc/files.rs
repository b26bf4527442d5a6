//! The files a host reads and writes, by name.

use std::str::FromStr;

/// An EF of the SSC by its profile name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EfRef {
    Ef05,
    Ef06,
    Ef07,
    Df01Ef01,
    Df01Ef02,
}

impl EfRef {
    pub fn sfi(self) -> u8 {
        match self {
            Self::Ef05 => 0x05,
            Self::Ef06 => 0x06,
            Self::Ef07 => 0x07,
            Self::Df01Ef01 => 0x01,
            Self::Df01Ef02 => 0x02,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Ef05 => "EF05",
            Self::Ef06 => "EF06",
            Self::Ef07 => "EF07",
            Self::Df01Ef01 => "DF01/EF01",
            Self::Df01Ef02 => "DF01/EF02",
        }
    }
    /// In the city's local DF01 (local keys) rather than national.
    pub fn is_local(self) -> bool {
        matches!(self, Self::Df01Ef01 | Self::Df01Ef02)
    }
    pub fn is_binary(self) -> bool {
        self == Self::Df01Ef02
    }
}

impl FromStr for EfRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Self::Ef05,
            Self::Ef06,
            Self::Ef07,
            Self::Df01Ef01,
            Self::Df01Ef02,
        ]
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("unknown file {s:?}: EF05, EF06, EF07, DF01/EF01 or DF01/EF02"))
    }
}
