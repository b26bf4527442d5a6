//! Walks the vector files of `tests/vectors/` (one test per file; format documented at the top
//! of each file) and checks the error and secrecy behaviour of `sscard_core::crypto`.

use proptest::prelude::*;
use sscard_core::crypto::padding::{pad_method2, unpad_method2};
use sscard_core::crypto::{
    card_factor, city_factor, ct_eq, province_factor, Aes128, Algorithm, CryptoError, Key, Sm4,
    Suite, Tdes,
};

/// Local hex codec so these tests depend on nothing but the crypto module.
fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).expect("even hex"), 16).expect("hex"))
        .collect()
}

fn unhex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn alg(name: &str) -> Algorithm {
    match name {
        "3DES" => Algorithm::Tdes,
        "SM4" => Algorithm::Sm4,
        "AES-128" => Algorithm::Aes128,
        other => panic!("unknown algorithm {other}"),
    }
}

fn key(s: &str) -> Key {
    Key::from_slice(&hex(s)).expect("16-byte key")
}

fn factor(s: &str) -> [u8; 8] {
    hex(s).try_into().expect("8-byte factor")
}

/// Calls `check(fields, expected fields, line)` for every vector line; returns how many.
fn walk(text: &str, mut check: impl FnMut(&[&str], &[&str], &str)) -> usize {
    let mut n = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (lhs, rhs) = line.split_once(" = ").expect("a vector line has ' = '");
        let lhs: Vec<&str> = lhs.split_whitespace().collect();
        let rhs: Vec<&str> = rhs.split_whitespace().collect();
        check(&lhs, &rhs, line);
        n += 1;
    }
    n
}

#[test]
fn diversify_vectors() {
    let n = walk(include_str!("vectors/diversify.txt"), |f, want, line| {
        let a = alg(f[0]);
        let factors: Vec<[u8; 8]> = f[2..].iter().map(|s| factor(s)).collect();
        let got = a.diversify_chain(&key(f[1]), &factors);
        assert_eq!(unhex(got.expose()), want[0], "{line}");
        // The chain is repeated one-level diversification, with the same result per suite.
        let mut k = key(f[1]);
        for d in &factors {
            let via_suite = match a {
                Algorithm::Tdes => Tdes::diversify(&k, d),
                Algorithm::Sm4 => Sm4::diversify(&k, d),
                Algorithm::Aes128 => Aes128::diversify(&k, d),
            };
            k = a.diversify(&k, d);
            assert_eq!(k, via_suite, "{line}");
        }
        assert_eq!(k, got, "{line}");
    });
    assert_eq!(n, 15);
}

#[test]
fn cryptogram_vectors() {
    let n = walk(include_str!("vectors/cryptogram.txt"), |f, want, line| {
        let got = alg(f[0]).cryptogram(&key(f[1]), &hex(f[2])).unwrap();
        assert_eq!(unhex(&got), want[0], "{line}");
    });
    assert_eq!(n, 3);
}

#[test]
fn ecb_vectors() {
    let n = walk(include_str!("vectors/ecb.txt"), |f, want, line| {
        let (a, k, plain) = (alg(f[0]), key(f[1]), hex(f[2]));
        let c = a.encrypt_ecb(&k, &plain).unwrap();
        assert_eq!(unhex(&c), want[0], "{line}");
        assert_eq!(a.decrypt_ecb(&k, &c).unwrap(), plain, "{line}");
    });
    assert_eq!(n, 5);
}

#[test]
fn mac_vectors() {
    let n = walk(include_str!("vectors/mac.txt"), |f, want, line| {
        let (a, k, iv, msg) = (alg(f[0]), key(f[1]), hex(f[2]), hex(f[3]));
        let got = a.mac(&k, &iv, &msg).unwrap();
        assert_eq!(unhex(&got), want[0], "{line}");
        assert_eq!(got.len(), a.block_size());
        // The suite-level MAC over the padded message agrees, with a short or a full IV.
        let padded = pad_method2(&msg, a.block_size());
        let mut full_iv = iv.clone();
        full_iv.resize(a.block_size(), 0);
        for iv in [&iv, &full_iv] {
            let via_suite = match a {
                Algorithm::Tdes => Tdes::cbc_mac(&k, iv, &padded),
                Algorithm::Sm4 => Sm4::cbc_mac(&k, iv, &padded),
                Algorithm::Aes128 => Aes128::cbc_mac(&k, iv, &padded),
            };
            assert_eq!(via_suite, got, "{line}");
        }
    });
    assert_eq!(n, 8);
}

#[test]
fn line_mac_vectors() {
    let n = walk(include_str!("vectors/line_mac.txt"), |f, want, line| {
        let (a, k, challenge, msg) = (alg(f[0]), key(f[1]), hex(f[2]), hex(f[3]));
        let got = a.line_mac(&k, &challenge, &msg).unwrap();
        assert_eq!(unhex(&got), want[0], "{line}");
        assert_eq!(got[..], a.mac(&k, &challenge, &msg).unwrap()[..4], "{line}");
    });
    assert_eq!(n, 2);
}

#[test]
fn factor_vectors() {
    let n = walk(include_str!("vectors/factors.txt"), |f, want, line| {
        assert_eq!(unhex(&province_factor(f[0]).unwrap()), want[0], "{line}");
        assert_eq!(unhex(&city_factor(f[1]).unwrap()), want[1], "{line}");
        assert_eq!(unhex(&card_factor(&hex(f[2])).unwrap()), want[2], "{line}");
    });
    assert_eq!(n, 2);
}

#[test]
fn padding_method_2() {
    assert_eq!(pad_method2(&[1, 2, 3], 8), [1, 2, 3, 0x80, 0, 0, 0, 0]);
    let mut aligned = vec![7; 8];
    aligned.extend([0x80, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        pad_method2(&[7; 8], 8),
        aligned,
        "aligned: a whole extra block"
    );
    assert_eq!(pad_method2(&[], 16), [&[0x80][..], &[0; 15]].concat());
    assert_eq!(unpad_method2(&aligned).unwrap(), &[7; 8]);
    assert_eq!(unpad_method2(&[0x80]).unwrap(), &[] as &[u8]);
    assert_eq!(unpad_method2(&[1, 0, 0]), Err(CryptoError::BadPadding));
    assert_eq!(unpad_method2(&[]), Err(CryptoError::BadPadding));
}

#[test]
fn keys_never_show_their_bytes() {
    let k = key("0123456789ABCDEFFEDCBA9876543210");
    let shown = format!("{k:?} {k:#?} {:?}", Some(&k));
    assert_eq!(format!("{k:?}"), "Key(**)");
    for needle in ["01", "23", "AB", "ab", "FE", "fe"] {
        assert!(!shown.contains(needle), "{shown}");
    }
    assert_eq!(k.left(), hex("0123456789ABCDEF"));
    assert_eq!(k.right(), hex("FEDCBA9876543210"));
    assert_eq!(Key::new(*k.expose()), k);
    assert_ne!(key("0123456789ABCDEFFEDCBA9876543211"), k);
    assert_eq!(
        Key::from_slice(&[0; 15]).unwrap_err(),
        CryptoError::BadKeyLength { len: 15 }
    );
}

#[test]
fn constant_time_compare() {
    assert!(ct_eq(&[1, 2, 3], &[1, 2, 3]));
    assert!(ct_eq(&[], &[]));
    assert!(!ct_eq(&[1, 2, 3], &[1, 2, 4]));
    assert!(!ct_eq(&[1, 2], &[1, 2, 3]), "length mismatch is false");
}

#[test]
fn algorithm_ids_and_versions() {
    assert_eq!(
        Algorithm::from_id(2),
        Err(CryptoError::UnsupportedAlgorithm { id: 2 })
    );
    for a in [Algorithm::Tdes, Algorithm::Sm4, Algorithm::Aes128] {
        assert_eq!(Algorithm::from_id(a.id()), Ok(a));
    }
    assert_eq!(
        (
            Algorithm::Tdes.id(),
            Algorithm::Sm4.id(),
            Algorithm::Aes128.id()
        ),
        (1, 3, 4)
    );
    assert_eq!(Algorithm::from_spec_version("2.00"), Ok(Algorithm::Tdes));
    assert_eq!(Algorithm::from_spec_version("3.00"), Ok(Algorithm::Sm4));
    assert_eq!(Algorithm::Sm4.spec_version(), "3.00");
    assert_eq!(
        Algorithm::from_spec_version("1.00"),
        Err(CryptoError::UnknownSpecVersion("1.00".into()))
    );
    assert_eq!(
        [
            Algorithm::Tdes.name(),
            Algorithm::Sm4.name(),
            Algorithm::Aes128.name()
        ],
        ["3DES", "SM4", "AES-128"]
    );
    assert_eq!((Tdes::BLOCK, Sm4::BLOCK, Aes128::BLOCK), (8, 16, 16));
    assert_eq!(Sm4::ALGORITHM, Algorithm::Sm4);
}

#[test]
fn length_errors() {
    let k = key("33333333333333334444444444444444");
    assert_eq!(
        Algorithm::Sm4.encrypt_ecb(&k, &[0; 8]),
        Err(CryptoError::NotBlockAligned { len: 8, block: 16 })
    );
    assert_eq!(
        Algorithm::Tdes.decrypt_ecb(&k, &[0; 12]),
        Err(CryptoError::NotBlockAligned { len: 12, block: 8 })
    );
    assert_eq!(
        Algorithm::Tdes.cryptogram(&k, &[0; 9]),
        Err(CryptoError::TooLong { len: 9, max: 8 })
    );
    assert_eq!(
        Algorithm::Sm4.mac(&k, &[0; 17], b"x"),
        Err(CryptoError::TooLong { len: 17, max: 16 })
    );
    assert_eq!(
        city_factor("1101x0"),
        Err(CryptoError::BadRegionCode("1101x0".into()))
    );
    assert_eq!(
        province_factor("11"),
        Err(CryptoError::BadRegionCode("11".into()))
    );
    assert_eq!(card_factor(&[0; 8]), Err(CryptoError::BadCardId { len: 8 }));
    assert_eq!(Algorithm::Sm4.diversify_chain(&k, &[]), k);
    // Errors read as sentences a user can act on.
    let msg = CryptoError::NotBlockAligned { len: 8, block: 16 }.to_string();
    assert!(msg.contains('8') && msg.contains("16"), "{msg}");
}

proptest! {
    #[test]
    fn ecb_and_padding_round_trip(k in any::<[u8; 16]>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let k = Key::new(k);
        for a in [Algorithm::Tdes, Algorithm::Sm4, Algorithm::Aes128] {
            let padded = pad_method2(&data, a.block_size());
            prop_assert!(padded.chunks_exact(a.block_size()).remainder().is_empty());
            prop_assert!(padded.len() > data.len());
            prop_assert_eq!(unpad_method2(&padded).unwrap(), &data[..]);
            let c = a.encrypt_ecb(&k, &padded).unwrap();
            prop_assert_eq!(a.decrypt_ecb(&k, &c).unwrap(), padded);
        }
    }
}
