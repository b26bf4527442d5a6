//! Random multi-tear soak: thousands of random sequences of the card's mutating commands
//! (personalisation under TK from a blank card or one with every key loaded, PIN life cycle, external authentication, updates under UK_N and
//! UK_L, right and wrong secrets), on 3DES and SM4 cards, with power cut at random persistent
//! writes, several per sequence, and cuts during recovery (the first writes after the card came
//! back from a cut, before any write has landed since).
//!
//! Design: the card under test is backed by an image **file** (tmpfs `/dev/shm` when there is
//! one, else the temporary directory) through the model's real store: every write is the atomic
//! temporary-file-and-rename, a cut leaves a half-written temporary file, and after every cut
//! the card comes back by **loading the image file**, as `sscard-model serve` does. Beside it a
//! reference card runs the same commands in memory without cuts and keeps every image it
//! writes: after a cut at write t of a command, the file must equal the reference's state after
//! write t − 1. A [`TryLedger`] kept from the profile's rules alone must match every try counter
//! on disk after every cut and in memory after every command (a higher counter on disk is a try
//! given back). Commands that complete must answer as the reference does and leave the same
//! memory.
//!
//! `SSCARD_SOAK_SEED` replays a run (the seed is printed); `SSCARD_SOAK_SEQUENCES` changes the
//! number of sequences (10 000 by default, half per algorithm).

mod common;

use common::tearing::{pin_of, ssc_memory, CounterMismatch, Op, Start, Target, TryLedger};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sscard_core::crypto::Algorithm;
use sscard_core::profile::Kid;
use sscard_model::memory::{LifeCycle, SscMemory};
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::Image;
use std::collections::BTreeMap;
use std::path::Path;

/// A random PIN of 2 to 6 digits.
fn random_pin(rng: &mut StdRng) -> String {
    let n = rng.gen_range(2..=6);
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

fn random_update(rng: &mut StdRng, good: bool) -> Op {
    let target = match rng.gen_range(0..5) {
        0 => Target::Ef05CardType,
        1 => Target::Ef06Gender,
        2 => Target::Ef07Pension,
        3 => Target::Df01Record,
        _ => Target::Df01Binary {
            offset: rng.gen_range(0..=248),
        },
    };
    let value = (0..target.len()).map(|_| rng.gen()).collect();
    Op::Update {
        target,
        value,
        good,
    }
}

/// A random mutating command that makes sense in the card's life cycle (one that answers an
/// error without writing is as welcome as one that writes).
fn random_op(rng: &mut StdRng, mem: &SscMemory) -> Op {
    let right = rng.gen_bool(0.7);
    if mem.life_cycle == LifeCycle::Personalisation {
        match rng.gen_range(0..10) {
            0..=3 => {
                let kids: Vec<Kid> = Kid::CARD_KEYS.into_iter().chain([Kid::Pin]).collect();
                Op::WriteKey {
                    kid: kids[rng.gen_range(0..kids.len())],
                }
            }
            4 | 5 => random_update(rng, right),
            6 => Op::ExtAuth {
                kid: Kid::Tk,
                right,
            },
            _ => Op::EndPerso { good: right },
        }
    } else {
        match rng.gen_range(0..9) {
            0 => Op::Verify { right },
            1 => Op::ChangePin {
                right,
                new: random_pin(rng),
            },
            2 => Op::ReloadPin {
                good: right,
                new: random_pin(rng),
            },
            3 => Op::UnblockPin { good: right },
            4 => Op::ExtAuth {
                kid: Kid::Rkssse,
                right,
            },
            5 => Op::ExtAuth {
                kid: Kid::EakL,
                right,
            },
            _ => random_update(rng, right),
        }
    }
}

#[derive(Default)]
struct Figures {
    sequences: usize,
    commands: usize,
    writes: u64,
    tears: usize,
    recovery_tears: usize,
    sequences_with_several_tears: usize,
    corrupted: usize,
    restored: usize,
    /// Cut points offered: by command label, how many cuts fell at write 1, 2, 3.
    cuts: BTreeMap<String, [usize; 3]>,
}

/// Half-written temporary files beside the image: one per cut, never renamed over it.
fn leftover_temporaries(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count()
}

fn load_card(path: &Path) -> Result<Ssc, String> {
    let image = Image::load(path).map_err(|e| e.to_string())?;
    Ssc::from_image(image, Store::file(path)).map_err(|e| e.to_string())
}

/// One random sequence on a card starting as `start`; panics with `what` on any divergence.
fn sequence(
    rng: &mut StdRng,
    alg: Algorithm,
    start: &Image,
    dir: &Path,
    what: &str,
    f: &mut Figures,
) {
    let path = dir.join("card.json");
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    std::fs::write(&path, start.to_json()).unwrap();
    let mut card = load_card(&path).unwrap();
    let mut reference = Ssc::from_image(start.clone(), Store::in_memory()).unwrap();
    let mut ledger = TryLedger::of(ssc_memory(start));
    let (mut tears, mut commands) = (0, 0);
    // No write has landed since the last cut: the card is in recovery.
    let mut recovering = false;
    f.sequences += 1;
    while (commands < 6 || tears < 2) && commands < 40 {
        commands += 1;
        f.commands += 1;
        let pre = reference.memory().clone();
        let op = random_op(rng, &pre);
        let at = format!("{what}, command {commands} {op:?}");
        let layout = op.writes(&pre);
        reference.store_mut().record_history();
        let sw = reference.run_op(&op, alg);
        let states: Vec<SscMemory> = reference
            .store_mut()
            .history()
            .iter()
            .map(|i| ssc_memory(i).clone())
            .collect();
        assert_eq!(states.len(), layout.len(), "{at}: {layout:?}");
        let tear_chance = if recovering { 0.6 } else { 0.4 };
        if layout.is_empty() || !rng.gen_bool(tear_chance) {
            let got = card.run_op(&op, alg);
            assert_eq!(got, sw, "{at}");
            assert_eq!(card.memory(), reference.memory(), "{at}");
            ledger.apply(&op, &layout);
            assert_eq!(ledger.compare(card.memory()), vec![], "{at}");
            f.writes += layout.len() as u64;
            recovering &= layout.is_empty();
            continue;
        }
        // Power goes at write t of this command.
        let t = rng.gen_range(1..=layout.len());
        card.store_mut().tear_at(t as u64);
        assert_eq!(card.run_op(&op, alg), None, "{at}: cut {t}");
        tears += 1;
        f.tears += 1;
        f.writes += t as u64;
        if recovering {
            f.recovery_tears += 1;
        }
        f.cuts.entry(op.label()).or_default()[t - 1] += 1;
        assert_eq!(leftover_temporaries(dir), tears, "{at}: cut {t}");
        // The card comes back from the image file.
        card = match load_card(&path) {
            Ok(c) => c,
            Err(e) => {
                f.corrupted += 1;
                panic!("{at}: cut {t}: image corrupted: {e}");
            }
        };
        let expected = if t == 1 { &pre } else { &states[t - 2] };
        assert_eq!(
            card.memory(),
            expected,
            "{at}: cut {t} ({:?}): disk is not the state before the cut write",
            layout[t - 1]
        );
        ledger.apply(&op, &layout[..t - 1]);
        let mismatches = ledger.compare(card.memory());
        f.restored += mismatches
            .iter()
            .filter(|m| matches!(m, CounterMismatch::Restored { .. }))
            .count();
        assert_eq!(mismatches, vec![], "{at}: cut {t} ({:?})", layout[t - 1]);
        reference = Ssc::from_image(card.image(), Store::in_memory()).unwrap();
        recovering = true;
    }
    if tears >= 2 {
        f.sequences_with_several_tears += 1;
    }
    // What completed since the last cut is on disk too.
    let on_disk = Image::load(&path).unwrap();
    assert_eq!(
        ssc_memory(&on_disk),
        reference.memory(),
        "{what}: at the end"
    );
}

/// Sends an [`Op`] (a trait so the soak reads `card.run_op(..)`).
trait RunOp {
    fn run_op(&mut self, op: &Op, alg: Algorithm) -> Option<String>;
}

impl RunOp for Ssc {
    fn run_op(&mut self, op: &Op, alg: Algorithm) -> Option<String> {
        op.run(self, alg)
    }
}

/// The soak of one algorithm: half the sequences (the two run in parallel as two tests).
fn soak(alg: Algorithm) {
    let seed: u64 = std::env::var("SSCARD_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let total: usize = std::env::var("SSCARD_SOAK_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let n = total.div_ceil(2);
    println!("{alg:?} tearing soak: seed {seed} (SSCARD_SOAK_SEED={seed} replays it), {n} of {total} sequences");
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("sscard-soak")
            .tempdir_in(shm)
            .or_else(|_| tempfile::tempdir())
            .unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    println!("{alg:?}: image file in {}", dir.path().display());
    let starts: Vec<Image> = [
        Start::Blank,
        Start::KeysLoaded,
        Start::Built,
        Start::Commands,
    ]
    .into_iter()
    .map(|s| s.image(alg))
    .collect();
    let mut f = Figures::default();
    let salt = match alg {
        Algorithm::Sm4 => 1u64 << 32,
        _ => 0,
    };
    for i in 0..n {
        // Each sequence has its own seed: a failure names the one to replay.
        let mut rng = StdRng::seed_from_u64(seed ^ salt ^ i as u64);
        let start = &starts[rng.gen_range(0..starts.len())];
        let what = format!(
            "seed {seed}, {alg:?} sequence {i} (starting PIN {:?})",
            pin_of(ssc_memory(start))
        );
        sequence(&mut rng, alg, start, dir.path(), &what, &mut f);
    }
    println!("{alg:?}: cuts by command (at write 1 / 2 / 3):");
    for (label, at) in &f.cuts {
        println!("  {label:<48} {:>5} {:>5} {:>5}", at[0], at[1], at[2]);
    }
    println!(
        "{alg:?}: {} sequences, {} commands, {} persistent writes, {} tears ({} during recovery), {} sequences with 2 or more tears, corrupted {}, try counters restored {}",
        f.sequences,
        f.commands,
        f.writes,
        f.tears,
        f.recovery_tears,
        f.sequences_with_several_tears,
        f.corrupted,
        f.restored
    );
    assert_eq!(f.sequences, n);
    // Every command that writes was cut somewhere, END PERSONALISATION included.
    assert!(f.cuts.keys().any(|l| l == "END PERSONALISATION"), "{alg:?}");
    assert!(f.recovery_tears > 0, "{alg:?}: no cut during recovery");
    assert_eq!((f.corrupted, f.restored), (0, 0));
}

#[test]
fn random_multi_tear_soak_3des() {
    soak(Algorithm::Tdes);
}

#[test]
fn random_multi_tear_soak_sm4() {
    soak(Algorithm::Sm4);
}
