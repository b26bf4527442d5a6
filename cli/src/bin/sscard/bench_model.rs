//! Benchmarks of the card model: in-process rates, and through pcscd side by side with a
//! minimal vpcd peer. Ratios come from one run; nothing here is a pass/fail test.

use crate::output::Output;
use anyhow::{Context, Result};
use serde_json::json;
use sscard::keys::SoftKeys;
use sscard::ssc::Session;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::parse_hex;
use sscard_model::card::{shared, Card};
use sscard_model::vpcd::{serve, write_frame, ServeOptions, CTRL_ATR};
use sscard_transport::pcsc::{establish, wait_for_card_state, PcscBackend};
use sscard_transport::{Connection, InProcess};
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn model(out: &Output, apdus: usize, sessions: usize) -> Result<()> {
    let mut rows = Vec::new();
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let (mut card, _) = sscard_model::test_pair(alg);
        let select = parse_hex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF00")?;
        let read = parse_hex("00B2012C00")?;
        card.transmit(&select);
        let start = Instant::now();
        for i in 0..apdus {
            let r = card.transmit(if i % 2 == 0 { &read } else { &select });
            debug_assert!(r.is_some());
        }
        let apdu_rate = apdus as f64 / start.elapsed().as_secs_f64();

        let (ssc, _) = sscard_model::test_pair(alg);
        let card = shared(ssc);
        let mut conn = Connection::new(InProcess::new(card.clone(), "in-process"));
        let mut keys = SoftKeys::test_set();
        let mut per_info = 0;
        let start = Instant::now();
        for _ in 0..sessions {
            card.lock().expect("card lock").reset();
            let mut tx = conn.transaction()?;
            let mut s = Session::open(&mut tx, &mut keys)?;
            s.read_basic_info()?;
            per_info = s.apdu_count();
        }
        let session_rate = sessions as f64 / start.elapsed().as_secs_f64();
        rows.push(json!({
            "algorithm": alg.name(), "simple_apdus_per_s": apdu_rate,
            "info_sessions_per_s": session_rate, "apdus_per_info": per_info,
        }));
    }
    out.result(json!({ "in_process": rows }), || {
        rows.iter()
            .map(|r| {
                format!(
                    "{:<4} simple APDUs (SELECT/READ RECORD): {:>10.0}/s   read-basic-info sessions: {:>8.0}/s   APDUs per info: {}",
                    r["algorithm"].as_str().unwrap_or(""),
                    r["simple_apdus_per_s"].as_f64().unwrap_or(0.0),
                    r["info_sessions_per_s"].as_f64().unwrap_or(0.0),
                    r["apdus_per_info"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// A minimal vpcd peer: answers every APDU with 9000 and nothing else (the yardstick).
fn minimal_peer(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            let mut buf = vec![0u8; 65_538];
            let mut filled = 0;
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                match s.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        filled += n;
                        let _ = socket2::SockRef::from(&s).set_quickack(true);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue
                    }
                    Err(_) => break,
                }
                while filled >= 2 {
                    let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
                    if filled < 2 + len {
                        break;
                    }
                    let reply: &[u8] = match &buf[2..2 + len] {
                        [CTRL_ATR] => &sscard_core::profile::SSC_ATR,
                        [_] => &[],
                        _ => &[0x90, 0x00],
                    };
                    if !reply.is_empty() && write_frame(&mut s, reply).is_err() {
                        break;
                    }
                    buf.copy_within(2 + len..filled, 0);
                    filled -= 2 + len;
                }
            }
        }
    })
}

const READER: &str = "Virtual PCD 00 00";

fn time_reader(count: usize) -> Result<Duration> {
    let ctx = establish()?;
    if !wait_for_card_state(&ctx, READER, true, Duration::from_secs(10))? {
        anyhow::bail!("no card appeared in {READER}");
    }
    let t = PcscBackend::connect_named(&ctx, READER, false)?;
    let apdu = [0x00, 0xA4, 0x04, 0x00, 0x00];
    let mut buf = vec![0u8; 300];
    let start = Instant::now();
    for _ in 0..count {
        t.raw_card().transmit(&apdu, &mut buf)?;
    }
    Ok(start.elapsed())
}

fn wait_empty() -> Result<()> {
    let ctx = establish()?;
    if !wait_for_card_state(&ctx, READER, false, Duration::from_secs(10))? {
        anyhow::bail!("{READER} still holds a card after 10 s");
    }
    Ok(())
}

pub fn vpcd(out: &Output, count: usize, rounds: usize) -> Result<()> {
    wait_empty().context("the reader must be free: stop other sscard-model servers")?;
    let (mut peer, mut model) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        // Alternate which side goes first, so drift in the machine's speed hits both alike.
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let stop = Arc::new(AtomicBool::new(false));
                let h = minimal_peer(35963, stop.clone());
                peer += time_reader(count)?;
                stop.store(true, Ordering::SeqCst);
                let _ = h.join();
            } else {
                let (ssc, _) = sscard_model::test_pair(Algorithm::Tdes);
                let served = serve(shared(ssc), ServeOptions::port(35963));
                model += time_reader(count)?;
                drop(served);
            }
            wait_empty()?;
        }
    }
    let n = (count * rounds) as f64;
    let (peer_rate, model_rate) = (n / peer.as_secs_f64(), n / model.as_secs_f64());
    out.result(
        json!({ "apdus_per_side": n as u64, "minimal_peer_apdus_per_s": peer_rate, "model_apdus_per_s": model_rate, "ratio": model_rate / peer_rate }),
        || format!("through pcscd, {} APDUs per side in {rounds} alternating rounds\nminimal vpcd peer (9000): {peer_rate:.0} APDU/s\nsscard-model SSC:         {model_rate:.0} APDU/s\nratio model/peer: {:.3}", n as u64, model_rate / peer_rate),
    );
    Ok(())
}
