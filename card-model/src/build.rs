//! Making cards: a blank factory SSC (TK and manufacture records only), a personalised SSC from
//! the profile's test key set and holder data, and a matching city PSAM.

use crate::image::{Image, Memory};
use crate::memory::{
    kid_name, AlgorithmName, EfContent, HexBytes, KeySlot, LifeCycle, PsamMemory, RecordSlot,
    SscMemory,
};
use sscard_core::crypto::{card_factor, city_factor, province_factor, Algorithm, CryptoError, Key};
use sscard_core::hexfmt::{hex_array, parse_hex};
use sscard_core::profile::files::{self, FileDef, RecordDef, Structure, FILES};
use sscard_core::profile::holder::bad;
pub use sscard_core::profile::holder::{
    bcd, gbk_name, FileRecords, Holder, HolderError, CARD_TYPE,
};
use sscard_core::profile::psam::level;
use sscard_core::profile::{
    test_keys, Kid, KEY_TRY_LIMIT, PSAM_ATR, SSC_ATR, TEST_CITY, TEST_PROVINCE,
};
use std::collections::BTreeMap;

/// The card identification code of the profile's worked example.
pub const SAMPLE_CARD_ID: [u8; 16] = hex_array("110100D15600000599110145000000A1");

/// The initialisation organisation the model's factory writes into EF05.
const INIT_ORG: &str = "110100000000000000000001";

/// Record values by file name; records without a value are manufactured zero.
type Values = BTreeMap<&'static str, Vec<(&'static RecordDef, Vec<u8>)>>;

/// The content of `file`: every record of the file table with its tag and its value from
/// `values` (zero when absent); a transparent file zero.
fn content(file: &FileDef, values: &[(&RecordDef, Vec<u8>)]) -> EfContent {
    match file.structure {
        Structure::Records(defs) => EfContent::Records(
            defs.iter()
                .map(|def| RecordSlot {
                    tag: def.tag,
                    value: HexBytes(
                        values
                            .iter()
                            .find(|(r, _)| r.tag == def.tag)
                            .map_or_else(|| vec![0; def.len as usize], |(_, v)| v.clone()),
                    ),
                })
                .collect(),
        ),
        Structure::Binary(size) => EfContent::Binary(HexBytes(vec![0; size])),
    }
}

/// Every file of the file table, under its name, with `values` written.
fn files_with(values: &Values) -> BTreeMap<String, EfContent> {
    FILES
        .iter()
        .map(|f| {
            let v = values.get(f.name).map_or(&[][..], Vec::as_slice);
            (f.name.to_string(), content(f, v))
        })
        .collect()
}

fn alg_name(alg: Algorithm) -> AlgorithmName {
    match alg {
        Algorithm::Sm4 => AlgorithmName::Sm4,
        _ => AlgorithmName::Tdes,
    }
}

/// The card key of `kid` derived from the test key set (PROFILE section 5).
pub fn test_card_key(
    alg: Algorithm,
    kid: Kid,
    card_id: &[u8; 16],
    province: &str,
    city: &str,
) -> Result<Key, CryptoError> {
    let master = Key::new(test_keys::master(kid).ok_or(CryptoError::BadKeyLength { len: 0 })?);
    let card = card_factor(card_id)?;
    Ok(if kid.is_national() {
        alg.diversify_chain(
            &master,
            &[province_factor(province)?, city_factor(city)?, card],
        )
    } else {
        alg.diversify(&master, &card)
    })
}

/// What the factory writes: EF05's card identification code, specification version and
/// initialisation organisation.
fn manufacture_records(alg: Algorithm, card_id: &[u8; 16]) -> Values {
    let ef05 = files::ef05();
    let record = |key: &str| {
        ef05.record_by_key(key)
            .expect("EF05 has the manufacture records")
    };
    let records = vec![
        (record("card_id"), card_id.to_vec()),
        (
            record("spec_version"),
            alg.spec_version().as_bytes().to_vec(),
        ),
        (record("init_org"), parse_hex(INIT_ORG).expect("hex")),
    ];
    BTreeMap::from([(ef05.name, records)])
}

/// A blank card as it leaves the factory: life cycle PERSONALISATION, TK only.
pub fn blank_ssc(alg: Algorithm, card_id: &[u8; 16]) -> Image {
    let files = files_with(&manufacture_records(alg, card_id));
    let tk = alg.diversify(
        &Key::new(test_keys::TRANSPORT),
        &card_factor(card_id).expect("16 bytes"),
    );
    let mut keys = BTreeMap::new();
    keys.insert(
        kid_name(Kid::Tk),
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
    let mut values = manufacture_records(alg, card_id);
    for (file, records) in holder.records()? {
        values.entry(file.name).or_default().extend(records);
    }
    let files = files_with(&values);
    let mut keys = BTreeMap::new();
    for kid in Kid::CARD_KEYS {
        let key = test_card_key(alg, kid, card_id, TEST_PROVINCE, TEST_CITY)
            .map_err(|e| bad("card_id", e.to_string()))?;
        keys.insert(
            kid_name(kid),
            KeySlot::new(key.expose().to_vec(), kid.try_limit()),
        );
    }
    if !(2..=6).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("pin", "a PIN has 2 to 6 digits"));
    }
    keys.insert(
        kid_name(Kid::Pin),
        KeySlot::new(pin.as_bytes().to_vec(), Kid::Pin.try_limit()),
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
    city_psam_for(alg, TEST_CITY).expect("the test city is a valid city")
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
    for kid in Kid::CARD_KEYS.into_iter().chain([Kid::Tk]) {
        let master = Key::new(test_keys::master(kid).expect("test key"));
        let key = if kid.is_national() {
            alg.diversify_chain(&master, &[prov, cityf])
        } else {
            master
        };
        keys.insert(
            format!("{}/01", kid_name(kid)),
            KeySlot::new(key.expose().to_vec(), 0),
        );
    }
    let mut ef15 = parse_hex("11010000000000000001").expect("hex"); // serial BCD(10)
    ef15.push(0x01); // version
    ef15.push(alg.id());
    ef15.extend(&city_code); // issuer region
    ef15.push(level::CITY); // key level
    ef15.extend(parse_hex("2024010120340101").expect("hex")); // start, expiry
    let mut terminal = city_code;
    terminal.extend(parse_hex("000001").expect("hex"));
    Ok(Image::new(
        PSAM_ATR.to_vec(),
        Memory::Psam(PsamMemory {
            algorithm: alg_name(alg),
            ef15: HexBytes(ef15),
            ef16: HexBytes(terminal),
            level: level::CITY,
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
