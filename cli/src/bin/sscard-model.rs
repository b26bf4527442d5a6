//! `sscard-model`: serve virtual social security cards and PSAMs to pcscd, make and show images.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use sscard_core::crypto::Algorithm;
use sscard_core::fsutil::{read_text_file_bounded, Limit};
use sscard_core::hexfmt::parse_hex;
use sscard_model::build::{self, Holder};
use sscard_model::card::{shared, SharedCard};
use sscard_model::psam::Psam;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::vpcd::{serve, ServeOptions, ServedCard};
use sscard_model::Image;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sscard-model",
    version,
    about = "Virtual social security cards and PSAMs (PROFILE.md) for PC/SC through vpcd"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Alg {
    #[value(name = "3des")]
    Tdes,
    Sm4,
}

impl From<Alg> for Algorithm {
    fn from(a: Alg) -> Self {
        match a {
            Alg::Tdes => Algorithm::Tdes,
            Alg::Sm4 => Algorithm::Sm4,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve a card on the first vpcd port and a PSAM on the next (default: personalised 3DES
    /// test SSC with PIN 123456 on 35963, a matching city PSAM on 35964).
    Serve {
        #[arg(long, value_enum, default_value = "3des")]
        alg: Alg,
        /// Serve this SSC image (changes are written back to it, atomically).
        #[arg(long)]
        card: Option<PathBuf>,
        /// Serve this PSAM image.
        #[arg(long)]
        psam: Option<PathBuf>,
        /// Serve no PSAM.
        #[arg(long, conflicts_with = "psam")]
        no_psam: bool,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The card's vpcd port; the PSAM uses the next one.
        #[arg(long, default_value_t = 35963)]
        port: u16,
        /// Processing time added to every APDU, in milliseconds (at most 60000).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_LATENCY_MS))]
        latency_ms: u64,
        /// Probability (0..1) of answering an APDU with 6F00 unprocessed.
        #[arg(long, default_value_t = 0.0)]
        fault_rate: f64,
        /// Feed blank cards from this directory's point of view: issued cards are stored there
        /// as `<card number>.json` and the next blank card comes in. Serves no PSAM.
        #[arg(long, conflicts_with_all = ["card", "psam", "no_psam", "fault_rate", "corrupt_over", "defect", "app"])]
        feeder: Option<PathBuf>,
        /// Present every SSC image in this directory (`*.json`, name order) one after another
        /// in the first reader, the next when the terminal powers the card off; for reading
        /// issued cards back. The PSAM is served beside it as usual.
        #[arg(long, conflicts_with_all = ["card", "feeder", "corrupt_over", "defect", "app"])]
        present: Option<PathBuf>,
        /// Blank cards the feeder has (shared by all its readers), at least 1.
        #[arg(long, default_value_t = 10, requires = "feeder", value_parser = clap::value_parser!(u64).range(1..))]
        blank: u64,
        /// Region code of the blank cards' identification codes.
        #[arg(long, default_value = "110100", requires = "feeder")]
        region: String,
        /// Readers the feeder serves (1 to 64), on consecutive ports from --port.
        #[arg(long, default_value_t = 1, requires = "feeder", value_parser = clap::value_parser!(u16).range(1..=MAX_FEEDER_READERS))]
        readers: u16,
        /// What the first reader holds: the SSC with the loopback test application beside it
        /// (ssc), the SSC alone, as a field card (ssse), or the loopback application alone
        /// (loopback).
        #[arg(long, value_parser = ["ssc", "ssse", "loopback"], default_value = "ssc")]
        app: String,
        /// Flip one byte of every APDU longer than N bytes (a faulty reader, for reader-test).
        #[arg(long, value_name = "N")]
        corrupt_over: Option<usize>,
        /// Break one rule of the SSC on purpose (the possible values are the model's whole
        /// list of defects).
        #[arg(long, value_parser = defect_parser())]
        defect: Option<sscard_model::ssc::Defect>,
        /// Unix socket for `remove N` / `insert N` / `tear N W` / `pull N K [before|after]` /
        /// `lose N K` / `hold N K MS` / `status` (docs/faults.md).
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Write a card image: a blank factory SSC, a personalised SSC, or a PSAM.
    New {
        #[arg(long, value_enum, default_value = "3des")]
        alg: Alg,
        /// blank (TK only, PERSONALISATION), personalised (test keys, holder, PIN), psam.
        #[arg(long, value_enum, default_value = "personalised")]
        kind: Kind,
        /// Card identification code, 16 bytes hex.
        #[arg(long, default_value = "110100D15600000599110145000000A1")]
        card_id: String,
        /// Holder data as JSON (fields of `Holder`); default: the sample holder.
        #[arg(long)]
        holder: Option<PathBuf>,
        #[arg(long, default_value = "123456")]
        pin: String,
        /// The PSAM's city (region code).
        #[arg(long, default_value = "110100")]
        city: String,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print an image with key values and PINs masked.
    Show { image: PathBuf },
}

/// `--defect`: the model's defect names (`Defect::ALL`), shown by `--help` and in the error
/// for any other name, so the help never lags behind the model.
fn defect_parser() -> impl clap::builder::TypedValueParser<Value = sscard_model::ssc::Defect> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(sscard_model::ssc::Defect::names())
        .try_map(|name| name.parse::<sscard_model::ssc::Defect>())
}

/// The longest processing time `--latency-ms` adds to an APDU: one minute.
const MAX_LATENCY_MS: u64 = 60_000;

/// The most readers one feeder serves (a thread and a vpcd port each).
const MAX_FEEDER_READERS: i64 = 64;

/// The most a holder file (`new --holder`) may hold.
const HOLDER_FILE_LIMIT: Limit = Limit::new("a holder file", 64 * 1024);

/// The `count` consecutive vpcd ports from `first`, refused when they do not all exist: port 0
/// is no vpcd port, and none may pass 65535 (`port + i` would wrap to 0).
fn vpcd_ports(first: u16, count: usize, what: &str) -> Result<Vec<u16>> {
    if first == 0 {
        bail!("--port 0 is no vpcd port: name the port pcscd's vpcd driver listens on (35963 by default)");
    }
    let ports: Vec<u16> = (0..count)
        .map_while(|i| u16::try_from(i).ok().and_then(|i| first.checked_add(i)))
        .collect();
    if ports.len() != count {
        bail!(
            "--port {first} with {what} needs ports up to {}, past the last port 65535: give a lower --port",
            u64::from(first) + count as u64 - 1
        );
    }
    Ok(ports)
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Blank,
    Personalised,
    Psam,
}

/// A database driver's debug and trace output: statements with their parameters, holder data
/// among them. Dropped whatever RUST_LOG says, as by `sscard` (the model links no driver
/// today; this keeps it so if one comes in).
fn driver_detail(m: &tracing::Metadata<'_>) -> bool {
    const DRIVERS: [&str; 3] = ["tokio_postgres", "postgres", "postgres_protocol"];
    *m.level() > tracing::Level::INFO
        && DRIVERS.iter().any(|d| {
            m.target()
                .strip_prefix(d)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

fn main() {
    // Diagnostics (`RUST_LOG=debug`, default warnings and errors) go to stderr, never stdout,
    // which carries results and --json.
    use tracing_subscriber::prelude::*;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with(tracing_subscriber::filter::filter_fn(|m| !driver_detail(m)))
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("sscard-model: error: {e:#}");
        std::process::exit(2);
    }
}

/// Serves the cards (answering the control socket, if any) until the process is killed.
fn serve_until_killed(served: Vec<ServedCard>, control: Option<PathBuf>) -> Result<()> {
    let served = Arc::new(Mutex::new(served));
    if let Some(path) = control {
        sscard_model::control::listen(&path, served.clone())
            .with_context(|| format!("control socket {}", path.display()))?;
    }
    loop {
        std::thread::park();
    }
}

fn with_defect(mut card: Ssc, defect: Option<sscard_model::ssc::Defect>) -> Ssc {
    if let Some(d) = defect {
        eprintln!(
            "sscard-model: warning: serving a card with a deliberate defect: {}",
            d.name()
        );
        card.inject_defect(d);
    }
    card
}

fn card_id(hex: &str) -> Result<[u8; 16]> {
    let bytes = parse_hex(hex).context("--card-id")?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow::anyhow!(
            "--card-id has {} bytes, a card identification code has 16",
            b.len()
        )
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::New {
            alg,
            kind,
            card_id: id,
            holder,
            pin,
            city,
            out,
        } => {
            let alg = alg.into();
            let image = match kind {
                Kind::Blank => build::blank_ssc(alg, &card_id(&id)?),
                Kind::Psam => build::city_psam_for(alg, &city)?,
                Kind::Personalised => {
                    let holder: Holder = match holder {
                        Some(p) => {
                            serde_json::from_str(&read_text_file_bounded(&p, HOLDER_FILE_LIMIT)?)
                                .with_context(|| format!("holder file {}", p.display()))?
                        }
                        None => Holder::sample(),
                    };
                    build::personalised_ssc(alg, &card_id(&id)?, &holder, &pin)?
                }
            };
            sscard_model::store::write_atomic(&out, image.to_json().as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
        Cmd::Show { image } => {
            print!("{}", Image::load(&image)?.masked_json());
            Ok(())
        }
        Cmd::Serve {
            alg,
            card,
            psam,
            no_psam,
            host,
            port,
            latency_ms,
            fault_rate,
            control,
            defect,
            app,
            corrupt_over,
            feeder,
            present,
            blank,
            region,
            readers,
        } => {
            // Options that cannot work are refused before anything is served.
            if !(0.0..=1.0).contains(&fault_rate) {
                bail!("--fault-rate must be between 0 and 1");
            }
            let ports = match feeder {
                Some(_) => vpcd_ports(port, readers.into(), &format!("{readers} feeder readers"))?,
                None if no_psam => vpcd_ports(port, 1, "the card")?,
                None => vpcd_ports(port, 2, "the card and the PSAM on the next port")?,
            };
            if app == "loopback" && (card.is_some() || defect.is_some()) {
                bail!("--app loopback serves the loopback application alone: --card and --defect would be ignored");
            }
            use std::net::ToSocketAddrs;
            if let Err(e) = (host.as_str(), port).to_socket_addrs() {
                bail!("--host {host}: not an address to connect to ({e})");
            }
            let alg: Algorithm = alg.into();
            let (default_card, default_psam) = sscard_model::test_pair(alg);
            let ssc: SharedCard = match card {
                Some(p) => shared(with_defect(
                    Ssc::from_image(Image::load(&p)?, Store::file(&p))
                        .map_err(|e| anyhow::anyhow!("card image {}: {e}", p.display()))?,
                    defect,
                )),
                None => shared(with_defect(default_card, defect)),
            };
            if let Some(dir) = feeder {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("feeder directory {}", dir.display()))?;
                let blank = usize::try_from(blank).context("--blank")?;
                let stock: sscard_model::feeder::Stock =
                    std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(blank));
                let mut served = Vec::new();
                for p in ports {
                    let f =
                        sscard_model::feeder::Feeder::new(alg, &region, dir.clone(), stock.clone())
                            .map_err(anyhow::Error::msg)?;
                    let mut o = ServeOptions::port(p);
                    o.host = host.clone();
                    o.latency = Duration::from_millis(latency_ms);
                    served.push(serve(shared(f), o));
                }
                eprintln!("sscard-model: feeding {blank} blank {} cards of region {region} on {readers} reader(s) from port {port}", alg.name());
                return serve_until_killed(served, control);
            }
            let first: SharedCard = if let Some(dir) = &present {
                let p = sscard_model::presenter::Presenter::from_dir(dir)
                    .map_err(|e| anyhow::anyhow!("--present: {e}"))?;
                if p.remaining() == 0 {
                    bail!(
                        "--present {}: no card image (*.json) there; nothing would be served",
                        dir.display()
                    );
                }
                eprintln!(
                    "sscard-model: presenting {} card(s) from {}",
                    p.remaining(),
                    dir.display()
                );
                shared(p)
            } else if app == "loopback" {
                shared(sscard_model::loopback::LoopbackCard::new())
            } else if app == "ssse" {
                ssc
            } else {
                let inner = std::sync::Arc::try_unwrap(ssc)
                    .ok()
                    .expect("not shared yet")
                    .into_inner()
                    .expect("lock");
                shared(sscard_model::loopback::WithLoopback::new(inner))
            };
            let mut cards = vec![first];
            if !no_psam {
                cards.push(match psam {
                    Some(p) => shared(
                        Psam::from_image(Image::load(&p)?)
                            .map_err(|e| anyhow::anyhow!("PSAM image {}: {e}", p.display()))?,
                    ),
                    None => shared(default_psam),
                });
            }
            let served: Vec<_> = cards
                .into_iter()
                .zip(ports)
                .enumerate()
                .map(|(i, (c, p))| {
                    let mut o = ServeOptions::port(p);
                    o.host = host.clone();
                    o.latency = Duration::from_millis(latency_ms);
                    o.fault_rate = fault_rate;
                    if i == 0 {
                        o.corrupt_over = corrupt_over;
                    }
                    serve(c, o)
                })
                .collect();
            eprintln!(
                "sscard-model: serving {} on {host}:{port}{}",
                alg.name(),
                if served.len() > 1 {
                    format!(", PSAM on {host}:{}", port.saturating_add(1))
                } else {
                    String::new()
                }
            );
            serve_until_killed(served, control)
        }
    }
}
