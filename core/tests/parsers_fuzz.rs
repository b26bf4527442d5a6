//! Property tests: no byte string panics the APDU, ATR or TLV parsers, and what parses
//! re-encodes to a command of the same meaning.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use sscard_core::apdu::{Command, Response};
use sscard_core::atr::Atr;
use sscard_core::tlv::{Fci, Record};

/// 100 000 random byte strings per parser, biased towards the lengths where APDU cases meet.
#[test]
fn hundred_thousand_random_inputs() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x55_5C_A8_D0);
    let (mut apdus_ok, mut atrs_ok) = (0, 0);
    for i in 0..100_000 {
        let len = match i % 4 {
            0 => rng.gen_range(0..8),
            1 => rng.gen_range(0..40),
            2 => rng.gen_range(0..300),
            _ if i % 64 == 3 => rng.gen_range(0..70_000),
            _ => rng.gen_range(250..270),
        };
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes[..]);
        if i % 8 == 0 && len > 4 {
            // Plausible length bytes make the interesting paths reachable.
            bytes[4] = (len - 5).min(255) as u8;
        }
        if let Ok(cmd) = Command::parse(&bytes) {
            apdus_ok += 1;
            // Extended lengths where short ones fit are legal but not canonical: compare meaning.
            assert_eq!(Command::parse(&cmd.to_bytes().unwrap()).unwrap(), cmd);
        }
        let atr_bytes = &bytes[..bytes.len().min(36)];
        let mut atr_input = atr_bytes.to_vec();
        if !atr_input.is_empty() {
            atr_input[0] = 0x3B;
        }
        if let Ok(atr) = Atr::parse(&atr_input) {
            atrs_ok += 1;
            assert_eq!(atr.bytes, atr_input);
            let _ = atr.explain();
        }
        let _ = Response::parse(&bytes);
        let _ = Record::parse_all(&bytes[..bytes.len().min(600)]);
        let _ = Fci::parse(&bytes[..bytes.len().min(600)]);
    }
    assert!(
        apdus_ok > 10_000,
        "only {apdus_ok} random APDUs parsed: the generator is too weak"
    );
    assert!(atrs_ok > 1_000, "only {atrs_ok} random ATRs parsed");
}

proptest! {
    #[test]
    fn every_valid_command_round_trips(cla: u8, ins: u8, p1: u8, p2: u8,
        data in proptest::collection::vec(any::<u8>(), 0..600),
        le in proptest::option::of(1usize..=65_536)) {
        let cmd = Command { cla, ins, p1, p2, data, le };
        let bytes = cmd.to_bytes().unwrap();
        prop_assert_eq!(Command::parse(&bytes).unwrap(), cmd);
    }

    #[test]
    fn records_round_trip(tag: u8, value in proptest::collection::vec(any::<u8>(), 0..=255)) {
        let r = Record::new(tag, value).unwrap();
        prop_assert_eq!(Record::parse(&r.to_bytes()).unwrap(), r);
    }
}
