//! Expectations of a script line: status-word patterns (`9000`, `61xx`, `63Cx`, `6A8?`) and data
//! patterns (hex, `??` for any byte, a trailing `*` for any remaining bytes).

use super::error::{ScriptProblem, StepProblem};
use sscard_core::status::StatusWord;
use std::collections::HashMap;

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
            .all(|(want, g)| want.is_none_or(|w| w == g))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// One part of expected response data.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expected {
    /// A byte, `None` = any byte.
    Byte(Option<u8>),
    /// The bytes a variable holds when the step runs (a `save`d answer).
    Var(String),
}

/// Expected response data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataPattern {
    parts: Vec<Expected>,
    /// More bytes may follow.
    open_end: bool,
    text: String,
}

impl DataPattern {
    /// Hex with `??` wildcard bytes, `$variables` (their bytes when the step runs) and an
    /// optional trailing `*`.
    pub fn parse(text: &str) -> Result<Self, ScriptProblem> {
        let trimmed = text.trim();
        let (body, open_end) = match trimmed.strip_suffix('*') {
            Some(b) => (b, true),
            None => (trimmed, false),
        };
        let mut parts = Vec::new();
        let mut shown: Vec<String> = Vec::new();
        let mut hex = String::new();
        let flush = |hex: &mut String,
                     parts: &mut Vec<Expected>,
                     shown: &mut Vec<String>|
         -> Result<(), ScriptProblem> {
            if hex.is_empty() {
                return Ok(());
            }
            if !hex.len().is_multiple_of(2) {
                return Err(ScriptProblem::DataPatternOdd { text: text.into() });
            }
            for pair in hex.as_bytes().chunks(2) {
                let p = std::str::from_utf8(pair)
                    .map_err(|_| ScriptProblem::DataPatternNotAscii { text: text.into() })?;
                parts.push(Expected::Byte(if p == "??" {
                    None
                } else {
                    Some(
                        u8::from_str_radix(p, 16).map_err(|_| ScriptProblem::DataPatternByte {
                            pair: p.into(),
                            text: text.into(),
                        })?,
                    )
                }));
            }
            shown.push(hex.to_uppercase());
            hex.clear();
            Ok(())
        };
        for word in body.split_whitespace() {
            match word.strip_prefix('$') {
                Some(name) => {
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(ScriptProblem::NotAVariable { word: word.into() });
                    }
                    flush(&mut hex, &mut parts, &mut shown)?;
                    parts.push(Expected::Var(name.into()));
                    shown.push(word.into());
                }
                None => hex.push_str(word),
            }
        }
        flush(&mut hex, &mut parts, &mut shown)?;
        let mut text = shown.join(" ");
        if open_end {
            text.push('*');
        }
        Ok(Self {
            parts,
            open_end,
            text,
        })
    }

    /// Whether `data` matches, the pattern's variables read from `vars`; a variable that is
    /// not set is an error, never a match.
    pub fn matches(
        &self,
        data: &[u8],
        vars: &HashMap<String, Vec<u8>>,
    ) -> Result<bool, StepProblem> {
        let mut want: Vec<Option<u8>> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            match part {
                Expected::Byte(b) => want.push(*b),
                Expected::Var(name) => want.extend(
                    vars.get(name)
                        .ok_or_else(|| StepProblem::UnknownVariable { name: name.clone() })?
                        .iter()
                        .map(|b| Some(*b)),
                ),
            }
        }
        let len_ok = if self.open_end {
            data.len() >= want.len()
        } else {
            data.len() == want.len()
        };
        Ok(len_ok
            && want
                .iter()
                .zip(data)
                .all(|(want, got)| want.is_none_or(|w| w == *got)))
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
        let none = HashMap::new();
        let p = DataPattern::parse("0110 ?? 01*").unwrap();
        assert_eq!(p.text(), "0110??01*");
        assert!(p.matches(&[1, 0x10, 7, 1, 9, 9], &none).unwrap());
        assert!(!p.matches(&[1, 0x10, 7], &none).unwrap());
        assert!(!p.matches(&[1, 0x11, 7, 1], &none).unwrap());
        let p = DataPattern::parse("0102").unwrap();
        assert!(p.matches(&[1, 2], &none).unwrap());
        assert!(!p.matches(&[1, 2, 3], &none).unwrap());
        assert_eq!(
            DataPattern::parse("012").unwrap_err().to_string(),
            "data pattern \"012\" has an odd number of digits"
        );
    }

    #[test]
    fn data_patterns_with_variables() {
        let vars = HashMap::from([("answer".to_string(), vec![0xAA, 0xBB])]);
        let p = DataPattern::parse("01 $answer ?? *").unwrap();
        assert_eq!(p.text(), "01 $answer ??*");
        assert!(p.matches(&[1, 0xAA, 0xBB, 7], &vars).unwrap());
        assert!(p.matches(&[1, 0xAA, 0xBB, 7, 8], &vars).unwrap());
        assert!(!p.matches(&[1, 0xAA, 0xBC, 7], &vars).unwrap());
        assert!(!p.matches(&[1, 0xAA, 0xBB], &vars).unwrap());
        let p = DataPattern::parse("$answer").unwrap();
        assert!(p.matches(&[0xAA, 0xBB], &vars).unwrap());
        assert!(!p.matches(&[0xAA, 0xBB, 0], &vars).unwrap());
        assert_eq!(
            p.matches(&[0xAA, 0xBB], &HashMap::new()),
            Err(StepProblem::UnknownVariable {
                name: "answer".into()
            })
        );
        assert_eq!(
            DataPattern::parse("01 $an-swer").unwrap_err(),
            ScriptProblem::NotAVariable {
                word: "$an-swer".into()
            }
        );
        // Hex on both sides of a variable is counted per side.
        assert_eq!(
            DataPattern::parse("0 $answer 1").unwrap_err(),
            ScriptProblem::DataPatternOdd {
                text: "0 $answer 1".into()
            }
        );
    }
}
