//! The one decoder of APDU pairs (`sscard trace decode`, decoded `read`): a command and its
//! response become a [`Decoded`] line — the command's name, its target (`EF06 #2`, `EF05 tag
//! 07`, `SSSE`), the fields decoded through the file table ([`super::files`], [`super::fields`]),
//! FCI and FCP contents, key names ([`Kid`]), PSAM steps, authentication and line-protection
//! steps named, and the status word's meaning ([`StatusWord::meaning`]).
//!
//! The decoder is stateful per role (`card`, `psam`): it follows SELECTs to know the current DF
//! and EF (READ RECORD by SFI, or of the current EF), the card's last challenge and random, and
//! the PSAM's last DES INIT, to name what a DES CRYPT computes.
//!
//! **Secrets are masked here**, whatever the input: a pcap written by another tool may carry a
//! clear PIN. The command data of every command [`describe`] calls secret, and the answer of a
//! DES CRYPT (fetched by GET RESPONSE or not), are shown as `**` per byte; so is every byte the
//! input itself marks masked. Nothing here panics on any bytes: a malformed APDU decodes to a
//! `malformed: …` line.

use super::commands::describe;
use super::fcp::{Fcp, FileShape};
use super::files::{self, Df, FileDef, RecordDef};
use super::psam::{parse_terminal_number, PsamInfo};
use super::{fid, Kid, SSSE_AID};
use crate::apdu::Command;
use crate::crypto::Algorithm;
use crate::hexfmt::to_hex;
use crate::status::StatusWord;
use crate::tlv::{Fci, Record};
use std::fmt;

/// Longest value shown in full, in bytes; a longer one shows its first bytes and its length,
/// so one line stays readable and bounded whatever the APDU.
pub const MAX_SHOWN_BYTES: usize = 64;

/// One decoded field: `name = value`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// One APDU pair, decoded. [`fmt::Display`] gives the one-line form (docs/trace-decode.md).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Decoded {
    /// `card` or `psam` (or the role a trace gives).
    pub role: String,
    /// The command's name (`READ RECORD`, `DES INIT`).
    pub command: String,
    /// What the command addresses: `EF06 #2`, `EF05 tag 07`, `EF05 #1..`, `SSSE`, `EF15`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The authentication or line-protection step this command is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Decoded fields of the command and of the response.
    pub fields: Vec<Field>,
    /// The status word (`9000`); `None` when the response had fewer than 2 bytes.
    pub sw: Option<String>,
    /// The status word's meaning.
    pub meaning: String,
    /// Why the command or response is malformed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
}

impl fmt::Display for Decoded {
    /// `ROLE  COMMAND[ TARGET][  (STEP)][  NAME = VALUE]…[  malformed: …]  SW MEANING`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4}  {}", self.role, self.command)?;
        if let Some(t) = &self.target {
            write!(f, " {t}")?;
        }
        if let Some(s) = &self.step {
            write!(f, "  ({s})")?;
        }
        for field in &self.fields {
            write!(f, "  {} = {}", field.name, field.value)?;
        }
        if let Some(m) = &self.malformed {
            write!(f, "  malformed: {m}")?;
        }
        match &self.sw {
            Some(sw) => write!(f, "  {sw} {}", self.meaning),
            None => write!(f, "  {}", self.meaning),
        }
    }
}

/// Bytes with a mask: a masked byte is shown `**` and never decoded.
#[derive(Clone, Copy)]
struct View<'a> {
    bytes: &'a [u8],
    masked: &'a [bool],
    /// Everything is secret.
    all: bool,
}

impl<'a> View<'a> {
    fn new(bytes: &'a [u8], masked: &'a [bool], all: bool) -> Self {
        Self { bytes, masked, all }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn is_masked(&self, i: usize) -> bool {
        self.all || self.masked.get(i).copied().unwrap_or(false)
    }

    fn any_masked(&self) -> bool {
        (0..self.bytes.len()).any(|i| self.is_masked(i))
    }

    fn slice(&self, from: usize, to: usize) -> View<'a> {
        let to = to.min(self.bytes.len());
        let from = from.min(to);
        View {
            bytes: &self.bytes[from..to],
            masked: if self.masked.len() >= to {
                &self.masked[from..to]
            } else if self.masked.len() > from {
                &self.masked[from..]
            } else {
                &[]
            },
            all: self.all,
        }
    }

    /// Hex, masked bytes as `**`, at most [`MAX_SHOWN_BYTES`] shown.
    fn hex(&self) -> String {
        let shown = self.bytes.len().min(MAX_SHOWN_BYTES);
        let mut s = String::with_capacity(shown * 2 + 16);
        for (i, b) in self.bytes[..shown].iter().enumerate() {
            if self.is_masked(i) {
                s.push_str("**");
            } else {
                s.push_str(&to_hex(&[*b]));
            }
        }
        if shown < self.bytes.len() {
            s.push_str(&format!("… ({} bytes)", self.bytes.len()));
        }
        s
    }
}

fn field(name: impl Into<String>, value: impl Into<String>) -> Field {
    Field {
        name: name.into(),
        value: value.into(),
    }
}

/// `IRK (08)`, or `key 55` for an id the profile does not have.
fn kid_name(id: u8) -> String {
    match Kid::from_id(id) {
        Some(k) => format!("{k} ({id:02X})"),
        None => format!("{id:02X} (not a key of the profile)"),
    }
}

/// `YYYYMMDD` → `YYYY-MM-DD`.
fn dashed(date: &str) -> String {
    if date.len() == 8 {
        format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..])
    } else {
        date.to_string()
    }
}

/// What the decoder knows of one card's (or PSAM's) state.
#[derive(Clone, Debug, Default)]
struct RoleState {
    /// The current DF; `None` until a SELECT says (a trace may start mid-session).
    df: Option<Df>,
    /// The current EF of the card.
    ef: Option<&'static FileDef>,
    /// The PSAM's current EF by FID.
    psam_ef: Option<u16>,
    /// The key of the PSAM's last DES INIT.
    des_init: Option<u8>,
    /// The last command's answer is secret and waits for GET RESPONSE (`61xx`).
    secret_pending: bool,
    /// The algorithm the FCI (card) or EF15 (PSAM) gave.
    alg: Option<Algorithm>,
}

/// The stateful decoder of a trace: one per trace, fed its pairs in order.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    roles: Vec<(String, RoleState)>,
    /// The card's last challenge (GET CHALLENGE's answer), to name the cryptogram over it.
    challenge: Option<Vec<u8>>,
    /// The terminal's last INTERNAL AUTHENTICATE random.
    random: Option<Vec<u8>>,
}

/// The pair being decoded.
struct Pair<'a> {
    cmd: Command,
    /// The command data as given, with its mask.
    data: View<'a>,
    resp: View<'a>,
    sw: StatusWord,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&mut self, role: &str) -> &mut RoleState {
        let i = match self.roles.iter().position(|(r, _)| r == role) {
            Some(i) => i,
            None => {
                self.roles.push((role.to_string(), RoleState::default()));
                self.roles.len() - 1
            }
        };
        &mut self.roles[i].1
    }

    /// Decodes a pair of clear bytes (the response with its status word).
    pub fn decode(&mut self, role: &str, command: &[u8], response: &[u8]) -> Decoded {
        self.decode_masked(role, command, &[], response, &[])
    }

    /// Decodes a pair whose input marks some bytes masked (a JSON trace's `**`): those stay
    /// masked, and the decoder masks the secrets of the profile on top.
    pub fn decode_masked(
        &mut self,
        role: &str,
        command: &[u8],
        command_masked: &[bool],
        response: &[u8],
        response_masked: &[bool],
    ) -> Decoded {
        let info = match command {
            [cla, ins, ..] => describe(*cla, *ins),
            _ => describe(0xFF, 0xFF),
        };
        let mut out = Decoded {
            role: role.to_string(),
            command: info.name.to_string(),
            target: None,
            step: None,
            fields: Vec::new(),
            sw: None,
            meaning: String::new(),
            malformed: None,
        };
        let sw = match response {
            [.., a, b] => {
                let sw = StatusWord::new(*a, *b);
                out.sw = Some(sw.to_string());
                out.meaning = sw.meaning();
                Some(sw)
            }
            _ => {
                out.meaning = format!("no status word (a response of {} byte(s))", response.len());
                None
            }
        };
        let cmd = match Command::parse(command) {
            Ok(c) => c,
            Err(e) => {
                out.malformed = Some(e.to_string());
                if command.len() >= 4 {
                    out.fields.push(field("header", to_hex(&command[..4])));
                }
                if command.len() > 4 {
                    // The body of a malformed command: shown only when its class and
                    // instruction are those of a command without secrets.
                    let body = View::new(
                        &command[4..],
                        command_masked.get(4..).unwrap_or(&[]),
                        info.secrecy.command_data,
                    );
                    out.fields.push(field("body", body.hex()));
                }
                self.state(role).secret_pending = false;
                return out;
            }
        };
        let Some(sw) = sw else {
            out.malformed = Some("the response has no status word".into());
            return out;
        };
        let data_start = command.len() - cmd.data.len() - cmd_le_len(command, &cmd);
        let data_mask = command_masked.get(data_start..).unwrap_or(&[]);
        let data_bytes = &command[data_start..data_start + cmd.data.len()];
        let resp_len = response.len() - 2;
        let resp_secret =
            info.secrecy.response_data || (cmd.ins == 0xC0 && self.state(role).secret_pending);
        let pair = Pair {
            data: View::new(data_bytes, data_mask, info.secrecy.command_data),
            resp: View::new(&response[..resp_len], response_masked, resp_secret),
            sw,
            cmd,
        };
        let psam = role == "psam";
        self.command(&mut out, &pair, psam);
        let st = self.state(role);
        st.secret_pending = resp_secret && sw.bytes_available().is_some();
        out
    }

    fn command(&mut self, out: &mut Decoded, p: &Pair<'_>, psam: bool) {
        let c = &p.cmd;
        let ok = p.sw.is_success() || p.sw.bytes_available().is_some();
        let role = out.role.clone();
        match (c.cla & 0x80 != 0, c.ins) {
            (_, 0xA4) => self.select(out, p, psam, ok),
            (_, 0xB2) => self.read_record(out, p, &role),
            (_, 0xB0) => self.read_binary(out, p, psam, &role),
            (_, 0xDC) => self.update_record(out, p, &role),
            (_, 0xD6) => {
                let (file, offset) = self.binary_target(c.p1, c.p2, &role, psam);
                out.target = Some(format!("{file} offset {offset}"));
                line_protected(out, c.cla, p.data, |out, body| {
                    out.fields.push(field("data", body.hex()))
                });
            }
            (false, 0x84) => {
                out.step = Some(match c.le {
                    Some(4) => "card challenge for a line-protection MAC".into(),
                    Some(8) => "card challenge for external authentication".into(),
                    _ => "card challenge".into(),
                });
                if !p.resp.bytes.is_empty() {
                    out.fields.push(field("challenge", p.resp.hex()));
                    if ok && !p.resp.any_masked() {
                        self.challenge = Some(p.resp.bytes.to_vec());
                    }
                }
            }
            (false, 0x88) => {
                let kid = if c.p2 == 0 { Kid::Irk.id() } else { c.p2 };
                out.step = Some("internal authentication: the card proves it is genuine".into());
                out.fields.push(field("key", kid_name(kid)));
                out.fields.push(field("random", p.data.hex()));
                if !p.data.any_masked() {
                    self.random = Some(p.data.bytes.to_vec());
                }
                if !p.resp.bytes.is_empty() {
                    out.fields.push(field("cryptogram", p.resp.hex()));
                }
            }
            (_, 0x82) => {
                out.step = Some(
                    "external authentication: the terminal's cryptogram over the card's challenge"
                        .into(),
                );
                out.fields.push(field("key", kid_name(c.p2)));
                out.fields.push(field("cryptogram", p.data.hex()));
            }
            (_, 0x20 | 0x21) => {
                if c.p2 != 0 {
                    out.fields.push(field("key", kid_name(c.p2)));
                }
                out.fields.push(field("PIN", p.data.hex()));
            }
            (_, 0x5E) => {
                if c.cla & 0x04 != 0 {
                    out.command = "RELOAD PIN".into();
                    out.step = Some("line-protected (MAC under RPK)".into());
                    out.fields.push(field("new PIN ‖ MAC", p.data.hex()));
                } else {
                    out.command = "CHANGE PIN".into();
                    out.fields
                        .push(field("old PIN ‖ FF ‖ new PIN", p.data.hex()));
                }
            }
            (true, 0x24) => {
                out.step = Some("line-protected (MAC under UPK)".into());
                out.fields.push(field("MAC", p.data.hex()));
            }
            (_, 0xD4) => {
                out.target = Some(kid_name(c.p2));
                out.step = Some("line-protected (encrypted and MACed under TK)".into());
                out.fields.push(field("key block ‖ MAC", p.data.hex()));
            }
            (_, 0xEE) => {
                out.step = Some("line-protected (MAC under TK)".into());
                out.fields.push(field("MAC", p.data.hex()));
            }
            (true, 0x1A) => self.des_init(out, p, &role),
            (true, 0xFA) => self.des_crypt(out, p, &role),
            (_, 0xC0) => {
                let name = if p.resp.all {
                    out.step = Some("the DES CRYPT result".into());
                    "result"
                } else {
                    "data"
                };
                if !p.resp.bytes.is_empty() {
                    out.fields.push(field(name, p.resp.hex()));
                }
            }
            _ => {
                out.target = Some(format!(
                    "{:02X}{:02X}{:02X}{:02X}",
                    c.cla, c.ins, c.p1, c.p2
                ));
                if !p.data.bytes.is_empty() {
                    out.fields.push(field("data", p.data.hex()));
                }
                if !p.resp.bytes.is_empty() {
                    out.fields.push(field("response", p.resp.hex()));
                }
            }
        }
    }

    fn select(&mut self, out: &mut Decoded, p: &Pair<'_>, psam: bool, ok: bool) {
        let c = &p.cmd;
        let role = out.role.clone();
        let data = p.data.bytes;
        let fid_of = |d: &[u8]| match d {
            [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        };
        let st_df = self.state(&role).df;
        // (target name, new DF, new EF, PSAM EF)
        let (target, df, ef, psam_ef): (String, Option<Df>, Option<&'static FileDef>, Option<u16>) =
            match c.p1 {
                0x04 if data == SSSE_AID => ("SSSE".into(), Some(Df::Ssse), None, None),
                0x04 => (format!("AID {}", p.data.hex()), None, None, None),
                0x00 | 0x02 => match fid_of(data) {
                    Some(fid::MF) => ("MF".into(), Some(Df::Mf), None, None),
                    Some(fid::DF01) => ("DF01".into(), Some(Df::Df01), None, None),
                    Some(f) if psam => (psam_file_name(f), st_df, None, Some(f)),
                    Some(f) => match self.ef_by_fid(&role, f) {
                        Some(e) => (e.name.to_string(), Some(e.df), Some(e), None),
                        None => (format!("FID {f:04X}"), st_df, None, None),
                    },
                    None => (format!("file {}", p.data.hex()), st_df, None, None),
                },
                0x08 | 0x09 => {
                    let from = if c.p1 == 0x08 { Some(Df::Mf) } else { st_df };
                    let mut df = from;
                    let mut ef = None;
                    let mut psam_ef = None;
                    let mut names = Vec::new();
                    for pair in data.chunks(2) {
                        let Some(f) = fid_of(pair) else { break };
                        if f == fid::DF01 {
                            df = Some(Df::Df01);
                            names.push("DF01".to_string());
                        } else if psam {
                            psam_ef = Some(f);
                            names.push(psam_file_name(f));
                        } else if let Some(e) = df.and_then(|d| files::by_fid(d, f)) {
                            // An EF's name already holds its DF (`DF01/EF02`).
                            ef = Some(e);
                            names = vec![e.name.to_string()];
                        } else {
                            names.push(format!("{f:04X}"));
                        }
                    }
                    let from_name = if c.p1 == 0x08 { "path from MF" } else { "path" };
                    (format!("{from_name} {}", names.join("/")), df, ef, psam_ef)
                }
                _ => (
                    format!("P1 {:02X} {}", c.p1, p.data.hex()),
                    st_df,
                    None,
                    None,
                ),
            };
        out.target = Some(target);
        let body = p.resp;
        if !body.bytes.is_empty() && !body.any_masked() {
            match body.bytes.first() {
                Some(0x6F) => match Fci::parse(body.bytes) {
                    Ok(fci) => {
                        if ok {
                            self.state(&role).alg = Algorithm::from_id(fci.algorithm_id).ok();
                        }
                        out.fields.push(field(
                            "DF name",
                            if fci.df_name == SSSE_AID {
                                "SSSE".to_string()
                            } else {
                                to_hex(&fci.df_name)
                            },
                        ));
                        out.fields.push(field(
                            "algorithm",
                            match Algorithm::from_id(fci.algorithm_id) {
                                Ok(a) => format!("{:02X} ({})", fci.algorithm_id, a.name()),
                                Err(_) if fci.algorithm_id == 2 => {
                                    "02 (SSF33, not supported)".into()
                                }
                                Err(_) => format!("{:02X} (unknown)", fci.algorithm_id),
                            },
                        ));
                        out.fields.push(field(
                            "life cycle",
                            match fci.life_cycle {
                                super::life_cycle::PERSONALISATION => "01 (PERSONALISATION)".into(),
                                super::life_cycle::ISSUED => "02 (ISSUED)".into(),
                                b => format!("{b:02X} (unknown)"),
                            },
                        ));
                    }
                    Err(e) => out
                        .fields
                        .push(field("FCI", format!("{} ({e})", body.hex()))),
                },
                Some(0x62) => match Fcp::parse(body.bytes) {
                    Ok(fcp) => {
                        out.fields.push(field("FID", format!("{:04X}", fcp.fid)));
                        out.fields.push(field(
                            "FCP",
                            match fcp.shape {
                                FileShape::Transparent { size } => {
                                    format!("transparent, {size} bytes")
                                }
                                FileShape::Records { max_len, count } => {
                                    format!("{count} records, the longest {max_len} bytes")
                                }
                                FileShape::Df => "DF".into(),
                            },
                        ));
                    }
                    Err(e) => out
                        .fields
                        .push(field("FCP", format!("{} ({e})", body.hex()))),
                },
                _ => out.fields.push(field("response", body.hex())),
            }
        } else if !body.bytes.is_empty() {
            out.fields.push(field("response", body.hex()));
        }
        if ok {
            let st = self.state(&role);
            st.df = df;
            st.ef = ef;
            st.psam_ef = psam_ef;
        }
    }

    /// The EF with this FID under the current DF (or, the DF unknown, under SSSE or DF01).
    fn ef_by_fid(&mut self, role: &str, f: u16) -> Option<&'static FileDef> {
        match self.state(role).df {
            Some(df) => files::by_fid(df, f),
            None => files::by_fid(Df::Ssse, f).or_else(|| files::by_fid(Df::Df01, f)),
        }
    }

    fn ef_by_sfi(&mut self, role: &str, sfi: u8) -> Option<&'static FileDef> {
        let st = self.state(role);
        if sfi == 0 {
            return st.ef;
        }
        match st.df {
            Some(df) => files::by_sfi(df, sfi),
            None => files::by_sfi(Df::Ssse, sfi).or_else(|| files::by_sfi(Df::Df01, sfi)),
        }
    }

    fn read_record(&mut self, out: &mut Decoded, p: &Pair<'_>, role: &str) {
        let c = &p.cmd;
        let sfi = c.p2 >> 3;
        let file = self.ef_by_sfi(role, sfi);
        let file_name = match (file, sfi) {
            (Some(f), _) => f.name.to_string(),
            (None, 0) => "current EF".to_string(),
            (None, s) => format!("SFI {s:02X}"),
        };
        let target = match c.p2 & 0x07 {
            0x04 => format!("{file_name} #{}", c.p1),
            0x05 => {
                out.command = "READ RECORDS".into();
                format!("{file_name} #{}..", c.p1)
            }
            0x00 => format!("{file_name} tag {:02X}", c.p1),
            m => format!("{file_name} P1 {:02X} mode {m}", c.p1),
        };
        out.target = Some(target);
        if let Some(f) = file {
            if role != "psam" {
                self.state(role).ef = Some(f);
            }
        }
        if p.resp.bytes.is_empty() {
            return;
        }
        out.fields.extend(record_fields(file, p.resp));
    }

    fn binary_target(&mut self, p1: u8, p2: u8, role: &str, psam: bool) -> (String, u16) {
        if p1 & 0x80 != 0 {
            let sfi = p1 & 0x1F;
            let name = if psam {
                match sfi {
                    0x15 => "EF15".to_string(),
                    0x16 => "EF16".to_string(),
                    s => format!("SFI {s:02X}"),
                }
            } else {
                match self.ef_by_sfi(role, sfi) {
                    Some(f) => f.name.to_string(),
                    None => format!("SFI {sfi:02X}"),
                }
            };
            (name, u16::from(p2))
        } else {
            let st = self.state(role);
            let name = if psam {
                st.psam_ef
                    .map(psam_file_name)
                    .unwrap_or_else(|| "current EF".into())
            } else {
                st.ef
                    .map(|f| f.name.to_string())
                    .unwrap_or_else(|| "current EF".into())
            };
            (name, u16::from_be_bytes([p1, p2]))
        }
    }

    fn read_binary(&mut self, out: &mut Decoded, p: &Pair<'_>, psam: bool, role: &str) {
        let (file, offset) = self.binary_target(p.cmd.p1, p.cmd.p2, role, psam);
        out.target = Some(if offset == 0 {
            file.clone()
        } else {
            format!("{file} offset {offset}")
        });
        if p.resp.bytes.is_empty() {
            return;
        }
        if p.resp.any_masked() || offset != 0 {
            out.fields.push(field("data", p.resp.hex()));
            return;
        }
        match file.as_str() {
            "EF15" => match PsamInfo::parse(p.resp.bytes) {
                Ok(i) => {
                    self.state(role).alg = Some(i.algorithm);
                    out.fields.extend(ef15_fields(&i));
                }
                Err(e) => out
                    .fields
                    .push(field("data", format!("{} ({e})", p.resp.hex()))),
            },
            "EF16" => match parse_terminal_number(p.resp.bytes) {
                Ok(t) => out.fields.push(field("terminal number", t)),
                Err(e) => out
                    .fields
                    .push(field("data", format!("{} ({e})", p.resp.hex()))),
            },
            _ => out.fields.push(field("data", p.resp.hex())),
        }
    }

    fn update_record(&mut self, out: &mut Decoded, p: &Pair<'_>, role: &str) {
        let c = &p.cmd;
        let file = self.ef_by_sfi(role, c.p2 >> 3);
        let name = match file {
            Some(f) => f.name.to_string(),
            None => format!("SFI {:02X}", c.p2 >> 3),
        };
        out.target = Some(match c.p2 & 0x07 {
            0x04 => format!("{name} #{}", c.p1),
            m => format!("{name} P1 {:02X} mode {m}", c.p1),
        });
        line_protected(out, c.cla, p.data, |out, body| {
            out.fields.extend(record_fields(file, body))
        });
    }

    fn des_init(&mut self, out: &mut Decoded, p: &Pair<'_>, role: &str) {
        let c = &p.cmd;
        out.target = Some(kid_name(c.p1));
        out.fields.push(field("key index", format!("{:02X}", c.p2)));
        let n = p.data.len() / 8;
        if !p.data.len().is_multiple_of(8) || n == 0 {
            out.fields.push(field("factors", p.data.hex()));
        } else {
            let names: &[&str] = match n {
                1 => &["card"],
                2 => &["city", "card"],
                3 => &["province", "city", "card"],
                _ => &[],
            };
            for i in 0..n {
                let name = names.get(i).copied().unwrap_or("factor");
                out.fields.push(field(
                    format!("{name} diversifier"),
                    p.data.slice(i * 8, i * 8 + 8).hex(),
                ));
            }
        }
        let ok = p.sw.is_success();
        self.state(role).des_init = ok.then_some(c.p1);
    }

    fn des_crypt(&mut self, out: &mut Decoded, p: &Pair<'_>, role: &str) {
        let c = &p.cmd;
        let kid = self.state(role).des_init.and_then(Kid::from_id);
        let over = |x: &Option<Vec<u8>>| {
            x.as_ref()
                .is_some_and(|x| !x.is_empty() && p.data.bytes.starts_with(x))
        };
        match c.p1 {
            0x05 => {
                out.step = Some(match kid {
                    Some(k) => format!("line-protection MAC under {k}"),
                    None => "MAC".into(),
                });
                let iv = self.state(role).alg.map_or(8, Algorithm::block_size);
                out.fields.push(field("IV", p.data.slice(0, iv).hex()));
                out.fields
                    .push(field("message", p.data.slice(iv, p.data.len()).hex()));
            }
            _ => {
                out.step = Some(match kid {
                    Some(Kid::Irk) if over(&self.random) => {
                        "the card's internal-authentication cryptogram, recomputed under IRK".into()
                    }
                    Some(k) if over(&self.challenge) => {
                        format!("the external-authentication cryptogram over the card's challenge under {k}")
                    }
                    Some(k) => format!("encryption under {k}"),
                    None => "encryption".into(),
                });
                out.fields.push(field("input", p.data.hex()));
            }
        }
        if !p.resp.bytes.is_empty() {
            out.fields.push(field("result", p.resp.hex()));
        }
    }
}

/// The length of Le's bytes at the end of `command` (0, 1, 2 or 3).
fn cmd_le_len(command: &[u8], cmd: &Command) -> usize {
    match cmd.le {
        None => 0,
        Some(_) if command.len() == 5 => 1,
        Some(_) if command.len() == 7 && command[4] == 0 => 3,
        Some(_) if command[4] == 0 => 2,
        Some(_) => 1,
    }
}

/// A PSAM file by FID.
fn psam_file_name(f: u16) -> String {
    match f {
        fid::EF15 | super::psam::EF15_SHORT_FID => "EF15".into(),
        fid::EF16 | super::psam::EF16_SHORT_FID => "EF16".into(),
        fid::DF01 => "DF01".into(),
        f => format!("FID {f:04X}"),
    }
}

/// Decodes an UPDATE's data: with CLA `04`/`84` the last 4 bytes are the MAC.
fn line_protected(
    out: &mut Decoded,
    cla: u8,
    data: View<'_>,
    body: impl FnOnce(&mut Decoded, View<'_>),
) {
    if cla & 0x04 != 0 && data.len() >= 4 {
        out.step = Some("line-protected write (MAC)".into());
        body(out, data.slice(0, data.len() - 4));
        out.fields
            .push(field("MAC", data.slice(data.len() - 4, data.len()).hex()));
    } else {
        body(out, data);
    }
}

/// The fields of TLV records through the file table: each record's name and decoded value,
/// `(empty)` when unwritten, the hex and the problem when malformed.
fn record_fields(file: Option<&'static FileDef>, data: View<'_>) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let rest = data.slice(at, data.len());
        let Ok((rec, _)) = Record::parse_prefix(rest.bytes) else {
            let note = if rest.any_masked() {
                ""
            } else {
                " (not TLV records)"
            };
            fields.push(field("data", format!("{}{note}", rest.hex())));
            break;
        };
        let value = rest.slice(2, 2 + rec.value.len());
        let def: Option<&'static RecordDef> = file.and_then(|f| f.record_by_tag(rec.tag));
        let name = match def {
            Some(d) => d.name.to_string(),
            None => format!("tag {:02X}", rec.tag),
        };
        let text = match (file, def) {
            _ if value.any_masked() => value.hex(),
            _ if rec.value.iter().all(|&b| b == 0) => "(empty)".into(),
            (Some(f), Some(d)) if rec.value.len() == d.len as usize => {
                match super::fields::decode(f, d, &rec.value) {
                    Ok(t) => t,
                    Err(e) => format!("{} ({})", value.hex(), e.problem),
                }
            }
            (Some(_), Some(d)) => format!(
                "{} ({} bytes, the profile has {})",
                value.hex(),
                rec.value.len(),
                d.len
            ),
            _ => value.hex(),
        };
        fields.push(field(name, text));
        at += 2 + rec.value.len();
    }
    fields
}

/// The fields of a PSAM's EF15, as a trace and `sscard shell` show them.
pub fn ef15_fields(i: &PsamInfo) -> Vec<Field> {
    vec![
        field("serial", i.serial.clone()),
        field("version", format!("{:02X}", i.version)),
        field(
            "algorithm",
            format!("{:02X} ({})", i.algorithm.id(), i.algorithm.name()),
        ),
        field("region", i.region.clone()),
        field(
            "level",
            format!("{} ({})", i.level, super::psam::level::name(i.level)),
        ),
        field("start date", dashed(&i.start_date)),
        field("expiry date", dashed(&i.expiry_date)),
    ]
}

/// One record of a file, decoded for `read`: its number and tag, its field's name and key, and
/// its value decoded as a trace shows it (`(empty)` when unwritten).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RecordValue {
    /// The record number of the file table; `None` for a tag the profile does not have.
    pub number: Option<u8>,
    /// In JSON as two hex digits, like the raw records (`"0A"`).
    #[serde(serialize_with = "hex_byte")]
    pub tag: u8,
    /// The field's name for people (`birth date`).
    pub name: String,
    /// The field's key in holder data and JSON (`birth_date`).
    pub key: Option<&'static str>,
    pub value: String,
}

impl RecordValue {
    /// The line `read` and `sscard shell` print: `EF06 #2  name = 张三` (the record's number in
    /// the file table; a tag the profile does not have shows without one).
    pub fn line(&self, file: &FileDef) -> String {
        match self.number {
            Some(n) => format!("{} #{n}  {} = {}", file.name, self.name, self.value),
            None => format!("{}  {} = {}", file.name, self.name, self.value),
        }
    }
}

fn hex_byte<S: serde::Serializer>(b: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{b:02X}"))
}

/// The records read from `file`, decoded through the file table (decoded `read`).
pub fn record_values(file: &'static FileDef, records: &[Record]) -> Vec<RecordValue> {
    records
        .iter()
        .map(|r| {
            let bytes = r.to_bytes();
            let def = file.record_by_tag(r.tag);
            let value = record_fields(Some(file), View::new(&bytes, &[], false))
                .into_iter()
                .next()
                .map(|f| f.value)
                .unwrap_or_default();
            RecordValue {
                number: def.map(|d| d.number),
                tag: r.tag,
                name: def.map_or_else(|| format!("tag {:02X}", r.tag), |d| d.name.to_string()),
                key: def.map(|d| d.key),
                value,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::parse_hex;
    use proptest::prelude::*;

    fn h(s: &str) -> Vec<u8> {
        parse_hex(s).unwrap()
    }

    fn line(d: &mut Decoder, role: &str, c: &str, r: &str) -> String {
        d.decode(role, &h(c), &h(r)).to_string()
    }

    const FCI_3DES: &str = "6F1C840F7378312E73682EC9E7BBE1B1A3D5CFA5099F0C03860101C00102";

    #[test]
    fn read_and_the_shell_print_one_line_per_record() {
        let ef06 = files::ef06();
        let mut name = vec![0xD5, 0xC5, 0xC8, 0xFD];
        name.resize(30, 0);
        let records = [
            Record::new(0x09, name).unwrap(),
            Record::new(0x0D, vec![0x19, 0x49, 0x12, 0x31]).unwrap(),
            Record::new(0x0D, vec![0; 4]).unwrap(),
            Record::new(0x0D, vec![0x20, 0x24, 0x02, 0x30]).unwrap(),
            Record::new(0x55, vec![1]).unwrap(),
        ];
        let lines: Vec<String> = record_values(ef06, &records)
            .iter()
            .map(|f| f.line(ef06))
            .collect();
        assert_eq!(
            lines,
            [
                "EF06 #2  name = 张三",
                "EF06 #7  birth date = 1949-12-31",
                "EF06 #7  birth date = (empty)",
                "EF06 #7  birth date = 20240230 (20240230 is not a date)",
                "EF06  tag 55 = 01",
            ]
        );
    }

    #[test]
    fn select_read_and_fci() {
        let mut d = Decoder::new();
        assert_eq!(
            line(&mut d, "card", "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00", &format!("{FCI_3DES}9000")),
            "card  SELECT SSSE  DF name = SSSE  algorithm = 01 (3DES)  life cycle = 02 (ISSUED)  9000 success"
        );
        let name = format!("091E{}", "00".repeat(30));
        assert_eq!(
            line(&mut d, "card", "00B2023400", &format!("{name}9000")),
            "card  READ RECORD EF06 #2  name = (empty)  9000 success"
        );
        assert_eq!(
            line(
                &mut d,
                "card",
                "00B2023400",
                &format!("091ED5C5C8FD{}9000", "00".repeat(26))
            ),
            "card  READ RECORD EF06 #2  name = 张三  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "00B20D3000", "0D04194912319000"),
            "card  READ RECORD EF06 tag 0D  birth date = 1949-12-31  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "00B2053400", "0A01339000"),
            "card  READ RECORD EF06 #5  gender = 33 (\"3\" is not 1, 2 or 9)  9000 success"
        );
        assert_eq!(
            line(
                &mut d,
                "card",
                "00A4000002EF05",
                "620B820504410012078302EF059000"
            ),
            "card  SELECT EF05  FID = EF05  FCP = 7 records, the longest 18 bytes  9000 success"
        );
        // The current EF (SFI 0) is the one selected.
        assert_eq!(
            line(&mut d, "card", "00B2070400", "07094131323334353637349000"),
            "card  READ RECORD EF05 #7  card number = A12345674  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "00B2092C00", "6A83"),
            "card  READ RECORD EF05 #9  6A83 record not found"
        );
        assert_eq!(
            line(&mut d, "card", "00A4000002DF01", "9000"),
            "card  SELECT DF01  9000 success"
        );
        assert_eq!(
            line(
                &mut d,
                "card",
                "00B0820010",
                &format!("{}9000", "AB".repeat(16))
            ),
            format!(
                "card  READ BINARY DF01/EF02  data = {}  9000 success",
                "AB".repeat(16)
            )
        );
    }

    #[test]
    fn authentication_steps_and_psam_commands_are_named_and_masked() {
        let mut d = Decoder::new();
        assert_eq!(
            line(&mut d, "card", "0084000008", "79D87DDA94FB38EB9000"),
            "card  GET CHALLENGE  (card challenge for external authentication)  challenge = 79D87DDA94FB38EB  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "801A0A010899110145000000A1", "9000"),
            "psam  DES INIT RKSSSE (0A)  key index = 01  card diversifier = 99110145000000A1  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "80FA00001079D87DDA94FB38EB0000000000000000", "6110"),
            "psam  DES CRYPT  (the external-authentication cryptogram over the card's challenge under RKSSSE)  input = 79D87DDA94FB38EB0000000000000000  6110 16 response bytes available (GET RESPONSE)"
        );
        assert_eq!(
            line(
                &mut d,
                "psam",
                "00C0000010",
                &format!("{}9000", "11".repeat(16))
            ),
            format!(
                "psam  GET RESPONSE  (the DES CRYPT result)  result = {}  9000 success",
                "**".repeat(16)
            )
        );
        // The next GET RESPONSE is not a DES CRYPT's.
        assert_eq!(
            line(&mut d, "psam", "00C0000002", "12349000"),
            "psam  GET RESPONSE  data = 1234  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "0082000A10112233445566778899AABBCCDDEEFF00", "9000"),
            format!("card  EXTERNAL AUTHENTICATE  (external authentication: the terminal's cryptogram over the card's challenge)  key = RKSSSE (0A)  cryptogram = {}  9000 success", "**".repeat(16))
        );
        assert_eq!(
            line(&mut d, "card", "0088000808F6F9E55A5BF65B7500", "F71911DEA0FC67D99000"),
            "card  INTERNAL AUTHENTICATE  (internal authentication: the card proves it is genuine)  key = IRK (08)  random = F6F9E55A5BF65B75  cryptogram = F71911DEA0FC67D9  9000 success"
        );
        line(&mut d, "psam", "801A08010899110145000000A1", "9000");
        assert_eq!(
            line(&mut d, "psam", "80FA000008F6F9E55A5BF65B75", "AABBCCDDEEFF00119000"),
            format!("psam  DES CRYPT  (the card's internal-authentication cryptogram, recomputed under IRK)  input = F6F9E55A5BF65B75  result = {}  9000 success", "**".repeat(8))
        );
        // A clear PIN in someone else's trace is never shown.
        assert_eq!(
            line(&mut d, "card", "0020000003123456", "63C2"),
            "card  VERIFY  PIN = ******  63C2 verification failed, 2 tries left"
        );
        assert_eq!(
            line(&mut d, "card", "805E010007123456FF654321", "9000"),
            format!(
                "card  CHANGE PIN  old PIN ‖ FF ‖ new PIN = {}  9000 success",
                "**".repeat(7)
            )
        );
        assert_eq!(
            line(&mut d, "card", "845E000007123456AABBCCDD", "9000"),
            format!("card  RELOAD PIN  (line-protected (MAC under RPK))  new PIN ‖ MAC = {}  9000 success", "**".repeat(7))
        );
        assert_eq!(
            line(&mut d, "card", "84D4000803AABBCC", "9000"),
            "card  WRITE KEY IRK (08)  (line-protected (encrypted and MACed under TK))  key block ‖ MAC = ******  9000 success"
        );
        // A malformed VERIFY (a wrong Lc) shows nothing after its header.
        assert_eq!(
            line(&mut d, "card", "0020000004123456", "6700"),
            "card  VERIFY  header = 00200000  body = ********  malformed: Lc says 4 data bytes but 3 follow  6700 wrong length"
        );
        assert_eq!(
            line(&mut d, "card", "0084000004", "A1B2C3D49000"),
            "card  GET CHALLENGE  (card challenge for a line-protection MAC)  challenge = A1B2C3D4  9000 success"
        );
        line(&mut d, "psam", "801A03010899110145000000A1", "9000");
        assert_eq!(
            line(&mut d, "psam", "80FA050013A1B2C3D40000000004DC04340700AA0A013139", "6104"),
            "psam  DES CRYPT  (line-protection MAC under UK_N)  IV = A1B2C3D400000000  message = 04DC04340700AA0A013139  6104 4 response bytes available (GET RESPONSE)"
        );
    }

    #[test]
    fn line_protected_writes_and_psam_files() {
        let mut d = Decoder::new();
        line(
            &mut d,
            "card",
            "00A404000F7378312E73682EC9E7BBE1B1A3D5CF",
            "9000",
        );
        assert_eq!(
            line(&mut d, "card", "04DC0434070A013138F6BDC8", "9000"),
            "card  UPDATE RECORD EF06 #4  (line-protected write (MAC))  gender = 1  MAC = 38F6BDC8  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "04DC0434070A013138F6BDC8", "6988"),
            "card  UPDATE RECORD EF06 #4  (line-protected write (MAC))  gender = 1  MAC = 38F6BDC8  6988 incorrect secure messaging data object (MAC wrong)"
        );
        assert_eq!(
            line(&mut d, "psam", "00B0950018", "1101000000000000000101011101000220240101203401019000"),
            "psam  READ BINARY EF15  serial = 11010000000000000001  version = 01  algorithm = 01 (3DES)  region = 110100  level = 2 (city)  start date = 2024-01-01  expiry date = 2034-01-01  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "00B0960006", "1101000000019000"),
            "psam  READ BINARY EF16  terminal number = 110100000001  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "00A40000020015", "9000"),
            "psam  SELECT EF15  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "00A4080004DF01EF02", "9000"),
            "card  SELECT path from MF DF01/EF02  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "00A40800020016", "9000"),
            "psam  SELECT path from MF EF16  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "00B0000006", "1101000000019000"),
            "psam  READ BINARY EF16  terminal number = 110100000001  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "04D6820406AABB112233FF", "9000"),
            "card  UPDATE BINARY DF01/EF02 offset 4  (line-protected write (MAC))  data = AABB  MAC = 112233FF  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "8424000104A1B2C3D4", "9000"),
            "card  UNBLOCK PIN  (line-protected (MAC under UPK))  MAC = ********  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "84EE000004A1B2C3D4", "6985"),
            "card  END PERSONALISATION  (line-protected (MAC under TK))  MAC = A1B2C3D4  6985 conditions of use not satisfied"
        );
        assert_eq!(
            line(&mut d, "psam", "80CA000000", "9000"),
            "psam  command 80CA0000  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "801A0A01183131303030307368313130313030737899110145000000", "9000"),
            "psam  DES INIT  header = 801A0A01  body = 183131303030307368313130313030737899110145000000  malformed: Lc says 24 data bytes but 23 follow  9000 success"
        );
        assert_eq!(
            line(&mut d, "psam", "801A0A01183131303030307368313130313030737899110145000000A1", "9000"),
            "psam  DES INIT RKSSSE (0A)  key index = 01  province diversifier = 3131303030307368  city diversifier = 3131303130307378  card diversifier = 99110145000000A1  9000 success"
        );
        // A long value shows its first 64 bytes and its length.
        let long = format!("{}9000", "AB".repeat(100));
        assert_eq!(
            line(&mut d, "card", "00B0820000", &long),
            format!(
                "card  READ BINARY DF01/EF02  data = {}… (100 bytes)  9000 success",
                "AB".repeat(64)
            )
        );
    }

    #[test]
    fn malformed_pairs_say_so() {
        let mut d = Decoder::new();
        assert_eq!(
            line(&mut d, "card", "00B2", "9000"),
            "card  READ RECORD  malformed: an APDU needs at least 4 header bytes, got 2  9000 success"
        );
        assert_eq!(
            line(&mut d, "card", "00B2012C00", "90"),
            "card  READ RECORD  malformed: the response has no status word  no status word (a response of 1 byte(s))"
        );
        assert_eq!(
            line(&mut d, "card", "00B2012C00", "0110AA9000"),
            "card  READ RECORD EF05 #1  data = 0110AA (not TLV records)  9000 success"
        );
    }

    #[test]
    fn records_of_a_read_decode_through_the_file_table() {
        let ef06 = files::ef06();
        let recs = [
            Record::new(0x0A, vec![0x32]).unwrap(),
            Record::new(0x0D, h("19491231")).unwrap(),
            Record::new(0x09, vec![0; 30]).unwrap(),
            Record::new(0x77, vec![1]).unwrap(),
        ];
        let v = record_values(ef06, &recs);
        let got: Vec<(Option<u8>, &str, &str)> = v
            .iter()
            .map(|r| (r.number, r.name.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Some(4), "gender", "2"),
                (Some(7), "birth date", "1949-12-31"),
                (Some(2), "name", "(empty)"),
                (None, "tag 77", "01"),
            ]
        );
        assert_eq!(v[1].key, Some("birth_date"));
    }

    #[test]
    fn input_masks_stay_masked() {
        let mut d = Decoder::new();
        let c = h("00B2013400");
        let r = h("0812313130313035313934393132333130303258");
        let mut r = [r, vec![0x90, 0]].concat();
        r[3] = b'*';
        let mut mask = vec![false; r.len()];
        mask[3] = true;
        let out = d.decode_masked("card", &c, &[], &r, &mask).to_string();
        assert_eq!(
            out,
            "card  READ RECORD EF06 #1  social security number = 31**30313035313934393132333130303258  9000 success"
        );
    }

    proptest! {
        #[test]
        fn any_bytes_decode_without_panic_and_bounded(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<u8>(), 0..300)),
                1..8
            )
        ) {
            let mut d = Decoder::new();
            for (c, r) in &pairs {
                let out = d.decode("card", c, r).to_string();
                prop_assert!(out.len() <= 400 + 40 * (c.len() + r.len()), "{out}");
                prop_assert!(!out.contains('\n') && !out.contains('\r'), "one line: {out}");
                let out = d.decode("psam", c, r).to_string();
                prop_assert!(out.len() <= 400 + 40 * (c.len() + r.len()), "{out}");
            }
        }

        #[test]
        fn profile_headers_with_any_body_never_panic(
            ins in proptest::sample::select(vec![0xA4u8, 0xB2, 0xB0, 0xDC, 0xD6, 0x84, 0x88, 0x82, 0x20, 0x5E, 0x24, 0xD4, 0xEE, 0x1A, 0xFA, 0xC0]),
            cla in proptest::sample::select(vec![0x00u8, 0x04, 0x80, 0x84]),
            p1 in any::<u8>(), p2 in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..80),
            resp in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut c = vec![cla, ins, p1, p2];
            if !body.is_empty() {
                c.push(body.len() as u8);
                c.extend(&body);
            }
            let mut d = Decoder::new();
            let out = d.decode("card", &c, &resp);
            if describe(cla, ins).secrecy.command_data && body.len() >= 5 {
                let hex = to_hex(&body);
                prop_assert!(!out.to_string().contains(&hex), "{out}");
            }
            let _ = d.decode("psam", &c, &resp);
        }
    }
}
