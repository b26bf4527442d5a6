//! Checks on a card holding the social security application (SSSE), real or served, with the
//! commands every such card offers without a key or PIN (PROFILE section 4): SELECT, READ
//! RECORD of the always-readable files, GET CHALLENGE, INTERNAL AUTHENTICATE. Each ISO case
//! is tried at the lengths these commands have.

use super::check::{Finding, Needs};
use super::exchange::{complete, encoded, expect_len, expect_raw, expect_sw, le_of};
use super::failure::CheckFailure;
use super::latency::measure;
use super::runner::Runner;
use sscard_core::profile::commands;
use sscard_core::profile::files::ef05;
use sscard_core::profile::Kid;
use sscard_core::status::StatusWord;

/// `00A40400 0F <SSSE AID> 00`: SELECT with the FCI.
pub fn select_with_fci() -> Vec<u8> {
    encoded(commands::select_ssse().command)
}

/// `00A40400 0F <SSSE AID>`: SELECT without Le (case 3).
fn select_no_le() -> Vec<u8> {
    encoded(commands::select_ssse_no_fci().command)
}

/// EF05 (card identification), readable on every card: SFI 05. The only file the checks
/// read: EF06 (the holder's name, SSN …), though readable without a key on 2.00 cards, is
/// personal data, and a `--trace` of a qualification run would carry it.
const EF05_SFI: u8 = 0x05;
/// An INS no SSC command uses: the card answers `6D00`. (No builder: no command of the
/// profile.)
const UNKNOWN_INS: [u8; 4] = [0x00, 0x10, 0x00, 0x00];

/// READ RECORD `number` of EF05 with the Le byte `le` (`00`, the record's length, above or
/// below it: the lengths the checks try).
fn read_record(number: u8, le: u8) -> Vec<u8> {
    encoded(
        commands::read_record(ef05(), number)
            .command
            .with_le(le_of(le)),
    )
}

/// READ RECORDS of EF05, all of them, Le `00`.
pub(super) fn read_records() -> Vec<u8> {
    encoded(commands::read_records_from(ef05(), 1).command)
}

fn get_challenge(len: usize) -> Vec<u8> {
    encoded(commands::get_challenge(len).command)
}

/// INTERNAL AUTHENTICATE of the IRK: `00880008 08 <R8> 00` with 8 bytes (PROFILE section 4,
/// the profile's builder); with 16 bytes (process factor ‖ source data) in the field
/// terminals' shape, P2 `00` (PROFILE section 4, field-terminal shapes; no builder, built
/// here).
fn internal_authenticate(data: &[u8]) -> Vec<u8> {
    if let Ok(random) = <[u8; 8]>::try_from(data) {
        return encoded(commands::internal_authenticate(Kid::Irk, &random).command);
    }
    let mut v = vec![0x00, 0x88, 0x00, 0x00, data.len() as u8];
    v.extend_from_slice(data);
    v.push(0x00);
    v
}

/// The value of the first `tag 01 value` in `fci` (the FCI's algorithm `86` and life cycle
/// `C0` are one-byte values).
fn one_byte(fci: &[u8], tag: u8) -> Option<u8> {
    fci.windows(3)
        .find(|w| w[0] == tag && w[1] == 1)
        .map(|w| w[2])
}

/// What the FCI says, for the figure.
fn describe_fci(fci: &[u8]) -> String {
    let alg = match one_byte(fci, 0x86) {
        Some(0x01) => "3DES".to_string(),
        Some(0x03) => "SM4".to_string(),
        Some(x) => format!("algorithm {x:02X}"),
        None => "no algorithm".into(),
    };
    let life = match one_byte(fci, 0xC0) {
        Some(0x01) => "PERSONALISATION".to_string(),
        Some(0x02) => "ISSUED".to_string(),
        Some(x) => format!("life cycle {x:02X}"),
        None => "no life cycle".into(),
    };
    format!("FCI {} bytes: {alg}, {life}", fci.len())
}

/// Selects SSSE with its FCI: the FCI when the card holds the application, the status word
/// when it answers anything but `9000` (or `61xx`, which GET RESPONSE completes).
pub(super) fn select(r: &mut Runner<'_>) -> Result<Result<Vec<u8>, StatusWord>, CheckFailure> {
    r.app_select = select_no_le();
    let sel = commands::select_ssse().command;
    let resp = r.in_tx(|tx| Ok(tx.transmit(&sel)?))?;
    Ok(if resp.is_success() {
        Ok(resp.data)
    } else {
        Err(resp.sw)
    })
}

/// The SSSE checks; the application is selected and answered `fci`.
pub(super) fn run(r: &mut Runner<'_>, fci: &[u8]) {
    let needs = Needs::Ssse;
    let fci_figure = describe_fci(fci);
    r.check(
        "ssse.select",
        "case 4: SELECT SSSE with FCI (Lc 15, Le 00)",
        needs,
        "9000 and an FCI template 6F",
        |r| {
            let resp = r.in_tx(|tx| {
                let mut resp = tx.transmit_raw(&select_with_fci())?;
                if resp.sw.sw1() == 0x61 {
                    let rest = commands::get_response(le_of(resp.sw.sw2())).command;
                    resp = tx.transmit_raw(&encoded(rest))?;
                }
                Ok(resp)
            })?;
            if resp.sw != StatusWord::OK {
                return Err(CheckFailure::Answered(resp.sw));
            }
            if resp.data.first() != Some(&0x6F) {
                return Err(CheckFailure::Wrong {
                    command: "SELECT SSSE",
                    what: "the answer is not an FCI template 6F",
                });
            }
            Ok(Finding::Pass(fci_figure.clone()))
        },
    );
    r.check(
        "ssse.case1",
        "case 1: 4-byte command, an INS the card does not know",
        needs,
        "6D00 (PROFILE section 4: unknown INS)",
        |r| {
            r.in_tx(|tx| expect_sw(tx, "INS 10", &UNKNOWN_INS, StatusWord::INS_NOT_SUPPORTED))?;
            Ok(Finding::Pass("6D00".into()))
        },
    );
    r.check(
        "ssse.case2-challenge",
        "case 2: GET CHALLENGE Le 4 and 8",
        needs,
        "4 and 8 bytes with 9000; two challenges differ",
        |r| {
            r.in_tx(|tx| {
                let four = expect_sw(tx, "GET CHALLENGE", &get_challenge(4), StatusWord::OK)?;
                expect_len("GET CHALLENGE 4", &four, 4)?;
                let a = expect_sw(tx, "GET CHALLENGE", &get_challenge(8), StatusWord::OK)?;
                expect_len("GET CHALLENGE 8", &a, 8)?;
                let b = expect_sw(tx, "GET CHALLENGE", &get_challenge(8), StatusWord::OK)?;
                expect_len("GET CHALLENGE 8", &b, 8)?;
                if a.data == b.data {
                    return Err(CheckFailure::Wrong {
                        command: "GET CHALLENGE",
                        what: "two challenges in a row are the same",
                    });
                }
                Ok(Finding::Pass(
                    "4 bytes, 8 bytes; two 8-byte challenges differ".into(),
                ))
            })
        },
    );
    r.check(
        "ssse.case2-le",
        "case 2: READ RECORD EF05 record 1 with Le 00, equal to and above the record",
        needs,
        "the same record with 9000 for Le 00, Le = its length and Le above it",
        |r| {
            r.in_tx(|tx| {
                let whole = expect_sw(tx, "READ RECORD", &read_record(1, 0), StatusWord::OK)?;
                let n = whole.data.len();
                if n == 0 || n > 0xF0 {
                    return Err(CheckFailure::Length {
                        command: "READ RECORD",
                        got: n,
                        expected: 18,
                    });
                }
                for le in [n as u8, n as u8 + 14] {
                    let r = expect_sw(tx, "READ RECORD", &read_record(1, le), StatusWord::OK)
                        .map_err(|e| e.within(format!("Le {le}")))?;
                    if r.data != whole.data {
                        return Err(CheckFailure::Wrong {
                            command: "READ RECORD",
                            what: "another Le gave other bytes",
                        }
                        .within(format!("Le {le}")));
                    }
                }
                Ok(Finding::Pass(format!(
                    "{n}-byte record for Le 00, {n} and {}",
                    n + 14
                )))
            })
        },
    );
    r.check(
        "ssse.6cxx",
        "6Cxx on the card: READ RECORD with Le below the record",
        needs,
        "6Cxx with xx = the record's length, then the record when sent again with that Le",
        |r| {
            r.in_tx(|tx| {
                let raw = tx.transmit_raw(&read_record(1, 4))?;
                if raw.sw.sw1() != 0x6C {
                    return Err(CheckFailure::Status {
                        command: "READ RECORD Le 4",
                        expected: StatusWord::new(0x6C, 0x12),
                        got: raw.sw,
                    });
                }
                let xx = raw.sw.sw2();
                let again = expect_sw(tx, "READ RECORD", &read_record(1, xx), StatusWord::OK)?;
                expect_len("READ RECORD", &again, xx as usize)?;
                // The transport's own 6Cxx handling gives the same bytes.
                let cmd = commands::read_record(ef05(), 1).command.with_le(4);
                let auto = tx.transmit(&cmd)?;
                if auto.data != again.data || !auto.is_success() {
                    return Err(CheckFailure::Response {
                        len: auto.data.len(),
                        sw: auto.sw,
                    });
                }
                Ok(Finding::Pass(format!(
                    "Le 4 → {}, resent with Le {xx} → {xx} bytes",
                    raw.sw
                )))
            })
        },
    );
    r.check(
        "ssse.61xx",
        "61xx on the card: SELECT SSSE with FCI",
        needs,
        "61xx then GET RESPONSE with the FCI (T=0 cards)",
        |r| {
            r.in_tx(|tx| {
                let raw = tx.transmit_raw(&select_with_fci())?;
                if raw.sw.sw1() != 0x61 {
                    return Ok(Finding::NotApplicable(format!(
                        "the card answered case 4 with its data and {} (no 61xx path on this card); the PSAM's is psam.61xx",
                        raw.sw
                    )));
                }
                let xx = raw.sw.sw2();
                let get = encoded(commands::get_response(le_of(xx)).command);
                let rest = expect_raw(tx, "GET RESPONSE", &get, StatusWord::OK)?;
                expect_len("GET RESPONSE", &rest, if xx == 0 { 256 } else { xx as usize })?;
                Ok(Finding::Pass(format!("{} → GET RESPONSE {} bytes", raw.sw, rest.data.len())))
            })
        },
    );
    r.check(
        "ssse.case3",
        "case 3: SELECT EF05 by FID (Lc 2), SELECT SSSE without Le (Lc 15)",
        needs,
        "9000 and no data",
        |r| {
            r.in_tx(|tx| {
                let ef = expect_sw(
                    tx,
                    "SELECT EF05",
                    &encoded(commands::select_ef(ef05()).command),
                    StatusWord::OK,
                )?;
                expect_len("SELECT EF05", &ef, 0)?;
                let df = expect_sw(tx, "SELECT SSSE", &select_no_le(), StatusWord::OK)?;
                expect_len("SELECT SSSE", &df, 0)?;
                Ok(Finding::Pass("Lc 2 and Lc 15: 9000".into()))
            })
        },
    );
    r.check(
        "ssse.case4-fcp",
        "case 4: SELECT EF05 by FID with FCP (Lc 2, Le 00)",
        needs,
        "9000 and an FCP template 62",
        |r| {
            r.in_tx(|tx| {
                let fcp = tx.transmit(&commands::select_ef(ef05()).command.with_le(256))?;
                tx.transmit_raw(&select_no_le())?;
                if !fcp.is_success() {
                    return Err(CheckFailure::Answered(fcp.sw));
                }
                if fcp.data.first() != Some(&0x62) {
                    return Err(CheckFailure::Wrong {
                        command: "SELECT EF05",
                        what: "the answer is not an FCP template 62",
                    });
                }
                Ok(Finding::Pass(format!("FCP {} bytes", fcp.data.len())))
            })
        },
    );
    let mut block = None;
    r.check(
        "ssse.case4-internal-auth",
        "case 4: INTERNAL AUTHENTICATE Lc 8 and Lc 16",
        needs,
        "a block-size cryptogram for 8 bytes, 16 bytes for 16, the same answer for the same input",
        |r| {
            let random: [u8; 8] = rand::random();
            r.in_tx(|tx| {
                let first = complete(tx, &internal_authenticate(&random))?;
                match first.sw {
                    StatusWord::OK => {}
                    sw @ (StatusWord::REF_DATA_NOT_FOUND
                    | StatusWord::CONDITIONS_NOT_SATISFIED
                    | StatusWord::SECURITY_NOT_SATISFIED) => {
                        return Ok(Finding::NotApplicable(format!(
                            "the card has no usable internal authentication key (answered {sw})"
                        )))
                    }
                    sw => return Err(CheckFailure::Answered(sw)),
                }
                if !matches!(first.data.len(), 8 | 16) {
                    return Err(CheckFailure::Length {
                        command: "INTERNAL AUTHENTICATE",
                        got: first.data.len(),
                        expected: 8,
                    });
                }
                let again = expect_sw(
                    tx,
                    "INTERNAL AUTHENTICATE",
                    &internal_authenticate(&random),
                    StatusWord::OK,
                )?;
                if again.data != first.data {
                    return Err(CheckFailure::Wrong {
                        command: "INTERNAL AUTHENTICATE",
                        what: "the same input gave another cryptogram",
                    });
                }
                let mut sixteen = random.to_vec();
                sixteen.extend_from_slice(&random);
                let wide = expect_sw(
                    tx,
                    "INTERNAL AUTHENTICATE",
                    &internal_authenticate(&sixteen),
                    StatusWord::OK,
                )?;
                expect_len("INTERNAL AUTHENTICATE 16", &wide, 16)?;
                block = Some(first.data.len());
                Ok(Finding::Pass(format!(
                    "Lc 8 → {} bytes, Lc 16 → 16 bytes",
                    first.data.len()
                )))
            })
        },
    );
    r.check(
        "ssse.largest-response",
        "largest response the card offers: READ RECORDS",
        needs,
        "the records read at once equal the records read one by one",
        |r| {
            r.in_tx(|tx| {
                // EF05, all of it: the largest answer of a file that is neither keyed nor
                // personal.
                let all = expect_sw(tx, "READ RECORDS", &read_records(), StatusWord::OK)?;
                let mut one_by_one = Vec::new();
                let mut count = 0;
                for n in 1..=254u8 {
                    let rec = complete(tx, &read_record(n, 0))?;
                    match rec.sw {
                        StatusWord::OK => one_by_one.extend_from_slice(&rec.data),
                        StatusWord::RECORD_NOT_FOUND => break,
                        sw => return Err(CheckFailure::Answered(sw).within(format!("record {n}"))),
                    }
                    count += 1;
                }
                if all.data != one_by_one {
                    let at = all
                        .data
                        .iter()
                        .zip(&one_by_one)
                        .position(|(a, b)| a != b)
                        .unwrap_or(all.data.len().min(one_by_one.len()));
                    return Err(CheckFailure::Data {
                        got: all.data.len(),
                        expected: one_by_one.len(),
                        at,
                    });
                }
                Ok(Finding::Pass(format!(
                    "{} bytes (READ RECORDS EF{EF05_SFI:02X}) = its {count} records read one by one",
                    all.data.len()
                )))
            })
        },
    );
    let samples = r.samples;
    r.latency_check("latency.select-ssse", "SELECT", needs, |r| {
        let sel = select_with_fci();
        r.in_tx(|tx| {
            measure(tx, "SELECT", samples, |tx| {
                let resp = complete(tx, &sel)?;
                if resp.sw != StatusWord::OK {
                    return Err(CheckFailure::Answered(resp.sw));
                }
                Ok(())
            })
        })
    });
    r.latency_check("latency.read-record", "READ RECORD", needs, |r| {
        r.in_tx(|tx| {
            measure(tx, "READ RECORD", samples, |tx| {
                expect_sw(tx, "READ RECORD", &read_record(1, 0), StatusWord::OK).map(drop)
            })
        })
    });
    r.latency_check("latency.get-challenge", "GET CHALLENGE", needs, |r| {
        r.in_tx(|tx| {
            measure(tx, "GET CHALLENGE", samples, |tx| {
                expect_sw(tx, "GET CHALLENGE", &get_challenge(8), StatusWord::OK).map(drop)
            })
        })
    });
    match block {
        Some(_) => r.latency_check(
            "latency.internal-authenticate",
            "INTERNAL AUTHENTICATE",
            needs,
            |r| {
                let ia = internal_authenticate(&[0x11; 8]);
                r.in_tx(|tx| {
                    measure(tx, "INTERNAL AUTHENTICATE", samples, |tx| {
                        expect_sw(tx, "INTERNAL AUTHENTICATE", &ia, StatusWord::OK).map(drop)
                    })
                })
            },
        ),
        None => r.not_applicable(
            "latency.internal-authenticate",
            "latency INTERNAL AUTHENTICATE",
            needs,
            "per-command latency limits",
            "INTERNAL AUTHENTICATE did not work on this card (ssse.case4-internal-auth)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_fci_read_as_the_profile_says() {
        // The builders give the bytes the checks were written for.
        assert_eq!(read_record(1, 0), [0x00, 0xB2, 0x01, 0x2C, 0x00]);
        assert_eq!(read_record(1, 4), [0x00, 0xB2, 0x01, 0x2C, 0x04]);
        assert_eq!(read_records(), [0x00, 0xB2, 0x01, 0x2D, 0x00]);
        assert_eq!(get_challenge(8), [0x00, 0x84, 0x00, 0x00, 0x08]);
        assert_eq!(select_with_fci().len(), 5 + 15 + 1);
        assert_eq!(select_with_fci()[..5], [0x00, 0xA4, 0x04, 0x00, 0x0F]);
        assert_eq!(select_with_fci()[20], 0x00);
        assert_eq!(select_no_le(), select_with_fci()[..20]);
        assert_eq!(
            encoded(commands::select_ef(ef05()).command),
            [0x00, 0xA4, 0x00, 0x00, 0x02, 0xEF, 0x05]
        );
        assert_eq!(
            encoded(commands::get_response(le_of(0)).command),
            [0x00, 0xC0, 0x00, 0x00, 0x00]
        );
        assert_eq!(
            internal_authenticate(&[1; 8]),
            [0x00, 0x88, 0x00, 0x08, 0x08, 1, 1, 1, 1, 1, 1, 1, 1, 0x00]
        );
        assert_eq!(
            internal_authenticate(&[1; 16])[..5],
            [0x00, 0x88, 0x00, 0x00, 0x10]
        );
        let fci = [
            0x6F, 0x0B, 0x84, 0x00, 0xA5, 0x07, 0x9F, 0x0C, 0x03, 0x86, 0x01, 0x03, 0xC0, 0x01,
            0x02,
        ];
        assert_eq!(describe_fci(&fci), "FCI 15 bytes: SM4, ISSUED");
        assert_eq!(
            describe_fci(&[0x6F, 0x00]),
            "FCI 2 bytes: no algorithm, no life cycle"
        );
    }
}
