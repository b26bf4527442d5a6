//! Batch files of holders: CSV with a header (as spreadsheets save it: UTF-8 with or without
//! a byte order mark, GBK, UTF-16), or JSON lines with the same keys. Everything is validated
//! before any card is touched, with the card's own read-back rules ([`Holder::validate`]);
//! each refused line is named with the field and the reason. `docs/batch.md` is the operator's
//! reference.

mod encoding;
mod parse;

pub use encoding::{decode, DecodeError, Encoding, UnknownEncoding};

use sscard_core::fsutil::{read_file_bounded, read_to_end_bounded, Limit, ReadError};
use sscard_core::profile::holder::Holder;
use std::path::Path;

/// The columns of a batch (the CSV header, in any order; the keys of a JSON line).
pub const COLUMNS: [&str; 12] = Holder::FIELDS;

/// The columns a batch may leave out, or leave empty on a line: the gender and the birth date
/// are then those the citizen ID number states.
pub const DERIVED_COLUMNS: [&str; 2] = ["gender", "birth_date"];

/// The largest batch file read (64 MiB, about 400 000 holders): a larger one is refused
/// before it is read whole, so `--batch /dev/zero` fails at once.
pub const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;

const BATCH_LIMIT: Limit = Limit::new("a batch", MAX_BATCH_BYTES);

/// One refused line of a batch: the line (from 1), the field at fault (`line` for the line as
/// a whole) and why. Its message may quote the value: show it to the operator, do not log it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.message)
    }
}

impl std::error::Error for BatchError {}

/// A parsed batch: valid holders with their line numbers, and the refused lines.
#[derive(Debug, Default)]
pub struct Batch {
    pub holders: Vec<(usize, Holder)>,
    pub errors: Vec<BatchError>,
    /// Holder lines read (the header, blank lines and empty rows not counted).
    pub lines: usize,
    /// The encoding the file was read in (`Auto` for text parsed by [`parse`]).
    pub encoding: Encoding,
}

/// Why a batch file gives nothing to personalise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("cannot read the batch: {0}")]
    Io(#[from] std::io::Error),
    #[error("the batch is larger than {limit} bytes; split it into smaller batches")]
    TooLarge { limit: u64 },
    #[error("{0}; save the file as UTF-8 (or GBK, UTF-16), or name its encoding with --encoding")]
    Encoding(#[from] DecodeError),
    #[error("the batch has no holder lines")]
    Empty,
    #[error(
        "the batch has no valid holder: {} refused line(s), the first: {}",
        .errors.len(),
        .errors.first().map(ToString::to_string).unwrap_or_default()
    )]
    NoValidHolder { errors: Vec<BatchError> },
}

/// Parses batch text; `jsonl` selects JSON lines instead of CSV. A batch without holder lines
/// is an empty [`Batch`] here; [`load`] and [`read`] refuse it.
pub fn parse(text: &str, jsonl: bool) -> Batch {
    let mut batch = Batch::default();
    if jsonl {
        parse::jsonl(text, &mut batch);
    } else {
        parse::csv(text, &mut batch);
    }
    batch
}

/// A batch from the bytes of a file: decoded (`encoding`, or detected with
/// [`Encoding::Auto`]), then parsed as JSON lines if `jsonl` says so or, when `None`, if its
/// first character is `{`, as CSV otherwise. `Ok` always carries at least one holder; refused
/// lines are in [`Batch::errors`].
pub fn read(bytes: &[u8], encoding: Encoding, jsonl: Option<bool>) -> Result<Batch, LoadError> {
    if bytes.len() as u64 > MAX_BATCH_BYTES {
        return Err(LoadError::TooLarge {
            limit: MAX_BATCH_BYTES,
        });
    }
    let (text, encoding) = decode(bytes, encoding)?;
    let jsonl = jsonl.unwrap_or_else(|| text.trim_start().starts_with('{'));
    let mut batch = parse(&text, jsonl);
    batch.encoding = encoding;
    if batch.holders.is_empty() {
        return Err(if batch.errors.is_empty() {
            LoadError::Empty
        } else {
            LoadError::NoValidHolder {
                errors: batch.errors,
            }
        });
    }
    Ok(batch)
}

/// Reads a batch file with its encoding detected; see [`load_with`].
pub fn load(path: &Path) -> Result<Batch, LoadError> {
    load_with(path, Encoding::Auto)
}

/// Reads a batch file of at most [`MAX_BATCH_BYTES`] (`.jsonl`/`.json`, or a first character
/// `{`, means JSON lines) in `encoding`; `-` reads it from standard input, bounded the same way.
/// `Ok` always carries at least one holder.
pub fn load_with(path: &Path, encoding: Encoding) -> Result<Batch, LoadError> {
    let bytes = if path == Path::new("-") {
        read_to_end_bounded(std::io::stdin().lock(), "standard input", BATCH_LIMIT)
    } else {
        read_file_bounded(path, BATCH_LIMIT)
    }
    .map_err(|e| match e {
        ReadError::TooLarge { limit, .. } => LoadError::TooLarge { limit },
        ReadError::Io { source, .. } => LoadError::Io(source),
        e => LoadError::Io(std::io::Error::other(e.to_string())),
    })?;
    let by_name = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json");
    read(&bytes, encoding, by_name.then_some(true))
}

/// `n` valid, distinct holders for test benches: card numbers `<prefix>0000001…` with their
/// check characters, citizen IDs with theirs whose birth date and 17th digit agree with the
/// holder's birth date and gender. Distinct for `n` up to 9 999 999. Line numbers start at 2
/// (after a header).
pub fn synthetic(n: usize, prefix: char) -> Vec<(usize, Holder)> {
    use sscard_core::profile::{card_number_check, citizen_id_check};
    let names = ["张三", "李四", "王五", "赵六", "欧阳娜娜", "司马相如"];
    (1..=n)
        .map(|i| {
            let cn = format!("{prefix}{i:07}");
            let card_number = format!("{cn}{}", card_number_check(&cn).unwrap_or('0'));
            // A thousand sequence numbers a birth date; the date moves on every thousand
            // holders (336 dates a year over 70 years).
            let (sequence, day) = (i % 1000, i / 1000);
            let birth_date = format!(
                "{}{:02}{:02}",
                1950 + (day / 336) % 70,
                1 + day % 12,
                1 + (day / 12) % 28
            );
            let id = format!("110105{birth_date}{sequence:03}");
            let ssn = format!("{id}{}", citizen_id_check(&id).unwrap_or('0'));
            let h = Holder {
                card_number,
                ssn,
                name: names[i % names.len()].into(),
                // The 17th digit is the sequence's last: odd for a man, even for a woman.
                gender: if sequence % 2 == 1 { "1" } else { "2" }.into(),
                nation: "01".into(),
                birthplace: "110105".into(),
                birth_date,
                issue_date: "20240101".into(),
                expiry_date: "20340101".into(),
                pension: "01".into(),
                medical: "01".into(),
                medical_account: format!("11010000{i:08}"),
            };
            (i + 1, h)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "card_number,ssn,name,gender,nation,birthplace,birth_date,issue_date,expiry_date,pension,medical,medical_account";
    /// The sample holder (born 1949-12-31, female) as a CSV line, with `name`.
    fn line(name: &str) -> String {
        format!("A12345674,11010519491231002X,{name},2,01,110105,19491231,20240101,20340101,01,01,1101000000012345")
    }

    fn csv(text: &str) -> Result<Batch, LoadError> {
        read(text.as_bytes(), Encoding::Auto, None)
    }

    fn messages(b: &Batch) -> Vec<String> {
        b.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn valid_and_invalid_lines_are_told_apart() {
        let text = format!(
            "{HEADER}\nA12345674,11010519491231002X,张三,2,01,110105,19491231,20240101,20340101,01,01,1101000000012345\nA12345674,11010519491231002X,李四,2,01,110105,19491231,20240101,20340101,01,01,1101000000012345\nB1234567X,110105194912310021,王五,1,01,110105,19491231,20240101,20340101,01,01,1101000000012345\n"
        );
        let b = parse(&text, false);
        assert_eq!(b.holders.len(), 1);
        assert_eq!(b.lines, 3);
        assert_eq!(
            messages(&b),
            [
                "line 3: card_number: A12345674 already on line 2",
                "line 4: card_number: \"B1234567X\" is not 8 characters 0-9A-Z and a valid check character"
            ]
        );
        let b = parse("{\"card_number\":\"A12345674\"}\n", true);
        assert_eq!(messages(&b), ["line 1: ssn: missing"]);
        let b = parse("card_number,ssn\n", false);
        assert_eq!(
            b.errors[0].to_string(),
            "line 1: name: column missing from the header"
        );
    }

    #[test]
    fn quoted_cells_keep_their_commas_and_quotes() {
        let text = format!(
            "{HEADER}\r\n\"A12345674\",\"11010519491231002X\",\"欧阳,娜娜\",2,01,110105,19491231,20240101,20340101,01,01,\"1101000000012345\"\r\n{}\r\n",
            line("\"张\"\"三\"\"\"").replace("A12345674,11010519491231002X", "B12345671,110105194912310046")
        );
        let b = csv(&text).unwrap();
        assert_eq!(messages(&b), Vec::<String>::new());
        let names: Vec<(usize, &str)> = b
            .holders
            .iter()
            .map(|(n, h)| (*n, h.name.as_str()))
            .collect();
        assert_eq!(names, [(2, "欧阳,娜娜"), (3, "张\"三\"")]);
        assert_eq!(b.encoding, Encoding::Utf8);
    }

    #[test]
    fn spreadsheet_layout_is_tolerated() {
        // Excel's byte order mark, a capitalised header with spaces and an extra column, CRLF,
        // blank lines and the empty rows below the data.
        let text = format!(
            "\u{FEFF}Card_Number , SSN,name,gender,nation,birthplace,birth_date,issue_date,expiry_date,pension,medical,medical_account,remarks\r\n\r\n{},  张三 \u{3000}\r\n,,,,,,,,,,,,\r\n\r\n",
            line("王五").replace(",王五,", ", 王五 ,")
        );
        let b = csv(&text).unwrap();
        assert_eq!(messages(&b), Vec::<String>::new());
        assert_eq!(b.lines, 1);
        assert_eq!(b.holders[0].0, 3);
        assert_eq!(b.holders[0].1.name, "王五");
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(format!("{HEADER}\n{}\n", line("张三")).as_bytes());
        let b = read(&bom, Encoding::Auto, None).unwrap();
        assert_eq!((b.holders.len(), b.encoding), (1, Encoding::Utf8));
    }

    #[test]
    fn gbk_and_utf16_files_are_read() {
        let text = format!("{HEADER}\n{}\n", line("欧阳娜娜"));
        let (gbk, _, _) = encoding_rs::GBK.encode(&text);
        let b = read(&gbk, Encoding::Auto, None).unwrap();
        assert_eq!(b.encoding, Encoding::Gbk);
        assert_eq!(b.holders[0].1.name, "欧阳娜娜");
        let b = read(&gbk, Encoding::Gbk, None).unwrap();
        assert_eq!(b.holders[0].1.name, "欧阳娜娜");
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in text.replace('\n', "\r\n").encode_utf16() {
            utf16.extend(unit.to_le_bytes());
        }
        let b = read(&utf16, Encoding::Auto, None).unwrap();
        assert_eq!(b.encoding, Encoding::Utf16Le);
        assert_eq!(
            b.holders[0],
            (
                2,
                Holder {
                    name: "欧阳娜娜".into(),
                    ..Holder::sample()
                }
            )
        );
        // Read as UTF-8, GBK is refused naming the line, not as garbled names.
        assert_eq!(
            read(&gbk, Encoding::Utf8, None).unwrap_err().to_string(),
            "line 2: not utf-8 text; save the file as UTF-8 (or GBK, UTF-16), or name its \
             encoding with --encoding"
        );
    }

    #[test]
    fn control_characters_are_refused_with_the_line() {
        let text = format!(
            "{HEADER}\n{}\n{}\n\"A\",\"multi\nline\"\n{}\n",
            line("张\u{0}三"),
            line("\u{1b}[31m李四").replace("A12345674", "B12345671"),
            line("王五")
        );
        let b = parse(&text, false);
        assert_eq!(
            messages(&b),
            [
                "line 2: name: control character U+0000 at character 2; the card refuses control \
                 characters and NUL in text",
                "line 3: name: control character U+001B at character 1; the card refuses control \
                 characters and NUL in text",
                "line 4: line: a quoted cell runs on to line 5: a quote is not closed, or a cell \
                 holds a line break",
            ]
        );
        assert_eq!(b.holders.len(), 1);
        assert_eq!(b.holders[0].0, 6);
        let b = parse("{\"card_number\":\"A12345674\",\"ssn\":\"11010519491231002X\",\"name\":\"张三\\u0000\",\"nation\":\"01\",\"birthplace\":\"110105\",\"issue_date\":\"20240101\",\"expiry_date\":\"20340101\",\"pension\":\"01\",\"medical\":\"01\",\"medical_account\":\"1101000000012345\"}", true);
        assert_eq!(
            messages(&b),
            [
                "line 1: name: control character U+0000 at character 3; the card refuses control \
              characters and NUL in text"
            ]
        );
    }

    #[test]
    fn gender_and_birth_date_are_checked_against_the_citizen_id() {
        let text = format!(
            "{HEADER}\n{}\n{}\n",
            line("张三").replace(",2,01,", ",1,01,"),
            line("张三").replace(",19491231,2024", ",19491130,2024")
        );
        let b = parse(&text, false);
        assert_eq!(
            messages(&b),
            [
                "line 2: gender: 1 (male) contradicts the citizen ID, whose 17th digit 2 is even: \
                 use 2 (female), or 9 for unspecified",
                "line 3: birth_date: \"19491130\" differs from \"19491231\", the birth date in the \
                 citizen ID (its digits 7 to 14)"
            ]
        );
        // Without the columns, or with empty cells, both come from the ID.
        let short = "card_number,ssn,name,nation,birthplace,issue_date,expiry_date,pension,medical,medical_account\nA12345674,11010519491231002X,张三,01,110105,20240101,20340101,01,01,1101000000012345\n";
        let b = csv(short).unwrap();
        assert_eq!(b.holders, [(2, Holder::sample())]);
        let b = csv(&format!(
            "{HEADER}\n{}\n",
            line("张三").replace(",2,01,110105,19491231,", ",,01,110105,,")
        ))
        .unwrap();
        assert_eq!(b.holders, [(2, Holder::sample())]);
        assert_eq!(
            messages(&parse("card_number,ssn,name,nation,birthplace,issue_date,expiry_date,pension,medical,medical_account,Name\n", false)),
            ["line 1: name: column named twice in the header"]
        );
    }

    #[test]
    fn an_empty_batch_is_an_error() {
        for text in [
            "",
            "\n\r\n",
            &format!("{HEADER}\n"),
            &format!("\u{FEFF}{HEADER}\r\n,,,,,,,,,,,\r\n"),
        ] {
            assert!(matches!(csv(text), Err(LoadError::Empty)), "{text:?}");
        }
        assert_eq!(
            csv("").unwrap_err().to_string(),
            "the batch has no holder lines"
        );
        assert!(matches!(
            read(b"\n\n", Encoding::Auto, Some(true)),
            Err(LoadError::Empty)
        ));
        let e = csv(&format!(
            "{HEADER}\n{}\n",
            line("张三").replace(",01,01,", ",01,03,")
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the batch has no valid holder: 1 refused line(s), the first: line 2: medical: \"03\" \
             is not 00, 01 or 02"
        );
        let LoadError::NoValidHolder { errors } = csv("card_number\n").unwrap_err() else {
            panic!("a header without columns has no valid holder");
        };
        assert_eq!(errors.len(), 9);
    }

    #[test]
    fn oversized_input_is_refused_before_it_is_read_whole() {
        let dir = std::env::temp_dir().join(format!("sscard-batch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.csv");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_BATCH_BYTES + 1).unwrap();
        assert!(matches!(
            load(&big),
            Err(LoadError::TooLarge {
                limit: MAX_BATCH_BYTES
            })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        // A device has no length: it is read up to one byte past the limit (its memory and time
        // are measured by the end-to-end test tests/tests/hostile_input.rs, not here).
        let e = load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the batch is larger than 67108864 bytes; split it into smaller batches"
        );
        assert!(matches!(
            load(Path::new("/nonexistent/batch.csv")),
            Err(LoadError::Io(_))
        ));
    }

    #[test]
    fn json_lines_name_their_lines_and_want_strings() {
        let ok = serde_json::to_string(&Holder::sample()).unwrap();
        let text = format!(
            "{ok}\n\n{}\nnot json\n",
            ok.replace("\"01\",\"birthplace", "1,\"birthplace")
        );
        let b = read(text.as_bytes(), Encoding::Auto, None).unwrap();
        assert_eq!(b.holders, [(1, Holder::sample())]);
        assert_eq!(b.lines, 3);
        assert_eq!(
            messages(&b),
            [
                "line 3: nation: is not a string (write it in quotes)",
                "line 4: line: not a JSON object: expected ident at line 1 column 2"
            ]
        );
    }

    #[test]
    fn lines_with_the_wrong_number_of_cells_are_named() {
        let text = format!("{HEADER}\n{},extra\n", line("张三"));
        assert_eq!(
            messages(&parse(&text, false)),
            ["line 2: line: 13 cells, the header (line 1) has 12"]
        );
    }

    #[test]
    fn synthetic_holders_are_valid_and_distinct() {
        let holders = synthetic(30_000, 'S');
        let mut ids = std::collections::HashSet::new();
        for (n, h) in &holders {
            assert_eq!(h.validate(), Ok(()), "holder of line {n}");
            assert!(ids.insert(h.ssn.clone()), "{} twice", h.ssn);
        }
        assert_eq!(holders[0].1.ssn[..14], *"11010519500101");
        assert_eq!(holders[0].1.gender, "1");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes: no panic; what is refused names a line within the input.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500),
                                       jsonl in proptest::option::of(any::<bool>())) {
            let bound = bytes.len() + 1;
            match read(&bytes, Encoding::Auto, jsonl) {
                Ok(b) => {
                    prop_assert!(!b.holders.is_empty());
                    for e in &b.errors {
                        prop_assert!((1..=bound).contains(&e.line), "{e}");
                    }
                }
                Err(LoadError::Encoding(e)) => prop_assert!((1..=bound).contains(&e.line)),
                Err(LoadError::NoValidHolder { errors }) => {
                    prop_assert!(!errors.is_empty());
                    for e in &errors {
                        prop_assert!((1..=bound).contains(&e.line), "{e}");
                    }
                }
                Err(LoadError::Empty) => {}
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        /// Spreadsheet-like CSV from valid and broken cells: every holder line is either a
        /// holder or exactly one refusal, each on a line of the text.
        #[test]
        fn every_refused_line_is_named(rows in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![
                Just("A12345674".to_string()), Just("11010519491231002X".to_string()),
                Just("张三".to_string()), Just("2".to_string()), Just("01".to_string()),
                Just("\"a,b\"".to_string()), Just("\"x\"\"y\"".to_string()), Just("\"".to_string()),
                Just("\u{0}".to_string()), Just("".to_string()), Just("\"l1\nl2\"".to_string()),
                "[ -~]{0,4}", "\\PC{0,3}",
            ], 10..14), 0..12),
            ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]) {
            let mut text = format!("{HEADER}{ending}");
            for row in &rows {
                text += &row.join(",");
                text += ending;
            }
            let b = parse(&text, false);
            let last = text.split(['\n', '\r']).count();
            prop_assert_eq!(b.lines, b.holders.len() + b.errors.len());
            for e in &b.errors {
                prop_assert!((2..=last).contains(&e.line), "{}", e);
            }
            for (n, _) in &b.holders {
                prop_assert!((2..=last).contains(n));
            }
        }
    }
}
