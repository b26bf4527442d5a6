use crate::output::Output;
use serde_json::json;
use sscard_core::hexfmt::to_hex;
use sscard_transport::pcsc::{establish, list_readers};
use std::ffi::CString;

pub fn run(out: &Output) -> anyhow::Result<()> {
    let ctx = establish()?;
    let names = list_readers(&ctx)?;
    let mut states: Vec<pcsc::ReaderState> = names
        .iter()
        .map(|n| {
            pcsc::ReaderState::new(
                CString::new(n.as_str()).expect("reader names have no NUL"),
                pcsc::State::UNAWARE,
            )
        })
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(std::time::Duration::from_millis(500), &mut states)?;
    }
    let readers: Vec<_> = states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let present = s.event_state().contains(pcsc::State::PRESENT);
            json!({
                "index": i,
                "name": s.name().to_string_lossy(),
                "card_present": present,
                "atr": if present { Some(to_hex(s.atr())) } else { None },
            })
        })
        .collect();
    out.result(json!({ "readers": readers }), || {
        if readers.is_empty() {
            return "no readers".into();
        }
        readers
            .iter()
            .map(|r| {
                format!(
                    "{}: {}{}",
                    r["index"],
                    r["name"].as_str().unwrap_or(""),
                    match r["atr"].as_str() {
                        Some(atr) => format!("  card {atr}"),
                        None => "  (no card)".into(),
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
