//! The text encoding of every string crossing the C boundary, both ways: GBK by default
//! (Windows-era callers pass ANSI buffers), UTF-8 when configured. Input that is not valid in
//! the encoding, and output the encoding cannot represent, are errors: nothing is replaced.

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
        };
        text.ok_or(EncodingError::Input {
            argument,
            encoding: self.name(),
        })
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
