//! The `sscard-model` command line on card images: a corrupt image is refused and left alone,
//! `new` and `show` work from the command line. (Moved here with the binary from
//! `card-model/tests/images.rs`.)

use sscard_core::crypto::Algorithm;
use sscard_model::build::{self, Holder, SAMPLE_CARD_ID};
use sscard_model::ssc::Ssc;
use sscard_model::store::Store;
use sscard_model::Image;
use std::process::Command;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sscard-model-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn personalised() -> Image {
    build::personalised_ssc(Algorithm::Sm4, &SAMPLE_CARD_ID, &Holder::sample(), "123456").unwrap()
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
