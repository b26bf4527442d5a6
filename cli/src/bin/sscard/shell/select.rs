//! `select`: DFs (MF, SSSE, DF01, an AID) and EFs by name or FID, and entering the DF a file
//! lies in; the shell remembers what the card has selected.

use super::psam::select_psam;
use super::state::State;
use crate::exit::{BadInput, UnexpectedStatus};
use anyhow::Result;
use sscard_core::apdu::{Command, Response};
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::commands;
use sscard_core::profile::files::{self, Df};
use sscard_core::profile::{fid, SSSE_AID};

pub fn expect_selected(what: &str, r: &Response) -> Result<()> {
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
pub fn select(state: &mut State, target: &str) -> Result<String> {
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
