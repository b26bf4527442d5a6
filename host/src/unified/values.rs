//! Record values as text (PROFILE section 10): `pWriteData` and the output of `iReadCard` have
//! the layout of `pFileAddr` with each record identifier replaced by its value. Names as text,
//! dates `YYYYMMDD`, BCD and binary fields as hex digits, ASCII fields as they are. Every value is
//! encoded through the profile's file table (length, encoding, rule) and must decode back to
//! itself under the card's read-back rules ([`fields::decode`]) before it is written.

use super::error::{strict_hex, UnifiedError};
use super::file_addr::{file_segments, parse_path, FileAddr};
use crate::ssc::SscError;
use sscard_core::hexfmt::to_hex;
use sscard_core::profile::fields::{self, valid_date};
use sscard_core::profile::files::{Encoding, FileDef, RecordDef};
use sscard_core::profile::holder::FileRecords;
use sscard_core::tlv::Record;

/// The longest `pWriteData` accepted, in bytes (the unified interface's buffers are 2048).
pub const MAX_WRITE_DATA: usize = 2048;

/// `pWriteData` paired with its `pFileAddr`: every record's value encoded into the bytes the
/// record holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteData {
    files: Vec<FileRecords>,
}

impl WriteData {
    /// Parses `pWriteData` against `addr`: the same files in the same order (either path
    /// spelling), one value per record identifier, each followed by `|`, each file by `$`.
    /// A value holding `$`, a control character, or one its record cannot hold is refused
    /// (−23), naming the file and tag, never quoting the value.
    pub fn parse(addr: &FileAddr, line: &str) -> Result<Self, UnifiedError> {
        const WHAT: &str = "pWriteData";
        let expected = || addr.to_string();
        let segments = file_segments(WHAT, line, MAX_WRITE_DATA)?;
        if segments.len() != addr.files().len() {
            return Err(UnifiedError::DataShape {
                problem: format!("{} files", segments.len()),
                expected: expected(),
            });
        }
        let mut files = Vec::with_capacity(segments.len());
        for (segment, items) in segments.into_iter().zip(addr.files()) {
            let Some(body) = segment.strip_suffix('|') else {
                return Err(UnifiedError::Layout {
                    what: WHAT,
                    problem: "a path or value is not followed by '|'",
                });
            };
            let mut parts = body.split('|');
            let path = parts.next().unwrap_or_default();
            if parse_path(path).map(|(f, _)| f) != Some(items.file) {
                return Err(UnifiedError::DataShape {
                    problem: format!("a file is not {}", items.path()),
                    expected: expected(),
                });
            }
            let values: Vec<&str> = parts.collect();
            if values.len() != items.records.len() {
                return Err(UnifiedError::DataShape {
                    problem: format!("{} has {} values", items.file.name, values.len()),
                    expected: expected(),
                });
            }
            let mut records = Vec::with_capacity(values.len());
            for (text, rec) in values.into_iter().zip(&items.records) {
                records.push((*rec, encode(items.file, rec, text)?));
            }
            files.push((items.file, records));
        }
        Ok(Self { files })
    }

    /// Every file with its records' bytes (the station's [`FileRecords`] shape), in the
    /// caller's order.
    pub fn files(&self) -> &[FileRecords] {
        &self.files
    }
}

/// The bytes record `rec` of `file` holds for the value `text`, refused (−23) when they would
/// not read back as `text`.
pub fn encode(file: &FileDef, rec: &RecordDef, text: &str) -> Result<Vec<u8>, UnifiedError> {
    let bad = |problem: String| UnifiedError::BadValue {
        file: file.name,
        tag: rec.tag,
        field: rec.name,
        problem,
    };
    let len = rec.len as usize;
    if text.contains('$') {
        return Err(bad("holds '$', the unified line's file separator".into()));
    }
    if let Some(at) = text.chars().position(char::is_control) {
        return Err(bad(format!("a control character at character {}", at + 1)));
    }
    if text.is_empty() {
        // An empty text field is a cleared record (a name without extension); other fields
        // have no empty value.
        return match rec.encoding {
            Encoding::Gbk => Ok(vec![0; len]),
            _ => Err(bad("is empty".into())),
        };
    }
    let bytes = match rec.encoding {
        Encoding::Binary => strict_hex(text)
            .filter(|b| b.len() == len)
            .ok_or_else(|| bad(format!("is not {} hex digits", 2 * len)))?,
        Encoding::Bcd => {
            if text.len() != 2 * len || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("is not {} digits", 2 * len)));
            }
            strict_hex(text).expect("digits are hex")
        }
        Encoding::Date => {
            if !valid_date(text) {
                return Err(bad("is not a date YYYYMMDD".into()));
            }
            strict_hex(text).expect("digits are hex")
        }
        Encoding::Ascii => {
            if !text.bytes().all(|b| (0x20..0x7F).contains(&b)) || text.len() > len {
                return Err(bad(format!("is not 1 to {len} printable ASCII characters")));
            }
            let mut v = text.as_bytes().to_vec();
            v.resize(len, 0);
            v
        }
        Encoding::Gbk => {
            let (gbk, _, unmappable) = encoding_rs::GBK.encode(text);
            if unmappable {
                return Err(bad("cannot be written in GBK".into()));
            }
            if gbk.len() > len {
                return Err(bad(format!(
                    "takes {} GBK bytes, the record holds {len}",
                    gbk.len()
                )));
            }
            let mut v = gbk.into_owned();
            v.resize(len, 0);
            v
        }
        _ => return Err(bad("has an encoding this host does not write".into())),
    };
    // The card's read-back rules (check characters, code lists, card identification code)
    // decide, and the value must come back unchanged.
    match decode(file, rec, &bytes) {
        Ok(back) if back.eq_ignore_ascii_case(text) => Ok(bytes),
        Ok(_) => Err(bad("would read back from the card as another value".into())),
        Err(SscError::Field(e)) => Err(bad(e.problem.to_string())),
        Err(_) => Err(bad("cannot be carried by the unified line".into())),
    }
}

/// The text of a record's bytes for the unified line: empty when unwritten (all zero), dates
/// `YYYYMMDD`, binary as upper-case hex. A value holding `|` or `$` cannot be carried.
pub fn decode(file: &FileDef, rec: &RecordDef, value: &[u8]) -> Result<String, SscError> {
    if value.iter().all(|&b| b == 0) {
        return Ok(String::new());
    }
    let text = fields::decode(file, rec, value)?;
    let text = match rec.encoding {
        Encoding::Date => text.replace('-', ""),
        Encoding::Binary => to_hex(value),
        _ => text,
    };
    if text.contains(['|', '$']) {
        return Err(UnifiedError::Unrepresentable {
            file: file.name,
            tag: rec.tag,
        }
        .into());
    }
    Ok(text)
}

/// The value of `rec` among a file's records as the unified line carries it (empty when the
/// record is absent or unwritten).
pub fn value_of(file: &FileDef, rec: &RecordDef, records: &[Record]) -> Result<String, SscError> {
    match fields::raw(file, rec, records)? {
        Some(v) => decode(file, rec, v),
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::classify::Classified;
    use sscard_core::profile::files::{ef05, ef06, ef07};

    fn rec(file: &FileDef, tag: u8) -> &'static RecordDef {
        sscard_core::profile::files::by_name(file.name)
            .unwrap()
            .record_by_tag(tag)
            .unwrap()
    }

    #[test]
    fn values_encode_through_the_file_table() {
        let name = rec(ef06(), 0x09);
        let gbk = encode(ef06(), name, "张三").unwrap();
        assert_eq!(&gbk[..4], &[0xD5, 0xC5, 0xC8, 0xFD]);
        assert_eq!(gbk.len(), 30);
        assert_eq!(encode(ef06(), rec(ef06(), 0x4E), "").unwrap(), vec![0; 20]);
        assert_eq!(
            encode(ef05(), rec(ef05(), 0x05), "20240101").unwrap(),
            vec![0x20, 0x24, 0x01, 0x01]
        );
        assert_eq!(
            encode(ef05(), rec(ef05(), 0x07), "A12345674").unwrap(),
            b"A12345674".to_vec()
        );
        assert_eq!(
            encode(ef07(), rec(ef07(), 0x22), "1101000000012345").unwrap(),
            vec![0x11, 0x01, 0, 0, 0, 0x01, 0x23, 0x45]
        );
        let id = encode(
            ef05(),
            rec(ef05(), 0x01),
            "110100d15600000599110145000000a1",
        )
        .unwrap();
        assert_eq!(to_hex(&id), "110100D15600000599110145000000A1");
        assert_eq!(decode(ef05(), rec(ef05(), 0x01), &id).unwrap(), to_hex(&id));
        assert_eq!(
            decode(ef05(), rec(ef05(), 0x05), &[0x20, 0x24, 0x01, 0x01]).unwrap(),
            "20240101"
        );
    }

    #[test]
    fn values_a_record_cannot_hold_are_refused_with_minus_23() {
        let cases: &[(&FileDef, u8, &str, &str)] = &[
            (
                ef05(),
                0x07,
                "A12345675",
                "\"A12345675\" fails its check character",
            ),
            (
                ef05(),
                0x07,
                "A123456749",
                "is not 1 to 9 printable ASCII characters",
            ),
            (ef05(), 0x05, "20240230", "is not a date YYYYMMDD"),
            (ef05(), 0x01, "110100D156", "is not 32 hex digits"),
            (
                ef05(),
                0x01,
                "1101AAD15600000599110145000000A1",
                "1101AAD15600000599110145000000A1 is not region BCD ‖ D156000005 ‖ serial",
            ),
            (ef06(), 0x0A, "3", "\"3\" is not 1, 2 or 9"),
            (ef06(), 0x0B, "1A", "is not 2 digits"),
            (
                ef06(),
                0x09,
                "张三$",
                "holds '$', the unified line's file separator",
            ),
            (
                ef06(),
                0x09,
                "张\u{7}三",
                "a control character at character 2",
            ),
            (
                ef06(),
                0x09,
                &"王".repeat(16),
                "takes 32 GBK bytes, the record holds 30",
            ),
            (ef06(), 0x09, "\u{1F600}", "cannot be written in GBK"),
            (ef06(), 0x08, "", "is empty"),
        ];
        for (file, tag, text, problem) in cases {
            let r = rec(file, *tag);
            let e = encode(file, r, text).unwrap_err();
            assert_eq!(
                e,
                UnifiedError::BadValue {
                    file: file.name,
                    tag: *tag,
                    field: r.name,
                    problem: problem.to_string()
                },
                "{text:?}"
            );
            assert_eq!(e.return_code(), -23);
        }
    }

    #[test]
    fn write_data_pairs_values_with_the_address_in_order() {
        let addr = FileAddr::parse("SSSEEF05|07|05|$SSSEEF06|09|4E|$").unwrap();
        let data = WriteData::parse(&addr, "MFEF05|A12345674|20240101|$SSSEEF06|张三||$").unwrap();
        let files = data.files();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].1[0].0.tag, 0x07);
        assert_eq!(files[0].1[1].1, vec![0x20, 0x24, 0x01, 0x01]);
        assert_eq!(files[1].1[1].1, vec![0; 20]);
        let shape = |line: &str| WriteData::parse(&addr, line).unwrap_err();
        assert_eq!(
            shape("SSSEEF05|A12345674|$SSSEEF06|张三||$"),
            UnifiedError::DataShape {
                problem: "EF05 has 1 values".into(),
                expected: addr.to_string()
            }
        );
        assert_eq!(
            shape("SSSEEF06|张三||$SSSEEF05|A12345674|20240101|$"),
            UnifiedError::DataShape {
                problem: "a file is not SSSEEF05".into(),
                expected: addr.to_string()
            }
        );
        assert_eq!(
            shape("SSSEEF05|A12345674|20240101|$"),
            UnifiedError::DataShape {
                problem: "1 files".into(),
                expected: addr.to_string()
            }
        );
        // A '$' inside a value splits the file: the shape no longer matches.
        assert!(matches!(
            shape("SSSEEF05|A12345674|20240101|$SSSEEF06|张$三||$"),
            UnifiedError::DataShape { .. } | UnifiedError::Layout { .. }
        ));
        assert_eq!(
            shape("SSSEEF05|A12345674|20240101|$SSSEEF06|张三||"),
            UnifiedError::Layout {
                what: "pWriteData",
                problem: "the last file is not followed by '$'"
            }
        );
        assert_eq!(shape(""), UnifiedError::Empty { what: "pWriteData" });
        assert_eq!(
            shape(&"9".repeat(3000)),
            UnifiedError::TooLong {
                what: "pWriteData",
                len: 3000,
                max: MAX_WRITE_DATA
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn write_data_parse_never_panics(line in proptest::prelude::any::<String>()) {
            let addr = FileAddr::parse("SSSEEF05|01|07|$SSSEEF06|08|09|4E|$").unwrap();
            if let Err(e) = WriteData::parse(&addr, &line) {
                proptest::prop_assert_eq!(e.return_code(), -23);
            }
        }
    }
}
