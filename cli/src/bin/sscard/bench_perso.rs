//! `sscard bench perso`: cards/min of the personalisation station with 1, 2, 4, 8 readers at a
//! given model latency, in one run, and the journal's share of per-card time.

use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;
use sscard::keys::SoftKeys;
use sscard_core::crypto::Algorithm;
use sscard_model::card::shared;
use sscard_model::feeder::Feeder;
use sscard_model::vpcd::{serve, ServeOptions};
use sscard_perso::{batch, journal::Journal, station};
use sscard_transport::pcsc::{establish, list_readers, wait_for_card_state};
use std::time::{Duration, Instant};

/// The longest processing time `--latency-ms` adds to an APDU: one minute, as for
/// `sscard-model serve`.
const MAX_LATENCY_MS: u64 = 60_000;

#[derive(clap::Args)]
pub struct PersoArgs {
    /// Reader counts to compare (the vpcd readers from port 35963 on).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8", value_parser = crate::bench::positive)]
    readers: Vec<usize>,
    /// Model processing time per APDU (at most a minute, like `sscard-model serve`).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=MAX_LATENCY_MS))]
    latency_ms: u64,
    /// Cards each reader personalises per configuration.
    #[arg(long, default_value_t = 3, value_parser = crate::bench::positive)]
    cards_per_reader: usize,
}

pub fn perso(out: &Output, a: PersoArgs) -> Result<()> {
    let ctx = establish()?;
    let names = list_readers(&ctx)?;
    let dir = std::env::temp_dir().join(format!("sscard-bench-perso-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    for (run, &k) in a.readers.iter().enumerate() {
        anyhow::ensure!(
            k >= 1 && k <= names.len(),
            "{k} readers asked, pcscd has {}",
            names.len()
        );
        let stock = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(
            k * a.cards_per_reader + k,
        ));
        let feed = dir.join(format!("feed-{run}"));
        std::fs::create_dir_all(&feed)?;
        let served: Vec<_> = (0..k)
            .map(|i| {
                let f = Feeder::new(Algorithm::Tdes, "110100", feed.clone(), stock.clone())
                    .map_err(anyhow::Error::msg)?;
                let mut o = ServeOptions::port(35963 + i as u16);
                o.latency = Duration::from_millis(a.latency_ms);
                Ok(serve(shared(f), o))
            })
            .collect::<Result<_>>()?;
        for r in &names[..k] {
            anyhow::ensure!(
                wait_for_card_state(&ctx, r, true, Duration::from_secs(10))?,
                "no card appeared in {r}"
            );
        }
        let journal_url = format!("sqlite:{}", dir.join(format!("journal-{run}.db")).display());
        let holders = batch::synthetic(k * a.cards_per_reader, (b'D' + run as u8) as char);
        Journal::init(&journal_url, None)?;
        Journal::open_audited(
            &journal_url,
            Box::new(SoftKeys::test_set()),
            "bench",
            "bench",
        )?
        .add("bench", &holders)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let start = Instant::now();
        let workers: Vec<_> = names[..k]
            .iter()
            .map(|r| {
                let w = station::Worker {
                    station: "bench".into(),
                    reader: r.clone(),
                    region: "110100".into(),
                    journal: journal_url.clone(),
                    operator: "bench".into(),
                    idle: Duration::from_secs(10),
                    trace: sscard_transport::trace::Trace::off(),
                };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    station::run(
                        &w,
                        &mut SoftKeys::test_set(),
                        Box::new(SoftKeys::test_set()),
                        &tx,
                    )
                    .map_err(|e| e.to_string())
                })
            })
            .collect();
        drop(tx);
        for _ in rx {}
        let (mut issued, mut journal, mut apdus) = (0, Duration::ZERO, 0);
        for w in workers {
            let st = w
                .join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))?
                .map_err(anyhow::Error::msg)
                .context("worker")?;
            issued += st.issued;
            journal += st.journal;
            apdus += st.apdus;
        }
        let secs = start.elapsed().as_secs_f64();
        drop(served);
        for r in &names[..k] {
            wait_for_card_state(&ctx, r, false, Duration::from_secs(10))?;
        }
        // Per-card time across all readers: k workers ran in parallel for `secs`.
        let card_time = secs * k as f64 / issued.max(1) as f64;
        rows.push(json!({
            "readers": k, "cards": issued, "seconds": secs, "cards_per_min": issued as f64 * 60.0 / secs,
            "journal_share_percent": journal.as_secs_f64() / (card_time * issued.max(1) as f64) * 100.0,
            "apdus_per_card": apdus as f64 / issued.max(1) as f64,
        }));
    }
    let base = rows
        .first()
        .and_then(|r| r["cards_per_min"].as_f64())
        .unwrap_or(1.0)
        / a.readers[0] as f64;
    for r in &mut rows {
        let k = r["readers"].as_f64().unwrap_or(1.0);
        r["scaling"] = json!(r["cards_per_min"].as_f64().unwrap_or(0.0) / (base * k));
    }
    let _ = std::fs::remove_dir_all(&dir);
    out.result(json!({ "latency_ms": a.latency_ms, "runs": rows }), || {
        let mut t = format!("personalisation at {} ms/APDU model latency\nreaders  cards  seconds  cards/min  scaling  journal share  APDUs/card\n", a.latency_ms);
        for r in &rows {
            t += &format!(
                "{:>7}  {:>5}  {:>7.2}  {:>9.1}  {:>7.3}  {:>12.3} %  {:>10.1}\n",
                r["readers"], r["cards"], r["seconds"].as_f64().unwrap_or(0.0), r["cards_per_min"].as_f64().unwrap_or(0.0),
                r["scaling"].as_f64().unwrap_or(0.0), r["journal_share_percent"].as_f64().unwrap_or(0.0),
                r["apdus_per_card"].as_f64().unwrap_or(0.0)
            );
        }
        t
    });
    Ok(())
}
