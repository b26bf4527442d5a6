use sscard_core::classify::{Classified, ExitClass};
use sscard_core::profile::codes;

/// Why a line handed to the unified interface (`pFileAddr`, `pWriteData`, `pCardInfo`, the
/// two-step flow's step-1 line and `pKey`) was refused. Every variant is bad input found before
/// the card is touched: return code −23. Values of the line are never quoted (they may be
/// personal data); positions and field names say where the fault is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnifiedError {
    /// The line is empty.
    #[error("{what} is empty")]
    Empty { what: &'static str },
    /// The line is longer than any valid one.
    #[error("{what} has {len} bytes, at most {max} are accepted")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A path that names no file of the profile.
    #[error("pFileAddr: file {index} has the path {path:?}; known paths are {known}")]
    UnknownPath {
        index: usize,
        path: String,
        known: &'static str,
    },
    /// A transparent file: it has no records to name.
    #[error("pFileAddr: {file} is transparent, it has no records to name")]
    NotARecordFile { file: &'static str },
    /// A record identifier that is not two hex digits.
    #[error("pFileAddr: {file} record identifier {index} is not two hex digits")]
    BadIdentifier { file: &'static str, index: usize },
    /// A record identifier (a tag) that the file does not have.
    #[error("pFileAddr: {file} has no record with tag {tag:02X}")]
    UnknownRecord { file: &'static str, tag: u8 },
    /// The same record named twice in one file.
    #[error("pFileAddr: {file} record {tag:02X} is named twice")]
    DuplicateRecord { file: &'static str, tag: u8 },
    /// The same file named twice.
    #[error("pFileAddr: {file} is named twice")]
    DuplicateFile { file: &'static str },
    /// A file with no record identifier before its `$`.
    #[error("pFileAddr: {file} names no record")]
    NoRecord { file: &'static str },
    /// The line breaks the layout: a field not ended by `|`, a file not ended by `$`, text
    /// after the last `$`.
    #[error("{what}: {problem}")]
    Layout {
        what: &'static str,
        problem: &'static str,
    },
    /// The data names other files than the address, or another number of values.
    #[error("pWriteData: {problem} (pFileAddr names {expected})")]
    DataShape { problem: String, expected: String },
    /// A value that its record cannot hold.
    #[error("pWriteData: {file} record {tag:02X} ({field}): {problem}")]
    BadValue {
        file: &'static str,
        tag: u8,
        field: &'static str,
        problem: String,
    },
    /// A field of `pCardInfo`, the step-1 line or `pKey` that does not have its form.
    #[error("{what}: {field} {problem}")]
    BadField {
        what: &'static str,
        field: &'static str,
        problem: &'static str,
    },
    /// A value on the card that the output line cannot carry (it holds `|` or `$`).
    #[error("{file} record {tag:02X} holds '|' or '$', the unified line's separators")]
    Unrepresentable { file: &'static str, tag: u8 },
    /// `iAuthType` other than 0 or 1.
    #[error("iAuthType {value} is not 0 (none) or 1 (internal authentication)")]
    AuthType { value: i32 },
}

impl Classified for UnifiedError {
    fn return_code(&self) -> i32 {
        match self {
            // The card holds it; the caller's input is not at fault.
            Self::Unrepresentable { .. } => codes::UNKNOWN,
            _ => codes::INVALID_DATA,
        }
    }

    fn exit_class(&self) -> ExitClass {
        match self {
            Self::Unrepresentable { .. } => ExitClass::Card,
            _ => ExitClass::BadInput,
        }
    }
}

/// Bytes from hex digits only (either case, no separators): the unified lines are strict.
pub(crate) fn strict_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    sscard_core::hexfmt::parse_hex(text).ok()
}

/// Splits `line` into its `|`-terminated fields: every field must be followed by `|`, and
/// nothing may follow the last one.
pub(crate) fn fields<'a>(
    what: &'static str,
    line: &'a str,
    max: usize,
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
    let Some(body) = line.strip_suffix('|') else {
        return Err(UnifiedError::Layout {
            what,
            problem: "the last field is not followed by '|'",
        });
    };
    Ok(body.split('|').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_bad_input() {
        let e = UnifiedError::AuthType { value: 2 };
        assert_eq!(
            (e.return_code(), e.exit_class()),
            (-23, ExitClass::BadInput)
        );
        let card = UnifiedError::Unrepresentable {
            file: "EF06",
            tag: 0x09,
        };
        assert_eq!(card.return_code(), -999);
        assert_eq!(strict_hex("0a1B"), Some(vec![0x0A, 0x1B]));
        assert_eq!(strict_hex("0A 1B"), None);
        assert_eq!(strict_hex("0A1"), None);
        assert_eq!(fields("x", "a|b|", 10), Ok(vec!["a", "b"]));
        assert_eq!(fields("x", "a||", 10), Ok(vec!["a", ""]));
        assert!(fields("x", "a|b", 10).is_err());
        assert_eq!(
            fields("x", "a|b|", 3),
            Err(UnifiedError::TooLong {
                what: "x",
                len: 4,
                max: 3
            })
        );
    }
}
