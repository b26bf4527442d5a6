//! Finding the social security card's reader and opening the key source.

use anyhow::Result;
use sscard::keys::{self, KeyError, KeySource, KeySpec, PsamKeys};
use sscard::transport::pcsc::{establish, list_readers, resolve_reader, PcscTransport};
use sscard::transport::{Transport, TransportError};
use sscard_core::profile::SSSE_AID;
use std::time::{Duration, Instant};

/// Common options of the card commands.
#[derive(clap::Args, Clone)]
pub struct CardOpts {
    /// The card's reader (index or name substring); default: the reader whose card has SSSE.
    #[arg(long, short)]
    pub reader: Option<String>,
    /// Key source: test | soft:FILE | psam:READER | pkcs11:MODULE:TOKEN-LABEL (default: the
    /// PROFILE test key set, with a warning).
    #[arg(long)]
    pub keys: Option<String>,
    /// The PSAM's reader; `auto` finds it by its EF15. It is the key source unless --keys
    /// names another (scripts also send @psam APDUs to it).
    #[arg(long)]
    pub psam_reader: Option<String>,
    /// Wait up to this many seconds for a card to be inserted.
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
    /// Print every APDU (secrets masked) on stderr.
    #[arg(long)]
    pub trace: bool,
}

fn has_ssse(t: &mut PcscTransport) -> bool {
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, SSSE_AID.len() as u8];
    select.extend_from_slice(&SSSE_AID);
    matches!(t.transmit(&select).as_deref(), Ok([.., 0x90, 0x00]))
}

/// Connects to the card, waiting for insertion when asked.
pub fn card(opts: &CardOpts) -> Result<PcscTransport> {
    let ctx = establish()?;
    let deadline = Instant::now() + Duration::from_secs(opts.wait.unwrap_or(0));
    loop {
        let attempt = match &opts.reader {
            Some(r) => PcscTransport::connect(&ctx, Some(r), false),
            None => {
                let readers = list_readers(&ctx)?;
                if readers.is_empty() {
                    Err(TransportError::NoReader)
                } else {
                    readers
                        .iter()
                        .filter_map(|r| PcscTransport::connect_named(&ctx, r, false).ok())
                        .find_map(|mut t| has_ssse(&mut t).then_some(t))
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
            r => return Ok(r?),
        }
    }
}

/// The PSAM in `reader`, or the first reader whose card is a PSAM (`auto`): a card that
/// selects DF01 and has EF15/EF16. Missing reader or card is "no PSAM" (-2201).
fn psam(reader: &str) -> Result<Box<dyn KeySource>> {
    let ctx = establish()?;
    let readers = list_readers(&ctx)?;
    let candidates = if reader == "auto" {
        readers.clone()
    } else {
        vec![resolve_reader(&readers, reader).map_err(|e| KeyError::NoPsam(e.to_string()))?]
    };
    let mut why = String::from("no reader holds a PSAM");
    for name in candidates {
        match PcscTransport::connect_named(&ctx, &name, false) {
            Ok(t) => match PsamKeys::open(t) {
                Ok(p) => return Ok(Box::new(p)),
                Err(e) => why = format!("the card in {name:?} is not a PSAM ({e})"),
            },
            Err(e) => why = format!("{name}: {e}"),
        }
    }
    Err(KeyError::NoPsam(why).into())
}

/// Opens the key source named by the options.
pub fn key_source(opts: &CardOpts) -> Result<Box<dyn KeySource>> {
    let spec: KeySpec = match (&opts.keys, &opts.psam_reader) {
        (Some(s), _) => s.parse()?,
        (None, Some(reader)) => return psam(reader),
        (None, None) => KeySpec::TestSet,
    };
    if let KeySpec::Psam(reader) = &spec {
        return psam(reader);
    }
    Ok(keys::open(&spec)?)
}
