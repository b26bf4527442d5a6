use crate::connect::TraceOpts;
use crate::exit::{BadInput, UnexpectedStatus};
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard_core::apdu::Command;
use sscard_core::fsutil::{read_text_file_bounded, Limit};
use sscard_core::hexfmt::parse_hex;
use sscard_core::status::StatusWord;
use sscard_transport::pcsc::{establish, PcscBackend};
use sscard_transport::trace::{mask, Secrecy};
use sscard_transport::Connection;
use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// Reader index or name (substring); default: the first reader.
    #[arg(long, short)]
    reader: Option<String>,
    #[command(flatten)]
    trace: TraceOpts,
    /// Fail (exit 1) unless every response has this status word, e.g. 9000.
    #[arg(long)]
    expect: Option<String>,
    /// Connect in exclusive mode.
    #[arg(long)]
    exclusive: bool,
    /// APDUs in hex, or @FILE with one APDU per line (`#` comments).
    #[arg(required = true)]
    apdus: Vec<String>,
}

/// The most an APDU list (`send @FILE`) may hold: 1 MiB, some 40 000 APDUs.
pub const APDU_LIST_LIMIT: Limit = Limit::new("an APDU list (send @FILE)", 1 << 20);

/// Parses and validates every APDU before the card is touched. Error messages quote the
/// offending APDU's 4-byte header alone, never its data, whatever is wrong with it
/// ([`mask::text_preview`]).
fn parse_all(args: &[String]) -> Result<Vec<Command>, BadInput> {
    let mut lines = Vec::new();
    for a in args {
        if let Some(path) = a.strip_prefix('@') {
            let text = read_text_file_bounded(Path::new(path), APDU_LIST_LIMIT)
                .map_err(|e| BadInput(e.to_string()))?;
            lines.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        } else {
            lines.push(a.clone());
        }
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let place = || format!("APDU {} ({})", i + 1, mask::text_preview(l));
            let bytes = parse_hex(l)
                .map_err(|e| BadInput(format!("{}: {}", place(), mask::hex_error(l, &e))))?;
            Command::parse(&bytes).map_err(|e| BadInput(format!("{}: {e}", place())))
        })
        .collect()
}

/// A command as `send` echoes it: hex with secret data as `**` (the trace's masking).
fn shown(c: &Command) -> String {
    mask::command_hex(&c.to_bytes().unwrap_or_default(), Secrecy::PUBLIC)
}

/// A response's data as `send` echoes it: `**` per byte when the command's answer is secret
/// (a raw DES CRYPT's cryptogram or MAC), as the trace masks it.
fn shown_data(c: &Command, data: &[u8]) -> String {
    mask::response_hex(&c.to_bytes().unwrap_or_default(), data, Secrecy::PUBLIC)
}

pub fn run(out: &Output, args: Args) -> Result<()> {
    let commands = parse_all(&args.apdus)?;
    let expect = match &args.expect {
        Some(s) => match parse_hex(s).ok().filter(|b| b.len() == 2) {
            Some(b) => Some(StatusWord::new(b[0], b[1])),
            None => {
                return Err(
                    BadInput(format!("--expect {s:?} is not a status word like 9000")).into(),
                )
            }
        },
        None => None,
    };
    let trace = args.trace.open()?;
    let ctx = establish()?;
    let mut card = Connection::new(PcscBackend::connect(
        &ctx,
        args.reader.as_deref(),
        args.exclusive,
    )?)
    .traced(&trace, "card");
    let mut tx = card.transaction()?;
    let responses = commands
        .iter()
        .map(|c| tx.transmit(c).map(|r| (c, r)))
        .collect::<Result<Vec<_>, _>>()?;
    drop(tx);
    let items: Vec<_> = responses
        .iter()
        .map(|(c, r)| {
            json!({
                "command": shown(c),
                "data": shown_data(c, &r.data),
                "sw": r.sw.to_string(),
                "meaning": r.sw.meaning(),
            })
        })
        .collect();
    out.result(
        json!({ "reader": card.reader(), "responses": items }),
        || {
            responses
                .iter()
                .map(|(c, r)| crate::output::exchange(c, r))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    if let Some(want) = expect {
        if let Some((i, (_, r))) = responses
            .iter()
            .enumerate()
            .find(|(_, (_, r))| r.sw != want)
        {
            return Err(UnexpectedStatus(format!(
                "APDU {} answered {} ({}), expected {want}",
                i + 1,
                r.sw,
                r.sw.meaning()
            ))
            .into());
        }
    }
    Ok(())
}
