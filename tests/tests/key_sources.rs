//! The three key sources — software keys, the PSAM model, a SoftHSM2 token — give the same
//! cryptograms, MACs and key-loading blocks for the same card and inputs; the token's masters
//! are derive-only and a master that can do more is refused; a key ceremony builds a master
//! from components; many threads share one PKCS#11 library.

use sscard::keys::{CardRef, KeyError, KeySource, Pkcs11Keys, PsamKeys, SoftKeys};
use sscard::Connection;
use sscard_core::crypto::Algorithm;
use sscard_core::profile::Kid;
use sscard_e2e::*;
use sscard_model::card::shared;
use sscard_transport::InProcess;

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
    let (_, _hsm) = softhsm_token_exclusive();
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
    // The PIN object (no key of the hierarchy) and TK under itself.
    for card in cards() {
        for k in [Kid::Pin, Kid::Tk] {
            assert_eq!(
                hsm.key_load_block(alg, &card, k, 3).unwrap(),
                soft.key_load_block(alg, &card, k, 3).unwrap(),
                "SoftHSM key loading, key {k:02X}"
            );
        }
    }
    // The audit key and region the test set was imported with.
    assert_eq!(
        hsm.audit_mac(b"sscard audit").unwrap(),
        soft.audit_mac(b"sscard audit").unwrap()
    );
    assert_eq!(
        sscard_core::hexfmt::to_hex(&hsm.audit_mac(b"sscard audit").unwrap()),
        "4C1503E1C1D118F7EBE02B877A6E14EE021BAF1FABB2A13F9DE90F2701DFB481"
    );
    assert_eq!(hsm.region().unwrap().as_deref(), Some("110100"));
    hsm.preflight(&Kid::ALL).unwrap();
    assert_eq!(
        psam.audit_mac(b"x").unwrap_err(),
        KeyError::NoAuditKey {
            source_name: psam.describe()
        }
    );
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
    let (_, _hsm) = softhsm_token_exclusive();
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
    let (_, _hsm) = softhsm_token_exclusive();
    let hsm = Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_TOKEN, HSM_PIN, false).unwrap();
    for k in Kid::CARD_KEYS {
        assert!(
            !hsm.master_value_readable(k).unwrap(),
            "master {k:02X} readable"
        );
    }
    // PKCS#11 logs in the process, not the session: with `hsm` logged in, C_Login answers
    // "already logged in" to any PIN, and the key source checks the PIN itself.
    let wrong = Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_TOKEN, "00000", false)
        .err()
        .unwrap();
    assert_eq!(
        wrong.to_string(),
        "PKCS#11: C_Login: the PIN differs from the one this process logged in with (CKR_PIN_INCORRECT)"
    );
    drop(hsm);
}

#[test]
fn pkcs11_tool_lists_the_masters_as_derive_only() {
    let (_, _hsm) = softhsm_token_exclusive();
    let usages = pkcs11_tool_key_usages(HSM_TOKEN);
    let mut masters: Vec<(String, String)> = usages
        .iter()
        .filter(|(label, _)| label != "sscard:AUDIT")
        .cloned()
        .collect();
    masters.sort();
    let mut want: Vec<(String, String)> = Kid::ALL
        .into_iter()
        .filter(|k| *k != Kid::Pin)
        .map(|k| (format!("sscard:{k}"), "derive".to_string()))
        .collect();
    want.sort();
    assert_eq!(masters, want);
    // The audit key only MACs (pkcs11-tool prints CKA_VERIFY, not CKA_SIGN, of secret keys).
    assert_eq!(
        usages
            .iter()
            .filter(|(label, _)| label == "sscard:AUDIT")
            .collect::<Vec<_>>(),
        [&("sscard:AUDIT".to_string(), "verify".to_string())]
    );
}

#[test]
fn a_master_that_can_do_more_than_derive_is_refused() {
    let (_, _hsm) = softhsm_token_exclusive();
    // A master made the usual way, with a generic tool: the token adds its default usages.
    let dir = std::env::temp_dir().join(format!("sscard-bad-master-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let value = dir.join("value.bin");
    std::fs::write(&value, [[0x33u8; 8], [0x44; 8], [0x33; 8]].concat()).unwrap();
    let o = std::process::Command::new("pkcs11-tool")
        .args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            HSM_SCRATCH_TOKEN,
        ])
        .args(["--login", "--pin", HSM_PIN, "--write-object"])
        .arg(&value)
        .args(["--type", "secrkey", "--key-type", "DES3:", "--sensitive"])
        .args(["--label", "sscard:RKSSSE"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut hsm =
        Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_SCRATCH_TOKEN, HSM_PIN, false).unwrap();
    let refused = KeyError::Pkcs11ExtraUsage {
        key: "sscard:RKSSSE".into(),
        extra: vec!["encrypt", "decrypt", "wrap", "unwrap", "sign", "verify"],
        allowed: "derive",
    };
    let card = &cards()[0];
    assert_eq!(
        hsm.cryptogram(Algorithm::Tdes, card, Kid::Rkssse, &[0; 8])
            .unwrap_err(),
        refused
    );
    assert_eq!(
        hsm.key_load_block(Algorithm::Tdes, card, Kid::Rkssse, 5)
            .unwrap_err(),
        refused
    );
    assert_eq!(hsm.preflight(&[Kid::Rkssse]).unwrap_err(), refused);
    assert_eq!(
        refused.to_string(),
        "PKCS#11 key sscard:RKSSSE allows encrypt, decrypt, wrap, unwrap, sign, verify besides derive: re-create it with sscard keys hsm-import"
    );
    // Nothing else in that token: no master, no audit key, no region.
    assert_eq!(
        hsm.preflight(&[Kid::Irk]).unwrap_err(),
        KeyError::MissingKey { kid: Kid::Irk }
    );
    assert_eq!(
        hsm.audit_mac(b"x").unwrap_err().to_string(),
        format!(
            "PKCS#11 token {HSM_SCRATCH_TOKEN:?} has no audit key: add AUDIT = <64 hex digits> to the key file, or create sscard:AUDIT in the token with sscard keys hsm-import"
        )
    );
    assert_eq!(hsm.region().unwrap(), None);
}

const COMPONENT_1: &str = "0123456789ABCDEFFEDCBA9876543210";
const COMPONENT_2: &str = "32107654BA98FEDC89ABCDEF01234567";

#[test]
fn a_key_ceremony_builds_a_derive_only_master_from_components() {
    let (_, _hsm) = softhsm_token_exclusive();
    let keys = format!("pkcs11:{SOFTHSM_MODULE}:{HSM_CEREMONY_TOKEN}");
    let env = [("SSCARD_PKCS11_PIN", HSM_PIN)];
    let import = |stdin: &str, extra: &[&str]| {
        let mut args = vec![
            "keys",
            "hsm-import",
            "--keys",
            &keys,
            "--key",
            "RKSSSE",
            "--components",
            "2",
        ];
        args.extend_from_slice(extra);
        sscard_env(&args, &env, Some(stdin))
    };
    // A wrong check value: refused, naming the component, never showing it; nothing imported.
    let o = import(
        &format!(
            "{COMPONENT_1} 08D7B4
{COMPONENT_2} 000000
"
        ),
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim_end(),
        "sscard: error: component 2: check value 000000 does not match the component; nothing was imported, enter the components again"
    );
    assert!(!stdout(&o).contains("3210") && !stderr(&o).contains("3210"));
    let mut hsm =
        Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_CEREMONY_TOKEN, HSM_PIN, false).unwrap();
    assert_eq!(
        hsm.preflight(&[Kid::Rkssse]).unwrap_err(),
        KeyError::MissingKey { kid: Kid::Rkssse }
    );
    // The two custodians' components, the second grouped the way people type it.
    let o = import(
        &format!(
            "{COMPONENT_1} 08D7B4

3210 7654 BA98 FEDC 89AB CDEF 0123 4567 438306
"
        ),
        &["--region", "440300", "--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["check_value"], "608A26");
    assert_eq!(v["keys"], serde_json::json!(["RKSSSE"]));
    assert_eq!(v["audit_key"], "generated in the token");
    assert_eq!(v["region"], "440300");
    // The combined master is the XOR of the components: the same cryptograms and MACs as
    // software keys holding 3333333333333333 7777777777777777.
    let path = std::env::temp_dir().join(format!("sscard-ceremony-{}.txt", std::process::id()));
    std::fs::write(
        &path,
        "RKSSSE = 33333333333333337777777777777777
",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut soft = SoftKeys::from_file(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    for card in cards() {
        let r = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            hsm.cryptogram(Algorithm::Tdes, &card, Kid::Rkssse, &r)
                .unwrap(),
            soft.cryptogram(Algorithm::Tdes, &card, Kid::Rkssse, &r)
                .unwrap()
        );
        assert_eq!(
            hsm.mac(Algorithm::Tdes, &card, Kid::Rkssse, &r[..4], b"message")
                .unwrap(),
            soft.mac(Algorithm::Tdes, &card, Kid::Rkssse, &r[..4], b"message")
                .unwrap()
        );
    }
    hsm.preflight(&[Kid::Rkssse, Kid::Pin]).unwrap();
    assert_eq!(hsm.region().unwrap().as_deref(), Some("440300"));
    // An audit key of the token's own, not the public test one.
    let mac = hsm.audit_mac(b"sscard audit").unwrap();
    assert_ne!(
        mac,
        SoftKeys::test_set().audit_mac(b"sscard audit").unwrap()
    );
    assert!(hsm.audit_verify(b"sscard audit", &mac).unwrap());
    assert!(!hsm.audit_verify(b"sscard audit!", &mac).unwrap());
    assert!(!hsm.master_value_readable(Kid::Rkssse).unwrap());
    assert!(pkcs11_tool_key_usages(HSM_CEREMONY_TOKEN)
        .contains(&("sscard:RKSSSE".to_string(), "derive".to_string())));
    // A second import keeps the audit key (existing audit chains still verify).
    let o = import(
        &format!(
            "{COMPONENT_1} 08D7B4
{COMPONENT_2} 438306
"
        ),
        &["--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["audit_key"], "kept");
    assert_eq!(hsm.audit_mac(b"sscard audit").unwrap(), mac);
    // Too few components for dual control.
    let o = import(
        &format!(
            "{COMPONENT_1} 08D7B4
"
        ),
        &["--components", "1"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn many_threads_share_one_token_library() {
    let (_, _hsm) = softhsm_token_exclusive();
    let alg = Algorithm::Tdes;
    let card = cards()[1].clone();
    let mut soft = SoftKeys::test_set();
    let want: Vec<(Vec<u8>, Vec<u8>)> = Kid::CARD_KEYS
        .iter()
        .map(|k| {
            (
                soft.cryptogram(alg, &card, *k, &[7; 8]).unwrap(),
                soft.key_load_block(alg, &card, *k, 5).unwrap(),
            )
        })
        .collect();
    let audit = soft.audit_mac(b"entry").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (card, want) = (card.clone(), want.clone());
            std::thread::spawn(move || {
                for round in 0..6 {
                    // Every round opens, uses and drops its own session, as a reader's
                    // worker does per run.
                    let mut hsm =
                        Pkcs11Keys::open(SOFTHSM_MODULE.as_ref(), HSM_TOKEN, HSM_PIN, false)
                            .unwrap();
                    let i = (t + round) % Kid::CARD_KEYS.len();
                    let k = Kid::CARD_KEYS[i];
                    assert_eq!(hsm.cryptogram(alg, &card, k, &[7; 8]).unwrap(), want[i].0);
                    assert_eq!(hsm.key_load_block(alg, &card, k, 5).unwrap(), want[i].1);
                    assert_eq!(hsm.audit_mac(b"entry").unwrap(), audit);
                }
            })
        })
        .collect();
    let n = threads.len();
    for t in threads {
        t.join().expect("a worker thread panicked");
    }
    assert_eq!(n, 8);
}

#[test]
fn info_through_pcscd_with_the_hsm_matches_software_keys() {
    let (keys, _hsm) = softhsm_token_exclusive();
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
    assert_eq!(
        keys.audit_mac(b"x").unwrap_err(),
        KeyError::NoAuditKey {
            source_name: format!("software keys from {shown}")
        }
    );
    assert_eq!(keys.region().unwrap(), None);
    assert_eq!(
        keys.preflight(&[Kid::Rkssse, Kid::UkN]).unwrap_err(),
        KeyError::MissingKey { kid: Kid::UkN }
    );
    std::fs::write(
        &path,
        "RKSSSE = 33333333333333334444444444444444\nREGION = 440300\n\
         AUDIT = 00112233445566778899AABBCCDDEEFF 00112233445566778899AABBCCDDEEFF\n",
    )
    .unwrap();
    let mut keys = SoftKeys::from_file(&path).unwrap();
    keys.preflight(&[Kid::Rkssse, Kid::Pin]).unwrap();
    assert_eq!(keys.region().unwrap().as_deref(), Some("440300"));
    // Python: hmac.new(key, b"audit entry 1", hashlib.sha256).hexdigest()
    assert_eq!(
        sscard_core::hexfmt::to_hex(&keys.audit_mac(b"audit entry 1").unwrap()),
        "2812691FF513DBCA0B45FDFEF72F57B00E313CCF6CEAF38BFCD76FDF6FDCF57F"
    );
    std::fs::write(&path, "AUDIT = 33333333333333334444444444444444\n").unwrap();
    assert_eq!(
        SoftKeys::from_file(&path).err().unwrap().to_string(),
        format!("key file {shown}: line 1: AUDIT is a 32-byte key (64 hex digits), not 16 bytes")
    );
    std::fs::write(&path, "# city\nREGION = 1101\n").unwrap();
    assert_eq!(
        SoftKeys::from_file(&path).err().unwrap().to_string(),
        format!("key file {shown}: line 2: REGION is a 6-digit city code such as 110100")
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

/// The crash of issue 14: every reader's worker opens the token; one finalising the library
/// while another initialised it killed the station on every run with 2–8 readers.
#[test]
fn perso_run_with_the_token_on_four_readers() {
    let (keys, _hsm) = softhsm_token_exclusive();
    let _g = exclusive();
    let dir = std::env::temp_dir().join(format!("sscard-hsm-perso-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let n = 24;
    let batch = write_batch(&dir, n, 'C');
    let journal = format!("sqlite:{}", dir.join("journal.db").display());
    let feed = dir.join("feed");
    let _m = ModelServer::start(
        &[
            "--feeder",
            feed.to_str().unwrap(),
            "--blank",
            "40",
            "--readers",
            "4",
        ],
        &FEEDER_READERS,
    );
    let env = [("SSCARD_PKCS11_PIN", HSM_PIN)];
    let o = sscard_env(
        &[
            "perso",
            "run",
            "--operator",
            "tester",
            "--batch",
            batch.to_str().unwrap(),
            "--readers",
            "0,1,2,3",
            "--journal",
            &journal,
            "--keys",
            &keys,
            "--idle",
            "5",
        ],
        &env,
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let status = json(&sscard(&[
        "perso",
        "status",
        "--journal",
        &journal,
        "--json",
    ]));
    assert_eq!(status["states"], serde_json::json!({ "issued": n }));
    // The audit chain was keyed by the token's audit key: it verifies with the token, and not
    // with another key.
    let verify = |keys: &str| {
        sscard_env(
            &[
                "perso",
                "audit-verify",
                "--journal",
                &journal,
                "--keys",
                keys,
                "--json",
            ],
            &env,
            None,
        )
    };
    let o = verify(&keys);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["verified"], true);
    // (The token holds the test set, whose audit key is public: another key must fail.)
    let other = dir.join("other-audit.keys");
    std::fs::write(
        &other,
        "AUDIT = 0000000000000000000000000000000000000000000000000000000000000001\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = verify(&format!("soft:{}", other.display()));
    assert!(!o.status.success());
    assert_eq!(
        json(&o)["error"],
        "audit log broken: anchor line 1 does not verify under the audit key: the anchor file was changed, or this is not the key the journal was written with"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A PSAM MACs a command in one DES CRYPT, a short APDU to a T=0 card: the longest message it
/// takes gives the same MAC as software keys; one byte more is refused before anything is sent
/// (an extended APDU would reach the PSAM otherwise).
#[test]
fn a_psam_macs_the_longest_command_one_des_crypt_holds() {
    let card = &cards()[0];
    for (alg, max) in [(Algorithm::Tdes, 247), (Algorithm::Sm4, 239)] {
        let mut p = psam(alg);
        let mut soft = SoftKeys::test_set();
        let message: Vec<u8> = (0..max).map(|i| i as u8).collect();
        let challenge = [0x11, 0x22, 0x33, 0x44];
        assert_eq!(
            p.mac(alg, card, Kid::UkL, &challenge, &message).unwrap(),
            soft.mac(alg, card, Kid::UkL, &challenge, &message).unwrap(),
            "{alg:?}"
        );
        let longer = [message.as_slice(), &[0]].concat();
        let refused = p.mac(alg, card, Kid::UkL, &challenge, &longer).unwrap_err();
        assert_eq!(
            refused,
            KeyError::PsamMessageTooLong {
                len: max + 1,
                max,
                data_max: max - 5
            }
        );
        assert_eq!(
            refused.to_string(),
            format!(
                "the PSAM MACs at most {max} bytes of command in one DES CRYPT; this command has {}: write {} data bytes or fewer at a time",
                max + 1,
                max - 5
            )
        );
        assert_eq!(
            sscard_core::classify::Classified::return_code(&refused),
            -23
        );
    }
}
