//! Finding the social security card's reader, opening the key source, and the trace every
//! command that talks to a card offers.

use anyhow::{Context, Result};
use sscard::keys::{self, KeyError, KeySource, KeySpec, NoPsamReason, PsamKeys};
use sscard::ssc::has_ssse;
use sscard_transport::pcsc::{establish, list_readers, resolve_reader, PcscBackend};
use sscard_transport::trace::{JsonSink, LogSink, PcapngSink, TextSink, Trace, TraceSink};
use sscard_transport::{Connection, TransportError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The longest a command waits when asked to (`--wait`, `monitor --timeout`): one day. A
/// larger value is refused as bad input (exit 2), never added to the clock.
pub const MAX_WAIT_SECS: u64 = 86_400;

/// Where the APDUs of a command go: the card's and the PSAM's, secrets masked.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TraceOpts {
    /// Print every APDU (card and PSAM, secrets masked) on stderr.
    #[arg(long)]
    pub trace: bool,
    /// Also write every APDU as pcapng (link type 264) for Wireshark/tshark.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Also write every APDU as JSON lines.
    #[arg(long = "trace-json", value_name = "FILE")]
    pub trace_json: Option<PathBuf>,
}

impl TraceOpts {
    /// The trace these options ask for (`RUST_LOG=sscard_transport=debug` logs APDUs too).
    pub fn open(&self) -> Result<Trace> {
        let mut sinks: Vec<Box<dyn TraceSink>> = Vec::new();
        if self.trace {
            sinks.push(Box::new(TextSink::new(std::io::stderr(), true)));
        }
        // Trace files are private (0600, never through a symbolic link): they show which
        // cards were used, where and when.
        if let Some(p) = &self.pcap {
            let sink = PcapngSink::create(p).with_context(|| format!("--pcap {}", p.display()))?;
            sinks.push(Box::new(sink));
        }
        if let Some(p) = &self.trace_json {
            let sink =
                JsonSink::create(p).with_context(|| format!("--trace-json {}", p.display()))?;
            sinks.push(Box::new(sink));
        }
        if tracing::enabled!(target: "sscard_transport", tracing::Level::DEBUG) {
            sinks.push(Box::new(LogSink));
        }
        Ok(Trace::to(sinks))
    }
}

/// Common options of the card commands.
#[derive(clap::Args, Clone)]
pub struct CardOpts {
    /// The card's reader (index or name substring); default: the reader whose card has SSSE.
    #[arg(long, short)]
    pub reader: Option<String>,
    /// Key source: test | soft:FILE | psam:READER | pkcs11:MODULE:TOKEN-LABEL |
    /// remote:https://HOST:PORT (a key service; client certificate, key and CA from
    /// SSCARD_REMOTE_CERT, SSCARD_REMOTE_KEY, SSCARD_REMOTE_CA) (default: the PROFILE test key
    /// set, with a warning).
    #[arg(long)]
    pub keys: Option<String>,
    /// The PSAM's reader; `auto` finds it by its EF15. It is the key source unless --keys
    /// names another (scripts also send @psam APDUs to it).
    #[arg(long)]
    pub psam_reader: Option<String>,
    /// Wait up to this many seconds (at most 86400, one day) for a card to be inserted.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_SECS))]
    pub wait: Option<u64>,
    #[command(flatten)]
    pub trace: TraceOpts,
}

/// Connects to the card, waiting for insertion when asked; its exchanges go to `trace`.
pub fn card(opts: &CardOpts, trace: &Trace) -> Result<Connection> {
    let ctx = establish()?;
    let deadline = Instant::now() + Duration::from_secs(opts.wait.unwrap_or(0));
    loop {
        let attempt = match &opts.reader {
            Some(r) => PcscBackend::connect(&ctx, Some(r), false).map(Connection::new),
            None => {
                let readers = list_readers(&ctx)?;
                if readers.is_empty() {
                    Err(TransportError::NoReader)
                } else {
                    // Probing other readers' cards is not the command's business: untraced.
                    readers
                        .iter()
                        .filter_map(|r| PcscBackend::connect_named(&ctx, r, false).ok())
                        .map(Connection::new)
                        .find_map(|mut c| has_ssse(&mut c).then_some(c))
                        .ok_or(TransportError::NoCard {
                            reader: "any reader (no card with the SSSE application)".into(),
                        })
                }
            }
        };
        match attempt {
            Err(TransportError::NoCard { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            r => return Ok(r?.traced(trace, "card")),
        }
    }
}

/// The PSAM in `reader`, or the first reader whose card is a PSAM (`auto`): a card that
/// selects DF01 and has EF15/EF16. Missing reader or card is "no PSAM" (-2201).
pub fn psam(reader: &str, trace: &Trace) -> Result<PsamKeys, KeyError> {
    let ctx = establish()?;
    let readers = list_readers(&ctx)?;
    let candidates = if reader == "auto" {
        readers.clone()
    } else {
        vec![resolve_reader(&readers, reader)
            .map_err(|e| KeyError::NoPsam(NoPsamReason::Reader(e)))?]
    };
    let mut why = NoPsamReason::NoneFound;
    for name in candidates {
        match PcscBackend::connect_named(&ctx, &name, false) {
            Ok(b) => match PsamKeys::open(Connection::new(b).traced(trace, "psam")) {
                Ok(p) => return Ok(p),
                Err(e) => {
                    why = NoPsamReason::NotAPsam {
                        reader: name,
                        source: Box::new(e),
                    }
                }
            },
            Err(e) => why = NoPsamReason::Reader(e),
        }
    }
    Err(KeyError::NoPsam(why))
}

/// The token PIN for a PKCS#11 key source: `SSCARD_PKCS11_PIN`, or a no-echo prompt. Never
/// from argv.
pub fn token_pin() -> Result<zeroize::Zeroizing<String>> {
    if let Ok(pin) = std::env::var("SSCARD_PKCS11_PIN") {
        return Ok(zeroize::Zeroizing::new(pin));
    }
    crate::prompt::secret_line("token PIN").map_err(|_| KeyError::NoTokenPin.into())
}

/// Opens the key source of `spec`, warning on stderr when it holds master keys in memory.
pub fn open_keys(spec: &KeySpec, trace: &Trace) -> Result<Box<dyn KeySource>> {
    if let KeySpec::Psam(reader) = spec {
        return Ok(Box::new(psam(reader, trace)?));
    }
    if let Some(w) = spec.warning() {
        eprintln!("sscard: warning: {w}");
    }
    let pin = token_pin_for(spec)?;
    Ok(keys::open(spec, trace, pin.as_deref().map(|p| p.as_str()))?)
}

/// The token PIN when `spec` names a token (asked once), else nothing.
pub fn token_pin_for(spec: &KeySpec) -> Result<Option<zeroize::Zeroizing<String>>> {
    Ok(match spec.needs_token_pin() {
        true => Some(token_pin()?),
        false => None,
    })
}

/// Opens the key source named by the options.
pub fn key_source(opts: &CardOpts, trace: &Trace) -> Result<Box<dyn KeySource>> {
    let spec: KeySpec = match (&opts.keys, &opts.psam_reader) {
        (Some(s), _) => s.parse()?,
        (None, Some(reader)) => return Ok(Box::new(psam(reader, trace)?)),
        (None, None) => KeySpec::TestSet,
    };
    open_keys(&spec, trace)
}
