//! How the shell shows the profile and what it reads: the `ls` table from the one file table
//! (core::profile::files), records decoded through core::profile::fields, APDU exchanges as
//! `send` shows them (secrets masked).

use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::files::{self, Access, Df, FileDef, Structure};
use sscard_core::profile::{decode, psam, SSSE_AID};
use sscard_core::tlv::Record;

/// What opens a file for reading, in words.
pub fn access(a: Access) -> String {
    match a {
        Access::Always => "always".into(),
        Access::ExtAuth(k) => format!("ext-auth {}", k.name()),
        Access::PinOrExtAuth(k) => format!("PIN or ext-auth {}", k.name()),
        _ => "see PROFILE.md".into(),
    }
}

fn structure(f: &FileDef) -> String {
    match f.structure {
        Structure::Records(r) => format!("{} records", r.len()),
        Structure::Binary(n) => format!("{n} bytes"),
    }
}

/// The DF's name in the shell (`MF`, `SSSE`, `DF01`).
pub fn df_name(df: Df) -> &'static str {
    match df {
        Df::Mf => "MF",
        Df::Df01 => "DF01",
        _ => "SSSE",
    }
}

/// `ls`: the DFs and EFs directly under `df`, with their read rules on 3DES (2.00) and SM4
/// (3.00) cards and their update key; `alg` (the connected card's) is marked.
pub fn ls(df: Df, alg: Option<Algorithm>) -> String {
    let mark = |a: Algorithm| if alg == Some(a) { "*" } else { "" };
    let mut out = vec![format!(
        "{:<10} {:<5} {:<4} {:<11} {:<21} {:<21} {}",
        "NAME",
        "FID",
        "SFI",
        "STRUCTURE",
        format!("READ 3DES{}", mark(Algorithm::Tdes)),
        format!("READ SM4{}", mark(Algorithm::Sm4)),
        "UPDATE KEY"
    )];
    match df {
        Df::Mf => out.push(format!(
            "{:<10} {:<5} {:<4} application, AID {}",
            "SSSE",
            "-",
            "-",
            to_hex(&SSSE_AID)
        )),
        Df::Ssse => out.push(format!(
            "{:<10} {:<5} {:<4} {}",
            "DF01", "DF01", "-", "DF, the city's local extension"
        )),
        _ => {}
    }
    for f in files::FILES.iter().filter(|f| f.df == df) {
        out.push(format!(
            "{:<10} {:<5} {:<4} {:<11} {:<21} {:<21} {}",
            f.name,
            format!("{:04X}", f.fid),
            format!("{:02X}", f.sfi),
            structure(f),
            access(f.read_tdes),
            access(f.read_sm4),
            f.update.name()
        ));
    }
    if alg.is_some() {
        out.push("* the connected card's algorithm".into());
    }
    out.join("\n")
}

/// `ls` on a PSAM (PROFILE section 6): its DF01 and the two files a terminal reads.
pub fn psam_ls() -> String {
    [
        format!(
            "{:<10} {:<5} {:<4} {:<11} {}",
            "NAME", "FID", "SFI", "STRUCTURE", "HOLDS"
        ),
        format!(
            "{:<10} {:<5} {:<4} {:<11} {}",
            "DF01", "DF01", "-", "DF", "the security application"
        ),
        format!(
            "{:<10} {:<5} {:<4} {:<11} {}",
            "EF15",
            "0015",
            "15",
            format!("{} bytes", psam::EF15_LEN),
            "serial, version, algorithm, region, key level, validity"
        ),
        format!(
            "{:<10} {:<5} {:<4} {:<11} {}",
            "EF16",
            "0016",
            "16",
            format!("{} bytes", psam::EF16_LEN),
            "terminal number"
        ),
    ]
    .join("\n")
}

/// A PSAM's EF15, one field a line, decoded as a trace decodes it.
pub fn psam_ef15(info: &psam::PsamInfo) -> String {
    decode::ef15_fields(info)
        .iter()
        .map(|f| format!("EF15  {} = {}", f.name, f.value))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `connect` says of a PSAM.
pub fn psam_summary(info: &psam::PsamInfo, terminal: &str) -> String {
    format!(
        "PSAM {}, {}, region {}, {} level, terminal number {terminal}",
        info.serial,
        info.algorithm.name(),
        info.region,
        psam::level::name(info.level)
    )
}

/// One record as TLV hex: tag, length, value (`sscard read`'s lines).
pub fn record_raw(r: &Record) -> String {
    format!("{:02X} {:02X} {}", r.tag, r.value.len(), to_hex(&r.value))
}

/// A transparent file's bytes, 16 to a line after their offset.
pub fn binary(file: &FileDef, data: &[u8]) -> String {
    data.chunks(16)
        .enumerate()
        .map(|(i, c)| format!("{} {:04X}: {}", file.name, i * 16, to_hex(c)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lists_the_file_table() {
        assert_eq!(
            ls(Df::Ssse, Some(Algorithm::Sm4)),
            "\
NAME       FID   SFI  STRUCTURE   READ 3DES             READ SM4*             UPDATE KEY
DF01       DF01  -    DF, the city's local extension
EF05       EF05  05   7 records   always                always                UK_N
EF06       EF06  06   7 records   always                ext-auth RKSSSE       UK_N
EF07       EF07  07   3 records   ext-auth RKSSSE       ext-auth RKSSSE       UK_N
* the connected card's algorithm"
        );
        assert_eq!(
            ls(Df::Df01, None),
            "\
NAME       FID   SFI  STRUCTURE   READ 3DES             READ SM4              UPDATE KEY
DF01/EF01  EF01  01   3 records   PIN or ext-auth EAK_L PIN or ext-auth EAK_L UK_L
DF01/EF02  EF02  02   256 bytes   PIN or ext-auth EAK_L PIN or ext-auth EAK_L UK_L"
        );
        assert!(ls(Df::Mf, None)
            .contains("SSSE       -     -    application, AID 7378312E73682EC9E7BBE1B1A3D5CF"));
    }
}
