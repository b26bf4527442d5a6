//! The text encodings a batch file may come in: UTF-8 (with or without Excel's byte order
//! mark), GBK (what Excel saves as "CSV" on a Chinese Windows), and UTF-16 (Excel's "Unicode
//! text"), told apart by their byte order mark or, without one, by the bytes themselves.

use encoding_rs::{DecoderResult, GBK, UTF_16BE, UTF_16LE, UTF_8};

/// The encoding of a batch file, or `Auto` to detect it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// A byte order mark decides; without one, UTF-16 is recognised by its zero bytes, valid
    /// UTF-8 is UTF-8, and text that is not UTF-8 but decodes as GBK is GBK.
    #[default]
    Auto,
    Utf8,
    /// GBK (code page 936); GB18030 four-byte sequences decode too.
    Gbk,
    Utf16Le,
    Utf16Be,
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Utf8 => "utf-8",
            Self::Gbk => "gbk",
            Self::Utf16Le => "utf-16le",
            Self::Utf16Be => "utf-16be",
        })
    }
}

/// An `--encoding` that is none of those known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown encoding {0:?}: use auto, utf-8, gbk, utf-16le or utf-16be")]
pub struct UnknownEncoding(pub String);

impl std::str::FromStr for Encoding {
    type Err = UnknownEncoding;

    /// `auto`, `utf-8`, `gbk`, `utf-16le`, `utf-16be`, case-insensitive; also `utf8`,
    /// `gb2312`, `gb18030`, `cp936`, `utf16le`, `utf16be`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "utf-8" | "utf8" => Self::Utf8,
            "gbk" | "gb2312" | "gb18030" | "cp936" => Self::Gbk,
            "utf-16le" | "utf16le" => Self::Utf16Le,
            "utf-16be" | "utf16be" => Self::Utf16Be,
            _ => return Err(UnknownEncoding(s.to_string())),
        })
    }
}

/// Bytes that are not text in the encoding they were read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: not {encoding} text")]
pub struct DecodeError {
    /// The encoding tried (never `Auto`).
    pub encoding: Encoding,
    /// The line (from 1) of the first byte that does not decode.
    pub line: usize,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const UTF16LE_BOM: &[u8] = b"\xFF\xFE";
const UTF16BE_BOM: &[u8] = b"\xFE\xFF";

/// Decodes a batch file: the text without its byte order mark, and the encoding it was read
/// in. A chosen encoding drops its own byte order mark; `Auto` detects.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<(String, Encoding), DecodeError> {
    let encoding = match encoding {
        Encoding::Auto => detect(bytes)?,
        chosen => chosen,
    };
    let body = match encoding {
        Encoding::Utf8 => bytes.strip_prefix(UTF8_BOM),
        Encoding::Utf16Le => bytes.strip_prefix(UTF16LE_BOM),
        Encoding::Utf16Be => bytes.strip_prefix(UTF16BE_BOM),
        Encoding::Gbk | Encoding::Auto => None,
    }
    .unwrap_or(bytes);
    let codec = match encoding {
        Encoding::Utf8 | Encoding::Auto => UTF_8,
        Encoding::Gbk => GBK,
        Encoding::Utf16Le => UTF_16LE,
        Encoding::Utf16Be => UTF_16BE,
    };
    strict(codec, body)
        .map(|text| (text, encoding))
        .map_err(|line| DecodeError { encoding, line })
}

/// The encoding of `bytes`, by byte order mark, then by their look. Text that is mostly valid
/// UTF-8 with a few broken bytes is damaged UTF-8 (its error names the line), not GBK: read
/// as GBK it would give every name the wrong characters.
fn detect(bytes: &[u8]) -> Result<Encoding, DecodeError> {
    if bytes.starts_with(UTF8_BOM) {
        return Ok(Encoding::Utf8);
    }
    if bytes.starts_with(UTF16LE_BOM) {
        return Ok(Encoding::Utf16Le);
    }
    if bytes.starts_with(UTF16BE_BOM) {
        return Ok(Encoding::Utf16Be);
    }
    if let Some(utf16) = sniff_utf16(bytes) {
        return Ok(utf16);
    }
    let (mut valid_non_ascii, mut invalid) = (0usize, 0usize);
    for chunk in bytes.utf8_chunks() {
        valid_non_ascii += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        invalid += usize::from(!chunk.invalid().is_empty());
    }
    if invalid == 0 {
        return Ok(Encoding::Utf8);
    }
    if valid_non_ascii > invalid {
        let line = strict(UTF_8, bytes).err().unwrap_or(1);
        return Err(DecodeError {
            encoding: Encoding::Utf8,
            line,
        });
    }
    Ok(Encoding::Gbk)
}

/// UTF-16 without a byte order mark: a batch starts with an ASCII header, so most code units of
/// the first kilobytes have one zero byte, on the same side.
fn sniff_utf16(bytes: &[u8]) -> Option<Encoding> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    let units = sample.len() / 2;
    if units < 2 {
        return None;
    }
    let (mut le, mut be) = (0, 0);
    for unit in sample.chunks_exact(2) {
        match (unit[0], unit[1]) {
            (a, 0) if a != 0 => le += 1,
            (0, b) if b != 0 => be += 1,
            _ => {}
        }
    }
    if le * 2 > units && be * 10 < units {
        Some(Encoding::Utf16Le)
    } else if be * 2 > units && le * 10 < units {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// Decodes without replacement; on malformed input, the line of the first bad byte.
fn strict(codec: &'static encoding_rs::Encoding, bytes: &[u8]) -> Result<String, usize> {
    let mut decoder = codec.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(
        decoder
            .max_utf8_buffer_length_without_replacement(bytes.len())
            .unwrap_or(bytes.len()),
    );
    let mut input = bytes;
    loop {
        let (result, read) = decoder.decode_to_string_without_replacement(input, &mut out, true);
        input = &input[read..];
        match result {
            DecoderResult::InputEmpty => return Ok(out),
            DecoderResult::Malformed(..) => {
                return Err(super::parse::Lines::new(&out).of(out.len()))
            }
            DecoderResult::OutputFull => out.reserve(input.len().saturating_mul(3).max(16)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for unit in std::iter::once(0xFEFF)
            .filter(|_| bom)
            .chain(text.encode_utf16())
        {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    }

    #[test]
    fn byte_order_marks_decide_and_are_dropped() {
        let text = "name\n张三\n";
        let mut utf8 = UTF8_BOM.to_vec();
        utf8.extend(text.as_bytes());
        assert_eq!(
            decode(&utf8, Encoding::Auto),
            Ok((text.to_string(), Encoding::Utf8))
        );
        assert_eq!(
            decode(&utf16(text, false, true), Encoding::Auto),
            Ok((text.to_string(), Encoding::Utf16Le))
        );
        assert_eq!(
            decode(&utf16(text, true, true), Encoding::Auto),
            Ok((text.to_string(), Encoding::Utf16Be))
        );
        assert_eq!(
            decode(&utf16(text, true, true), Encoding::Utf16Be),
            Ok((text.to_string(), Encoding::Utf16Be))
        );
    }

    #[test]
    fn utf16_and_gbk_without_a_mark_are_recognised() {
        let text = "card_number,name\nA12345674,张三\n";
        assert_eq!(
            decode(&utf16(text, false, false), Encoding::Auto),
            Ok((text.to_string(), Encoding::Utf16Le))
        );
        assert_eq!(
            decode(&utf16(text, true, false), Encoding::Auto),
            Ok((text.to_string(), Encoding::Utf16Be))
        );
        let (gbk, _, _) = GBK.encode(text);
        assert_eq!(&gbk[27..31], &[0xD5, 0xC5, 0xC8, 0xFD]);
        assert_eq!(
            decode(&gbk, Encoding::Auto),
            Ok((text.to_string(), Encoding::Gbk))
        );
        assert_eq!(
            decode(&gbk, Encoding::Gbk),
            Ok((text.to_string(), Encoding::Gbk))
        );
        // Plain ASCII is UTF-8.
        assert_eq!(
            decode(b"a,b\n", Encoding::Auto),
            Ok(("a,b\n".to_string(), Encoding::Utf8))
        );
    }

    #[test]
    fn bytes_that_do_not_decode_name_their_line() {
        // UTF-8 with one broken byte on line 3 is damaged UTF-8, not GBK.
        let mut bytes = "h\n张三\n李".as_bytes().to_vec();
        bytes.push(0xFF);
        bytes.extend("四\n".as_bytes());
        assert_eq!(
            decode(&bytes, Encoding::Auto),
            Err(DecodeError {
                encoding: Encoding::Utf8,
                line: 3
            })
        );
        assert_eq!(
            decode(&bytes, Encoding::Auto).unwrap_err().to_string(),
            "line 3: not utf-8 text"
        );
        // GBK with a lead byte and no trail byte at the end of line 2.
        let mut gbk = GBK.encode("h\n张三").0.into_owned();
        gbk.extend([0x81, b'\n']);
        assert_eq!(
            decode(&gbk, Encoding::Auto),
            Err(DecodeError {
                encoding: Encoding::Gbk,
                line: 2
            })
        );
        // An odd number of bytes is not UTF-16.
        assert_eq!(
            decode(b"\xFF\xFEa\x00\n\x00b", Encoding::Auto),
            Err(DecodeError {
                encoding: Encoding::Utf16Le,
                line: 2
            })
        );
        assert_eq!(
            decode("张三".as_bytes(), Encoding::Gbk).map(|(t, _)| t),
            Ok("寮犱笁".to_string()),
            "a chosen encoding is obeyed"
        );
    }

    #[test]
    fn encodings_parse_from_their_names() {
        for (name, e) in [
            ("auto", Encoding::Auto),
            ("UTF-8", Encoding::Utf8),
            ("gbk", Encoding::Gbk),
            ("gb18030", Encoding::Gbk),
            ("utf-16le", Encoding::Utf16Le),
            ("utf-16be", Encoding::Utf16Be),
        ] {
            assert_eq!(name.parse::<Encoding>(), Ok(e));
        }
        for e in [
            Encoding::Auto,
            Encoding::Utf8,
            Encoding::Gbk,
            Encoding::Utf16Le,
            Encoding::Utf16Be,
        ] {
            assert_eq!(e.to_string().parse::<Encoding>(), Ok(e));
        }
        assert_eq!(
            "latin1".parse::<Encoding>().unwrap_err().to_string(),
            "unknown encoding \"latin1\": use auto, utf-8, gbk, utf-16le or utf-16be"
        );
    }
}
