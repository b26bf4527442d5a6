//! Expectations of a script line: status-word patterns (`9000`, `61xx`, `63Cx`, `6A8?`) and data
//! patterns (hex, `??` for any byte, a trailing `*` for any remaining bytes).

use super::error::ScriptProblem;
use sscard_core::status::StatusWord;

/// A status word with wildcard nibbles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwPattern {
    /// 4 nibbles, `None` = any.
    nibbles: [Option<u8>; 4],
    text: String,
}

impl SwPattern {
    /// `9000`, `61xx`, `63Cx`, `6A8?` (`x`, `X` and `?` match any nibble); `any` matches all.
    pub fn parse(text: &str) -> Result<Self, ScriptProblem> {
        if text.eq_ignore_ascii_case("any") {
            return Ok(Self {
                nibbles: [None; 4],
                text: "any".into(),
            });
        }
        let chars: Vec<char> = text.chars().collect();
        if chars.len() != 4 {
            return Err(ScriptProblem::SwPatternLength { text: text.into() });
        }
        let mut nibbles = [None; 4];
        for (i, c) in chars.iter().enumerate() {
            nibbles[i] = match c {
                'x' | 'X' | '?' => None,
                c => Some(c.to_digit(16).ok_or_else(|| ScriptProblem::SwPatternChar {
                    ch: *c,
                    text: text.into(),
                })? as u8),
            };
        }
        Ok(Self {
            nibbles,
            text: text.to_uppercase().replace('X', "x"),
        })
    }

    pub fn matches(&self, sw: StatusWord) -> bool {
        let got = [
            (sw.0 >> 12) as u8 & 15,
            (sw.0 >> 8) as u8 & 15,
            (sw.0 >> 4) as u8 & 15,
            sw.0 as u8 & 15,
        ];
        self.nibbles
            .iter()
            .zip(got)
            .all(|(want, g)| want.map_or(true, |w| w == g))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Expected response data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPattern {
    /// Bytes, `None` = any byte.
    bytes: Vec<Option<u8>>,
    /// More bytes may follow.
    open_end: bool,
    text: String,
}

impl DataPattern {
    /// Hex with `??` wildcard bytes and an optional trailing `*`.
    pub fn parse(text: &str) -> Result<Self, ScriptProblem> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (body, open_end) = match compact.strip_suffix('*') {
            Some(b) => (b.to_string(), true),
            None => (compact.clone(), false),
        };
        if body.len() % 2 != 0 {
            return Err(ScriptProblem::DataPatternOdd { text: text.into() });
        }
        let mut bytes = Vec::with_capacity(body.len() / 2);
        for pair in body.as_bytes().chunks(2) {
            let p = std::str::from_utf8(pair)
                .map_err(|_| ScriptProblem::DataPatternNotAscii { text: text.into() })?;
            bytes.push(if p == "??" {
                None
            } else {
                Some(
                    u8::from_str_radix(p, 16).map_err(|_| ScriptProblem::DataPatternByte {
                        pair: p.into(),
                        text: text.into(),
                    })?,
                )
            });
        }
        Ok(Self {
            bytes,
            open_end,
            text: compact.to_uppercase(),
        })
    }

    pub fn matches(&self, data: &[u8]) -> bool {
        let len_ok = if self.open_end {
            data.len() >= self.bytes.len()
        } else {
            data.len() == self.bytes.len()
        };
        len_ok
            && self
                .bytes
                .iter()
                .zip(data)
                .all(|(want, got)| want.map_or(true, |w| w == *got))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_word_patterns() {
        let p = SwPattern::parse("63Cx").unwrap();
        assert!(p.matches(StatusWord(0x63C2)) && !p.matches(StatusWord(0x6300)));
        assert!(SwPattern::parse("6A8?")
            .unwrap()
            .matches(StatusWord(0x6A88)));
        assert!(SwPattern::parse("61xx")
            .unwrap()
            .matches(StatusWord(0x6110)));
        assert!(SwPattern::parse("any").unwrap().matches(StatusWord(0x1234)));
        assert_eq!(
            SwPattern::parse("900").unwrap_err().to_string(),
            "status word pattern \"900\" needs 4 characters (e.g. 9000, 61xx, 63Cx)"
        );
        assert_eq!(
            SwPattern::parse("90G0").unwrap_err().to_string(),
            "'G' in status word pattern \"90G0\" is not hex, x or ?"
        );
    }

    #[test]
    fn data_patterns() {
        let p = DataPattern::parse("0110 ?? 01*").unwrap();
        assert!(p.matches(&[1, 0x10, 7, 1, 9, 9]));
        assert!(!p.matches(&[1, 0x10, 7]));
        assert!(!p.matches(&[1, 0x11, 7, 1]));
        assert!(DataPattern::parse("0102").unwrap().matches(&[1, 2]));
        assert!(!DataPattern::parse("0102").unwrap().matches(&[1, 2, 3]));
        assert_eq!(
            DataPattern::parse("012").unwrap_err().to_string(),
            "data pattern \"012\" has an odd number of digits"
        );
    }
}
