//! ISO/IEC 7816-3 answer-to-reset: parse and explain every byte. Never panics on any input.

/// Why bytes are not an ATR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AtrError {
    #[error("the ATR is empty")]
    Empty,
    #[error("TS {0:02X} is neither 3B (direct) nor 3F (inverse convention)")]
    BadTs(u8),
    #[error("the ATR ends {missing} byte(s) early at offset {offset}")]
    Truncated { missing: usize, offset: usize },
    #[error("{extra} byte(s) after the end of the ATR")]
    TrailingBytes { extra: usize },
    #[error("an ATR has at most 33 bytes")]
    TooLong,
}

/// One group of interface bytes TAi, TBi, TCi, TDi.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceGroup {
    /// i, from 1.
    pub index: usize,
    pub ta: Option<u8>,
    pub tb: Option<u8>,
    pub tc: Option<u8>,
    pub td: Option<u8>,
}

/// The check byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tck {
    /// Only T=0 indicated: no TCK.
    Absent,
    Valid(u8),
    Wrong {
        found: u8,
        expected: u8,
    },
    /// A protocol other than T=0 is indicated but the byte is not there.
    Missing {
        expected: u8,
    },
}

/// One explained byte (or run of bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtrLine {
    pub offset: usize,
    pub bytes: Vec<u8>,
    pub name: String,
    pub meaning: String,
}

/// A parsed ATR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atr {
    pub bytes: Vec<u8>,
    pub ts: u8,
    pub t0: u8,
    pub interface: Vec<InterfaceGroup>,
    pub historical: Vec<u8>,
    pub tck: Tck,
    /// Protocols indicated (T=0 implied when no TD1).
    pub protocols: Vec<u8>,
}

const FI: [(u16, u32); 16] = [
    (372, 4),
    (372, 5),
    (558, 6),
    (744, 8),
    (1116, 12),
    (1488, 16),
    (1860, 20),
    (0, 0),
    (0, 0),
    (512, 5),
    (768, 7),
    (1024, 10),
    (1536, 15),
    (2048, 20),
    (0, 0),
    (0, 0),
];
const DI: [u16; 16] = [0, 1, 2, 4, 8, 16, 32, 64, 12, 20, 0, 0, 0, 0, 0, 0];

impl Atr {
    pub fn parse(bytes: &[u8]) -> Result<Atr, AtrError> {
        let ts = *bytes.first().ok_or(AtrError::Empty)?;
        if ts != 0x3B && ts != 0x3F {
            return Err(AtrError::BadTs(ts));
        }
        if bytes.len() > 33 {
            return Err(AtrError::TooLong);
        }
        let need = |pos: usize, n: usize| -> Result<(), AtrError> {
            if pos + n > bytes.len() {
                Err(AtrError::Truncated {
                    missing: pos + n - bytes.len(),
                    offset: bytes.len(),
                })
            } else {
                Ok(())
            }
        };
        need(1, 1)?;
        let t0 = bytes[1];
        let mut pos = 2;
        let mut y = t0 >> 4;
        let mut interface = Vec::new();
        let mut protocols = Vec::new();
        let mut index = 1;
        loop {
            let mut g = InterfaceGroup {
                index,
                ..Default::default()
            };
            for (bit, slot) in [
                (0x1, &mut g.ta),
                (0x2, &mut g.tb),
                (0x4, &mut g.tc),
                (0x8, &mut g.td),
            ] {
                if y & bit != 0 {
                    need(pos, 1)?;
                    *slot = Some(bytes[pos]);
                    pos += 1;
                }
            }
            let td = g.td;
            interface.push(g);
            match td {
                Some(td) => {
                    let t = td & 0x0F;
                    if !protocols.contains(&t) {
                        protocols.push(t);
                    }
                    y = td >> 4;
                    index += 1;
                }
                None => break,
            }
        }
        if protocols.is_empty() {
            protocols.push(0);
        }
        let k = (t0 & 0x0F) as usize;
        need(pos, k)?;
        let historical = bytes[pos..pos + k].to_vec();
        pos += k;
        let tck_needed = protocols.iter().any(|&t| t != 0);
        let expected_over = |end: usize| bytes[1..end].iter().fold(0u8, |a, b| a ^ b);
        let tck = if tck_needed {
            if pos < bytes.len() {
                let found = bytes[pos];
                let expected = expected_over(pos);
                pos += 1;
                if found == expected {
                    Tck::Valid(found)
                } else {
                    Tck::Wrong { found, expected }
                }
            } else {
                Tck::Missing {
                    expected: expected_over(pos),
                }
            }
        } else {
            Tck::Absent
        };
        if pos < bytes.len() {
            return Err(AtrError::TrailingBytes {
                extra: bytes.len() - pos,
            });
        }
        Ok(Atr {
            bytes: bytes.to_vec(),
            ts,
            t0,
            interface,
            historical,
            tck,
            protocols,
        })
    }

    /// The historical bytes of `bytes`, found by T0 and the interface bytes alone: bytes after
    /// them are not looked at, so a card that sends a TCK with T=0 only (ISO/IEC 7816-3 says it
    /// shall not, some do) still has its historical bytes read. Errors when the ATR is too short
    /// to hold what it announces, or is no ATR at all.
    pub fn historical_bytes(bytes: &[u8]) -> Result<Vec<u8>, AtrError> {
        match Self::parse(bytes) {
            Ok(atr) => Ok(atr.historical),
            Err(AtrError::TrailingBytes { extra }) if extra < bytes.len() => {
                Ok(Self::parse(&bytes[..bytes.len() - extra])?.historical)
            }
            Err(e) => Err(e),
        }
    }

    /// The historical bytes as text when all are printable ASCII.
    pub fn historical_ascii(&self) -> Option<String> {
        (!self.historical.is_empty() && self.historical.iter().all(|b| (0x20..0x7F).contains(b)))
            .then(|| String::from_utf8_lossy(&self.historical).into_owned())
    }

    /// Every byte with its meaning.
    pub fn explain(&self) -> Vec<AtrLine> {
        let mut lines = Vec::new();
        let mut push = |offset: usize, bytes: Vec<u8>, name: String, meaning: String| {
            lines.push(AtrLine {
                offset,
                bytes,
                name,
                meaning,
            })
        };
        push(
            0,
            vec![self.ts],
            "TS".into(),
            if self.ts == 0x3B {
                "direct convention".into()
            } else {
                "inverse convention".into()
            },
        );
        push(
            1,
            vec![self.t0],
            "T0".into(),
            format!(
                "Y1={:X}: {}; K={} historical bytes",
                self.t0 >> 4,
                present(self.t0 >> 4, 1),
                self.t0 & 0x0F
            ),
        );
        let mut pos = 2;
        let mut protocol_of_group = None::<u8>;
        for g in &self.interface {
            let i = g.index;
            let t = protocol_of_group;
            if let Some(ta) = g.ta {
                let meaning = match (i, t) {
                    (1, _) => {
                        let (fi, fmax) = FI[(ta >> 4) as usize];
                        let di = DI[(ta & 0x0F) as usize];
                        if fi == 0 || di == 0 {
                            format!("Fi/Di: reserved values ({:X}/{:X})", ta >> 4, ta & 0x0F)
                        } else {
                            format!(
                                "Fi={fi}, f max={fmax} MHz, Di={di} (baud divisor {})",
                                fi / di
                            )
                        }
                    }
                    (2, _) => format!(
                        "specific mode T={}{}",
                        ta & 0x0F,
                        if ta & 0x10 != 0 {
                            ", parameters implicit"
                        } else {
                            ""
                        }
                    ),
                    (_, Some(1)) => format!("IFSC={} bytes (T=1)", ta),
                    (_, Some(15)) => format!("clock stop {:X}, class {:X}", ta >> 6, ta & 0x3F),
                    _ => "global/specific interface byte".into(),
                };
                push(pos, vec![ta], format!("TA{i}"), meaning);
                pos += 1;
            }
            if let Some(tb) = g.tb {
                let meaning = match (i, t) {
                    (1, _) | (2, _) if tb == 0 => {
                        "no programming voltage (VPP not connected)".into()
                    }
                    (1, _) => "programming voltage (deprecated)".into(),
                    (2, _) => format!("programming voltage {tb}"),
                    (_, Some(1)) => format!("BWI={}, CWI={} (T=1)", tb >> 4, tb & 0x0F),
                    _ => "interface byte".into(),
                };
                push(pos, vec![tb], format!("TB{i}"), meaning);
                pos += 1;
            }
            if let Some(tc) = g.tc {
                let meaning = match (i, t) {
                    (1, _) => format!(
                        "extra guard time N={tc}{}",
                        if tc == 255 { " (minimum)" } else { "" }
                    ),
                    (2, _) => format!("work waiting time WI={tc} (T=0)"),
                    (_, Some(1)) => format!(
                        "error detection: {}",
                        if tc & 1 == 1 { "CRC" } else { "LRC" }
                    ),
                    _ => "interface byte".into(),
                };
                push(pos, vec![tc], format!("TC{i}"), meaning);
                pos += 1;
            }
            if let Some(td) = g.td {
                push(
                    pos,
                    vec![td],
                    format!("TD{i}"),
                    format!(
                        "protocol T={}; next group: {}",
                        td & 0x0F,
                        present(td >> 4, i + 1)
                    ),
                );
                pos += 1;
                protocol_of_group = Some(td & 0x0F);
            }
        }
        if !self.historical.is_empty() {
            let ascii = self
                .historical_ascii()
                .map(|s| format!(" \"{s}\""))
                .unwrap_or_default();
            push(
                pos,
                self.historical.clone(),
                "historical".into(),
                format!("{} historical bytes{ascii}", self.historical.len()),
            );
            pos += self.historical.len();
        }
        match self.tck {
            Tck::Absent => {}
            Tck::Valid(b) => push(pos, vec![b], "TCK".into(), "check byte valid".into()),
            Tck::Wrong { found, expected } => push(
                pos,
                vec![found],
                "TCK".into(),
                format!("check byte wrong: found {found:02X}, expected {expected:02X}"),
            ),
            Tck::Missing { expected } => push(
                pos,
                vec![],
                "TCK".into(),
                format!("check byte missing (expected {expected:02X})"),
            ),
        }
        lines
    }
}

fn present(y: u8, i: usize) -> String {
    let names: Vec<String> = [(1, "TA"), (2, "TB"), (4, "TC"), (8, "TD")]
        .iter()
        .filter(|(b, _)| y & b != 0)
        .map(|(_, n)| format!("{n}{i}"))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::parse_hex;

    #[test]
    fn the_profile_ssc_atr() {
        let atr = Atr::parse(&parse_hex("3B880153534341524430319C").unwrap()).unwrap();
        assert_eq!(atr.protocols, vec![1]);
        assert_eq!(atr.tck, Tck::Valid(0x9C));
        assert_eq!(atr.historical_ascii().as_deref(), Some("SSCARD01"));
        let lines = atr.explain();
        let td1 = lines.iter().find(|l| l.name == "TD1").unwrap();
        assert_eq!(td1.meaning, "protocol T=1; next group: none");
        assert_eq!(lines.last().unwrap().meaning, "check byte valid");
        let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["TS", "T0", "TD1", "historical", "TCK"]);
    }

    #[test]
    fn wrong_and_missing_tck() {
        let atr = Atr::parse(&parse_hex("3B880153534341524430319D").unwrap()).unwrap();
        assert_eq!(
            atr.tck,
            Tck::Wrong {
                found: 0x9D,
                expected: 0x9C
            }
        );
        let atr = Atr::parse(&parse_hex("3B88015353434152443031").unwrap()).unwrap();
        assert_eq!(atr.tck, Tck::Missing { expected: 0x9C });
    }

    #[test]
    fn the_profile_psam_atr() {
        let atr = Atr::parse(&parse_hex("3B6800005053414D2D535331").unwrap()).unwrap();
        assert_eq!(atr.protocols, vec![0]);
        assert_eq!(atr.tck, Tck::Absent);
        assert_eq!(atr.interface[0].tb, Some(0));
        assert_eq!(atr.interface[0].tc, Some(0));
        assert_eq!(atr.historical_ascii().as_deref(), Some("PSAM-SS1"));
    }

    #[test]
    fn malformed_atrs() {
        assert_eq!(Atr::parse(&[]), Err(AtrError::Empty));
        assert_eq!(Atr::parse(&[0x3A]), Err(AtrError::BadTs(0x3A)));
        assert_eq!(
            Atr::parse(&[0x3B, 0x68, 0x00]),
            Err(AtrError::Truncated {
                missing: 1,
                offset: 3
            })
        );
        assert_eq!(
            Atr::parse(&[0x3B, 0x00, 0x01]),
            Err(AtrError::TrailingBytes { extra: 1 })
        );
        assert_eq!(Atr::parse(&[0x3B; 34]), Err(AtrError::TooLong));
        // A T=0 ATR followed by a TCK it should not have: malformed, its historical bytes
        // still readable.
        let with_tck = parse_hex("3B6800005053414D2D53533100").unwrap();
        assert_eq!(
            Atr::parse(&with_tck),
            Err(AtrError::TrailingBytes { extra: 1 })
        );
        assert_eq!(
            Atr::historical_bytes(&with_tck).unwrap(),
            b"PSAM-SS1".to_vec()
        );
        assert_eq!(
            Atr::historical_bytes(&[0x3B, 0x68, 0x00]),
            Err(AtrError::Truncated {
                missing: 1,
                offset: 3
            })
        );
        assert!(Atr::parse(&parse_hex("3F00").unwrap()).is_ok());
    }
}
