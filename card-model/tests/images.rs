//! Card images: round trip, masked display, and clear errors for corrupt or hand-edited images
//! (which are never overwritten).

use sscard_core::crypto::Algorithm;
use sscard_core::profile::Kid;
use sscard_model::build::{self, Holder, SAMPLE_CARD_ID};
use sscard_model::psam::Psam;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::Image;

fn personalised() -> Image {
    build::personalised_ssc(Algorithm::Sm4, &SAMPLE_CARD_ID, &Holder::sample(), "123456").unwrap()
}

#[test]
fn images_round_trip_and_show_masks_keys() {
    let image = personalised();
    let back = Image::from_json(&image.to_json(), "x").unwrap();
    assert_eq!(back, image);
    let shown = image.masked_json();
    assert!(shown.contains("\"value\": \"**\""));
    let card_rkssse = build::test_card_key(
        Algorithm::Sm4,
        Kid::Rkssse,
        &SAMPLE_CARD_ID,
        "110000",
        "110100",
    )
    .unwrap();
    assert!(!shown.contains(&sscard_core::hexfmt::to_hex(card_rkssse.expose())));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["keys"]["30"]["value"], "**", "the PIN is masked");
    assert!(Ssc::from_image(image, Store::in_memory()).is_ok());
    assert!(Psam::from_image(build::city_psam(Algorithm::Sm4)).is_ok());
}

#[test]
fn hand_edited_images_name_the_field() {
    let text = personalised().to_json();
    let edit = |from: &str, to: &str| {
        assert!(text.contains(from), "{from}");
        let image = Image::from_json(&text.replacen(from, to, 1), "card.json")?;
        Ssc::from_image(image, Store::in_memory())
            .map(drop)
            .map_err(|e| sscard_model::image::ImageError::Invalid {
                path: "card.json".into(),
                detail: e.to_string(),
            })
    };
    let err = edit("\"life_cycle\": \"ISSUED\",", "")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("card image card.json is not valid: missing field `life_cycle`"),
        "{err}"
    );
    let err = edit("\"life_cycle\": \"ISSUED\"", "\"life_cycle\": \"SOLD\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `SOLD`"), "{err}");
    // Record 2 of EF06 (tag 09, name) one byte short.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["files"]["EF06"]["records"][1]["value"] = format!("D5C5C8FD{}", "00".repeat(25)).into();
    let image = Image::from_json(&v.to_string(), "card.json").unwrap();
    let err = Ssc::from_image(image, Store::in_memory())
        .map(drop)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "files.EF06.records[1] is tag 09 with 29 bytes; the profile has tag 09 with 30"
    );
    let err = edit("\"tries_left\": 3", "\"tries_left\": 9")
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("keys.30.tries_left 9 exceeds try_limit 3"),
        "{err}"
    );
    let err = Image::from_json(
        &text.replacen("\"version\": 1", "\"version\": 7", 1),
        "card.json",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(err, "card image card.json has format \"sscard-model-image\" version 7; this build reads \"sscard-model-image\" version 1");
}
