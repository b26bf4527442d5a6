//! Hex text as people type it on command lines and in scripts.

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// Hex needs two digits per byte.
    #[error("odd number of hex digits ({digits}): every byte needs two")]
    OddLength { digits: usize },
    /// A character that is neither a hex digit nor a separator.
    #[error("'{ch}' at column {column} is not a hex digit")]
    InvalidChar { ch: char, column: usize },
}

/// Parses hex, ignoring spaces, tabs, `:` and `_` between digits (people group bytes).
/// Columns in errors are 1-based character positions in `text`.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0;
    for (i, ch) in text.chars().enumerate() {
        if ch.is_whitespace() || ch == ':' || ch == '_' {
            continue;
        }
        let v = ch
            .to_digit(16)
            .ok_or(HexError::InvalidChar { ch, column: i + 1 })? as u8;
        digits += 1;
        match high.take() {
            None => high = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    if high.is_some() {
        return Err(HexError::OddLength { digits });
    }
    Ok(out)
}

/// Upper-case hex without separators, the way the profile writes bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Compile-time hex for constants (panics at compile time on bad input).
pub const fn hex_array<const N: usize>(text: &str) -> [u8; N] {
    let b = text.as_bytes();
    assert!(b.len() == 2 * N, "hex constant has the wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not a hex digit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grouped_hex() {
        assert_eq!(parse_hex("00 a4:04_00").unwrap(), vec![0, 0xA4, 4, 0]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn rejects_bad_hex_exactly() {
        assert_eq!(parse_hex("00A"), Err(HexError::OddLength { digits: 3 }));
        assert_eq!(
            parse_hex("00 G1"),
            Err(HexError::InvalidChar { ch: 'G', column: 4 })
        );
    }

    #[test]
    fn prints_upper_case() {
        assert_eq!(to_hex(&[0x0a, 0xff]), "0AFF");
        assert_eq!(hex_array::<2>("0aFF"), [0x0a, 0xff]);
    }
}
