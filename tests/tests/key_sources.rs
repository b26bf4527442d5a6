//! The three key sources — software keys, the PSAM model, a SoftHSM2 token — give the same
//! cryptograms and MACs for the same card and inputs.

use sscard::keys::{CardRef, KeyError, KeySource, Pkcs11Keys, PsamKeys, SoftKeys};
use sscard::Connection;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::Kid;
use sscard_e2e::*;
use sscard_model::card::shared;
use sscard_transport::InProcess;

/// One PKCS#11 module handle at a time in this process (C_Finalize on drop ends them all).
static TOKEN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn token_lock() -> std::sync::MutexGuard<'static, ()> {
    TOKEN.lock().unwrap_or_else(|e| e.into_inner())
}

fn cards() -> Vec<CardRef> {
    [
        "110100D15600000599110145000000A1",
        "110100D156000005000000000000BEEF",
    ]
    .iter()
    .map(|h| {
        CardRef::new(
            sscard_core::hexfmt::parse_hex(h)
                .unwrap()
                .try_into()
                .unwrap(),
        )
    })
    .collect()
}

fn psam(alg: Algorithm) -> PsamKeys {
    let (_, p) = sscard_model::test_pair(alg);
    PsamKeys::open(Connection::new(InProcess::new(shared(p), "PSAM model"))).unwrap()
}

#[test]
fn software_psam_and_softhsm_agree() {
    softhsm_token();
    let _t = token_lock();
    let mut hsm = Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_TOKEN, HSM_PIN, false).unwrap();
    let mut soft = SoftKeys::test_set();
    let alg = Algorithm::Tdes;
    let mut psam = psam(alg);
    let mut checked = 0;
    for card in cards() {
        for k in Kid::CARD_KEYS {
            for r in [[0u8; 8], [1, 2, 3, 4, 5, 6, 7, 8], [0xFF; 8]] {
                let s = soft.cryptogram(alg, &card, k, &r).unwrap();
                assert_eq!(
                    psam.cryptogram(alg, &card, k, &r).unwrap(),
                    s,
                    "PSAM, key {k:02X}"
                );
                assert_eq!(
                    hsm.cryptogram(alg, &card, k, &r).unwrap(),
                    s,
                    "SoftHSM, key {k:02X}"
                );
                // One, two and three blocks after padding: the token's CBC part and its last
                // block both count.
                for msg in [
                    &[0x84, 0x24, 0x00, 0x01, 0x04][..],
                    &[0x04, 0xDC, 0x04, 0x34, 0x07, 0x0A, 0x01, 0x31],
                    &[0x55; 20],
                ] {
                    let m = soft.mac(alg, &card, k, &r[..4], msg).unwrap();
                    assert_eq!(
                        psam.mac(alg, &card, k, &r[..4], msg).unwrap(),
                        m,
                        "PSAM MAC, key {k:02X}"
                    );
                    assert_eq!(
                        hsm.mac(alg, &card, k, &r[..4], msg).unwrap(),
                        m,
                        "SoftHSM MAC, key {k:02X}"
                    );
                }
                assert_eq!(
                    hsm.key_load_block(alg, &card, k, 5).unwrap(),
                    soft.key_load_block(alg, &card, k, 5).unwrap(),
                    "SoftHSM key loading, key {k:02X}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 7 * 3);
    // The worked example of PROFILE section 9 through every source.
    let card = &cards()[0];
    let want = sscard_core::hexfmt::parse_hex("F1B6C8D273FBAD8B").unwrap();
    assert_eq!(
        hsm.cryptogram(alg, card, Kid::Rkssse, &[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap(),
        want
    );
    assert_eq!(
        psam.cryptogram(alg, card, Kid::Rkssse, &[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap(),
        want
    );
    let mac = hsm
        .mac(
            alg,
            card,
            Kid::UkN,
            &[0x11, 0x22, 0x33, 0x44],
            &[0x04, 0xDC, 0x04, 0x34, 0x07, 0x0A, 0x01, 0x31],
        )
        .unwrap();
    assert_eq!(mac, [0x38, 0xF6, 0xBD, 0xC8]);
}

#[test]
fn sm4_agrees_between_software_and_psam_and_the_token_says_it_cannot() {
    softhsm_token();
    let _t = token_lock();
    let alg = Algorithm::Sm4;
    let mut soft = SoftKeys::test_set();
    let mut psam = psam(alg);
    for card in cards() {
        for k in Kid::CARD_KEYS {
            let r = [9u8, 8, 7, 6, 5, 4, 3, 2];
            assert_eq!(
                psam.cryptogram(alg, &card, k, &r).unwrap(),
                soft.cryptogram(alg, &card, k, &r).unwrap()
            );
            assert_eq!(
                psam.mac(alg, &card, k, &r[..4], b"message").unwrap(),
                soft.mac(alg, &card, k, &r[..4], b"message").unwrap()
            );
        }
    }
    let mut hsm = Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_TOKEN, HSM_PIN, false).unwrap();
    assert_eq!(
        hsm.cryptogram(alg, &cards()[0], Kid::Irk, &[0; 8])
            .unwrap_err()
            .to_string(),
        format!("mechanism SM4-ECB not supported by token {HSM_TOKEN:?}")
    );
}

#[test]
fn token_masters_are_not_extractable() {
    softhsm_token();
    let _t = token_lock();
    let hsm = Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_TOKEN, HSM_PIN, false).unwrap();
    for k in Kid::CARD_KEYS {
        assert!(
            !hsm.master_value_readable(k).unwrap(),
            "master {k:02X} readable"
        );
    }
    let wrong = Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_TOKEN, "00000", false)
        .err()
        .unwrap();
    assert!(
        wrong.to_string().starts_with("PKCS#11: C_Login:"),
        "{wrong}"
    );
}

#[test]
fn info_through_pcscd_with_the_hsm_matches_software_keys() {
    let keys = softhsm_token();
    let _g = exclusive();
    let _m = ModelServer::start(&["--no-psam"], &[READER_0]);
    let env = [("SSCARD_PKCS11_PIN", HSM_PIN)];
    let o = sscard_env(
        &["info", "--json", "--reader", READER_0, "--keys", &keys],
        &env,
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let soft = sscard(&["info", "--json", "--reader", READER_0, "--keys", "test"]);
    assert_eq!(json(&o)["unified"], json(&soft)["unified"]);
    assert!(stderr(&soft).contains("warning: using the PROFILE test key set"));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn keys_derive_reproduces_the_worked_example() {
    for (alg, card_key) in [
        ("3des", "DB8CD58F23E25FE275581016F929A00E"),
        ("sm4", "4709D23D493AE6A7764C541A920B7D6F"),
    ] {
        let o = sscard(&[
            "keys",
            "derive",
            "--alg",
            alg,
            "--master",
            "33333333333333334444444444444444",
            "--province",
            "110000",
            "--city",
            "110100",
            "--card-id",
            "110100D15600000599110145000000A1",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["levels"][2]["key"], card_key);
        assert_eq!(v["levels"][0]["factor"], "3131303030307368");
    }
}

#[test]
fn key_files_must_be_private_and_well_formed() {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("sscard-keys-{}.txt", std::process::id()));
    std::fs::write(&path, "# test\nRKSSSE = 33333333333333334444444444444444\nIRK = 11111111111111112222222222222222\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shown = path.display().to_string();
    assert_eq!(
        SoftKeys::from_file(&path).err().unwrap(),
        KeyError::KeyFileTooOpen {
            path: shown.clone(),
            mode: 0o644
        }
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut keys = SoftKeys::from_file(&path).unwrap();
    let card = &cards()[0];
    let c = keys
        .cryptogram(
            Algorithm::Tdes,
            card,
            Kid::Rkssse,
            &[1, 2, 3, 4, 5, 6, 7, 8],
        )
        .unwrap();
    assert_eq!(sscard_core::hexfmt::to_hex(&c), "F1B6C8D273FBAD8B");
    assert_eq!(
        keys.cryptogram(Algorithm::Tdes, card, Kid::UkN, &[0; 8])
            .unwrap_err(),
        KeyError::MissingKey { kid: Kid::UkN }
    );
    std::fs::write(&path, "RKSSSE = 3333\n").unwrap();
    assert_eq!(
        SoftKeys::from_file(&path).err().unwrap().to_string(),
        format!("key file {shown}: line 1: a key has 16 bytes, not 2")
    );
    std::fs::write(&path, "MASTER = 33333333333333334444444444444444\n").unwrap();
    assert_eq!(
        SoftKeys::from_file(&path).err().unwrap().to_string(),
        format!("key file {shown}: line 1: unknown key name \"MASTER\"")
    );
    let _ = std::fs::remove_file(&path);
}
