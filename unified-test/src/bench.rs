//! The test bench: the card reader and the PSAM reader of the running pcscd, filled with model
//! cards this process serves through vpcd, one [`Scene`] at a time.

use crate::scene::{Scene, SceneError};
use sscard_core::profile::commands;
use sscard_model::card::shared;
use sscard_model::psam::Psam;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::vpcd::{serve, ServeOptions, ServedCard};
use sscard_model::InvalidImage;
use sscard_transport::pcsc::{establish, list_readers, wait_for_card_state, PcscBackend};
use sscard_transport::{Connection, TransportError};
use std::time::Duration;

/// How long pcscd may take to see a card come or go.
const CARD_STATE_WAIT: Duration = Duration::from_secs(10);

/// Why the bench cannot run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0} (is pcscd running with the vpcd driver? scripts/setup.sh installs it)")]
    Pcsc(#[from] TransportError),
    #[error(
        "pcscd has no reader {0:?}; give --card-reader/--psam-reader for the vpcd ports in use"
    )]
    NoReader(String),
    #[error("reader {0:?} already holds a card: another sscard-model serve (or a real card) is there; stop it first")]
    ReaderBusy(String),
    #[error("reader {reader:?} holds {what}: the library under test would pick it instead of the served cards; remove it first")]
    ForeignCard { reader: String, what: &'static str },
    #[error("pcscd did not see the card {what} reader {reader:?} within 10 s")]
    NotSeen { reader: String, what: &'static str },
    #[error(transparent)]
    Scene(#[from] SceneError),
    #[error("the model refuses the image: {0}")]
    Image(#[from] InvalidImage),
}

impl sscard_core::classify::Classified for BenchError {
    fn return_code(&self) -> i32 {
        match self {
            Self::Pcsc(e) => e.return_code(),
            _ => sscard_core::profile::codes::UNKNOWN,
        }
    }
    fn exit_class(&self) -> sscard_core::classify::ExitClass {
        use sscard_core::classify::ExitClass;
        match self {
            Self::Pcsc(e) => e.exit_class(),
            Self::NoReader(_) => ExitClass::Reader,
            Self::ReaderBusy(_) | Self::ForeignCard { .. } | Self::NotSeen { .. } => {
                ExitClass::Card
            }
            Self::Scene(_) | Self::Image(_) => ExitClass::Other,
        }
    }
}

/// Where the bench serves: the vpcd port of the card reader (the PSAM's is the next one) and
/// the readers pcscd names for the two ports.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub port: u16,
    pub card_reader: String,
    pub psam_reader: String,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            port: 35963,
            card_reader: "Virtual PCD 00 00".into(),
            psam_reader: "Virtual PCD 00 01".into(),
        }
    }
}

/// What a reader's card is, to the library's default configuration.
fn identify(conn: &mut Connection) -> Option<&'static str> {
    let mut tx = conn.transaction().ok()?;
    let conn = &mut tx;
    if conn
        .send(&commands::select_ssse())
        .is_ok_and(|r| r.sw.is_success() || r.sw.0 >> 8 == 0x61)
    {
        return Some("a card with the SSSE application");
    }
    let psam = conn
        .send(&commands::select_df01())
        .is_ok_and(|r| r.sw.is_success() || r.sw.0 >> 8 == 0x61)
        && conn
            .send(&commands::psam_read_ef16())
            .is_ok_and(|r| r.sw.is_success() || r.sw.0 >> 8 == 0x61);
    psam.then_some("a PSAM")
}

/// The two served readers.
pub struct Bench {
    config: BenchConfig,
    ctx: pcsc::Context,
    card: Option<ServedCard>,
    psam: Option<ServedCard>,
}

impl Bench {
    /// Checks the readers and takes them: both exist and are empty, and no other reader holds a
    /// card with the SSSE application or a PSAM.
    pub fn open(config: BenchConfig) -> Result<Self, BenchError> {
        let ctx = establish()?;
        let readers = list_readers(&ctx)?;
        for ours in [&config.card_reader, &config.psam_reader] {
            if !readers.contains(ours) {
                return Err(BenchError::NoReader(ours.clone()));
            }
            // pcsc-lite may report a card that is gone when a client's handle (the library
            // under test keeps one) is released after the card left: only a card that
            // answers a connection is another server's.
            if wait_for_card_state(&ctx, ours, true, Duration::ZERO)?
                && PcscBackend::connect_named(&ctx, ours, false).is_ok()
            {
                return Err(BenchError::ReaderBusy(ours.clone()));
            }
        }
        for reader in &readers {
            if *reader == config.card_reader || *reader == config.psam_reader {
                continue;
            }
            if !wait_for_card_state(&ctx, reader, true, Duration::ZERO)? {
                continue;
            }
            let Ok(backend) = PcscBackend::connect_named(&ctx, reader, false) else {
                continue;
            };
            if let Some(what) = identify(&mut Connection::new(backend)) {
                return Err(BenchError::ForeignCard {
                    reader: reader.clone(),
                    what,
                });
            }
        }
        Ok(Self {
            config,
            ctx,
            card: None,
            psam: None,
        })
    }

    pub fn config(&self) -> &BenchConfig {
        &self.config
    }

    /// Waits until pcscd reports the card in `reader` (`present`: and a connection to it
    /// works, since a stale "present" can precede the served card) or the reader empty.
    fn wait(&self, reader: &str, present: bool) -> Result<(), BenchError> {
        let deadline = std::time::Instant::now() + CARD_STATE_WAIT;
        let mut seen = wait_for_card_state(&self.ctx, reader, present, CARD_STATE_WAIT)?;
        while seen && present && PcscBackend::connect_named(&self.ctx, reader, false).is_err() {
            if std::time::Instant::now() > deadline {
                seen = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if seen {
            Ok(())
        } else {
            Err(BenchError::NotSeen {
                reader: reader.into(),
                what: if present { "arrive in" } else { "leave" },
            })
        }
    }

    /// Empties both readers, then serves the scene's cards fresh (a new card: no state from an
    /// earlier case) and waits until pcscd sees them.
    pub fn set(&mut self, scene: &Scene) -> Result<(), BenchError> {
        self.clear()?;
        if let Some(card) = &scene.card {
            let ssc = Ssc::from_image(card.image()?, Store::in_memory())?;
            self.card = Some(serve(shared(ssc), ServeOptions::port(self.config.port)));
            self.wait(&self.config.card_reader, true)?;
        }
        if let Some(psam) = &scene.psam {
            let psam = Psam::from_image(psam.image()?)?;
            self.psam = Some(serve(
                shared(psam),
                ServeOptions::port(self.config.port + 1),
            ));
            self.wait(&self.config.psam_reader, true)?;
        }
        Ok(())
    }

    /// Takes both cards out and waits until pcscd sees the readers empty.
    pub fn clear(&mut self) -> Result<(), BenchError> {
        if let Some(mut c) = self.card.take() {
            c.stop();
            self.wait(&self.config.card_reader, false)?;
        }
        if let Some(mut p) = self.psam.take() {
            p.stop();
            self.wait(&self.config.psam_reader, false)?;
        }
        Ok(())
    }

    /// The card reader's serial number as pcscd gives it (`SCARD_ATTR_VENDOR_IFD_SERIAL_NO`),
    /// read while a card is in: the terminal device number a correct library reports.
    pub fn card_reader_serial(&self) -> Result<Option<String>, BenchError> {
        let conn = Connection::new(PcscBackend::connect_named(
            &self.ctx,
            &self.config.card_reader,
            false,
        )?);
        Ok(conn.reader_serial().map(str::to_owned))
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        // Best effort: the cards leave the readers with the bench.
        let _ = self.clear();
    }
}
