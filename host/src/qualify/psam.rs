//! Checks on the PSAM in a second reader (T=0, PROFILE sections 1 and 6): SELECT DF01 and READ
//! BINARY EF15 at its exact length, `6Cxx` for a wrong Le, DES INIT then DES CRYPT answered
//! `61xx` and fetched with GET RESPONSE (after a wrong Le's `6Cxx`), and the latency of both.
//! DES CRYPT encrypts a test block under a key diversified for a made-up card: no key leaves
//! the PSAM and no card changes.

use super::check::{Finding, Needs};
use super::exchange::{encoded, expect_raw};
use super::failure::CheckFailure;
use super::latency::measure;
use super::runner::Runner;
use sscard_core::profile::commands;
use sscard_core::profile::psam::{factor_count_for, PsamInfo, EF15_LEN};
use sscard_core::profile::Kid;
use sscard_core::status::StatusWord;

fn select_df01() -> Vec<u8> {
    encoded(commands::select_df01().command)
}

/// READ BINARY EF15 with Le `le`: its length (24), above it (a `6Cxx`), or below it.
fn read_ef15(le: u8) -> Vec<u8> {
    encoded(commands::psam_read_ef15().command.with_le(usize::from(le)))
}

/// The factor of the made-up card the DES INIT diversifies for.
const TEST_FACTOR: [u8; 8] = [0x51, 0x55, 0x41, 0x4C, 0x49, 0x46, 0x59, 0x01];

fn des_init(level: u8) -> Vec<u8> {
    let factors = TEST_FACTOR.repeat(factor_count_for(level, Kid::Irk));
    encoded(commands::des_init(Kid::Irk, &factors).command)
}

/// The test block of DES CRYPT: `00 01 02 …`, one block of the PSAM's algorithm.
fn test_block(block: usize) -> Vec<u8> {
    (0..block).map(|i| i as u8).collect()
}

fn des_crypt(block: usize) -> Vec<u8> {
    encoded(commands::des_crypt_encrypt(test_block(block)).command)
}

/// GET RESPONSE with Le `le` (the PSAM's `61xx`, or a wrong Le on purpose).
fn get_response(le: u8) -> Vec<u8> {
    encoded(commands::get_response(usize::from(le)).command)
}

/// Selects DF01 and reads EF15; the PSAM's description, or why the PSAM checks cannot run.
fn info(r: &mut Runner<'_>) -> Result<PsamInfo, String> {
    let ef15 = r
        .in_psam_tx(|tx| {
            expect_raw(tx, "SELECT DF01", &select_df01(), StatusWord::OK)?;
            Ok(tx.transmit(&commands::psam_read_ef15().command)?)
        })
        .map_err(|e| format!("the card in the PSAM reader is not a PSAM of the profile: {e}"))?;
    if !ef15.is_success() {
        return Err(format!(
            "the card in the PSAM reader is not a PSAM of the profile: READ BINARY EF15 answered {}",
            ef15.sw
        ));
    }
    PsamInfo::parse(&ef15.data)
        .map_err(|e| format!("the card in the PSAM reader is not a PSAM of the profile: {e}"))
}

/// The PSAM checks, or each one not applicable with the reason.
pub(super) fn run(r: &mut Runner<'_>, no_psam_why: Option<&str>) {
    const CHECKS: [(&str, &str, &str); 5] = [
        (
            "psam.select-read",
            "PSAM case 3 and case 2: SELECT DF01, READ BINARY EF15 (Le 24)",
            "9000, then EF15's 24 bytes with 9000",
        ),
        (
            "psam.6cxx",
            "PSAM 6Cxx: READ BINARY EF15 with Le above the file",
            "Le 32 answers 6C18; Le 24 the whole file; Le 4 its first 4 bytes",
        ),
        (
            "psam.61xx",
            "PSAM T=0 GET RESPONSE: DES INIT, DES CRYPT (61xx)",
            "61xx; GET RESPONSE with a wrong Le answers 6Cxx; with Le xx the block-size cryptogram",
        ),
        ("latency.psam-read-binary", "latency READ BINARY", ""),
        (
            "latency.psam-des-crypt",
            "latency DES CRYPT + GET RESPONSE",
            "",
        ),
    ];
    let info = match no_psam_why {
        Some(why) => Err(why.to_string()),
        None => info(r),
    };
    let info = match info {
        Ok(info) => info,
        Err(why) => {
            for (id, name, threshold) in CHECKS {
                let threshold = if threshold.is_empty() {
                    "per-command latency limits"
                } else {
                    threshold
                };
                r.not_applicable(id, name, Needs::Psam, threshold, &why);
            }
            return;
        }
    };
    let block = info.algorithm.block_size();
    let needs = Needs::Psam;
    let (id, name, threshold) = CHECKS[0];
    r.check(id, name, needs, threshold, |r| {
        r.in_psam_tx(|tx| {
            expect_raw(tx, "SELECT DF01", &select_df01(), StatusWord::OK)?;
            let ef15 = expect_raw(
                tx,
                "READ BINARY",
                &read_ef15(EF15_LEN as u8),
                StatusWord::OK,
            )?;
            if ef15.data.len() != EF15_LEN {
                return Err(CheckFailure::Length {
                    command: "READ BINARY EF15",
                    got: ef15.data.len(),
                    expected: EF15_LEN,
                });
            }
            Ok(Finding::Pass(format!(
                "PSAM {} ({}, level {}, region {})",
                info.serial,
                info.algorithm.name(),
                info.level,
                info.region
            )))
        })
    });
    let (id, name, threshold) = CHECKS[1];
    r.check(id, name, needs, threshold, |r| {
        r.in_psam_tx(|tx| {
            let whole = expect_raw(
                tx,
                "READ BINARY",
                &read_ef15(EF15_LEN as u8),
                StatusWord::OK,
            )?;
            let want = StatusWord::new(0x6C, EF15_LEN as u8);
            expect_raw(tx, "READ BINARY Le 32", &read_ef15(32), want)?;
            let part = expect_raw(tx, "READ BINARY Le 4", &read_ef15(4), StatusWord::OK)?;
            if whole.data.len() != EF15_LEN
                || part.data[..] != whole.data[..4.min(whole.data.len())]
            {
                return Err(CheckFailure::Wrong {
                    command: "READ BINARY EF15",
                    what: "Le 24 and Le 4 gave other bytes than the file's",
                });
            }
            Ok(Finding::Pass(format!(
                "Le 32 → {want}; Le {EF15_LEN} → {EF15_LEN} bytes; Le 4 → the first 4"
            )))
        })
    });
    let (id, name, threshold) = CHECKS[2];
    let level = info.level;
    r.check(id, name, needs, threshold, |r| {
        r.in_psam_tx(|tx| {
            expect_raw(tx, "SELECT DF01", &select_df01(), StatusWord::OK)?;
            expect_raw(tx, "DES INIT", &des_init(level), StatusWord::OK)?;
            let waiting = StatusWord::new(0x61, block as u8);
            expect_raw(tx, "DES CRYPT", &des_crypt(block), waiting)?;
            let wrong = StatusWord::new(0x6C, block as u8);
            expect_raw(tx, "GET RESPONSE Le 4", &get_response(4), wrong)?;
            let got = expect_raw(
                tx,
                "GET RESPONSE",
                &get_response(block as u8),
                StatusWord::OK,
            )?;
            if got.data.len() != block {
                return Err(CheckFailure::Length {
                    command: "GET RESPONSE",
                    got: got.data.len(),
                    expected: block,
                });
            }
            // The transport's own GET RESPONSE gives the same cryptogram.
            let auto = tx.transmit(&commands::des_crypt_encrypt(test_block(block)).command)?;
            if auto.data != got.data || !auto.is_success() {
                return Err(CheckFailure::Response {
                    len: auto.data.len(),
                    sw: auto.sw,
                });
            }
            Ok(Finding::Pass(format!(
                "{waiting} → GET RESPONSE Le 4 → {wrong} → Le {block} → {block} bytes"
            )))
        })
    });
    let samples = r.samples;
    r.latency_check(CHECKS[3].0, "READ BINARY", needs, |r| {
        r.in_psam_tx(|tx| {
            measure(tx, "READ BINARY", samples, |tx| {
                expect_raw(
                    tx,
                    "READ BINARY",
                    &read_ef15(EF15_LEN as u8),
                    StatusWord::OK,
                )
                .map(drop)
            })
        })
    });
    r.latency_check(CHECKS[4].0, "DES CRYPT + GET RESPONSE", needs, |r| {
        let crypt = commands::des_crypt_encrypt(test_block(block)).command;
        r.in_psam_tx(|tx| {
            expect_raw(tx, "DES INIT", &des_init(level), StatusWord::OK)?;
            measure(tx, "DES CRYPT + GET RESPONSE", samples, |tx| {
                let resp = tx.transmit(&crypt)?;
                if !resp.is_success() {
                    return Err(CheckFailure::Answered(resp.sw));
                }
                Ok(())
            })
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_builders_give_the_bytes_the_psam_checks_were_written_for() {
        assert_eq!(select_df01(), [0x00, 0xA4, 0x00, 0x00, 0x02, 0xDF, 0x01]);
        assert_eq!(read_ef15(24), [0x00, 0xB0, 0x95, 0x00, 0x18]);
        assert_eq!(read_ef15(32), [0x00, 0xB0, 0x95, 0x00, 0x20]);
        assert_eq!(get_response(4), [0x00, 0xC0, 0x00, 0x00, 0x04]);
        assert_eq!(
            des_crypt(8),
            [0x80, 0xFA, 0x00, 0x00, 0x08, 0, 1, 2, 3, 4, 5, 6, 7]
        );
        for level in [1, 2, 3] {
            let n = factor_count_for(level, Kid::Irk);
            let init = des_init(level);
            assert_eq!(init[..5], [0x80, 0x1A, 0x08, 0x01, (8 * n) as u8]);
            assert_eq!(init[5..], TEST_FACTOR.repeat(n)[..]);
        }
    }
}
