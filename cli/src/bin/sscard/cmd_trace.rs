//! `sscard trace decode FILE|-`: a trace (sscard's `--pcap` or `--trace-json`, or another tool's
//! ISO 14443 or USB CCID pcap) as one decoded line per APDU pair, through the one decoder of the profile
//! (`sscard_core::profile::decode`), secrets masked. Layout: docs/trace-decode.md.

use crate::exit::BadInput;
use crate::output::{line, Output};
use anyhow::Result;
use sscard_core::profile::decode::Decoder;
use sscard_transport::trace::{read_trace, TraceReadError};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Trace {
    /// Decode a trace: one line per APDU pair (role, command, file and record, decoded fields,
    /// status word and meaning), secrets masked; `--json` for one object per pair.
    Decode(DecodeArgs),
}

#[derive(clap::Args)]
pub struct DecodeArgs {
    /// A pcapng or pcap file (link type 264, ISO 14443; 189, 220 or 249, USB CCID), or sscard's
    /// JSON lines; `-` reads standard input. The format is told by the first bytes.
    file: PathBuf,
}

pub fn run(out: &Output, t: Trace) -> Result<()> {
    match t {
        Trace::Decode(a) => decode(out, a),
    }
}

fn decode(out: &Output, a: DecodeArgs) -> Result<()> {
    let read = if a.file.as_os_str() == "-" {
        read_trace(std::io::stdin().lock())
    } else {
        // A trace that cannot be opened (no such file, no permission) is a bad argument.
        let f = std::fs::File::open(&a.file)
            .map_err(|e| BadInput(format!("{}: {e}", a.file.display())))?;
        read_trace(f)
    };
    // A trace that does not parse is bad input, named with the file.
    let (_, pairs) = read.map_err(|e| match e {
        TraceReadError::Io(io) => {
            anyhow::Error::new(io).context(format!("reading {}", a.file.display()))
        }
        e => BadInput(format!("{}: {e}", a.file.display())).into(),
    })?;
    let mut decoder = Decoder::new();
    for p in &pairs {
        let d = decoder.decode_masked(
            &p.role,
            &p.command,
            &p.command_masked,
            &p.response,
            &p.response_masked,
        );
        if out.json() {
            let mut v = serde_json::to_value(&d)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("reader".into(), p.reader.clone().into());
                o.insert("text".into(), d.to_string().into());
            }
            line(&v.to_string());
        } else {
            line(&d.to_string());
        }
    }
    Ok(())
}
