//! Helpers shared by the model's tests: APDUs with cryptograms and MACs from the test key set.

#![allow(dead_code)]

pub mod tearing;

use sscard_core::crypto::{Algorithm, Key};
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::{Kid, SSSE_AID};
use sscard_model::build::{test_card_key, SAMPLE_CARD_ID};
use sscard_model::card::Card;

/// Sends hex, returns hex (`None` when the card went mute).
pub fn try_tx(card: &mut impl Card, hex: &str) -> Option<String> {
    card.transmit(&parse_hex(hex).unwrap()).map(|r| to_hex(&r))
}

pub fn tx(card: &mut impl Card, hex: &str) -> String {
    try_tx(card, hex).expect("card answers")
}

pub fn sw(card: &mut impl Card, hex: &str) -> String {
    let r = tx(card, hex);
    r[r.len() - 4..].to_string()
}

pub fn select_ssse(card: &mut impl Card) -> Option<String> {
    try_tx(card, &format!("00A404000F{}00", to_hex(&SSSE_AID)))
}

/// The test card's key `k`, derived once per thread and algorithm (the tearing soak asks for
/// keys hundreds of thousands of times).
pub fn key(alg: Algorithm, k: Kid) -> Key {
    thread_local! {
        static KEYS: std::cell::RefCell<Vec<((Algorithm, Kid), Key)>> = const {
            std::cell::RefCell::new(Vec::new())
        };
    }
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some((_, key)) = keys.iter().find(|(id, _)| *id == (alg, k)) {
            return key.clone();
        }
        let key = test_card_key(alg, k, &SAMPLE_CARD_ID, "110000", "110100").unwrap();
        keys.push(((alg, k), key.clone()));
        key
    })
}

pub fn challenge(card: &mut impl Card, n: usize) -> Option<Vec<u8>> {
    let r = card.transmit(&[0, 0x84, 0, 0, n as u8])?;
    assert_eq!(&r[n..], &[0x90, 0]);
    Some(r[..n].to_vec())
}

/// EXTERNAL AUTHENTICATE with the test key (or a wrong cryptogram); `None` when mute.
pub fn ext_auth(card: &mut impl Card, alg: Algorithm, k: Kid, good: bool) -> Option<String> {
    let ch = challenge(card, 8)?;
    let mut c = alg.cryptogram(&key(alg, k), &ch).unwrap();
    if !good {
        c[0] ^= 1;
    }
    try_tx(
        card,
        &format!("008200{:02X}{:02X}{}", k.id(), c.len(), to_hex(&c)),
    )
    .map(|r| r[r.len() - 4..].to_string())
}

/// A command with a line-protection MAC under the test key `k`; `None` when mute.
pub fn mac_apdu(
    card: &mut impl Card,
    alg: Algorithm,
    k: Kid,
    header: &str,
    data: &str,
) -> Option<String> {
    let ch = challenge(card, 4)?;
    let data = parse_hex(data).unwrap();
    let mut msg = parse_hex(header).unwrap();
    msg.push(data.len() as u8 + 4);
    msg.extend_from_slice(&data);
    let mac = alg.line_mac(&key(alg, k), &ch, &msg).unwrap();
    Some(format!("{}{}", to_hex(&msg), to_hex(&mac)))
}

/// WRITE KEY plaintext for key `k` (or the PIN 123456), encrypted under TK.
pub fn write_key_data(alg: Algorithm, k: Kid) -> String {
    let value = if k == Kid::Pin {
        vec![0x12, 0x34, 0x56]
    } else {
        key(alg, k).expose().to_vec()
    };
    let mut plain = vec![0, k.id(), alg.id(), if k == Kid::Pin { 3 } else { 5 }];
    plain.extend_from_slice(&value);
    plain[0] = (plain.len() - 1) as u8;
    let padded = sscard_core::crypto::padding::pad_method2(&plain, alg.block_size());
    to_hex(&alg.encrypt_ecb(&key(alg, Kid::Tk), &padded).unwrap())
}
