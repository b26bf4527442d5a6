//! `sscard bench transport`: the same APDU N times through the bare `pcsc` crate and through
//! the sscard stack (codec + transport + channel, tracing off), alternating in rounds on the
//! same reader, so both see the same conditions. Prints both rates and the ratio.

use crate::exit::BadInput;
use crate::output::Output;
use anyhow::Result;
use serde_json::json;
use sscard_core::apdu::Command;
use sscard_core::hexfmt::parse_hex;
use sscard_transport::pcsc::{establish, PcscBackend};
use sscard_transport::trace::mask;
use sscard_transport::Connection;
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Bare pcsc vs the sscard stack on one reader.
    Transport(TransportArgs),
    /// The card model in-process: simple APDUs/s and read-basic-info sessions/s, APDUs per info.
    Model(ModelArgs),
    /// The model served through pcscd vs a minimal vpcd peer answering 9000, same reader.
    Vpcd(VpcdArgs),
    /// Diversification + MAC per second: software keys beside another key source.
    Keys(KeysArgs),
    /// Personalisation cards/min with 1, 2, 4, 8 readers and the journal's share.
    Perso(crate::bench_perso::PersoArgs),
}

#[derive(clap::Args)]
pub struct KeysArgs {
    /// The source to compare with software keys (e.g. pkcs11:MODULE:TOKEN, psam:READER).
    #[arg(long)]
    keys: String,
    #[arg(long, default_value_t = 2000, value_parser = positive)]
    count: usize,
    #[arg(long, default_value_t = 4, value_parser = positive)]
    rounds: usize,
}

#[derive(clap::Args)]
pub struct ModelArgs {
    /// Simple APDUs to time.
    #[arg(long, default_value_t = 1_000_000, value_parser = positive)]
    apdus: usize,
    /// Sessions to time.
    #[arg(long, default_value_t = 20_000, value_parser = positive)]
    sessions: usize,
}

#[derive(clap::Args)]
pub struct VpcdArgs {
    /// APDUs per side and round.
    #[arg(long, default_value_t = 2000, value_parser = positive)]
    count: usize,
    /// Rounds, alternating which side goes first.
    #[arg(long, default_value_t = 6, value_parser = positive)]
    rounds: usize,
}

#[derive(clap::Args)]
pub struct TransportArgs {
    #[arg(long, short)]
    reader: Option<String>,
    /// APDUs per side.
    #[arg(long, default_value_t = 2000, value_parser = positive)]
    count: usize,
    /// The APDU to send.
    #[arg(long, default_value = "00A4040000")]
    apdu: String,
    /// Rounds the count is split into, alternating the two sides.
    #[arg(long, default_value_t = 10, value_parser = positive)]
    rounds: usize,
    /// Measure this many times and print the median.
    #[arg(long, default_value_t = 1, value_parser = positive)]
    repeat: usize,
}

/// A count of at least 1: a bench of 0 APDUs, rounds or repetitions measures nothing (and
/// divides by zero), so it is refused by the argument parser.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("0 measures nothing: give at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub fn run(out: &Output, bench: Bench) -> Result<()> {
    match bench {
        Bench::Transport(args) => transport(out, args),
        Bench::Model(args) => crate::bench_model::model(out, args.apdus, args.sessions),
        Bench::Vpcd(args) => crate::bench_model::vpcd(out, args.count, args.rounds),
        Bench::Keys(args) => keys(out, args),
        Bench::Perso(args) => crate::bench_perso::perso(out, args),
    }
}

fn transport(out: &Output, args: TransportArgs) -> Result<()> {
    // Echoed like `send` echoes a command: a PIN or key command's data is never quoted.
    let place = || format!("--apdu {}", mask::text_preview(&args.apdu));
    let bytes = parse_hex(&args.apdu)
        .map_err(|e| BadInput(format!("{}: {}", place(), mask::hex_error(&args.apdu, &e))))?;
    let cmd = Command::parse(&bytes).map_err(|e| BadInput(format!("{}: {e}", place())))?;
    let ctx = establish()?;
    // Two handles on the same card: the bare side calls SCardTransmit on one, the stack side
    // goes through a connection and a transaction (untraced) on the other.
    let bare_card = PcscBackend::connect(&ctx, args.reader.as_deref(), false)?;
    let reader = sscard_transport::backend::CardBackend::reader(&bare_card).to_string();
    // One transaction carries a whole round (--count / --rounds APDUs): the loop bounds it.
    let mut conn = Connection::new(PcscBackend::connect_named(&ctx, &reader, false)?)
        .with_budget(sscard_transport::Budget::UNLIMITED);
    let per_round = args.count.div_ceil(args.rounds);
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    // One figure per repetition; the median is the one to quote.
    let mut runs = Vec::new();
    for _ in 0..args.repeat {
        let (mut bare, mut stack) = (Duration::ZERO, Duration::ZERO);
        for round in 0..args.rounds {
            // Alternate which side goes first, so drift in the reader's speed hits both alike.
            for side in [round % 2, 1 - round % 2] {
                let start = Instant::now();
                if side == 0 {
                    for _ in 0..per_round {
                        bare_card.raw_card().transmit(&bytes, &mut buf)?;
                    }
                    bare += start.elapsed();
                } else {
                    let mut tx = conn.transaction()?;
                    for _ in 0..per_round {
                        tx.transmit(&cmd)?;
                    }
                    drop(tx);
                    stack += start.elapsed();
                }
            }
        }
        runs.push((bare, stack));
    }
    let n = (per_round * args.rounds) as f64;
    let figures: Vec<(f64, f64, f64)> = runs
        .iter()
        .map(|(bare, stack)| {
            let (bare_rate, stack_rate) = (n / bare.as_secs_f64(), n / stack.as_secs_f64());
            (
                bare_rate,
                stack_rate,
                (stack.as_secs_f64() / bare.as_secs_f64() - 1.0) * 100.0,
            )
        })
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let overhead = median(figures.iter().map(|f| f.2).collect());
    let ratio = median(figures.iter().map(|f| f.1 / f.0).collect());
    let (bare_rate, stack_rate) = (
        median(figures.iter().map(|f| f.0).collect()),
        median(figures.iter().map(|f| f.1).collect()),
    );
    out.result(
        json!({
            "reader": reader, "apdus_per_side": n as u64, "runs": figures.len(),
            "bare_pcsc_apdus_per_s": bare_rate, "sscard_apdus_per_s": stack_rate,
            "ratio": ratio, "overhead_percent": overhead,
            "overhead_percent_per_run": figures.iter().map(|f| f.2).collect::<Vec<_>>(),
        }),
        || {
            let per_run: Vec<String> = figures.iter().map(|f| format!("{:+.2} %", f.2)).collect();
            format!(
                "reader {}\n{} APDUs per side in {} alternating rounds, {} run(s)\nbare pcsc:    {bare_rate:.1} APDU/s (median)\nsscard stack: {stack_rate:.1} APDU/s (median)\noverhead per run: {}\nrate ratio sscard/bare (median of runs): {:.4}  (overhead {overhead:+.2} %)",
                reader,
                n as u64,
                args.rounds,
                figures.len(),
                per_run.join(", "),
                ratio
            )
        },
    );
    Ok(())
}

fn keys(out: &Output, args: KeysArgs) -> Result<()> {
    use sscard::keys::{CardRef, KeySource, KeySpec, SoftKeys};
    use sscard_core::crypto::Algorithm;
    let spec: KeySpec = args.keys.parse()?;
    let mut other = crate::connect::open_keys(&spec, &sscard_transport::trace::Trace::off())?;
    let mut soft = SoftKeys::test_set();
    let per_round = args.count.div_ceil(args.rounds);
    let (mut t_soft, mut t_other) = (Duration::ZERO, Duration::ZERO);
    let msg = [0x04, 0xDC, 0x04, 0x34, 0x07, 0x0A, 0x01, 0x31];
    for round in 0..args.rounds {
        for side in [round % 2, 1 - round % 2] {
            let source: &mut dyn KeySource = if side == 0 { &mut soft } else { other.as_mut() };
            let start = Instant::now();
            for i in 0..per_round {
                let mut id = [
                    0x11, 0x01, 0x00, 0xD1, 0x56, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0,
                ];
                id[8..].copy_from_slice(&(i as u64).to_be_bytes());
                source.mac(
                    Algorithm::Tdes,
                    &CardRef::new(id),
                    sscard_core::profile::Kid::UkN,
                    &[1, 2, 3, 4],
                    &msg,
                )?;
            }
            if side == 0 {
                t_soft += start.elapsed()
            } else {
                t_other += start.elapsed()
            }
        }
    }
    let n = (per_round * args.rounds) as f64;
    let (rs, ro) = (n / t_soft.as_secs_f64(), n / t_other.as_secs_f64());
    out.result(
        json!({ "operations_per_side": n as u64, "software_per_s": rs, "other_per_s": ro, "other": other.describe(), "ratio": ro / rs }),
        || format!("diversification (3 levels) + retail MAC, {} per side\nsoftware keys: {rs:.0}/s\n{}: {ro:.0}/s\nratio: {:.4}", n as u64, other.describe(), ro / rs),
    );
    Ok(())
}
