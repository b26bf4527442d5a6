//! What each command does (`connect`, `select` and the PSAM's files have files of their
//! own). Card commands borrow one transaction for their duration; the profile's flows (read,
//! auth, verify, write) run in a [`sscard::ssc::Session`] as `sscard read`, `info` and `write`
//! do, so access rules, key sources and line protection are the library's, not the shell's.

use super::connect::{connect, readers};
use super::output;
use super::parse::{usage, AuthKind, Cmd, COMMANDS};
use super::psam::read_psam;
use super::select::select;
use super::state::State;
use crate::exit::BadInput;
use anyhow::Result;
use sscard::ssc::{FileContent, Pin, PinStatus};
use sscard_core::apdu::Command;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::files::{self, Df, FileDef};
use sscard_core::profile::{decode, KeyScope, Kid};
use sscard_core::tlv::Record;
use sscard_transport::trace::mask;
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
        Cmd::Trace(mode) => {
            state.switch.set(mode);
            format!("trace {}", mode.word())
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
        FileContent::Records(rs) if raw => rs
            .iter()
            .map(output::record_raw)
            .collect::<Vec<_>>()
            .join("\n"),
        // Decoded as `sscard read` decodes them: the one decoder of the profile.
        FileContent::Records(rs) => decode::record_values(file, &rs)
            .iter()
            .map(|f| f.line(file))
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
    Ok(crate::output::exchange(&cmd, &r))
}

#[cfg(test)]
mod tests {
    use super::*;

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
