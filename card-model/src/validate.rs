//! Checks a card image against the layout before a card uses it: a hand-edited or corrupt image
//! is refused with the field named, never half-used and never overwritten.

use crate::atr_check;
use crate::memory::{kid_name, EfContent, PsamMemory, SscMemory};
use crate::ssc::layout::{Structure, EFS};
use sscard_core::profile::kid;

/// The first thing wrong with an SSC memory, naming the field.
pub fn ssc(mem: &SscMemory) -> Result<(), String> {
    for ef in EFS.iter() {
        let field = format!("files.{}", ef.path);
        match (ef.structure, mem.files.get(ef.path)) {
            (_, None) => return Err(format!("{field} is missing")),
            (Structure::Records(layout), Some(EfContent::Records(records))) => {
                if records.len() != layout.len() {
                    return Err(format!(
                        "{field} has {} records, the profile has {}",
                        records.len(),
                        layout.len()
                    ));
                }
                for (i, (r, (tag, len))) in records.iter().zip(layout.iter()).enumerate() {
                    if r.tag != *tag || r.value.0.len() != *len as usize {
                        return Err(format!(
                            "{field}.records[{i}] is tag {:02X} with {} bytes; the profile has tag {tag:02X} with {len}",
                            r.tag,
                            r.value.0.len()
                        ));
                    }
                }
            }
            (Structure::Binary(size), Some(EfContent::Binary(b))) if b.0.len() == size => {}
            (Structure::Binary(size), Some(_)) => {
                return Err(format!("{field} must be binary of {size} bytes"))
            }
            (Structure::Records(_), Some(_)) => return Err(format!("{field} must be records")),
        }
    }
    if let Some(extra) = mem
        .files
        .keys()
        .find(|p| !EFS.iter().any(|e| e.path == p.as_str()))
    {
        return Err(format!("files.{extra} is not a file of the profile"));
    }
    for (name, slot) in &mem.keys {
        let field = format!("keys.{name}");
        let id = u8::from_str_radix(name, 16)
            .map_err(|_| format!("{field}: key ids are two hex digits"))?;
        if kid_name(id) != *name
            || !(kid::CARD_KEYS.contains(&id) || id == kid::TK || id == kid::PIN)
        {
            return Err(format!("{field} is not a key id of the profile"));
        }
        let len = slot.value.0.len();
        let ok = if id == kid::PIN {
            (2..=6).contains(&len) && slot.value.0.iter().all(u8::is_ascii_digit)
        } else {
            len == 16
        };
        if !ok {
            return Err(format!("{field}.value has the wrong form ({len} bytes)"));
        }
        if slot.tries_left > slot.try_limit {
            return Err(format!(
                "{field}.tries_left {} exceeds try_limit {}",
                slot.tries_left, slot.try_limit
            ));
        }
    }
    Ok(())
}

/// The first thing wrong with a PSAM memory.
pub fn psam(mem: &PsamMemory) -> Result<(), String> {
    if mem.ef15.0.len() != 24 {
        return Err(format!(
            "ef15 has {} bytes, the profile has 24",
            mem.ef15.0.len()
        ));
    }
    if mem.ef16.0.len() != 6 {
        return Err(format!(
            "ef16 has {} bytes, the profile has 6",
            mem.ef16.0.len()
        ));
    }
    if mem.level > 2 {
        return Err(format!(
            "level {} is not 0 (national), 1 (province) or 2 (city)",
            mem.level
        ));
    }
    for (name, slot) in &mem.keys {
        let valid = name.len() == 5
            && name.as_bytes()[2] == b'/'
            && name.split('/').all(|p| u8::from_str_radix(p, 16).is_ok());
        if !valid {
            return Err(format!(
                "keys.{name}: PSAM keys are named KID/INDEX in hex, e.g. 0A/01"
            ));
        }
        if slot.value.0.len() != 16 {
            return Err(format!(
                "keys.{name}.value has {} bytes, keys have 16",
                slot.value.0.len()
            ));
        }
    }
    Ok(())
}

/// The ATR must parse.
pub fn atr(bytes: &[u8]) -> Result<(), String> {
    atr_check(bytes)
}
