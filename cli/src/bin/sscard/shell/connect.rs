//! `readers` and `connect`: finding a reader by index or name, and what the card in it is
//! (the SSSE application's FCI, or a PSAM's EF15 and EF16).

use super::output;
use super::psam::psam_files;
use super::state::{App, Card, State};
use anyhow::Result;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::commands;
use sscard_core::tlv::Fci;
use sscard_transport::pcsc::{establish, list_readers, PcscBackend};
use sscard_transport::{Connection, TransportError};

/// `readers`: index, name, and the card's ATR or `(no card)` (pcscd's reader states: no
/// card is connected to, so none is reset).
pub fn readers() -> Result<String> {
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
pub fn connect(state: &mut State, wanted: &str) -> Result<String> {
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

fn spec_version(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::Tdes => "2.00",
        _ => "3.00",
    }
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
}
