//! Every byte string sent to the model gets an ISO status word, never a panic: 1 000 000
//! random and mutated APDUs per application.

mod common;

use rand::{Rng, SeedableRng};
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::parse_hex;
use sscard_model::card::Card;

const SEEDS: &[&str] = &[
    "00A404000F7378312E73682EC9E7BBE1B1A3D5CF00",
    "00A4000002DF0100",
    "00A4020002EF05",
    "00B2012C00",
    "00B2012D00",
    "00B2083400",
    "00B0820004",
    "04DC04340 70A0131AABBCCDD",
    "04D682FE06AABB11223344",
    "0084000008",
    "0084000004",
    "0082000A081122334455667788",
    "0088000808010203040506070800",
    "0020000003123456",
    "805E010007123456FF654321",
    "845E00000712345611223344",
    "8424000104AABBCCDD",
    "84D40008180102030405060708090A0B0C0D0E0F101112131415161718",
    "84EE000004AABBCCDD",
    "801A0801089911014500000 0A1",
    "80FA0000080102030405060708",
    "80FA0500100000000000000000 0102030405060708",
    "00C0000008",
    "00B0960006",
];

fn mutate(rng: &mut impl Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.gen_range(1..4) {
        match rng.gen_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] = rng.gen();
            }
            1 => {
                let i = rng.gen_range(0..=v.len());
                v.insert(i, rng.gen());
            }
            2 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v.remove(i);
            }
            3 => v.truncate(rng.gen_range(0..=v.len())),
            _ => {
                if v.len() > 4 {
                    v[4] = rng.gen();
                }
            }
        }
    }
    v
}

fn fuzz(card: &mut dyn Card, seed: u64, n: usize) -> usize {
    let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| parse_hex(s).unwrap()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut successes = 0;
    for i in 0..n {
        let apdu = if i % 2 == 0 {
            let pick = rng.gen_range(0..seeds.len());
            mutate(&mut rng, &seeds[pick])
        } else {
            let mut v = vec![0u8; rng.gen_range(0..24)];
            rng.fill(&mut v[..]);
            // Mostly known classes, so the command handlers (not just the CLA check) are reached.
            if !v.is_empty() && i % 3 != 0 {
                v[0] = [0x00, 0x04, 0x80, 0x84][rng.gen_range(0..4)];
            }
            v
        };
        let r = card
            .transmit(&apdu)
            .unwrap_or_else(|| panic!("mute on {apdu:02X?}"));
        assert!(r.len() >= 2, "no status word for {apdu:02X?}");
        let (sw1, sw2) = (r[r.len() - 2], r[r.len() - 1]);
        assert!(
            matches!(sw1, 0x61..=0x6F | 0x90),
            "SW {sw1:02X}{sw2:02X} for {apdu:02X?}"
        );
        if sw1 == 0x90 {
            successes += 1;
        }
        if i % 50_000 == 0 {
            card.reset();
        }
    }
    successes
}

#[test]
fn a_million_apdus_to_each_application() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let (mut ssc, mut psam) = sscard_model::test_pair(alg);
        let ok = fuzz(&mut ssc, 1, 1_000_000);
        assert!(
            ok > 1_000,
            "only {ok} commands succeeded: the fuzzer does not reach the handlers"
        );
        let ok = fuzz(&mut psam, 2, 1_000_000);
        assert!(ok > 1_000, "only {ok} PSAM commands succeeded");
    }
}
