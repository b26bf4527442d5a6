//! Card memory: what a card's EEPROM holds. Everything here survives power loss and is what a
//! card image stores; nothing volatile (current DF, security status, challenge) belongs here.

use serde::{Deserialize, Serialize};
use sscard_core::crypto::{Algorithm, Key};
use sscard_core::profile::Kid;
use std::collections::BTreeMap;
use zeroize::Zeroize;

/// Bytes written as upper-case hex in images.
#[derive(Clone, PartialEq, Eq, Default, Zeroize)]
pub struct HexBytes(pub Vec<u8>);

impl std::fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&sscard_core::hexfmt::to_hex(&self.0))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&sscard_core::hexfmt::to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        sscard_core::hexfmt::parse_hex(&s)
            .map(HexBytes)
            .map_err(serde::de::Error::custom)
    }
}

/// The card's algorithm as images name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlgorithmName {
    #[serde(rename = "3DES")]
    Tdes,
    #[serde(rename = "SM4")]
    Sm4,
}

impl AlgorithmName {
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Tdes => Algorithm::Tdes,
            Self::Sm4 => Algorithm::Sm4,
        }
    }
}

/// Card life cycle (FCI `C0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifeCycle {
    Personalisation,
    Issued,
}

/// One record of a linear TLV file. Tag and length are fixed at manufacture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSlot {
    pub tag: u8,
    pub value: HexBytes,
}

/// The content of an EF.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EfContent {
    Records(Vec<RecordSlot>),
    Binary(HexBytes),
}

/// A key (or the PIN) with its try counter. `try_limit == 0` means no counter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub struct KeySlot {
    pub value: HexBytes,
    pub tries_left: u8,
    pub try_limit: u8,
}

impl std::fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeySlot(**, tries {}/{})",
            self.tries_left, self.try_limit
        )
    }
}

impl KeySlot {
    pub fn new(value: Vec<u8>, try_limit: u8) -> Self {
        Self {
            value: HexBytes(value),
            tries_left: try_limit,
            try_limit,
        }
    }
    pub fn key(&self) -> Option<Key> {
        Key::from_slice(&self.value.0).ok()
    }
    pub fn has_counter(&self) -> bool {
        self.try_limit != 0
    }
    pub fn blocked(&self) -> bool {
        self.has_counter() && self.tries_left == 0
    }
}

/// Memory of a social security card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SscMemory {
    pub algorithm: AlgorithmName,
    pub life_cycle: LifeCycle,
    /// By the file table's name ([`FileDef::name`](sscard_core::profile::FileDef)): `EF05`,
    /// `EF06`, `EF07`, `DF01/EF01`, `DF01/EF02`.
    pub files: BTreeMap<String, EfContent>,
    /// By key id in hex (`08`, `0A`, …, `30` for the PIN, whose value is its digits in ASCII).
    pub keys: BTreeMap<String, KeySlot>,
}

impl SscMemory {
    pub fn key(&self, kid: Kid) -> Option<&KeySlot> {
        self.keys.get(&kid_name(kid))
    }
    pub fn key_mut(&mut self, kid: Kid) -> Option<&mut KeySlot> {
        self.keys.get_mut(&kid_name(kid))
    }
}

/// Memory of a PSAM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PsamMemory {
    pub algorithm: AlgorithmName,
    /// EF15 content (PROFILE section 6).
    pub ef15: HexBytes,
    /// EF16 content: terminal number, BCD(6).
    pub ef16: HexBytes,
    /// Key level: `0` national, `1` province, `2` city.
    pub level: u8,
    /// By `KID/INDEX` in hex, e.g. `0A/01`.
    pub keys: BTreeMap<String, KeySlot>,
}

/// Image key of a key: its id in two hex digits (`0A`).
pub fn kid_name(kid: Kid) -> String {
    format!("{:02X}", kid.id())
}
