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
    fn clean_scripts_parse(picks in proptest::collection::vec(0..LINES.len() - 1, 0..30)) {
        // Every line of LINES but the include is valid inside a test case, in any order.
        let mut text = String::from("test \"first\"\n");
        for i in picks {
            text.push_str(LINES[i]);
            text.push('\n');
        }
        let parsed = parse(Path::new("c.apdu"), &text);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.err(), text);
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
            if e.file == "m.apdu" {
                // The place is inside the script: a real line, a column on it (or just past it).
                let line = text.lines().nth(e.line - 1);
                prop_assert!(line.is_some(), "line {} of {} lines: {e}", e.line, text.lines().count());
                let len = line.unwrap().len();
                prop_assert!((1..=len + 1).contains(&e.column), "column {} on a line of {len}: {e}", e.column);
            } else {
                prop_assert!(e.file.ends_with("missing.inc"), "{e}");
            }
        }
    }
}
