//! `pFileAddr` (PROFILE section 10): files by path, each followed by the identifiers of its
//! records and `$`: `SSSEEF05|01|07|$SSSEEF06|08|09|4E|$`.
//!
//! A record identifier is the record's **tag** (two hex digits), as `SSSEEF06|08|09|4E|` shows:
//! `08` SSN, `09` name, `4E` name extension are EF06's tags, not its record numbers (1, 2, 3).
//! In EF05 tags and numbers coincide.

use super::error::{fields, UnifiedError};
use sscard_core::profile::files::{Df, FileDef, RecordDef, FILES};

/// The longest `pFileAddr` accepted, in bytes: every record of every file takes about 120.
pub const MAX_FILE_ADDR: usize = 1024;

/// How a path starts: `SSSE` (the application) or the older `MF` (both name the same files).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathSpelling {
    /// `SSSEEF05`, `SSSEDF01EF01`.
    Ssse,
    /// `MFEF05`, `MFDF01EF01`: the older spelling, accepted and echoed as given.
    Mf,
}

impl PathSpelling {
    fn prefix(self) -> &'static str {
        match self {
            Self::Ssse => "SSSE",
            Self::Mf => "MF",
        }
    }
}

/// The path of `file` in a spelling: `SSSE` ‖ `EF05`, `SSSE` ‖ `DF01` ‖ `EF01`.
pub fn path_of(file: &FileDef, spelling: PathSpelling) -> String {
    format!("{}{}", spelling.prefix(), file.name.replace('/', ""))
}

/// The paths every file of the profile's table answers to, for messages.
const KNOWN_PATHS: &str =
    "SSSEEF05, SSSEEF06, SSSEEF07, SSSEDF01EF01 (or MFEF05 … in the older spelling)";

/// The file a path names, and how it was spelt (upper case; a path in lower case is refused).
pub fn parse_path(path: &str) -> Option<(&'static FileDef, PathSpelling)> {
    [PathSpelling::Ssse, PathSpelling::Mf]
        .into_iter()
        .find_map(|sp| {
            let rest = path.strip_prefix(sp.prefix())?;
            FILES
                .iter()
                .filter(|f| matches!(f.df, Df::Ssse | Df::Df01))
                .find(|f| f.name.replace('/', "") == rest)
                .map(|f| (f, sp))
        })
}

/// One file of an address: its path and the records named, in the caller's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileItems {
    pub file: &'static FileDef,
    pub spelling: PathSpelling,
    pub records: Vec<&'static RecordDef>,
}

impl FileItems {
    /// The path as the caller spelt it (`SSSEEF06`, `MFEF05`).
    pub fn path(&self) -> String {
        path_of(self.file, self.spelling)
    }
}

/// A parsed `pFileAddr`: at least one file, each file once, each record once per file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileAddr {
    files: Vec<FileItems>,
}

/// Splits a line into its files: every file ends with `$`, nothing follows the last.
pub(crate) fn file_segments<'a>(
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
    let Some(body) = line.strip_suffix('$') else {
        return Err(UnifiedError::Layout {
            what,
            problem: "the last file is not followed by '$'",
        });
    };
    Ok(body.split('$').collect())
}

impl FileAddr {
    /// Parses `pFileAddr`, strictly: paths of the file table (`SSSEEF05`, `SSSEEF06`,
    /// `SSSEEF07`, `SSSEDF01EF01`, or `MF…`), upper-case hex record identifiers (tags) that the
    /// file has, every identifier followed by `|`, every file by `$`, nothing after the last
    /// `$`, at most [`MAX_FILE_ADDR`] bytes. Every refusal is −23.
    pub fn parse(line: &str) -> Result<Self, UnifiedError> {
        const WHAT: &str = "pFileAddr";
        let mut files: Vec<FileItems> = Vec::new();
        for (i, segment) in file_segments(WHAT, line, MAX_FILE_ADDR)?
            .into_iter()
            .enumerate()
        {
            if segment.is_empty() {
                return Err(UnifiedError::Layout {
                    what: WHAT,
                    problem: "a '$' with no file before it",
                });
            }
            let parts = fields(WHAT, segment, MAX_FILE_ADDR).map_err(|_| UnifiedError::Layout {
                what: WHAT,
                problem: "a path or record identifier is not followed by '|'",
            })?;
            let (path, ids) = parts.split_first().expect("split gives one part at least");
            let (file, spelling) = parse_path(path).ok_or_else(|| UnifiedError::UnknownPath {
                index: i + 1,
                path: path.chars().take(16).collect(),
                known: KNOWN_PATHS,
            })?;
            if file.is_binary() {
                return Err(UnifiedError::NotARecordFile { file: file.name });
            }
            if files.iter().any(|f| f.file == file) {
                return Err(UnifiedError::DuplicateFile { file: file.name });
            }
            if ids.is_empty() {
                return Err(UnifiedError::NoRecord { file: file.name });
            }
            let mut records: Vec<&'static RecordDef> = Vec::with_capacity(ids.len());
            for (j, id) in ids.iter().enumerate() {
                let tag = parse_identifier(id).ok_or(UnifiedError::BadIdentifier {
                    file: file.name,
                    index: j + 1,
                })?;
                let rec = file.record_by_tag(tag).ok_or(UnifiedError::UnknownRecord {
                    file: file.name,
                    tag,
                })?;
                if records.iter().any(|r| r.tag == tag) {
                    return Err(UnifiedError::DuplicateRecord {
                        file: file.name,
                        tag,
                    });
                }
                records.push(rec);
            }
            files.push(FileItems {
                file,
                spelling,
                records,
            });
        }
        Ok(Self { files })
    }

    /// The files, in the caller's order.
    pub fn files(&self) -> &[FileItems] {
        &self.files
    }

    /// Whether any file lies in the city's local DF01.
    pub fn has_local(&self) -> bool {
        self.files.iter().any(|f| f.file.is_local())
    }
}

/// Two upper-case hex digits.
fn parse_identifier(id: &str) -> Option<u8> {
    let ok = id.len() == 2
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    if ok {
        u8::from_str_radix(id, 16).ok()
    } else {
        None
    }
}

impl std::fmt::Display for FileAddr {
    /// The canonical line: `SSSEEF05|01|07|$`, paths as the caller spelt them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for items in &self.files {
            write!(f, "{}|", items.path())?;
            for r in &items.records {
                write!(f, "{:02X}|", r.tag)?;
            }
            f.write_str("$")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FileAddr {
    type Err = UnifiedError;
    fn from_str(s: &str) -> Result<Self, UnifiedError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sscard_core::classify::Classified;
    use sscard_core::profile::files::{ef05, ef06};

    #[test]
    fn the_profiles_example_parses_to_tags() {
        let a = FileAddr::parse("SSSEEF05|01|07|$SSSEEF06|08|09|4E|$").unwrap();
        assert_eq!(a.files().len(), 2);
        assert_eq!(a.files()[0].file, ef05());
        let tags: Vec<(u8, u8)> = a.files()[1]
            .records
            .iter()
            .map(|r| (r.tag, r.number))
            .collect();
        // Identifiers are tags: 4E is EF06's record 3 (the name extension).
        assert_eq!(tags, [(0x08, 1), (0x09, 2), (0x4E, 3)]);
        assert_eq!(a.to_string(), "SSSEEF05|01|07|$SSSEEF06|08|09|4E|$");
        let old = FileAddr::parse("MFEF05|07|$SSSEDF01EF01|40|42|$").unwrap();
        assert_eq!(old.files()[0].spelling, PathSpelling::Mf);
        assert!(old.has_local());
        assert_eq!(old.to_string(), "MFEF05|07|$SSSEDF01EF01|40|42|$");
        assert_eq!(
            FileAddr::parse("SSSEEF07|20|21|22|$").unwrap().to_string(),
            "SSSEEF07|20|21|22|$"
        );
    }

    #[test]
    fn malformed_addresses_are_typed_and_minus_23() {
        let cases: &[(&str, UnifiedError)] = &[
            ("", UnifiedError::Empty { what: "pFileAddr" }),
            (
                "SSSEEF05|01|07|",
                UnifiedError::Layout {
                    what: "pFileAddr",
                    problem: "the last file is not followed by '$'",
                },
            ),
            (
                "SSSEEF05|01|07$",
                UnifiedError::Layout {
                    what: "pFileAddr",
                    problem: "a path or record identifier is not followed by '|'",
                },
            ),
            (
                "SSSEEF05|01|$$",
                UnifiedError::Layout {
                    what: "pFileAddr",
                    problem: "a '$' with no file before it",
                },
            ),
            (
                "SSSEEF09|01|$",
                UnifiedError::UnknownPath {
                    index: 1,
                    path: "SSSEEF09".into(),
                    known: KNOWN_PATHS,
                },
            ),
            (
                "SSSEEF05|01|$sssEEF06|08|$",
                UnifiedError::UnknownPath {
                    index: 2,
                    path: "sssEEF06".into(),
                    known: KNOWN_PATHS,
                },
            ),
            (
                "SSSEDF01EF02|00|$",
                UnifiedError::NotARecordFile { file: "DF01/EF02" },
            ),
            (
                "SSSEEF06|01|$",
                UnifiedError::UnknownRecord {
                    file: "EF06",
                    tag: 0x01,
                },
            ),
            (
                "SSSEEF06|4e|$",
                UnifiedError::BadIdentifier {
                    file: "EF06",
                    index: 1,
                },
            ),
            (
                "SSSEEF06|08|108|$",
                UnifiedError::BadIdentifier {
                    file: "EF06",
                    index: 2,
                },
            ),
            (
                "SSSEEF06|08|08|$",
                UnifiedError::DuplicateRecord {
                    file: "EF06",
                    tag: 0x08,
                },
            ),
            (
                "SSSEEF05|01|$MFEF05|07|$",
                UnifiedError::DuplicateFile { file: "EF05" },
            ),
            ("SSSEEF05|$", UnifiedError::NoRecord { file: "EF05" }),
            (
                "SSSEEF05|01|$x",
                UnifiedError::Layout {
                    what: "pFileAddr",
                    problem: "the last file is not followed by '$'",
                },
            ),
        ];
        for (line, want) in cases {
            let e = FileAddr::parse(line).unwrap_err();
            assert_eq!(&e, want, "{line:?}");
            assert_eq!(e.return_code(), -23, "{line:?}");
        }
        let long = format!("SSSEEF05|{}$", "01|".repeat(400));
        assert_eq!(
            FileAddr::parse(&long),
            Err(UnifiedError::TooLong {
                what: "pFileAddr",
                len: 1210,
                max: MAX_FILE_ADDR
            })
        );
    }

    /// A valid address: distinct files, each with a non-empty set of its own tags.
    fn valid_addr() -> impl Strategy<Value = String> {
        let record_files: Vec<&'static FileDef> = FILES.iter().filter(|f| !f.is_binary()).collect();
        proptest::sample::subsequence(record_files.clone(), 1..=record_files.len())
            .prop_flat_map(|files| {
                files
                    .into_iter()
                    .map(|f| {
                        let tags: Vec<u8> = f.records().iter().map(|r| r.tag).collect();
                        let n = tags.len();
                        (
                            Just(f),
                            any::<bool>(),
                            proptest::sample::subsequence(tags, 1..=n).prop_shuffle(),
                        )
                    })
                    .collect::<Vec<_>>()
                    .prop_shuffle()
            })
            .prop_map(|files| {
                files
                    .into_iter()
                    .map(|(f, mf, tags)| {
                        let spelling = if mf {
                            PathSpelling::Mf
                        } else {
                            PathSpelling::Ssse
                        };
                        let ids: String = tags.iter().map(|t| format!("{t:02X}|")).collect();
                        format!("{}|{ids}$", path_of(f, spelling))
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(line in "[SEFMD0-9A-F|$ ]{0,80}") {
            let _ = FileAddr::parse(&line);
        }

        #[test]
        fn parse_never_panics_on_any_text(line in any::<String>()) {
            if let Err(e) = FileAddr::parse(&line) {
                prop_assert_eq!(e.return_code(), -23);
            }
        }

        #[test]
        fn valid_addresses_round_trip(line in valid_addr()) {
            let a = FileAddr::parse(&line).unwrap();
            prop_assert_eq!(a.to_string(), line);
        }
    }

    #[test]
    fn identifiers_are_tags_of_the_file_table() {
        for r in ef06().records() {
            let line = format!("SSSEEF06|{:02X}|$", r.tag);
            assert_eq!(FileAddr::parse(&line).unwrap().files()[0].records[0], r);
        }
    }
}
