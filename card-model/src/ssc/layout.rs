//! The fixed file layout of the social security card (PROFILE section 2): the card's "ROM mask".
//! Contents live in card memory; structure and access rules live here.

use sscard_core::profile::{fid, kid, sfi};

/// The dedicated files of the SSC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Df {
    Mf,
    Ssse,
    Df01,
}

/// Who may read an EF once the card is issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadRule {
    Always,
    /// Always on `2.00` (3DES) cards; after external authentication with RKSSSE on `3.00` cards.
    AlwaysOnV2ElseRksse,
    /// After external authentication with the given key.
    ExtAuth(u8),
    /// After PIN verification or external authentication with the given key.
    PinOrExtAuth(u8),
}

/// The structure of an EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// Linear TLV records created at manufacture: (tag, length) each.
    Records(&'static [(u8, u8)]),
    /// Transparent, of the given size.
    Binary(usize),
}

/// One elementary file.
#[derive(Debug, PartialEq, Eq)]
pub struct EfDef {
    /// Key in card memory and images.
    pub path: &'static str,
    pub df: Df,
    pub fid: u16,
    pub sfi: u8,
    pub structure: Structure,
    pub read: ReadRule,
    /// Key whose MAC protects updates once issued (TK before).
    pub update_key: u8,
}

pub const EF05_RECORDS: &[(u8, u8)] = &[
    (0x01, 16),
    (0x02, 1),
    (0x03, 4),
    (0x04, 12),
    (0x05, 4),
    (0x06, 4),
    (0x07, 9),
];
pub const EF06_RECORDS: &[(u8, u8)] = &[
    (0x08, 18),
    (0x09, 30),
    (0x4E, 20),
    (0x0A, 1),
    (0x0B, 1),
    (0x0C, 3),
    (0x0D, 4),
];
pub const EF07_RECORDS: &[(u8, u8)] = &[(0x20, 1), (0x21, 1), (0x22, 8)];
pub const DF01_EF01_RECORDS: &[(u8, u8)] = &[(0x40, 8), (0x41, 16), (0x42, 32)];
pub const DF01_EF02_SIZE: usize = 256;

/// Every EF of the card.
pub const EFS: [EfDef; 5] = [
    EfDef {
        path: "EF05",
        df: Df::Ssse,
        fid: fid::EF05,
        sfi: sfi::EF05,
        structure: Structure::Records(EF05_RECORDS),
        read: ReadRule::Always,
        update_key: kid::UK_N,
    },
    EfDef {
        path: "EF06",
        df: Df::Ssse,
        fid: fid::EF06,
        sfi: sfi::EF06,
        structure: Structure::Records(EF06_RECORDS),
        read: ReadRule::AlwaysOnV2ElseRksse,
        update_key: kid::UK_N,
    },
    EfDef {
        path: "EF07",
        df: Df::Ssse,
        fid: fid::EF07,
        sfi: sfi::EF07,
        structure: Structure::Records(EF07_RECORDS),
        read: ReadRule::ExtAuth(kid::RKSSSE),
        update_key: kid::UK_N,
    },
    EfDef {
        path: "DF01/EF01",
        df: Df::Df01,
        fid: fid::EF01,
        sfi: sfi::EF01,
        structure: Structure::Records(DF01_EF01_RECORDS),
        read: ReadRule::PinOrExtAuth(kid::EAK_L),
        update_key: kid::UK_L,
    },
    EfDef {
        path: "DF01/EF02",
        df: Df::Df01,
        fid: fid::EF02,
        sfi: sfi::EF02,
        structure: Structure::Binary(DF01_EF02_SIZE),
        read: ReadRule::PinOrExtAuth(kid::EAK_L),
        update_key: kid::UK_L,
    },
];

/// The EF with this FID directly under `df`.
pub fn ef_by_fid(df: Df, fid: u16) -> Option<&'static EfDef> {
    EFS.iter().find(|e| e.df == df && e.fid == fid)
}

/// The EF with this SFI directly under `df`.
pub fn ef_by_sfi(df: Df, sfi: u8) -> Option<&'static EfDef> {
    EFS.iter().find(|e| e.df == df && e.sfi == sfi)
}

/// The EF stored under this memory path.
pub fn ef_by_path(path: &str) -> Option<&'static EfDef> {
    EFS.iter().find(|e| e.path == path)
}

/// Whether a key id may be used while `df` is current (PROFILE section 3; TK during
/// personalisation in both application DFs).
pub fn key_in_scope(key: u8, df: Df) -> bool {
    match key {
        kid::IRK | kid::RKSSSE | kid::UK_N => df == Df::Ssse,
        kid::EAK_L | kid::UK_L => df == Df::Df01,
        kid::RPK | kid::UPK | kid::PIN | kid::TK => matches!(df, Df::Ssse | Df::Df01),
        _ => false,
    }
}
