//! The text encoding of every string crossing the C boundary, both ways: GBK by default
//! (Windows-era callers pass ANSI buffers), UTF-8 when configured. Input that is not valid in
//! the encoding, and output the encoding cannot represent, are errors: nothing is replaced.
//!
//! A GBK character's second byte may be `0x7C`, the byte of `|` (`亅` is `81 7C`): a caller
//! splitting the line on that byte would cut such a character into a field separator. So text
//! whose GBK bytes hold a `|` that is not the character `|` is refused both ways: output read
//! from a card (−999: the card holds what the interface cannot carry) and a caller's input
//! (−23: it would be written to the card and be unreadable through this interface). `$`, the
//! other separator of the grammar, is `0x24`, below every GBK second byte (`0x40`..); UTF-8
//! never puts an ASCII byte inside a character.

use zeroize::Zeroizing;

/// A text encoding of the C interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gbk,
    Utf8,
}

/// Text that does not fit the configured encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// An input string (named) is not valid in the encoding.
    #[error("{argument} is not valid {encoding} text")]
    Input {
        argument: &'static str,
        encoding: &'static str,
    },
    /// The output holds a character the encoding cannot represent.
    #[error("the output holds a character that {encoding} cannot represent; configure encoding = \"utf-8\"")]
    Output { encoding: &'static str },
    /// The output holds a character whose GBK bytes include `|`, the field separator.
    #[error("the output holds {character:?}, whose GBK bytes include the separator byte `|` (7C): a caller splitting on `|` would cut it; configure encoding = \"utf-8\"")]
    SeparatorInOutput { character: char },
    /// An input string holds a character whose GBK bytes include `|`.
    #[error("{argument} holds {character:?}, whose GBK bytes include the separator byte `|` (7C), which cannot be told from a separator")]
    SeparatorInInput {
        argument: &'static str,
        character: char,
    },
}

/// The first character of `text` other than `|` whose GBK bytes hold a `|` byte.
fn hiding_separator(text: &str) -> Option<char> {
    let mut buf = [0u8; 4];
    text.chars().find(|&c| {
        c != '|' && {
            let (bytes, _, _) = encoding_rs::GBK.encode(c.encode_utf8(&mut buf));
            bytes.contains(&b'|')
        }
    })
}

fn separators(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'|').count()
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gbk => "GBK",
            Self::Utf8 => "UTF-8",
        }
    }

    /// `bytes` (a C string without its NUL) as text. `argument` names it in the error.
    pub fn decode(self, bytes: &[u8], argument: &'static str) -> Result<String, EncodingError> {
        let text = match self {
            Self::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_string),
            Self::Gbk => encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|c| c.into_owned()),
        }
        .ok_or(EncodingError::Input {
            argument,
            encoding: self.name(),
        })?;
        if self == Self::Gbk && separators(bytes) != separators(text.as_bytes()) {
            if let Some(character) = hiding_separator(&text) {
                return Err(EncodingError::SeparatorInInput {
                    argument,
                    character,
                });
            }
        }
        Ok(text)
    }

    /// [`Encoding::decode`] of a secret (a PIN): the text lives in zeroized memory.
    pub fn decode_secret(
        self,
        bytes: &[u8],
        argument: &'static str,
    ) -> Result<Zeroizing<String>, EncodingError> {
        self.decode(bytes, argument).map(Zeroizing::new)
    }

    /// `text` in the encoding (without a NUL).
    pub fn encode(self, text: &str) -> Result<Vec<u8>, EncodingError> {
        match self {
            Self::Utf8 => Ok(text.as_bytes().to_vec()),
            Self::Gbk => {
                let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
                if unmappable {
                    return Err(EncodingError::Output {
                        encoding: self.name(),
                    });
                }
                if separators(&bytes) != separators(text.as_bytes()) {
                    if let Some(character) = hiding_separator(text) {
                        return Err(EncodingError::SeparatorInOutput { character });
                    }
                }
                Ok(bytes.into_owned())
            }
        }
    }

    /// `text` in the encoding, a character it cannot represent replaced by `?`: for error
    /// texts, which must always reach the caller.
    pub fn encode_lossy(self, text: &str) -> Vec<u8> {
        match self {
            Self::Utf8 => text.as_bytes().to_vec(),
            Self::Gbk => {
                let mut out = Vec::with_capacity(text.len());
                let mut buf = [0u8; 4];
                for c in text.chars() {
                    match self.encode(c.encode_utf8(&mut buf)) {
                        Ok(b) => out.extend_from_slice(&b),
                        Err(_) => out.push(b'?'),
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_both_ways() {
        // 张三 in GBK (PROFILE section 2: the name record's encoding).
        assert_eq!(Encoding::Gbk.encode("张三|").unwrap(), b"\xD5\xC5\xC8\xFD|");
        assert_eq!(
            Encoding::Gbk
                .decode(b"\xD5\xC5\xC8\xFD|", "pWriteData")
                .unwrap(),
            "张三|"
        );
        assert_eq!(Encoding::Utf8.encode("张三").unwrap(), "张三".as_bytes());
        assert_eq!(
            Encoding::Utf8
                .decode("张三".as_bytes(), "pWriteData")
                .unwrap(),
            "张三"
        );
    }

    #[test]
    fn a_gbk_character_holding_the_separator_byte_is_refused() {
        // 亅 is 81 7C in GBK: "…|亅一|…" would split into an extra field.
        assert_eq!(
            Encoding::Gbk.encode("张三|亅一|男|"),
            Err(EncodingError::SeparatorInOutput { character: '亅' })
        );
        assert_eq!(
            Encoding::Gbk
                .decode(b"01|\x81|\xD2\xBB|", "pWriteData")
                .unwrap_err()
                .to_string(),
            "pWriteData holds '亅', whose GBK bytes include the separator byte `|` (7C), which cannot be told from a separator"
        );
        // UTF-8 carries it safely; other GBK names pass.
        assert_eq!(Encoding::Utf8.encode("亅|").unwrap(), "亅|".as_bytes());
        assert_eq!(
            Encoding::Utf8
                .decode("亅|".as_bytes(), "pWriteData")
                .unwrap(),
            "亅|"
        );
        assert_eq!(Encoding::Gbk.encode("一|").unwrap(), b"\xD2\xBB|");
        // An error text still reaches the caller, the character replaced.
        assert_eq!(Encoding::Gbk.encode_lossy("亅"), b"?");
    }

    #[test]
    fn what_does_not_fit_is_an_error() {
        // UTF-8 of 张 is not GBK; a lone lead byte is neither.
        assert_eq!(
            Encoding::Gbk.decode(b"\xE5\xBC\xA0", "pPIN"),
            Err(EncodingError::Input {
                argument: "pPIN",
                encoding: "GBK"
            })
        );
        assert_eq!(
            Encoding::Utf8
                .decode(b"\xD5\xC5", "pCardInfo")
                .unwrap_err()
                .to_string(),
            "pCardInfo is not valid UTF-8 text"
        );
        // An emoji has no GBK code.
        assert_eq!(
            Encoding::Gbk.encode("张😀"),
            Err(EncodingError::Output { encoding: "GBK" })
        );
        assert_eq!(
            Encoding::Gbk.encode_lossy("读卡😀器"),
            b"\xB6\xC1\xBF\xA8?\xC6\xF7"
        );
        assert_eq!(
            &*Encoding::Gbk.decode_secret(b"802417", "pPIN").unwrap(),
            "802417"
        );
    }
}
