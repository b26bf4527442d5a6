//! What each command does. Card commands borrow one transaction for their duration; the
//! profile's flows (read, auth, verify, write) run in a [`sscard::ssc::Session`] as `sscard
//! read`, `info` and `write` do, so access rules, key sources and line protection are the
//! library's, not the shell's.

use super::output;
use super::parse::{usage, AuthKind, Cmd, COMMANDS};
use super::state::{App, Card, State};
use crate::exit::{BadInput, UnexpectedStatus};
use anyhow::Result;
use sscard::ssc::{FileContent, Pin, PinStatus};
use sscard_core::apdu::Command;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::commands;
use sscard_core::profile::files::{self, Df, FileDef};
use sscard_core::profile::psam::{self, PsamInfo};
use sscard_core::profile::{fid, KeyScope, Kid, SSSE_AID};
use sscard_core::tlv::{Fci, Record};
use sscard_transport::pcsc::{establish, list_readers, PcscBackend};
use sscard_transport::trace::mask;
use sscard_transport::{Connection, TransportError};
use zeroize::Zeroizing;

/// Where `verify` gets the PIN: the terminal without echo, or the next line of the script.
pub trait PinSource {
    fn pin(&mut self) -> Result<Zeroizing<String>>;
}

/// What the loop does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Exit,
}

/// Runs one command; its output goes to stdout.
pub fn run(state: &mut State, cmd: Cmd, pins: &mut dyn PinSource) -> Result<Next> {
    let text = match cmd {
        Cmd::Exit => return Ok(Next::Exit),
        Cmd::Help(c) => help(c.as_deref())?,
        Cmd::Readers => readers()?,
        Cmd::Connect(r) => connect(state, &r)?,
        Cmd::Disconnect => match state.detach() {
            Some(r) => format!("disconnected from {r}"),
            None => "not connected".into(),
        },
        Cmd::Ls if state.is_psam() => output::psam_ls(),
        Cmd::Ls => output::ls(state.df.unwrap_or(Df::Ssse), state.algorithm()),
        Cmd::Select(t) => select(state, &t)?,
        Cmd::Read { file, record, raw } => read(state, file.as_deref(), record.as_deref(), raw)?,
        Cmd::Auth(kind) => auth(state, kind)?,
        Cmd::Verify => verify(state, pins)?,
        Cmd::Write { file, record, data } => write(state, &file, &record, &data)?,
        Cmd::Apdu(hex) => apdu(state, &hex)?,
        Cmd::Trace(on) => {
            state.switch.set(on);
            format!("trace {}", if on { "on" } else { "off" })
        }
    };
    crate::output::line(&text);
    Ok(Next::Continue)
}

fn help(command: Option<&str>) -> Result<String> {
    if let Some(c) = command {
        let (_, _, what) = COMMANDS
            .iter()
            .find(|(n, _, _)| *n == c)
            .ok_or_else(|| BadInput(format!("unknown command {c:?}: `help` lists the commands")))?;
        return Ok(format!("{}\n    {what}", usage(c).unwrap_or_default()));
    }
    let width = COMMANDS
        .iter()
        .map(|(n, a, _)| n.len() + a.len() + 1)
        .max()
        .unwrap_or(0);
    Ok(COMMANDS
        .iter()
        .map(|(n, a, w)| format!("{:<width$}  {w}", format!("{n} {a}").trim_end()))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// `readers`: index, name, and the card's ATR or `(no card)` (pcscd's reader states: no
/// card is connected to, so none is reset).
fn readers() -> Result<String> {
    let ctx = establish()?;
    let names = list_readers(&ctx)?;
    if names.is_empty() {
        return Ok("no readers".into());
    }
    let mut states: Vec<pcsc::ReaderState> = names
        .iter()
        .filter_map(|n| std::ffi::CString::new(n.as_str()).ok())
        .map(|n| pcsc::ReaderState::new(n, pcsc::State::UNAWARE))
        .collect();
    ctx.get_status_change(std::time::Duration::from_millis(500), &mut states)
        .map_err(TransportError::from)?;
    Ok(states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let card = match s.event_state().contains(pcsc::State::PRESENT) {
                true => format!("card {}", to_hex(s.atr())),
                false => "(no card)".into(),
            };
            format!("{i}: {}  {card}", s.name().to_string_lossy())
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The reader `wanted` names among `readers`: its index, its exact name, or the one name
/// holding it (case-insensitive); several → an error listing them.
pub fn resolve(readers: &[String], wanted: &str) -> Result<String, TransportError> {
    if readers.is_empty() {
        return Err(TransportError::NoReader);
    }
    if let Some(r) = wanted.parse::<usize>().ok().and_then(|i| readers.get(i)) {
        return Ok(r.clone());
    }
    if let Some(r) = readers.iter().find(|r| *r == wanted) {
        return Ok(r.clone());
    }
    let low = wanted.to_lowercase();
    let matches: Vec<&str> = readers
        .iter()
        .filter(|r| r.to_lowercase().contains(&low))
        .map(String::as_str)
        .collect();
    match matches[..] {
        [one] => Ok(one.to_string()),
        [] => Err(TransportError::UnknownReader {
            wanted: wanted.into(),
            present: readers.join(", "),
        }),
        _ => Err(TransportError::AmbiguousReader {
            wanted: wanted.into(),
            matches: matches.join(", "),
        }),
    }
}

/// `connect`: the card in the reader, and what its SSSE FCI says (one SELECT).
fn connect(state: &mut State, wanted: &str) -> Result<String> {
    let ctx = establish()?;
    let name = resolve(&list_readers(&ctx)?, wanted)?;
    state.detach();
    let mut conn = Connection::new(PcscBackend::connect_named(&ctx, &name, false)?)
        .traced(&state.trace, "card");
    let fci = {
        let mut tx = conn.transaction()?;
        let r = tx.send(&commands::select_ssse())?;
        r.sw.is_success()
            .then(|| Fci::parse(&r.data).ok())
            .flatten()
    };
    let app = fci.and_then(|f| {
        Some(App {
            algorithm: Algorithm::from_id(f.algorithm_id).ok()?,
            issued: f.life_cycle == sscard_core::profile::life_cycle::ISSUED,
        })
    });
    let atr = to_hex(conn.atr());
    let psam = match app {
        Some(_) => None,
        None => psam_files(&mut conn).ok(),
    };
    let about = match (app, &psam) {
        (_, Some((info, terminal))) => output::psam_summary(info, terminal),
        (Some(a), _) => format!(
            "SSSE {} ({}), {}",
            spec_version(a.algorithm),
            a.algorithm.name(),
            if a.issued {
                "issued"
            } else {
                "in personalisation"
            }
        ),
        (None, None) => "no SSSE application, not a PSAM: raw APDUs only".into(),
    };
    state.attach(Card {
        conn,
        app,
        psam: psam.is_some(),
    });
    Ok(format!("connected to {name}: ATR {atr}\n{about}"))
}

/// A PSAM's EF15 and terminal number, as the PSAM key source reads them (DF01, EF15, EF16).
fn psam_files(conn: &mut Connection) -> Result<(PsamInfo, String)> {
    let mut tx = conn.transaction()?;
    let mut read = |apdu: &commands::Apdu| -> Result<Vec<u8>> {
        let r = tx.send(apdu)?;
        if !r.sw.is_success() {
            return Err(UnexpectedStatus(format!("{} answered {}", apdu.name, r.sw)).into());
        }
        Ok(r.data)
    };
    read(&commands::select_df01())?;
    let info = PsamInfo::parse(&read(&commands::psam_read_ef15())?)?;
    let terminal = psam::parse_terminal_number(&read(&commands::psam_read_ef16())?)?;
    Ok((info, terminal))
}

/// `read EF15|EF16` on a PSAM.
fn read_psam(state: &mut State, file: Option<&str>) -> Result<String> {
    let card = state.card()?;
    let mut tx = card.conn.transaction()?;
    let which = file.unwrap_or("").to_uppercase();
    let apdu = match which.as_str() {
        "EF15" | "0015" => commands::psam_read_ef15(),
        "EF16" | "0016" => commands::psam_read_ef16(),
        _ => {
            return Err(
                BadInput("a PSAM has EF15 and EF16: `read EF15` or `read EF16`".into()).into(),
            )
        }
    };
    let r = tx.send(&commands::select_df01())?;
    expect_selected("DF01", &r)?;
    let r = tx.send(&apdu)?;
    if !r.sw.is_success() {
        return Err(UnexpectedStatus(format!(
            "{} answered {} ({})",
            apdu.name,
            r.sw,
            r.sw.meaning()
        ))
        .into());
    }
    Ok(match which.as_str() {
        "EF15" | "0015" => output::psam_ef15(&PsamInfo::parse(&r.data)?),
        _ => format!(
            "EF16 terminal number = {}",
            psam::parse_terminal_number(&r.data)?
        ),
    })
}

fn spec_version(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Tdes => "2.00",
        _ => "3.00",
    }
}

/// A file by name, or the selected one.
fn file_or_selected(state: &State, name: Option<&str>) -> Result<&'static FileDef, BadInput> {
    match name {
        Some(n) => files::by_name(n)
            .or_else(|| {
                // `EF01` in DF01 names DF01/EF01.
                let df = state.df?;
                files::FILES.iter().find(|f| {
                    f.df == df && f.name.rsplit('/').next() == Some(n.to_uppercase().as_str())
                })
            })
            .ok_or_else(|| BadInput(format!("unknown file {n:?}: {}", files::names()))),
        None => state
            .file
            .ok_or_else(|| BadInput("no file selected: `select FILE` or `read FILE`".into())),
    }
}

/// A record of `file` by number or by field (`name`, `card_number`, or the field's name).
fn record_number(file: &FileDef, what: &str) -> Result<u8, BadInput> {
    if let Ok(n) = what.parse::<u8>() {
        return Ok(n);
    }
    file.records()
        .iter()
        .find(|r| r.key.eq_ignore_ascii_case(what) || r.name.eq_ignore_ascii_case(what))
        .map(|r| r.number)
        .ok_or_else(|| {
            let keys: Vec<&str> = file.records().iter().map(|r| r.key).collect();
            BadInput(format!(
                "{} has no record {what:?}: a number or one of {}",
                file.name,
                keys.join(", ")
            ))
        })
}

fn expect_selected(what: &str, r: &sscard_core::apdu::Response) -> Result<()> {
    if r.sw.is_success() {
        return Ok(());
    }
    Err(UnexpectedStatus(format!(
        "SELECT {what} answered {} ({})",
        r.sw,
        r.sw.meaning()
    ))
    .into())
}

/// `select`: a DF (MF, SSSE, DF01, an AID) or an EF by name or FID under the current DF.
fn select(state: &mut State, target: &str) -> Result<String> {
    let upper = target.to_uppercase();
    if let Some(aid) = target
        .strip_prefix("aid:")
        .or_else(|| target.strip_prefix("AID:"))
    {
        let aid = parse_hex(aid).map_err(|e| BadInput(format!("aid: {e}")))?;
        if aid.is_empty() || aid.len() > 16 {
            return Err(BadInput("an AID has 1 to 16 bytes".into()).into());
        }
        let cmd = Command::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(aid.clone())
            .with_le(256);
        let card = state.card()?;
        let r = card.conn.transaction()?.transmit(&cmd)?;
        expect_selected(&format!("aid:{}", to_hex(&aid)), &r)?;
        state.df = (aid == SSSE_AID).then_some(Df::Ssse);
        state.file = None;
        let fci = match r.data.is_empty() {
            true => String::new(),
            false => format!(": FCI {}", to_hex(&r.data)),
        };
        return Ok(format!("selected aid:{}{fci}", to_hex(&aid)));
    }
    match upper.as_str() {
        "MF" | "3F00" => {
            let cmd = Command::new(0x00, 0xA4, 0x00, 0x00).with_data(fid::MF.to_be_bytes());
            let r = state.card()?.conn.transaction()?.transmit(&cmd)?;
            expect_selected("MF", &r)?;
            state.df = Some(Df::Mf);
            state.file = None;
            return Ok("selected MF (3F00)".into());
        }
        "SSSE" => {
            let r = state
                .card()?
                .conn
                .transaction()?
                .send(&commands::select_ssse())?;
            expect_selected("SSSE", &r)?;
            state.df = Some(Df::Ssse);
            state.file = None;
            return Ok(format!("selected SSSE (AID {})", to_hex(&SSSE_AID)));
        }
        "DF01" => {
            enter(state, Df::Df01)?;
            state.file = None;
            return Ok("selected DF01 (the local extension)".into());
        }
        _ => {}
    }
    if state.is_psam() {
        return select_psam(state, &upper);
    }
    // An EF: by name (its DF entered first), else by FID under the current DF.
    let file = match files::by_name(target) {
        Some(f) => Some(f),
        None if upper.len() == 4 && u16::from_str_radix(&upper, 16).is_ok() => {
            let fid = u16::from_str_radix(&upper, 16).unwrap_or_default();
            match state.df.and_then(|df| files::by_fid(df, fid)) {
                Some(f) => Some(f),
                None => {
                    // A FID the profile does not know here: asked as it is, for exploring.
                    let cmd = Command::new(0x00, 0xA4, 0x00, 0x00).with_data(fid.to_be_bytes());
                    let r = state.card()?.conn.transaction()?.transmit(&cmd)?;
                    expect_selected(&upper, &r)?;
                    state.file = None;
                    return Ok(format!(
                        "selected {upper} (not in the profile under this DF)"
                    ));
                }
            }
        }
        None => None,
    };
    let file = file.ok_or_else(|| {
        BadInput(format!(
            "unknown file {target:?}: {}, DF01, MF, SSSE, a FID or aid:HEX",
            files::names()
        ))
    })?;
    enter(state, file.df)?;
    let r = state
        .card()?
        .conn
        .transaction()?
        .send(&commands::select_ef(file))?;
    expect_selected(file.name, &r)?;
    state.file = Some(file);
    Ok(format!(
        "selected {} (FID {:04X}, SFI {:02X}, {})",
        file.name,
        file.fid,
        file.sfi,
        match file.structure {
            files::Structure::Records(r) => format!("{} records", r.len()),
            files::Structure::Binary(n) => format!("{n} bytes"),
        }
    ))
}

/// `select` on a PSAM: DF01 (done above), EF15 / EF16 by either FID, or any FID.
fn select_psam(state: &mut State, upper: &str) -> Result<String> {
    let fid = match upper {
        "EF15" | "0015" => psam::EF15_SHORT_FID,
        "EF16" | "0016" => psam::EF16_SHORT_FID,
        _ => u16::from_str_radix(upper, 16)
            .ok()
            .filter(|_| upper.len() == 4)
            .ok_or_else(|| {
                BadInput(format!(
                    "{upper:?}: a PSAM has DF01, EF15 and EF16 (or give a FID)"
                ))
            })?,
    };
    let cmd = Command::new(0x00, 0xA4, 0x00, 0x00).with_data(fid.to_be_bytes());
    let r = state.card()?.conn.transaction()?.transmit(&cmd)?;
    expect_selected(upper, &r)?;
    Ok(format!("selected {upper} ({fid:04X})"))
}

/// Makes `df` the card's current DF (SSSE by AID, DF01 from SSSE), when it is not already.
fn enter(state: &mut State, df: Df) -> Result<()> {
    if state.df == Some(df) {
        return Ok(());
    }
    let card = state.card()?;
    let mut tx = card.conn.transaction()?;
    if df == Df::Mf {
        let r =
            tx.transmit(&Command::new(0x00, 0xA4, 0x00, 0x00).with_data(fid::MF.to_be_bytes()))?;
        expect_selected("MF", &r)?;
    } else {
        let r = tx.send(&commands::select_ssse_no_fci())?;
        expect_selected("SSSE", &r)?;
        if df == Df::Df01 {
            let r = tx.send(&commands::select_df01())?;
            expect_selected("DF01", &r)?;
        }
    }
    drop(tx);
    state.df = Some(df);
    Ok(())
}

/// `read`: the file opened as the file table says (the session authenticates where a key
/// opens it), decoded field by field.
fn read(state: &mut State, file: Option<&str>, record: Option<&str>, raw: bool) -> Result<String> {
    if state.is_psam() {
        return read_psam(state, file);
    }
    let file = file_or_selected(state, file)?;
    let number = record.map(|r| record_number(file, r)).transpose()?;
    if number.is_some() && file.is_binary() {
        return Err(BadInput(format!("{} is transparent: it has no records", file.name)).into());
    }
    let content = state.with_session(|s| s.read_file(file, number))?;
    state.df = Some(file.df);
    Ok(match content {
        FileContent::Binary(b) if raw => to_hex(&b),
        FileContent::Binary(b) => output::binary(file, &b),
        FileContent::Records(rs) => rs
            .iter()
            .map(|r| match raw {
                true => output::record_raw(r),
                false => output::record(file, r),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// The key `auth external` uses: the one named, else the current DF's (RKSSSE, EAK_L in DF01).
fn external_key(state: &State, name: Option<&str>) -> Result<Kid, BadInput> {
    let Some(name) = name else {
        return Ok(match state.df {
            Some(Df::Df01) => Kid::EakL,
            _ => Kid::Rkssse,
        });
    };
    let kid = Kid::from_name(name)
        .or_else(|| {
            parse_hex(name)
                .ok()
                .filter(|b| b.len() == 1)
                .and_then(|b| Kid::from_id(b[0]))
        })
        .ok_or_else(|| BadInput(format!("unknown key {name:?}: {}", kid_names())))?;
    Ok(kid)
}

/// The names of the keys external authentication takes.
pub fn external_kids() -> impl Iterator<Item = Kid> {
    [Kid::Rkssse, Kid::EakL, Kid::Tk].into_iter()
}

fn kid_names() -> String {
    external_kids()
        .map(Kid::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `auth internal|external`.
fn auth(state: &mut State, kind: AuthKind) -> Result<String> {
    match kind {
        AuthKind::Internal => {
            state.with_session(|s| s.internal_authenticate())?;
            Ok("internal authentication: the card proved it holds IRK (genuine)".into())
        }
        AuthKind::External(name) => {
            let kid = external_key(state, name.as_deref())?;
            let local = kid.scope() == KeyScope::Df01
                || (state.df == Some(Df::Df01) && kid.scope() != KeyScope::Ssse);
            state.with_session(|s| {
                if local {
                    s.select_local()?;
                }
                s.external_authenticate(kid)
            })?;
            if local {
                state.df = Some(Df::Df01);
            }
            Ok(format!(
                "external authentication with {} ({:02X}) in {}: accepted",
                kid.name(),
                kid.id(),
                output::df_name(state.df.unwrap_or(Df::Ssse))
            ))
        }
    }
}

/// `verify`: the PIN from the terminal (no echo) or the script's next line, never shown.
fn verify(state: &mut State, pins: &mut dyn PinSource) -> Result<String> {
    // Not connected: refused before the PIN is asked.
    state.card()?;
    let line = pins.pin()?;
    let pin = Pin::new(&line)?;
    drop(line);
    Ok(match state.with_session(|s| s.verify_pin(&pin))? {
        PinStatus::Verified => "PIN verified".into(),
        PinStatus::InitialMustChange => "PIN verified: the initial PIN, change it".into(),
    })
}

/// `write FILE RECORD TLV` (or `write DF01/EF02 OFFSET HEX`) with line protection.
fn write(state: &mut State, file: &str, record: &str, data: &str) -> Result<String> {
    let file = file_or_selected(state, Some(file))?;
    let bytes = parse_hex(data).map_err(|e| BadInput(format!("{}: {e}", file.name)))?;
    if file.is_binary() {
        let offset: u8 = record
            .parse()
            .map_err(|_| BadInput(format!("{record:?} is not an offset 0-255")))?;
        state.with_session(|s| s.update_binary(file, offset, &bytes))?;
        state.df = Some(file.df);
        return Ok(format!(
            "{} updated at offset {offset}: {} bytes",
            file.name,
            bytes.len()
        ));
    }
    let number = record_number(file, record)?;
    let tlv = Record::parse(&bytes).map_err(|e| BadInput(format!("TLV: {e}")))?;
    state.with_session(|s| s.update_record(file, number, &tlv))?;
    state.df = Some(file.df);
    Ok(format!("{} record {number} updated", file.name))
}

/// `apdu HEX`: one command as it is, through the transaction's transmit (GET RESPONSE on
/// `61xx`, a resend with the right Le on `6Cxx`, which the card did not carry out; nothing
/// else is resent). Errors quote the header alone.
fn apdu(state: &mut State, hex: &str) -> Result<String> {
    let bytes = parse_hex(hex).map_err(|e| {
        BadInput(format!(
            "APDU {}: {}",
            mask::text_preview(hex),
            mask::hex_error(hex, &e)
        ))
    })?;
    let cmd = Command::parse(&bytes)
        .map_err(|e| BadInput(format!("APDU {}: {e}", mask::text_preview(hex))))?;
    let card = state.card()?;
    let r = card.conn.transaction()?.transmit(&cmd)?;
    // The card's selection may have moved: the shell no longer knows it.
    if cmd.ins == 0xA4 && r.sw.is_success() {
        state.df = None;
        state.file = None;
    }
    Ok(output::exchange(&cmd, &r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["Virtual PCD 00 00", "Virtual PCD 00 01", "Other Reader"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn readers_resolve_by_index_name_or_one_substring() {
        assert_eq!(resolve(&names(), "1").unwrap(), "Virtual PCD 00 01");
        assert_eq!(resolve(&names(), "pcd 00 00").unwrap(), "Virtual PCD 00 00");
        assert_eq!(resolve(&names(), "other").unwrap(), "Other Reader");
        assert_eq!(
            resolve(&names(), "virtual").unwrap_err().to_string(),
            "\"virtual\" matches several readers: Virtual PCD 00 00, Virtual PCD 00 01; name one exactly or by index"
        );
        assert_eq!(
            resolve(&names(), "nope").unwrap_err(),
            TransportError::UnknownReader {
                wanted: "nope".into(),
                present: "Virtual PCD 00 00, Virtual PCD 00 01, Other Reader".into()
            }
        );
        assert_eq!(resolve(&[], "0").unwrap_err(), TransportError::NoReader);
    }

    #[test]
    fn records_by_number_or_field() {
        let ef06 = files::ef06();
        assert_eq!(record_number(ef06, "2").unwrap(), 2);
        assert_eq!(record_number(ef06, "name").unwrap(), 2);
        assert_eq!(record_number(ef06, "birth date").unwrap(), 7);
        assert_eq!(
            record_number(ef06, "x").unwrap_err().0,
            "EF06 has no record \"x\": a number or one of ssn, name, name_extension, gender, nation, birthplace, birth_date"
        );
    }
}
