//! Finding the social security card's reader and opening the key source.

use anyhow::Result;
use sscard::keys::{self, KeySource, KeySpec, PsamKeys};
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
    /// The PSAM's reader (same as --keys psam:READER).
    #[arg(long, conflicts_with = "keys")]
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

/// Opens the key source named by the options.
pub fn key_source(opts: &CardOpts) -> Result<Box<dyn KeySource>> {
    if let Some(reader) = &opts.psam_reader {
        let ctx = establish()?;
        let name = resolve_reader(&list_readers(&ctx)?, reader)?;
        let t = PcscTransport::connect_named(&ctx, &name, false)?;
        return Ok(Box::new(PsamKeys::open(t)?));
    }
    let spec: KeySpec = match &opts.keys {
        Some(s) => s.parse()?,
        None => KeySpec::TestSet,
    };
    Ok(keys::open(&spec)?)
}
