//! Walks `vectors/profile.txt`: the profile's worked example and published primitive vectors.

use sscard_core::crypto::padding::{pad_method2, unpad_method2};
use sscard_core::crypto::{
    card_factor, city_factor, ct_eq, province_factor, Algorithm, CryptoError, Key,
};
use sscard_core::hexfmt::{parse_hex, to_hex};

fn alg(name: &str) -> Algorithm {
    match name {
        "3DES" => Algorithm::Tdes,
        "SM4" => Algorithm::Sm4,
        "AES-128" => Algorithm::Aes128,
        other => panic!("unknown algorithm {other}"),
    }
}

fn key(hex: &str) -> Key {
    Key::from_slice(&parse_hex(hex).unwrap()).unwrap()
}

#[test]
fn profile_vectors() {
    let text = include_str!("vectors/profile.txt");
    let mut checked = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (lhs, expected) = line.split_once(" = ").expect("a vector has ' = '");
        let f: Vec<&str> = lhs.split_whitespace().collect();
        let a = alg(f[1]);
        let got = match f[0] {
            "div" => {
                let factors: Vec<[u8; 8]> = f[3..]
                    .iter()
                    .map(|h| parse_hex(h).unwrap().try_into().unwrap())
                    .collect();
                a.diversify_chain(&key(f[2]), &factors).expose().to_vec()
            }
            "crypt" => a.cryptogram(&key(f[2]), &parse_hex(f[3]).unwrap()).unwrap(),
            "linemac" => a
                .line_mac(
                    &key(f[2]),
                    &parse_hex(f[3]).unwrap(),
                    &parse_hex(f[4]).unwrap(),
                )
                .unwrap()
                .to_vec(),
            "mac" => a
                .mac(
                    &key(f[2]),
                    &parse_hex(f[3]).unwrap(),
                    &parse_hex(f[4]).unwrap(),
                )
                .unwrap(),
            "ecb" => a
                .encrypt_ecb(&key(f[2]), &parse_hex(f[3]).unwrap())
                .unwrap(),
            op => panic!("line {}: unknown operation {op}", n + 1),
        };
        assert_eq!(to_hex(&got), expected, "line {}: {line}", n + 1);
        checked += 1;
    }
    assert_eq!(checked, 16);
}

#[test]
fn factors_of_the_worked_example() {
    assert_eq!(&province_factor("110000").unwrap(), b"110000sh");
    assert_eq!(&province_factor("110105").unwrap(), b"110000sh");
    assert_eq!(&city_factor("110100").unwrap(), b"110100sx");
    let id = parse_hex("110100D15600000599110145000000A1").unwrap();
    assert_eq!(to_hex(&card_factor(&id).unwrap()), "99110145000000A1");
    assert_eq!(
        city_factor("11010"),
        Err(CryptoError::BadRegionCode("11010".into()))
    );
    assert_eq!(
        card_factor(&id[..8]),
        Err(CryptoError::BadCardId { len: 8 })
    );
}

#[test]
fn padding_method_2() {
    assert_eq!(pad_method2(&[1, 2, 3], 8), vec![1, 2, 3, 0x80, 0, 0, 0, 0]);
    assert_eq!(
        pad_method2(&[0; 8], 8).len(),
        16,
        "aligned data gets a whole extra block"
    );
    assert_eq!(unpad_method2(&[1, 0x80, 0, 0]).unwrap(), &[1]);
    assert_eq!(unpad_method2(&[1, 0, 0, 0]), Err(CryptoError::BadPadding));
    assert_eq!(unpad_method2(&[0, 0]), Err(CryptoError::BadPadding));
}

#[test]
fn keys_hide_their_bytes() {
    let k = key("33333333333333334444444444444444");
    assert_eq!(format!("{k:?}"), "Key(**)");
    assert_eq!(
        Key::from_slice(&[0; 8]).unwrap_err(),
        CryptoError::BadKeyLength { len: 8 }
    );
}

#[test]
fn algorithm_ids_and_versions() {
    assert_eq!(
        Algorithm::from_id(2),
        Err(CryptoError::UnsupportedAlgorithm { id: 2 })
    );
    assert_eq!(Algorithm::from_id(3), Ok(Algorithm::Sm4));
    assert_eq!(Algorithm::from_spec_version("2.00"), Ok(Algorithm::Tdes));
    assert_eq!(
        Algorithm::from_spec_version("9.99"),
        Err(CryptoError::UnknownSpecVersion("9.99".into()))
    );
    assert_eq!(
        Algorithm::Sm4.encrypt_ecb(&key("33333333333333334444444444444444"), &[0; 8]),
        Err(CryptoError::NotBlockAligned { len: 8, block: 16 })
    );
    assert_eq!(
        Algorithm::Tdes.cryptogram(&key("33333333333333334444444444444444"), &[0; 9]),
        Err(CryptoError::TooLong { len: 9, max: 8 })
    );
}

#[test]
fn constant_time_compare() {
    assert!(ct_eq(&[1, 2], &[1, 2]));
    assert!(!ct_eq(&[1, 2], &[1, 3]));
    assert!(!ct_eq(&[1, 2], &[1, 2, 3]));
}
