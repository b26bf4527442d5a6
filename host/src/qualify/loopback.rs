//! Checks on the loopback test application (`docs/loopback.md`): ISO cases 1–4 at every short
//! length, the longest extended APDU, T=0 `61xx`/`6Cxx` handling, latency per APDU size and
//! delayed answers.

use super::check::{Finding, Needs};
use super::failure::CheckFailure;
use super::latency::measure;
use super::runner::Runner;
use sscard_core::apdu::Command;
use sscard_core::status::StatusWord;
use sscard_transport::Transaction;
use std::time::Instant;

/// The loopback application's AID.
pub const LOOPBACK_AID: [u8; 9] = [0xF0, 0x53, 0x53, 0x43, 0x41, 0x52, 0x44, 0x4C, 0x42];

/// The largest ECHO that the vpcd protocol carries (65 535-byte frames).
pub const MAX_ECHO: usize = 65_535 - 9;

/// NOOP, the loopback application's case 1.
pub const NOOP: [u8; 4] = [0x80, 0x10, 0, 0];

const EXACT: &str = "exact data and 9000 at every length";

/// `i mod 251`: shifted, dropped or repeated bytes show.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// SELECT of the loopback application.
pub fn select_apdu() -> Vec<u8> {
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, LOOPBACK_AID.len() as u8];
    select.extend_from_slice(&LOOPBACK_AID);
    select
}

/// Sends `apdu` as it is and expects `9000` with `data`.
pub fn expect(tx: &mut Transaction<'_>, apdu: &[u8], data: &[u8]) -> Result<(), CheckFailure> {
    let r = tx.transmit_raw(apdu)?;
    if r.sw != StatusWord::OK {
        return Err(CheckFailure::Answered(r.sw));
    }
    if r.data != data {
        let at = r
            .data
            .iter()
            .zip(data)
            .position(|(a, b)| a != b)
            .unwrap_or(r.data.len().min(data.len()));
        return Err(CheckFailure::Data {
            got: r.data.len(),
            expected: data.len(),
            at,
        });
    }
    Ok(())
}

fn short(cla_ins: [u8; 2], data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut v = vec![cla_ins[0], cla_ins[1], 0, 0];
    if !data.is_empty() {
        v.push(data.len() as u8);
        v.extend_from_slice(data);
    }
    if let Some(le) = le {
        v.push(le);
    }
    v
}

fn extended_echo(n: usize) -> Vec<u8> {
    let mut v = vec![0x80, 0x16, 0, 0, 0, (n >> 8) as u8, n as u8];
    v.extend(pattern(n));
    v.extend_from_slice(&[0, 0]);
    v
}

/// Selects the loopback application; whether it answered `9000`.
pub(super) fn select(r: &mut Runner<'_>) -> Result<bool, CheckFailure> {
    r.app_select = select_apdu();
    let sel = r.app_select.clone();
    Ok(r.in_tx(|tx| Ok(tx.transmit_raw(&sel)?))?.sw == StatusWord::OK)
}

/// The loopback checks; the application is selected.
pub(super) fn run(r: &mut Runner<'_>) {
    let full = r.full;
    let needs = Needs::Loopback;
    r.check("loopback.case1", "case 1 (NOOP)", needs, "9000", |r| {
        r.in_tx(|tx| expect(tx, &NOOP, &[]))
            .map(|_| Finding::Pass("9000".into()))
    });
    let lengths: Vec<usize> = if full {
        (1..=255).collect()
    } else {
        vec![1, 2, 16, 127, 128, 200, 254, 255]
    };
    let les: Vec<usize> = if full {
        (1..=256).collect()
    } else {
        vec![1, 2, 16, 128, 255, 256]
    };
    let which = if full { "every" } else { "sample" };
    r.check(
        "loopback.case2",
        &format!(
            "case 2 (RETURN) Le {}",
            if full { "1..256" } else { "sample" }
        ),
        needs,
        EXACT,
        |r| {
            r.in_tx(|tx| {
                for &n in &les {
                    expect(
                        tx,
                        &short([0x80, 0x12], &[], Some((n % 256) as u8)),
                        &pattern(n),
                    )
                    .map_err(|e| e.within(format!("Le {n}")))?;
                }
                Ok(Finding::Pass(format!(
                    "{} lengths ({which}), up to 256 bytes",
                    les.len()
                )))
            })
        },
    );
    r.check(
        "loopback.case3",
        &format!(
            "case 3 (ACCEPT, checked with LAST) Lc {}",
            if full { "1..255" } else { "sample" }
        ),
        needs,
        "the card received exactly the command sent, at every length",
        |r| {
            r.in_tx(|tx| {
                for &n in &lengths {
                    let cmd = short([0x80, 0x14], &pattern(n), None);
                    expect(tx, &cmd, &[]).map_err(|e| e.within(format!("Lc {n}")))?;
                    expect(tx, &[0x80, 0x1A, 0, 0, 0], &cmd)
                        .map_err(|e| e.within(format!("Lc {n}, as received")))?;
                }
                Ok(Finding::Pass(format!(
                    "{} lengths ({which})",
                    lengths.len()
                )))
            })
        },
    );
    r.check(
        "loopback.case4",
        &format!(
            "case 4 (ECHO) Lc {}",
            if full { "1..255" } else { "sample" }
        ),
        needs,
        EXACT,
        |r| {
            r.in_tx(|tx| {
                for &n in &lengths {
                    expect(tx, &short([0x80, 0x16], &pattern(n), Some(0)), &pattern(n))
                        .map_err(|e| e.within(format!("Lc {n}")))?;
                }
                Ok(Finding::Pass(format!(
                    "{} lengths ({which})",
                    lengths.len()
                )))
            })
        },
    );
    let min = r.thresholds.min_extended_bytes;
    r.check(
        "loopback.extended",
        "extended length (largest ECHO, binary search)",
        needs,
        &format!("largest extended ECHO ≥ {min} bytes"),
        |r| {
            // A size past the reader's limit may cost the connection: reconnect and go on.
            // Each size goes in a transaction of its own for that reason.
            let works = |r: &mut Runner, n: usize| match r
                .in_tx(|tx| expect(tx, &extended_echo(n), &pattern(n)))
            {
                Ok(()) => true,
                Err(_) => {
                    if r.raw(&NOOP).is_err() {
                        let _ = r.recover();
                    }
                    false
                }
            };
            if !works(r, 256) {
                return Err(CheckFailure::NoExtended);
            }
            // The vpcd protocol frames at most 65 535 bytes: an ECHO command of Lc + 9 bytes
            // must fit. Larger frames desynchronise pcscd's vpcd driver, so the search stops
            // there.
            let (mut lo, mut hi) = (256usize, MAX_ECHO);
            let largest = if works(r, hi) {
                hi
            } else {
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if works(r, mid) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                lo
            };
            let figure = if largest == MAX_ECHO {
                format!("max extended ECHO {largest} bytes (the largest the vpcd protocol carries)")
            } else {
                format!("max extended ECHO {largest} bytes")
            };
            Ok(if largest >= min {
                Finding::Pass(figure)
            } else {
                Finding::OverThreshold {
                    figure,
                    why: format!("{largest} bytes, below {min}"),
                }
            })
        },
    );
    r.check(
        "loopback.extended-le",
        "extended Le (RETURN 4096)",
        needs,
        "4096 exact bytes",
        |r| {
            r.in_tx(|tx| expect(tx, &[0x80, 0x12, 0, 0, 0, 0x10, 0x00], &pattern(4096)))
                .map(|_| Finding::Pass("4096 bytes".into()))
        },
    );
    r.check(
        "loopback.61xx",
        "T=0 61xx answered with GET RESPONSE",
        needs,
        "61 20 then GET RESPONSE: 32 exact bytes",
        |r| {
            let resp =
                r.in_tx(|tx| Ok(tx.transmit(&Command::new(0x80, 0x1C, 0x01, 0x20).with_le(256))?))?;
            if resp.data != pattern(0x20) || !resp.is_success() {
                return Err(CheckFailure::Response {
                    len: resp.data.len(),
                    sw: resp.sw,
                });
            }
            Ok(Finding::Pass("61 20 → GET RESPONSE 32 bytes".into()))
        },
    );
    r.check(
        "loopback.6cxx",
        "T=0 6Cxx answered with the right Le",
        needs,
        "6C 10 then the command again with Le 16: 16 exact bytes",
        |r| {
            let resp =
                r.in_tx(|tx| Ok(tx.transmit(&Command::new(0x80, 0x1C, 0x02, 0x10).with_le(4))?))?;
            if resp.data != pattern(0x10) || !resp.is_success() {
                return Err(CheckFailure::Response {
                    len: resp.data.len(),
                    sw: resp.sw,
                });
            }
            Ok(Finding::Pass("6C 10 → resent with Le 16".into()))
        },
    );
    for size in [0usize, 16, 64, 128, 255] {
        let command = if size == 0 {
            "NOOP".to_string()
        } else {
            format!("ECHO {size} bytes")
        };
        let samples = r.samples;
        r.latency_check(&format!("latency.loopback-{size}"), &command, needs, |r| {
            let cmd = if size == 0 {
                NOOP.to_vec()
            } else {
                short([0x80, 0x16], &pattern(size), Some(0))
            };
            let want = pattern(size);
            r.in_tx(|tx| measure(tx, &command, samples, |tx| expect(tx, &cmd, &want)))
        });
    }
    let delays: &[u16] = if full {
        &[100, 500, 1000, 2000, 5000]
    } else {
        &[100, 500, 1000]
    };
    let longest = delays.last().copied().unwrap_or(0);
    r.check(
        "loopback.delay",
        "delayed answers",
        needs,
        &format!(
            "every answer delayed 0.1 to {} s arrives, never early",
            f64::from(longest) / 1000.0
        ),
        |r| {
            r.in_tx(|tx| {
                for &ms in delays {
                    let t0 = Instant::now();
                    expect(tx, &[0x80, 0x18, (ms >> 8) as u8, ms as u8], &[])
                        .map_err(|e| e.within(format!("{ms} ms")))?;
                    let took = t0.elapsed().as_millis();
                    if took < ms as u128 {
                        return Err(CheckFailure::TooFast { ms, took });
                    }
                }
                Ok(Finding::Pass(format!("answered after up to {longest} ms")))
            })
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apdus_are_built_as_the_loopback_application_reads_them() {
        assert_eq!(
            short([0x80, 0x16], &[7, 8], Some(0)),
            [0x80, 0x16, 0, 0, 2, 7, 8, 0]
        );
        assert_eq!(short([0x80, 0x12], &[], Some(5)), [0x80, 0x12, 0, 0, 5]);
        let e = extended_echo(300);
        assert_eq!(&e[..7], &[0x80, 0x16, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(e.len(), 7 + 300 + 2);
        assert_eq!(pattern(253)[251..], [0, 1]);
    }
}
