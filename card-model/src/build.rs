//! Making cards: a blank factory SSC (TK and manufacture records only), a personalised SSC from
//! the profile's test key set and holder data, and a matching city PSAM.

use crate::image::{Image, Memory};
use crate::memory::{
    AlgorithmName, EfContent, HexBytes, KeySlot, LifeCycle, PsamMemory, RecordSlot, SscMemory,
};
use crate::ssc::layout::{Structure, EFS};
use sscard_core::crypto::{card_factor, city_factor, province_factor, Algorithm, CryptoError, Key};
use sscard_core::hexfmt::{hex_array, parse_hex};
use sscard_core::holder::bad;
pub use sscard_core::holder::{bcd, gbk_name, holder_records, FileRecords, Holder, HolderError};
use sscard_core::profile::{kid, test_keys, KEY_TRY_LIMIT, PIN_TRY_LIMIT, PSAM_ATR, SSC_ATR};
use std::collections::BTreeMap;

/// The card identification code of the profile's worked example.
pub const SAMPLE_CARD_ID: [u8; 16] = hex_array("110100D15600000599110145000000A1");

fn records(path: &str, values: &[(u8, Vec<u8>)]) -> EfContent {
    let def = EFS.iter().find(|e| e.path == path).expect("known path");
    match def.structure {
        Structure::Records(layout) => EfContent::Records(
            layout
                .iter()
                .map(|&(tag, len)| {
                    let value = values
                        .iter()
                        .find(|(t, _)| *t == tag)
                        .map(|(_, v)| v.clone());
                    RecordSlot {
                        tag,
                        value: HexBytes(value.unwrap_or_else(|| vec![0; len as usize])),
                    }
                })
                .collect(),
        ),
        Structure::Binary(size) => EfContent::Binary(HexBytes(vec![0; size])),
    }
}

/// Empty files of the layout (every record with its tag and a zero value).
fn empty_files() -> BTreeMap<String, EfContent> {
    EFS.iter()
        .map(|e| (e.path.to_string(), records(e.path, &[])))
        .collect()
}

fn alg_name(alg: Algorithm) -> AlgorithmName {
    match alg {
        Algorithm::Sm4 => AlgorithmName::Sm4,
        _ => AlgorithmName::Tdes,
    }
}

/// The card key of `key_id` derived from the test key set (PROFILE section 5).
pub fn test_card_key(
    alg: Algorithm,
    key_id: u8,
    card_id: &[u8; 16],
    province: &str,
    city: &str,
) -> Result<Key, CryptoError> {
    let master = Key::new(test_keys::master(key_id).ok_or(CryptoError::BadKeyLength { len: 0 })?);
    let card = card_factor(card_id)?;
    Ok(if kid::is_national(key_id) {
        alg.diversify_chain(
            &master,
            &[province_factor(province)?, city_factor(city)?, card],
        )
    } else {
        alg.diversify(&master, &card)
    })
}

fn manufacture_records(alg: Algorithm, card_id: &[u8; 16]) -> Vec<(u8, Vec<u8>)> {
    vec![
        (0x01, card_id.to_vec()),
        (0x03, alg.spec_version().as_bytes().to_vec()),
        (0x04, parse_hex("110100000000000000000001").expect("hex")),
    ]
}

/// A blank card as it leaves the factory: life cycle PERSONALISATION, TK only.
pub fn blank_ssc(alg: Algorithm, card_id: &[u8; 16]) -> Image {
    let mut files = empty_files();
    files.insert(
        "EF05".into(),
        records("EF05", &manufacture_records(alg, card_id)),
    );
    let tk = alg.diversify(
        &Key::new(test_keys::TRANSPORT),
        &card_factor(card_id).expect("16 bytes"),
    );
    let mut keys = BTreeMap::new();
    keys.insert(
        format!("{:02X}", kid::TK),
        KeySlot::new(tk.expose().to_vec(), KEY_TRY_LIMIT),
    );
    Image::new(
        SSC_ATR.to_vec(),
        Memory::Ssc(SscMemory {
            algorithm: alg_name(alg),
            life_cycle: LifeCycle::Personalisation,
            files,
            keys,
        }),
    )
}

/// A card personalised with the test key set, the holder's data and `pin`, life cycle ISSUED.
pub fn personalised_ssc(
    alg: Algorithm,
    card_id: &[u8; 16],
    holder: &Holder,
    pin: &str,
) -> Result<Image, HolderError> {
    let mut files = empty_files();
    let mut ef05 = manufacture_records(alg, card_id);
    for (path, values) in holder_records(holder)? {
        if path == "EF05" {
            ef05.extend(values);
        } else {
            files.insert(path.into(), records(path, &values));
        }
    }
    files.insert("EF05".into(), records("EF05", &ef05));
    let mut keys = BTreeMap::new();
    for key_id in kid::CARD_KEYS {
        let key = test_card_key(alg, key_id, card_id, "110000", "110100")
            .map_err(|e| bad("card_id", e.to_string()))?;
        let tries = if matches!(key_id, kid::RKSSSE | kid::EAK_L) {
            KEY_TRY_LIMIT
        } else {
            0
        };
        keys.insert(
            format!("{key_id:02X}"),
            KeySlot::new(key.expose().to_vec(), tries),
        );
    }
    if !(2..=6).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("pin", "a PIN has 2 to 6 digits"));
    }
    keys.insert(
        format!("{:02X}", kid::PIN),
        KeySlot::new(pin.as_bytes().to_vec(), PIN_TRY_LIMIT),
    );
    Ok(Image::new(
        SSC_ATR.to_vec(),
        Memory::Ssc(SscMemory {
            algorithm: alg_name(alg),
            life_cycle: LifeCycle::Issued,
            files,
            keys,
        }),
    ))
}

/// A city PSAM (level 2, region 110100) holding the test key set: national keys diversified to
/// the city, the city's local masters, and the transport master for personalisation.
pub fn city_psam(alg: Algorithm) -> Image {
    city_psam_for(alg, "110100").expect("110100 is a valid city")
}

/// A city PSAM for another city: national keys diversified to that city (so its cards'
/// keys differ from 110100's). It carries the test set's local masters, which only matter for
/// the city they were made for.
pub fn city_psam_for(alg: Algorithm, city: &str) -> Result<Image, HolderError> {
    let city_code = bcd("city", city, 3)?;
    let province = format!("{}0000", &city[..2]);
    let (prov, cityf) = (
        province_factor(&province).map_err(|e| bad("city", e.to_string()))?,
        city_factor(city).map_err(|e| bad("city", e.to_string()))?,
    );
    let mut keys = BTreeMap::new();
    for key_id in kid::CARD_KEYS.into_iter().chain([kid::TK]) {
        let master = Key::new(test_keys::master(key_id).expect("test key"));
        let key = if kid::is_national(key_id) {
            alg.diversify_chain(&master, &[prov, cityf])
        } else {
            master
        };
        keys.insert(
            format!("{key_id:02X}/01"),
            KeySlot::new(key.expose().to_vec(), 0),
        );
    }
    let mut ef15 = parse_hex("11010000000000000001").expect("hex"); // serial BCD(10)
    ef15.push(0x01); // version
    ef15.push(alg.id());
    ef15.extend(&city_code); // issuer region
    ef15.push(0x02); // level: city
    ef15.extend(parse_hex("2024010120340101").expect("hex")); // start, expiry
    let mut terminal = city_code;
    terminal.extend(parse_hex("000001").expect("hex"));
    Ok(Image::new(
        PSAM_ATR.to_vec(),
        Memory::Psam(PsamMemory {
            algorithm: alg_name(alg),
            ef15: HexBytes(ef15),
            ef16: HexBytes(terminal),
            level: 2,
            keys,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_continue_in_the_extension() {
        let (a, b) = gbk_name("张三").unwrap();
        assert_eq!(&a[..4], &[0xD5, 0xC5, 0xC8, 0xFD]);
        assert_eq!(a.len(), 30);
        assert!(b.iter().all(|&x| x == 0));
        let long = "王".repeat(20);
        let (a, b) = gbk_name(&long).unwrap();
        assert_eq!(a.iter().filter(|&&x| x != 0).count(), 30);
        assert_eq!(&b[..10], &[0xCD, 0xF5].repeat(5)[..]);
        assert_eq!(
            gbk_name(&"王".repeat(26)),
            Err(HolderError::Field {
                field: "name",
                detail: "52 GBK bytes; a name has 1 to 50".into()
            })
        );
    }
}
