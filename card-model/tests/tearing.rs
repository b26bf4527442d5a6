//! Tearing campaign: power is cut at every persistent write of a whole personalisation (every
//! key, every record of EF05/EF06/EF07, the DF01 files, END PERSONALISATION) and of PIN,
//! authentication and MAC operations. After each cut the image on disk must load (0 corrupted),
//! equal the state before the cut write, and never hold a try counter higher than the card
//! had when it compared a secret.

mod common;

use common::*;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::Kid;
use sscard_model::build::{self, Holder, SAMPLE_CARD_ID};
use sscard_model::card::Card;
use sscard_model::memory::SscMemory;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::Image;
use std::path::Path;

/// One step of a scripted session; `None` when the card went mute.
type Step = fn(&mut Ssc, Algorithm) -> Option<()>;

fn s(name: &'static str, step: Step) -> (&'static str, Step) {
    (name, step)
}

fn expect(got: Option<String>, want: &str) -> Option<()> {
    let got = got?;
    assert!(got.ends_with(want), "expected …{want}, got {got}");
    Some(())
}

fn perso_steps() -> Vec<(&'static str, Step)> {
    let mut steps: Vec<(&'static str, Step)> = vec![
        s("select", |c, _| expect(select_ssse(c), "9000")),
        s("ext-auth TK", |c, a| {
            expect(ext_auth(c, a, Kid::Tk, true), "9000")
        }),
    ];
    macro_rules! write_key {
        ($k:expr) => {
            s("write key", |c, a| {
                let apdu = mac_apdu(
                    c,
                    a,
                    Kid::Tk,
                    &format!("84D400{:02X}", $k.id()),
                    &write_key_data(a, $k),
                )?;
                expect(try_tx(c, &apdu), "9000")
            })
        };
    }
    steps.extend([
        write_key!(Kid::Irk),
        write_key!(Kid::Rkssse),
        write_key!(Kid::UkN),
        write_key!(Kid::Rpk),
        write_key!(Kid::Upk),
        write_key!(Kid::Pin),
        // The local keys are valid in DF01 only.
        s("select DF01", |c, _| {
            expect(try_tx(c, "00A4000002DF01"), "9000")
        }),
        write_key!(Kid::EakL),
        write_key!(Kid::UkL),
        s("select SSSE", |c, _| expect(select_ssse(c), "9000")),
    ]);
    // Every record a station writes (PROFILE section 2), each under a MAC with TK.
    macro_rules! update {
        ($name:expr, $header:expr, $data:expr) => {
            s($name, |c, a| {
                let apdu = mac_apdu(c, a, Kid::Tk, $header, $data)?;
                expect(try_tx(c, &apdu), "9000")
            })
        };
    }
    steps.extend([
        update!("EF05 card type", "04DC022C", "020133"),
        update!("EF05 issue date", "04DC052C", "050420240101"),
        update!("EF05 expiry date", "04DC062C", "060420340101"),
        update!("EF05 card number", "04DC072C", "0709413132333435363734"),
        update!(
            "EF06 SSN",
            "04DC0134",
            "0812313130313035313934393132333130303258"
        ),
        update!(
            "EF06 name",
            "04DC0234",
            "091ED5C5C8FD0000000000000000000000000000000000000000000000000000"
        ),
        update!(
            "EF06 name extension",
            "04DC0334",
            "4E140000000000000000000000000000000000000000"
        ),
        update!("EF06 gender", "04DC0434", "0A0131"),
        update!("EF06 nation", "04DC0534", "0B0101"),
        update!("EF06 birthplace", "04DC0634", "0C03110105"),
        update!("EF06 birth date", "04DC0734", "0D0419491231"),
        update!("EF07 pension", "04DC013C", "200101"),
        update!("EF07 medical", "04DC023C", "210101"),
        update!("EF07 medical account", "04DC033C", "22081101000000012345"),
        s("select DF01", |c, _| {
            expect(try_tx(c, "00A4000002DF01"), "9000")
        }),
        update!("DF01/EF01 record 1", "04DC010C", "40080102030405060708"),
        update!("DF01/EF02 binary", "04D68200", "0102030405060708"),
        s("select SSSE", |c, _| expect(select_ssse(c), "9000")),
    ]);
    steps.push(s("end personalisation", |c, a| {
        let apdu = mac_apdu(c, a, Kid::Tk, "84EE0000", "")?;
        expect(try_tx(c, &apdu), "9000")
    }));
    steps
}

fn pin_mac_steps() -> Vec<(&'static str, Step)> {
    vec![
        s("select", |c, _| expect(select_ssse(c), "9000")),
        s("verify wrong", |c, _| {
            expect(try_tx(c, "0020000003111111"), "63C2")
        }),
        s("verify right", |c, _| {
            expect(try_tx(c, "0020000003123456"), "9000")
        }),
        s("change pin", |c, _| {
            expect(try_tx(c, "805E010007123456FF802417"), "9000")
        }),
        s("ext-auth wrong", |c, a| {
            expect(ext_auth(c, a, Kid::Rkssse, false), "63C4")
        }),
        s("ext-auth right", |c, a| {
            expect(ext_auth(c, a, Kid::Rkssse, true), "9000")
        }),
        s("update with MAC", |c, a| {
            let apdu = mac_apdu(c, a, Kid::UkN, "04DC0434", "0A0132")?;
            expect(try_tx(c, &apdu), "9000")
        }),
        s("reload pin", |c, a| {
            let apdu = mac_apdu(c, a, Kid::Rpk, "845E0000", "246810")?;
            expect(try_tx(c, &apdu), "9000")
        }),
        s("unblock pin", |c, a| {
            let apdu = mac_apdu(c, a, Kid::Upk, "84240001", "")?;
            expect(try_tx(c, &apdu), "9000")
        }),
    ]
}

fn card_on_disk(path: &Path, image: &Image) -> Ssc {
    std::fs::write(path, image.to_json()).unwrap();
    Ssc::from_image(Image::load(path).unwrap(), Store::file(path)).unwrap()
}

fn memory(image: &Image) -> &SscMemory {
    match &image.memory {
        sscard_model::image::Memory::Ssc(m) => m,
        _ => unreachable!(),
    }
}

/// Runs the campaign; returns (write points, steps whose secret comparison was torn after it).
fn campaign(label: &str, alg: Algorithm, initial: Image, steps: &[(&'static str, Step)]) -> usize {
    let dir = std::env::temp_dir().join(format!(
        "sscard-tearing-{label}-{}-{}",
        std::process::id(),
        alg.name()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.json");

    // Clean run: every image written, and which step wrote it.
    let mut card = card_on_disk(&path, &initial);
    card.store_mut().record_history();
    let mut writer_of = Vec::new();
    for (name, step) in steps {
        step(&mut card, alg).unwrap_or_else(|| panic!("clean run: {name} went mute"));
        writer_of.resize(card.store_mut().history().len(), *name);
    }
    let history: Vec<Image> = card.store_mut().history().to_vec();
    assert!(!history.is_empty());

    for n in 1..=history.len() {
        let mut card = card_on_disk(&path, &initial);
        card.store_mut().tear_at(n as u64);
        let mut muted = false;
        for (_, step) in steps {
            if step(&mut card, alg).is_none() {
                muted = true;
                break;
            }
        }
        assert!(
            muted,
            "tear point {n} ({}) never cut power",
            writer_of[n - 1]
        );
        let on_disk =
            Image::load(&path).unwrap_or_else(|e| panic!("tear point {n}: image corrupted: {e}"));
        let before = if n == 1 { &initial } else { &history[n - 2] };
        assert_eq!(
            memory(&on_disk),
            memory(before),
            "tear point {n} ({}): disk is not the state before the cut",
            writer_of[n - 1]
        );
        // The card comes back from the image and works.
        let mut again = Ssc::from_image(on_disk.clone(), Store::file(&path)).unwrap();
        assert_eq!(
            select_ssse(&mut again)
                .map(|r| r[r.len() - 4..].to_string())
                .as_deref(),
            Some("9000")
        );
        // A cut at the restore after a correct secret keeps the decrement: the try is not given back.
        let name = writer_of[n - 1];
        if n >= 2
            && writer_of[n - 2] == name
            && (name == "verify right" || name == "ext-auth right")
        {
            let start = if n >= 3 { &history[n - 3] } else { &initial };
            let lowered: Vec<_> = memory(&on_disk)
                .keys
                .iter()
                .filter_map(|(k, slot)| {
                    memory(start)
                        .keys
                        .get(k)
                        .map(|s0| (k, s0.tries_left, slot.tries_left))
                })
                .filter(|(_, before, after)| before != after)
                .collect();
            assert_eq!(lowered.len(), 1, "tear point {n} ({name}): {lowered:?}");
            assert_eq!(
                lowered[0].2 + 1,
                lowered[0].1,
                "tear point {n} ({name}): the try was given back"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    history.len()
}

#[test]
fn tearing_personalisation_every_write_point() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let points = campaign(
            "perso",
            alg,
            build::blank_ssc(alg, &SAMPLE_CARD_ID),
            &perso_steps(),
        );
        // TK has a try counter, so every check under it is a decrement and a restore: external
        // authentication 2; then 8 WRITE KEYs, 16 updates (14 national records, one DF01
        // record, DF01 binary) and END PERSONALISATION, each 2 for the MAC under TK plus its
        // own write.
        assert_eq!(points, 2 + 25 * 3, "{alg:?}");
    }
}

#[test]
fn tearing_pin_authentication_and_mac_every_write_point() {
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let image =
            build::personalised_ssc(alg, &SAMPLE_CARD_ID, &Holder::sample(), "123456").unwrap();
        let points = campaign("pin", alg, image, &pin_mac_steps());
        // verify wrong 1, verify right 2, change 3 (decrement, restore, new PIN), ext-auth wrong
        // 1, right 2, update 1, reload 1, unblock 1.
        assert_eq!(points, 12, "{alg:?}");
    }
}

#[test]
fn a_cut_during_a_correct_verify_never_gives_the_try_back() {
    let alg = Algorithm::Tdes;
    let image = build::personalised_ssc(alg, &SAMPLE_CARD_ID, &Holder::sample(), "123456").unwrap();
    let dir = std::env::temp_dir().join(format!("sscard-tearing-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.json");
    let mut card = card_on_disk(&path, &image);
    select_ssse(&mut card).unwrap();
    card.store_mut().tear_at(2); // write 1: decrement; write 2: restore after the match
    assert_eq!(try_tx(&mut card, "0020000003123456"), None);
    let on_disk = Image::load(&path).unwrap();
    assert_eq!(memory(&on_disk).key(Kid::Pin).unwrap().tries_left, 2);
    // A cut at the decrement itself leaves 3 tries, but the card never compared: it stayed mute.
    let mut card = card_on_disk(&path, &image);
    select_ssse(&mut card).unwrap();
    card.store_mut().tear_at(1);
    assert_eq!(try_tx(&mut card, "0020000003111111"), None);
    assert_eq!(
        memory(&Image::load(&path).unwrap())
            .key(Kid::Pin)
            .unwrap()
            .tries_left,
        3
    );
    card.reset();
    let _ = std::fs::remove_dir_all(&dir);
}
