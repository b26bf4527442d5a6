use crate::exit::BadInput;
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard_core::atr::{Atr, Tck};
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_transport::backend::CardBackend;
use sscard_transport::pcsc::{establish, PcscBackend};

#[derive(clap::Args)]
pub struct Args {
    /// Reader index or name (substring) whose card's ATR to explain.
    #[arg(long, short, conflicts_with = "parse")]
    reader: Option<String>,
    /// Explain this ATR (hex) instead of reading one.
    #[arg(long)]
    parse: Option<String>,
}

pub fn run(out: &Output, args: Args) -> Result<()> {
    let bytes = match &args.parse {
        Some(hex) => parse_hex(hex).map_err(|e| BadInput(format!("--parse: {e}")))?,
        None => {
            let ctx = establish()?;
            PcscBackend::connect(&ctx, args.reader.as_deref(), false)?.atr()
        }
    };
    let atr = Atr::parse(&bytes).map_err(|e| BadInput(format!("ATR {}: {e}", to_hex(&bytes))))?;
    let lines = atr.explain();
    let tck = match atr.tck {
        Tck::Absent => json!({ "status": "absent" }),
        Tck::Valid(b) => json!({ "status": "valid", "found": format!("{b:02X}") }),
        Tck::Wrong { found, expected } => {
            json!({ "status": "wrong", "found": format!("{found:02X}"), "expected": format!("{expected:02X}") })
        }
        Tck::Missing { expected } => {
            json!({ "status": "missing", "expected": format!("{expected:02X}") })
        }
    };
    let value = json!({
        "atr": to_hex(&atr.bytes),
        "protocols": atr.protocols.iter().map(|t| format!("T={t}")).collect::<Vec<_>>(),
        "historical": to_hex(&atr.historical),
        "historical_ascii": atr.historical_ascii(),
        "tck": tck,
        "bytes": lines.iter().map(|l| json!({ "offset": l.offset, "name": l.name, "bytes": to_hex(&l.bytes), "meaning": l.meaning })).collect::<Vec<_>>(),
    });
    out.result(value, || {
        let mut t = format!("ATR {}\n", to_hex(&atr.bytes));
        for l in &lines {
            t += &format!(
                "{:>3}  {:<12} {:<10} {}\n",
                l.offset,
                l.name,
                to_hex(&l.bytes),
                l.meaning
            );
        }
        t
    });
    if matches!(atr.tck, Tck::Wrong { .. } | Tck::Missing { .. }) {
        return Err(BadInput(format!("ATR {}: TCK check failed", to_hex(&atr.bytes))).into());
    }
    Ok(())
}
