//! `sscard hsm step2`: pKey from a step-1 line with the test key set, checked against values
//! computed here from the card model's own key derivation and PROFILE section 9's published
//! card RKSSSE cryptograms. No card or pcscd is needed.

use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::{Kid, TEST_CITY, TEST_PROVINCE};
use sscard_model::build::{test_card_key, SAMPLE_CARD_ID};
use std::process::{Command, Output};

const R: &str = "0102030405060708";

fn sscard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sscard"))
        .args(args)
        .output()
        .unwrap()
}

/// `E_K(R ‖ 00…)` under the card key `kid` of the worked example's card, as the model derives
/// it (PROFILE section 5).
fn cryptogram(alg: Algorithm, kid: Kid, r: &str) -> String {
    let key = test_card_key(alg, kid, &SAMPLE_CARD_ID, TEST_PROVINCE, TEST_CITY).unwrap();
    to_hex(&alg.cryptogram(&key, &parse_hex(r).unwrap()).unwrap())
}

#[test]
fn the_independent_derivation_gives_the_profiles_published_cryptograms() {
    // PROFILE section 9: the card RKSSSE cryptogram of R = 0102030405060708.
    assert_eq!(
        cryptogram(Algorithm::Tdes, Kid::Rkssse, R),
        "F1B6C8D273FBAD8B"
    );
    assert_eq!(
        cryptogram(Algorithm::Sm4, Kid::Rkssse, R),
        "6C50CAF32F577BE73E1CE3909AB70FC9"
    );
}

#[test]
fn pkey_is_the_first_and_only_line_on_stdout() {
    // An SM4 (3.00) card: the challenge is the worked example's R.
    let sm4 = format!(
        "110100|5353434152443031|03|{}|1122334455667788|{R}|110100000001|",
        to_hex(&SAMPLE_CARD_ID)
    );
    let o = sscard(&["hsm", "step2", "--keys", "test", &sm4]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = format!(
        "{}|6C50CAF32F577BE73E1CE3909AB70FC9|\n",
        cryptogram(Algorithm::Sm4, Kid::Irk, "1122334455667788")
    );
    assert_eq!(String::from_utf8(o.stdout).unwrap(), want);

    // A 3DES (2.00) card: no challenge, no cryptogram.
    let tdes = format!(
        "110100|5353434152443031|01|{}|{R}|||",
        to_hex(&SAMPLE_CARD_ID)
    );
    let o = sscard(&["hsm", "step2", "--keys", "test", &tdes]);
    assert!(o.status.success());
    let irk = cryptogram(Algorithm::Tdes, Kid::Irk, R);
    assert_eq!(irk.len(), 16);
    assert_eq!(String::from_utf8(o.stdout).unwrap(), format!("{irk}||\n"));

    let o = sscard(&["--json", "hsm", "step2", "--keys", "test", &tdes]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pkey"], format!("{irk}||"));
    assert_eq!(v["internal_auth"], irk);
    assert_eq!(v["external_auth"], serde_json::Value::Null);
}

#[test]
fn a_malformed_line_is_bad_input_with_its_typed_error() {
    let o = sscard(&["hsm", "step2", "--keys", "test", "110100|53|01|"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert_eq!(
        String::from_utf8(o.stderr).unwrap().lines().last(),
        Some(
            "sscard: error: step-1 line: it is not 7 fields (region|ATR historical bytes|\
             algorithm id|card identification code|R|external-auth challenge|terminal number|)"
        )
    );
    // A region that is not the card's: refused as -23 before any key source opens.
    let line = format!(
        "310100|5353434152443031|01|{}|{R}|||",
        to_hex(&SAMPLE_CARD_ID)
    );
    let o = sscard(&[
        "--json",
        "hsm",
        "step2",
        "--keys",
        "psam:no such reader",
        &line,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["code"], -23);
    assert_eq!(
        v["error"],
        "step-1 line: region is not the card identification code's first 6 digits"
    );
}
