//! Card images: round trip, masked display, and clear errors for corrupt or hand-edited images
//! (which are never overwritten).

use sscard_core::crypto::Algorithm;
use sscard_model::build::{self, Holder, SAMPLE_CARD_ID};
use sscard_model::psam::Psam;
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::Image;
use std::process::Command;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sscard-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

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
    let card_rkssse =
        build::test_card_key(Algorithm::Sm4, 0x0A, &SAMPLE_CARD_ID, "110000", "110100").unwrap();
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
                detail: e,
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
        .unwrap_err();
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

#[test]
fn serve_refuses_a_corrupt_image_and_leaves_it_alone() {
    let path = tmp("corrupt.json");
    let text = personalised().to_json();
    let corrupt = &text[..text.len() / 2];
    std::fs::write(&path, corrupt).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sscard-model"))
        .args(["serve", "--port", "1", "--no-psam", "--card"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "sscard-model: error: card image {} is not valid: EOF while parsing",
            path.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        corrupt,
        "the unreadable image was not touched"
    );
}

#[test]
fn new_and_show_from_the_command_line() {
    let path = tmp("blank.json");
    let o = Command::new(env!("CARGO_BIN_EXE_sscard-model"))
        .args(["new", "--kind", "blank", "--alg", "sm4", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let image = Image::load(&path).unwrap();
    let ssc = Ssc::from_image(image, Store::in_memory()).unwrap();
    assert_eq!(ssc.memory().keys.len(), 1, "a blank card holds only TK");
    let o = Command::new(env!("CARGO_BIN_EXE_sscard-model"))
        .arg("show")
        .arg(&path)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("\"life_cycle\": \"PERSONALISATION\""),
        "{shown}"
    );
    assert!(shown.contains("\"value\": \"**\""), "{shown}");
}
