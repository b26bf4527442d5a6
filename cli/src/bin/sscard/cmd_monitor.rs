//! `sscard monitor`: reader and card events from SCardGetStatusChange, PnP notification included.

use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard_core::hexfmt::to_hex;
use sscard_transport::pcsc::{establish, list_readers, pnp_notification};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Stop after this many events (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after this many seconds (at most 86400, one day).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=crate::connect::MAX_WAIT_SECS))]
    timeout: Option<u64>,
}

fn emit(out: &Output, event: &str, reader: &str, atr: Option<&[u8]>) {
    let atr_hex = atr.map(to_hex);
    out.result(
        json!({ "event": event, "reader": reader, "atr": atr_hex }),
        || match &atr_hex {
            Some(a) => format!("{event} {reader} {a}"),
            None => format!("{event} {reader}"),
        },
    );
}

pub fn run(out: &Output, args: Args) -> Result<()> {
    let ctx = establish()?;
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut known: BTreeMap<String, bool> = BTreeMap::new();
    let mut events = 0u64;
    let mut first = true;
    loop {
        let names = list_readers(&ctx)?;
        for gone in known
            .keys()
            .filter(|k| !names.contains(k))
            .cloned()
            .collect::<Vec<_>>()
        {
            known.remove(&gone);
            emit(out, "reader_removed", &gone, None);
            events += 1;
        }
        let mut states = vec![pcsc::ReaderState::new(
            pnp_notification(),
            pcsc::State::UNAWARE,
        )];
        for n in &names {
            if !known.contains_key(n) && !first {
                emit(out, "reader_added", n, None);
                events += 1;
            }
            let present = *known.get(n).unwrap_or(&false);
            let current = if known.contains_key(n) {
                if present {
                    pcsc::State::PRESENT
                } else {
                    pcsc::State::EMPTY
                }
            } else {
                pcsc::State::UNAWARE
            };
            states.push(pcsc::ReaderState::new(CString::new(n.as_str())?, current));
        }
        if args.count.is_some_and(|c| events >= c) {
            return Ok(());
        }
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if wait.is_zero() {
            return Ok(());
        }
        match ctx.get_status_change(wait, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(sscard_transport::TransportError::from(e).into()),
        }
        for s in &states[1..] {
            let name = s.name().to_string_lossy().into_owned();
            let now = s.event_state().contains(pcsc::State::PRESENT);
            let before = known.insert(name.clone(), now);
            if first && before.is_none() {
                continue;
            }
            if before != Some(now) {
                emit(
                    out,
                    if now { "card_inserted" } else { "card_removed" },
                    &name,
                    now.then(|| s.atr()),
                );
                events += 1;
            }
        }
        first = false;
        if args.count.is_some_and(|c| events >= c) {
            return Ok(());
        }
    }
}
