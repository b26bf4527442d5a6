//! The profile as Lua tables, for the Wireshark dissector `contrib/wireshark/sscard.lua`: the
//! files and their records (tag, length, field, encoding), the key ids, the command names of
//! [`describe`], the PSAM's commands and files, the FCI's algorithm and life-cycle bytes and the
//! status words' meanings, all read from this crate's tables, so the dissector cannot drift from
//! the profile. The dissector carries the text between its `-- BEGIN GENERATED` and
//! `-- END GENERATED` lines; a test of this module compares it byte for byte and rewrites it
//! with `SSCARD_REGENERATE=1 cargo test -p sscard-core --lib profile::export`.

use super::commands::{self, describe};
use super::files::{Df, Encoding, FILES};
use super::{fid, life_cycle, psam, Kid, SSSE_AID};
use crate::crypto::Algorithm;
use crate::hexfmt::to_hex;
use crate::status::StatusWord;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The command that regenerates the dissector's tables, quoted in the generated block.
pub const REGENERATE: &str = "SSCARD_REGENERATE=1 cargo test -p sscard-core --lib profile::export";

/// A Lua string literal: ASCII as is, `"` and `\` escaped, anything else as decimal escapes.
fn lua_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7E => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

fn df_name(df: Df) -> &'static str {
    match df {
        Df::Mf => "MF",
        Df::Ssse => "SSSE",
        Df::Df01 => "DF01",
    }
}

fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Binary => "binary",
        Encoding::Ascii => "ascii",
        Encoding::Bcd => "bcd",
        Encoding::Date => "date",
        Encoding::Gbk => "gbk",
    }
}

/// The name [`describe`] gives a command the profile does not know (fewer than two bytes).
fn unknown_command() -> &'static str {
    commands::describe_bytes(&[]).name
}

/// `[0x..] = "NAME"` entries of the commands [`describe`] names for one class kind.
fn command_table(out: &mut String, kind: &str, cla: u8) {
    let _ = writeln!(out, "  {kind} = {{");
    for ins in 0..=u8::MAX {
        let info = describe(cla, ins);
        if info.name == unknown_command() {
            continue;
        }
        let mut entry = format!("name = {}", lua_str(info.name));
        if info.secrecy.command_data {
            entry.push_str(", secret_command = true");
        }
        if info.secrecy.response_data {
            entry.push_str(", secret_response = true");
        }
        if info.idempotence == commands::Idempotence::ChangesCard {
            entry.push_str(", changes_card = true");
        }
        let _ = writeln!(out, "    [0x{ins:02X}] = {{ {entry} }},");
    }
    out.push_str("  },\n");
}

/// Status words: per SW1, the meaning most of its SW2 values share (`status_classes`, where it is
/// not `status_unknown`), and every status word whose meaning differs from its class
/// (`status_words`), packed several a line.
fn status_tables(out: &mut String) {
    // What a status word of no class means (SW1 `00`).
    let unknown = StatusWord(0x0000).meaning();
    let mut classes = BTreeMap::new();
    let mut specific = Vec::new();
    for sw1 in 0..=u8::MAX {
        let meanings: Vec<String> = (0..=u8::MAX)
            .map(|sw2| StatusWord::new(sw1, sw2).meaning())
            .collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &meanings {
            *counts.entry(m.as_str()).or_default() += 1;
        }
        let (class, n) = counts
            .iter()
            .max_by_key(|(m, n)| (**n, std::cmp::Reverse(*m)))
            .map(|(m, n)| (m.to_string(), *n))
            .unwrap_or_default();
        if n > 1 && class != unknown {
            classes.insert(sw1, class.clone());
        }
        for (sw2, m) in meanings.iter().enumerate() {
            if n <= 1 || *m != class {
                specific.push((u16::from(sw1) << 8 | sw2 as u16, m.clone()));
            }
        }
    }
    let _ = writeln!(out, "profile.status_unknown = {}", lua_str(&unknown));
    out.push_str("profile.status_classes = {\n");
    for (sw1, m) in &classes {
        let _ = writeln!(out, "  [0x{sw1:02X}] = {},", lua_str(m));
    }
    out.push_str("}\n");
    out.push_str("profile.status_words = {\n");
    let mut line = String::new();
    for (sw, m) in specific {
        let entry = format!("[0x{sw:04X}] = {},", lua_str(&m));
        if !line.is_empty() && line.len() + 1 + entry.len() > 118 {
            let _ = writeln!(out, "  {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&entry);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("}\n");
}

/// The Lua text between the dissector's `-- BEGIN GENERATED` and `-- END GENERATED` lines
/// (those lines excluded): one `local profile` table.
pub fn lua_profile() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- Generated from sscard-core's profile tables (core/src/profile/export.rs); do not edit.\n\
         -- Regenerate with: {REGENERATE}"
    );
    out.push_str("local profile = {}\n");
    let _ = writeln!(out, "profile.ssse_aid = {}", lua_str(&to_hex(&SSSE_AID)));
    let _ = writeln!(
        out,
        "profile.fid = {{ mf = 0x{:04X}, df01 = 0x{:04X} }}",
        fid::MF,
        fid::DF01
    );

    out.push_str("profile.algorithms = {\n");
    for alg in [Algorithm::Tdes, Algorithm::Sm4, Algorithm::Aes128] {
        let _ = writeln!(
            out,
            "  [0x{:02X}] = {{ name = {}, spec_version = {}, block = {} }},",
            alg.id(),
            lua_str(alg.name()),
            lua_str(alg.spec_version()),
            alg.block_size()
        );
    }
    out.push_str("}\n");
    let _ = writeln!(
        out,
        "profile.life_cycles = {{ [0x{:02X}] = \"PERSONALISATION\", [0x{:02X}] = \"ISSUED\" }}",
        life_cycle::PERSONALISATION,
        life_cycle::ISSUED
    );

    out.push_str("profile.kids = {\n");
    let mut kids = Kid::ALL;
    kids.sort_by_key(|k| k.id());
    for k in kids {
        let _ = writeln!(out, "  [0x{:02X}] = {},", k.id(), lua_str(k.name()));
    }
    out.push_str("}\n");

    out.push_str("profile.files = {\n");
    for f in &FILES {
        let _ = write!(
            out,
            "  {{ name = {}, df = {}, fid = 0x{:04X}, sfi = 0x{:02X}, update_kid = 0x{:02X}",
            lua_str(f.name),
            lua_str(df_name(f.df)),
            f.fid,
            f.sfi,
            f.update.id()
        );
        match f.structure {
            super::files::Structure::Binary(size) => {
                let _ = writeln!(out, ", size = {size} }},");
            }
            super::files::Structure::Records(records) => {
                out.push_str(", records = {\n");
                for r in records {
                    let _ = writeln!(
                        out,
                        "    {{ number = {}, tag = 0x{:02X}, len = {}, field = {}, key = {}, encoding = {} }},",
                        r.number,
                        r.tag,
                        r.len,
                        lua_str(r.name),
                        lua_str(r.key),
                        lua_str(encoding_name(r.encoding))
                    );
                }
                out.push_str("  } },\n");
            }
        }
    }
    out.push_str("}\n");

    // The PSAM: its files and the two commands, from the APDUs this crate builds.
    let ef15 = commands::psam_read_ef15().command;
    let ef16 = commands::psam_read_ef16().command;
    let init = commands::des_init(Kid::Irk, &[0; 8]).command;
    let encrypt = commands::des_crypt_encrypt(vec![0; 8]).command;
    let mac = commands::des_crypt_mac(&[0; 8], &[]).command;
    out.push_str("profile.psam = {\n");
    let _ = writeln!(
        out,
        "  files = {{\n    {{ name = \"EF15\", fid = 0x{:04X}, short_fid = 0x{:04X}, sfi = 0x{:02X}, size = {} }},\n    {{ name = \"EF16\", fid = 0x{:04X}, short_fid = 0x{:04X}, sfi = 0x{:02X}, size = {} }},\n  }},",
        fid::EF15,
        psam::EF15_SHORT_FID,
        ef15.p1 & 0x1F,
        psam::EF15_LEN,
        fid::EF16,
        psam::EF16_SHORT_FID,
        ef16.p1 & 0x1F,
        psam::EF16_LEN
    );
    let _ = writeln!(
        out,
        "  levels = {{ [{}] = \"national\", [{}] = \"province\", [{}] = \"city\" }},",
        psam::level::NATIONAL,
        psam::level::PROVINCE,
        psam::level::CITY
    );
    let _ = writeln!(
        out,
        "  des_init = {{ cla = 0x{:02X}, ins = 0x{:02X}, name = {} }},",
        init.cla,
        init.ins,
        lua_str(commands::des_init(Kid::Irk, &[]).name)
    );
    let _ = writeln!(
        out,
        "  des_crypt = {{ cla = 0x{:02X}, ins = 0x{:02X}, name = {}, encrypt_p1 = 0x{:02X}, mac_p1 = 0x{:02X} }},",
        encrypt.cla,
        encrypt.ins,
        lua_str(commands::des_crypt_encrypt(Vec::new()).name),
        encrypt.p1,
        mac.p1
    );
    out.push_str("}\n");

    out.push_str("profile.commands = {\n");
    command_table(&mut out, "interindustry", 0x00);
    command_table(&mut out, "proprietary", 0x80);
    let _ = writeln!(out, "  unknown = {},\n}}", lua_str(unknown_command()));

    status_tables(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "-- BEGIN GENERATED\n";
    const END: &str = "-- END GENERATED\n";

    fn dissector_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/wireshark/sscard.lua")
    }

    /// The dissector's generated block is exactly [`lua_profile`]; with `SSCARD_REGENERATE=1`
    /// the block is rewritten instead.
    #[test]
    fn the_dissector_carries_the_profile_of_this_crate() {
        let path = dissector_path();
        let lua =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let start = lua
            .find(BEGIN)
            .unwrap_or_else(|| panic!("{}: no line {BEGIN:?}", path.display()))
            + BEGIN.len();
        let end = start
            + lua[start..]
                .find(END)
                .unwrap_or_else(|| panic!("{}: no line {END:?}", path.display()));
        let generated = lua_profile();
        if std::env::var("SSCARD_REGENERATE").as_deref() == Ok("1") {
            let fresh = format!("{}{generated}{}", &lua[..start], &lua[end..]);
            if fresh != lua {
                std::fs::write(&path, fresh).unwrap();
            }
            return;
        }
        assert!(
            lua[start..end] == generated,
            "{} is out of date with the profile: run `{REGENERATE}`",
            path.display()
        );
    }

    #[test]
    fn tables_come_from_the_profile() {
        let lua = lua_profile();
        assert!(lua.contains("  [0x0A] = \"RKSSSE\",\n"));
        assert!(lua.contains(
            "    { number = 2, tag = 0x09, len = 30, field = \"name\", key = \"name\", encoding = \"gbk\" },\n"
        ));
        assert!(lua.contains(
            "  { name = \"DF01/EF02\", df = \"DF01\", fid = 0xEF02, sfi = 0x02, update_kid = 0x12, size = 256 },\n"
        ));
        assert!(lua.contains(
            "    [0x20] = { name = \"VERIFY\", secret_command = true, changes_card = true },\n"
        ));
        assert!(lua.contains("    [0xFA] = { name = \"DES CRYPT\", secret_response = true },\n"));
        assert!(lua.contains("  des_crypt = { cla = 0x80, ins = 0xFA, name = \"DES CRYPT\", encrypt_p1 = 0x00, mac_p1 = 0x05 },\n"));
        assert!(lua.contains("[0x9000] = \"success\","));
        assert!(lua.contains("[0x63C2] = \"verification failed, 2 tries left\","));
        assert!(lua.contains("  [0x6A] = \"checking error\",\n"));
        assert!(lua.contains("[0x6110] = \"16 response bytes available (GET RESPONSE)\","));
        assert!(!lua.contains("[0x6A00]"), "6A00 falls to its class");
        assert_eq!(lua_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(lua_str("张"), "\"\\229\\188\\160\"");
    }
}
