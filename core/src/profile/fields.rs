//! Reading field values through the file table: every field is checked against its encoding and
//! rule. An unwritten field (absent, or all zero as manufactured) is `None`; a field that does
//! not parse is an error naming it, never reported as valid. Dates are validated here once.

use super::files::{Encoding, FileDef, RecordDef, Rule};
use crate::hexfmt::to_hex;
use crate::tlv::Record;

/// What is wrong with a field's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    #[error("{len} bytes, the profile has {expected}")]
    Length { len: usize, expected: usize },
    #[error("record {tag:02X} is missing or empty")]
    Missing { tag: u8 },
    #[error("{hex} is not printable ASCII")]
    NotAscii { hex: String },
    #[error("{digits} is not BCD")]
    NotBcd { digits: String },
    #[error("{digits} is not a date")]
    NotADate { digits: String },
    #[error("text after the zero padding")]
    TextAfterPadding,
    #[error("{hex} is not GBK text")]
    NotGbk { hex: String },
    /// Text holding `|`, which separates the unified interface's output fields (PROFILE
    /// section 7): a name with it would shift every field after it. (The value is not quoted:
    /// it is personal data.)
    #[error("holds '|', the unified interface's field separator")]
    Separator,
    #[error("{hex} is not region BCD ‖ D156000005 ‖ serial")]
    NotACardId { hex: String },
    #[error("{value:?} fails its check character")]
    CheckCharacter { value: String },
    #[error("{value:?} is not {allowed}")]
    NotAllowed { value: String, allowed: String },
}

/// A field of a file that does not hold what the profile says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} {field} is malformed: {problem}")]
pub struct FieldError {
    pub file: &'static str,
    pub field: &'static str,
    pub problem: FieldProblem,
}

impl FieldError {
    fn new(file: &FileDef, rec: &RecordDef, problem: FieldProblem) -> Self {
        Self {
            file: file.name,
            field: rec.name,
            problem,
        }
    }

    /// Whether this is the card identification code (unified code −20).
    pub fn is_card_id(&self) -> bool {
        matches!(self.problem, FieldProblem::NotACardId { .. })
            || (self.file == "EF05" && self.field == "card identification code")
    }
}

/// Whether `d` is a calendar date written `YYYYMMDD` (years 1900–2199).
pub fn valid_date(d: &str) -> bool {
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (y, m, day): (u32, u32, u32) = (
        d[..4].parse().unwrap_or(0),
        d[4..6].parse().unwrap_or(0),
        d[6..].parse().unwrap_or(0),
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    (1900..=2199).contains(&y) && (1..=days).contains(&day)
}

/// Check character of a 9-character card number (PROFILE section 2): weights 3 7 9 10 5 8 4 2,
/// digits by value and `A`=10…`Z`=35, r = 11 − sum mod 11, 10 → `X`, 11 → `0`.
pub fn card_number_check(first8: &str) -> Option<char> {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    if first8.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first8.chars().zip(W) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        r => char::from_digit(r, 10).unwrap_or('0'),
    })
}

/// Check character of an 18-character citizen ID (ISO 7064 MOD 11-2).
pub fn citizen_id_check(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut sum = 0u32;
    for (i, b) in first17.bytes().enumerate() {
        let w = (1u32 << (17 - i)) % 11;
        sum += (b - b'0') as u32 * w;
    }
    let r = (12 - sum % 11) % 11;
    Some(if r == 10 {
        'X'
    } else {
        char::from_digit(r, 10).unwrap_or('0')
    })
}

/// Whether `cn` is a card number with a valid check character.
pub fn valid_card_number(cn: &str) -> bool {
    cn.len() == 9
        && cn
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        && card_number_check(&cn[..8]) == cn.chars().nth(8)
}

/// Whether `id` is a citizen ID number with a valid check character.
pub fn valid_citizen_id(id: &str) -> bool {
    id.len() == 18 && id.is_ascii() && citizen_id_check(&id[..17]) == id.chars().nth(17)
}

/// The value of the record `rec` of `file` among `records`, if written (not absent, not all
/// zero) and of the profile's length.
pub fn raw<'a>(
    file: &FileDef,
    rec: &RecordDef,
    records: &'a [Record],
) -> Result<Option<&'a [u8]>, FieldError> {
    match records.iter().find(|r| r.tag == rec.tag) {
        None => Ok(None),
        Some(r) if r.value.len() != rec.len as usize => Err(FieldError::new(
            file,
            rec,
            FieldProblem::Length {
                len: r.value.len(),
                expected: rec.len as usize,
            },
        )),
        Some(r) if r.value.iter().all(|&b| b == 0) => Ok(None),
        Some(r) => Ok(Some(&r.value)),
    }
}

/// Decodes one written value by its encoding and checks its rule: ASCII and GBK without the
/// padding, BCD as digits, dates as `YYYY-MM-DD`, binary as hex.
pub fn decode(file: &FileDef, rec: &RecordDef, value: &[u8]) -> Result<String, FieldError> {
    let bad = |p| FieldError::new(file, rec, p);
    let text = match rec.encoding {
        Encoding::Binary => to_hex(value),
        Encoding::Ascii => {
            let end = value.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            let text = &value[..end];
            if !text.iter().all(|b| (0x20..0x7F).contains(b)) {
                return Err(bad(FieldProblem::NotAscii { hex: to_hex(value) }));
            }
            String::from_utf8_lossy(text).into_owned()
        }
        Encoding::Bcd | Encoding::Date => {
            let digits = to_hex(value);
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(FieldProblem::NotBcd { digits }));
            }
            if rec.encoding == Encoding::Date {
                if !valid_date(&digits) {
                    return Err(bad(FieldProblem::NotADate { digits }));
                }
                format!("{}-{}-{}", &digits[..4], &digits[4..6], &digits[6..])
            } else {
                digits
            }
        }
        Encoding::Gbk => {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            if value[end..].iter().any(|&b| b != 0) {
                return Err(bad(FieldProblem::TextAfterPadding));
            }
            let (text, _, errors) = encoding_rs::GBK.decode(&value[..end]);
            if errors || text.chars().any(char::is_control) {
                return Err(bad(FieldProblem::NotGbk {
                    hex: to_hex(&value[..end]),
                }));
            }
            if text.contains('|') {
                return Err(bad(FieldProblem::Separator));
            }
            text.into_owned()
        }
    };
    match rec.rule {
        Rule::None => {}
        Rule::CardId => {
            let region_bcd = to_hex(&value[..3.min(value.len())])
                .bytes()
                .all(|b| b.is_ascii_digit());
            if value.len() != 16 || !region_bcd || value[3..8] != [0xD1, 0x56, 0x00, 0x00, 0x05] {
                return Err(bad(FieldProblem::NotACardId { hex: to_hex(value) }));
            }
        }
        Rule::CardNumber if !valid_card_number(&text) => {
            return Err(bad(FieldProblem::CheckCharacter { value: text }))
        }
        Rule::CitizenId if !valid_citizen_id(&text) => {
            return Err(bad(FieldProblem::CheckCharacter { value: text }))
        }
        Rule::OneOf(allowed) if !allowed.contains(&text.as_str()) => {
            return Err(bad(FieldProblem::NotAllowed {
                value: text,
                allowed: one_of(allowed),
            }))
        }
        _ => {}
    }
    Ok(text)
}

/// `1, 2 or 9`.
fn one_of(allowed: &[&str]) -> String {
    match allowed.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => allowed.concat(),
    }
}

/// The decoded value and the bytes of the field `key` of `file`, which must be written
/// ([`FieldProblem::Missing`] otherwise).
pub fn required<'a>(
    file: &FileDef,
    key: &str,
    records: &'a [Record],
) -> Result<(String, &'a [u8]), FieldError> {
    let rec = file
        .record_by_key(key)
        .unwrap_or_else(|| panic!("{} has no field {key}", file.name));
    let value = raw(file, rec, records)?
        .ok_or_else(|| FieldError::new(file, rec, FieldProblem::Missing { tag: rec.tag }))?;
    Ok((decode(file, rec, value)?, value))
}

/// The decoded value of the field `key` of `file` among `records`: empty when unwritten.
pub fn text(file: &FileDef, key: &str, records: &[Record]) -> Result<String, FieldError> {
    let rec = file
        .record_by_key(key)
        .unwrap_or_else(|| panic!("{} has no field {key}", file.name));
    match raw(file, rec, records)? {
        Some(v) => decode(file, rec, v),
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::files::{ef05, ef06};
    use super::*;
    use crate::hexfmt::parse_hex;

    fn r(tag: u8, hex: &str) -> Record {
        Record::new(tag, parse_hex(hex).unwrap()).unwrap()
    }

    #[test]
    fn impossible_fields_are_errors_not_values() {
        let birth = ef06().record_by_key("birth_date").unwrap();
        assert_eq!(
            decode(ef06(), birth, &[0x20, 0x24, 0x02, 0x30])
                .unwrap_err()
                .to_string(),
            "EF06 birth date is malformed: 20240230 is not a date"
        );
        assert_eq!(
            decode(ef06(), birth, &[0x20, 0x24, 0x02, 0x29]).unwrap(),
            "2024-02-29"
        );
        assert_eq!(
            decode(ef06(), birth, &[0x20, 0x2A, 0x01, 0x01])
                .unwrap_err()
                .problem,
            FieldProblem::NotBcd {
                digits: "202A0101".into()
            }
        );
        let name = ef06().record_by_key("name").unwrap();
        assert_eq!(
            decode(ef06(), name, &[0xD5, 0xC5, 0xFF, 0xFF])
                .unwrap_err()
                .problem,
            FieldProblem::NotGbk {
                hex: "D5C5FFFF".into()
            }
        );
        // '|' separates the unified output's fields: a name holding it is malformed.
        let piped = encoding_rs::GBK.encode("张三|X").0;
        let mut value = piped.to_vec();
        value.resize(30, 0);
        assert_eq!(
            decode(ef06(), name, &value).unwrap_err().to_string(),
            "EF06 name is malformed: holds '|', the unified interface's field separator"
        );
        let records = [
            r(0x0A, "32"),
            r(0x09, &format!("D5C5C8FD{}", "00".repeat(26))),
        ];
        assert_eq!(text(ef06(), "name", &records).unwrap(), "张三");
        assert_eq!(text(ef06(), "gender", &records).unwrap(), "2");
        assert_eq!(text(ef06(), "ssn", &records).unwrap(), "");
        assert_eq!(
            text(ef06(), "gender", &[r(0x0A, "33")])
                .unwrap_err()
                .to_string(),
            "EF06 gender is malformed: \"3\" is not 1, 2 or 9"
        );
        assert_eq!(
            text(ef06(), "ssn", &[r(0x08, &to_hex(b"110105194912310021"))])
                .unwrap_err()
                .to_string(),
            "EF06 social security number is malformed: \"110105194912310021\" fails its check character"
        );
        assert_eq!(
            text(ef05(), "card_id", &[r(0x01, "110100D15600000599")])
                .unwrap_err()
                .problem,
            FieldProblem::Length {
                len: 9,
                expected: 16
            }
        );
        let e = text(
            ef05(),
            "card_id",
            &[r(0x01, "1101AAD15600000599110145000000A1")],
        )
        .unwrap_err();
        assert!(e.is_card_id(), "{e}");
    }

    #[test]
    fn dates_and_check_characters() {
        assert!(valid_date("20240229") && !valid_date("20230229") && !valid_date("18991231"));
        assert_eq!(card_number_check("A1234567"), Some('4'));
        assert!(valid_card_number("A12345674") && !valid_card_number("A12345675"));
        // GB 11643 example number.
        assert_eq!(citizen_id_check("11010519491231002"), Some('X'));
        assert_eq!(citizen_id_check("1101051949123100"), None);
        assert!(valid_citizen_id("11010519491231002X"));
    }
}
