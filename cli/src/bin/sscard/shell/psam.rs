//! The PSAM in the shell (PROFILE section 6): its DF01, EF15 and EF16, read and decoded by
//! core::profile::psam.

use super::output;
use super::select::expect_selected;
use super::state::State;
use crate::exit::{BadInput, UnexpectedStatus};
use anyhow::Result;
use sscard_core::apdu::Command;
use sscard_core::profile::commands;
use sscard_core::profile::psam::{self, PsamInfo};
use sscard_transport::Connection;

/// A PSAM's EF15 and terminal number, as the PSAM key source reads them (DF01, EF15, EF16).
pub fn psam_files(conn: &mut Connection) -> Result<(PsamInfo, String)> {
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
pub fn read_psam(state: &mut State, file: Option<&str>) -> Result<String> {
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
            "EF16  terminal number = {}",
            psam::parse_terminal_number(&r.data)?
        ),
    })
}

/// `select` on a PSAM: DF01 (done above), EF15 / EF16 by either FID, or any FID.
pub fn select_psam(state: &mut State, upper: &str) -> Result<String> {
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
