//! Splitting the unified interface's lines: fields end with `|`, files with `$`, and both
//! splits follow one rule (the line is not empty, not too long, its last part is terminated,
//! nothing follows). Hex fields are strict.

use super::error::UnifiedError;

/// Bytes from hex digits only (either case, no separators): the unified lines are strict.
pub(crate) fn strict_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    sscard_core::hexfmt::parse_hex(text).ok()
}

/// Splits `line` into its `terminator`-terminated parts: every part must be followed by
/// `terminator`, and nothing may follow the last one. `unterminated` says what is wrong when
/// the line does not end with it.
fn split_terminated<'a>(
    what: &'static str,
    line: &'a str,
    max: usize,
    terminator: char,
    unterminated: &'static str,
) -> Result<Vec<&'a str>, UnifiedError> {
    if line.is_empty() {
        return Err(UnifiedError::Empty { what });
    }
    if line.len() > max {
        return Err(UnifiedError::TooLong {
            what,
            len: line.len(),
            max,
        });
    }
    let Some(body) = line.strip_suffix(terminator) else {
        return Err(UnifiedError::Layout {
            what,
            problem: unterminated,
        });
    };
    Ok(body.split(terminator).collect())
}

/// Splits `line` into its `|`-terminated fields.
pub(crate) fn fields<'a>(
    what: &'static str,
    line: &'a str,
    max: usize,
) -> Result<Vec<&'a str>, UnifiedError> {
    split_terminated(
        what,
        line,
        max,
        '|',
        "the last field is not followed by '|'",
    )
}

/// Splits a line into its files: every file ends with `$`, nothing follows the last.
pub(crate) fn file_segments<'a>(
    what: &'static str,
    line: &'a str,
    max: usize,
) -> Result<Vec<&'a str>, UnifiedError> {
    split_terminated(what, line, max, '$', "the last file is not followed by '$'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_strictly() {
        assert_eq!(strict_hex("0a1B"), Some(vec![0x0A, 0x1B]));
        assert_eq!(strict_hex("0A 1B"), None);
        assert_eq!(strict_hex("0A1"), None);
        assert_eq!(fields("x", "a|b|", 10), Ok(vec!["a", "b"]));
        assert_eq!(fields("x", "a||", 10), Ok(vec!["a", ""]));
        assert_eq!(
            fields("x", "a|b", 10),
            Err(UnifiedError::Layout {
                what: "x",
                problem: "the last field is not followed by '|'"
            })
        );
        assert_eq!(
            fields("x", "a|b|", 3),
            Err(UnifiedError::TooLong {
                what: "x",
                len: 4,
                max: 3
            })
        );
        assert_eq!(fields("x", "", 3), Err(UnifiedError::Empty { what: "x" }));
        assert_eq!(file_segments("y", "A|$B|$", 10), Ok(vec!["A|", "B|"]));
        assert_eq!(
            file_segments("y", "A|$B|", 10),
            Err(UnifiedError::Layout {
                what: "y",
                problem: "the last file is not followed by '$'"
            })
        );
        assert_eq!(
            file_segments("y", "A|$", 2),
            Err(UnifiedError::TooLong {
                what: "y",
                len: 3,
                max: 2
            })
        );
    }
}
