//! Property test: random and mutated scripts never panic the parser; errors carry a place.

use proptest::prelude::*;
use sscard::script::parse;
use std::path::Path;

const LINES: &[&str] = &[
    "test \"a\"",
    "only sm4",
    "@psam",
    "@card",
    "reset",
    "00A4040000 -> 9000",
    "00B2012C00 -> 9000 0110 ?? *",
    "0084000008 -> 9000 save $c[0..4]",
    "801A 08 01 08 $c 00000000 -> 61xx",
    "ext-auth RKSSSE wrong -> 63Cx",
    "int-auth IRK",
    "mac 04DC0434 0A0131 key UK_N -> 6A8?",
    "reload-pin 123456 wrong",
    "unblock-pin",
    "write-key PIN 3",
    "set $x = 0102",
    "card blank",
    "include \"missing.inc\"",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse(Path::new("r.apdu"), &text);
    }

    #[test]
    fn mutated_scripts_never_panic(picks in proptest::collection::vec((0..LINES.len(), any::<u8>(), 0usize..40), 0..30)) {
        let mut text = String::new();
        for (i, byte, at) in picks {
            let mut line = LINES[i].as_bytes().to_vec();
            if byte % 3 == 0 && !line.is_empty() {
                let at = at % line.len();
                line[at] = byte;
            }
            text.push_str(&String::from_utf8_lossy(&line));
            text.push('\n');
        }
        if let Err(e) = parse(Path::new("m.apdu"), &text) {
            prop_assert_eq!(e.file.as_str(), if e.message.starts_with("cannot include") || e.file.ends_with(".inc") { e.file.as_str() } else { "m.apdu" });
            prop_assert!(e.line >= 1);
        }
    }
}
