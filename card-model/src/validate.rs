//! Checks a card image against the profile's file table before a card uses it: a hand-edited or
//! corrupt image is refused with the field named, never half-used and never overwritten.

use crate::memory::{kid_name, EfContent, PsamMemory, SscMemory};
use sscard_core::atr::{Atr, AtrError};
use sscard_core::profile::files::{Structure, FILES};
use sscard_core::profile::psam::{level, EF15_LEN, EF16_LEN};
use sscard_core::profile::Kid;

/// Why a card image cannot be used: the first thing wrong with it, naming the field so the image
/// can be repaired (or made again with `sscard-model new`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidImage {
    #[error("the image is a PSAM, not a social security card: serve it as the PSAM")]
    NotAnSsc,
    #[error("the image is a social security card, not a PSAM: serve it as the card")]
    NotAPsam,
    #[error("atr: {0}")]
    Atr(#[from] AtrError),
    #[error("files.{file} is missing")]
    MissingFile { file: &'static str },
    #[error("files.{file} has {found} records, the profile has {expected}")]
    RecordCount {
        file: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("files.{file}.records[{index}] is tag {tag:02X} with {len} bytes; the profile has tag {expected_tag:02X} with {expected_len}")]
    Record {
        file: &'static str,
        index: usize,
        tag: u8,
        len: usize,
        expected_tag: u8,
        expected_len: u8,
    },
    #[error("files.{file} must be binary of {size} bytes")]
    NotBinary { file: &'static str, size: usize },
    #[error("files.{file} must be records")]
    NotRecords { file: &'static str },
    #[error("files.{name} is not a file of the profile")]
    UnknownFile { name: String },
    #[error("keys.{name}: key ids are two hex digits")]
    KeyIdNotHex { name: String },
    #[error("keys.{name} is not a key id of the profile")]
    UnknownKey { name: String },
    #[error("keys.{name}.value has the wrong form ({len} bytes)")]
    KeyValue { name: String, len: usize },
    #[error("keys.{name}.tries_left {tries_left} exceeds try_limit {try_limit}")]
    TriesLeft {
        name: String,
        tries_left: u8,
        try_limit: u8,
    },
    #[error("ef15 has {len} bytes, the profile has {EF15_LEN}")]
    Ef15Length { len: usize },
    #[error("ef16 has {len} bytes, the profile has {EF16_LEN}")]
    Ef16Length { len: usize },
    #[error("level {level} is not 0 (national), 1 (province) or 2 (city)")]
    PsamLevel { level: u8 },
    #[error("keys.{name}: PSAM keys are named KID/INDEX in hex, e.g. 0A/01")]
    PsamKeyName { name: String },
    #[error("keys.{name}.value has {len} bytes, keys have 16")]
    PsamKeyLength { name: String, len: usize },
}

/// The first thing wrong with an SSC memory, naming the field.
pub fn ssc(mem: &SscMemory) -> Result<(), InvalidImage> {
    for ef in &FILES {
        let file = ef.name;
        match (ef.structure, mem.files.get(file)) {
            (_, None) => return Err(InvalidImage::MissingFile { file }),
            (Structure::Records(defs), Some(EfContent::Records(records))) => {
                if records.len() != defs.len() {
                    return Err(InvalidImage::RecordCount {
                        file,
                        found: records.len(),
                        expected: defs.len(),
                    });
                }
                for (index, (r, def)) in records.iter().zip(defs).enumerate() {
                    if r.tag != def.tag || r.value.0.len() != def.len as usize {
                        return Err(InvalidImage::Record {
                            file,
                            index,
                            tag: r.tag,
                            len: r.value.0.len(),
                            expected_tag: def.tag,
                            expected_len: def.len,
                        });
                    }
                }
            }
            (Structure::Binary(size), Some(EfContent::Binary(b))) if b.0.len() == size => {}
            (Structure::Binary(size), Some(_)) => {
                return Err(InvalidImage::NotBinary { file, size })
            }
            (Structure::Records(_), Some(_)) => return Err(InvalidImage::NotRecords { file }),
        }
    }
    if let Some(extra) = mem
        .files
        .keys()
        .find(|name| !FILES.iter().any(|f| f.name == name.as_str()))
    {
        return Err(InvalidImage::UnknownFile {
            name: extra.clone(),
        });
    }
    for (name, slot) in &mem.keys {
        let id = u8::from_str_radix(name, 16)
            .map_err(|_| InvalidImage::KeyIdNotHex { name: name.clone() })?;
        let kid = Kid::from_id(id)
            .filter(|k| kid_name(*k) == *name)
            .filter(|k| Kid::CARD_KEYS.contains(k) || matches!(k, Kid::Tk | Kid::Pin))
            .ok_or_else(|| InvalidImage::UnknownKey { name: name.clone() })?;
        let len = slot.value.0.len();
        let ok = if kid == Kid::Pin {
            (2..=6).contains(&len) && slot.value.0.iter().all(u8::is_ascii_digit)
        } else {
            len == 16
        };
        if !ok {
            return Err(InvalidImage::KeyValue {
                name: name.clone(),
                len,
            });
        }
        if slot.tries_left > slot.try_limit {
            return Err(InvalidImage::TriesLeft {
                name: name.clone(),
                tries_left: slot.tries_left,
                try_limit: slot.try_limit,
            });
        }
    }
    Ok(())
}

/// The first thing wrong with a PSAM memory.
pub fn psam(mem: &PsamMemory) -> Result<(), InvalidImage> {
    if mem.ef15.0.len() != EF15_LEN {
        return Err(InvalidImage::Ef15Length {
            len: mem.ef15.0.len(),
        });
    }
    if mem.ef16.0.len() != EF16_LEN {
        return Err(InvalidImage::Ef16Length {
            len: mem.ef16.0.len(),
        });
    }
    if mem.level > level::CITY {
        return Err(InvalidImage::PsamLevel { level: mem.level });
    }
    for (name, slot) in &mem.keys {
        let valid = name.len() == 5
            && name.as_bytes()[2] == b'/'
            && name.split('/').all(|p| u8::from_str_radix(p, 16).is_ok());
        if !valid {
            return Err(InvalidImage::PsamKeyName { name: name.clone() });
        }
        if slot.value.0.len() != 16 {
            return Err(InvalidImage::PsamKeyLength {
                name: name.clone(),
                len: slot.value.0.len(),
            });
        }
    }
    Ok(())
}

/// The ATR must parse.
pub fn atr(bytes: &[u8]) -> Result<(), InvalidImage> {
    Atr::parse(bytes)?;
    Ok(())
}
