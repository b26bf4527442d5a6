use super::{ApduError, MAX_DATA, MAX_LE, MAX_SHORT_DATA, MAX_SHORT_LE};
use zeroize::Zeroize;

/// ISO/IEC 7816-3 command cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Header only.
    One,
    /// Le only.
    Two,
    /// Data only.
    Three,
    /// Data and Le.
    Four,
}

/// A command APDU. `le: Some(256)` is short `00`, `Some(65536)` extended `0000`.
///
/// The data may be a PIN, a key block or a cryptogram: it is zeroized when the command is
/// dropped, and `Debug` shows its length, never its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    pub le: Option<usize>,
}

impl Drop for Command {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for Command {}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Command {{ cla: {:02X}, ins: {:02X}, p1: {:02X}, p2: {:02X}, lc: {}, le: {:?} }}",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

impl Command {
    /// A case-1 command.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }
    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }
    pub fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }
    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => Case::One,
            (true, true) => Case::Two,
            (false, false) => Case::Three,
            (false, true) => Case::Four,
        }
    }
    /// Whether the encoding needs extended length fields.
    pub fn is_extended(&self) -> bool {
        self.data.len() > MAX_SHORT_DATA || self.le.is_some_and(|le| le > MAX_SHORT_LE)
    }

    /// Checks the lengths an encoder needs.
    pub fn validate(&self) -> Result<(), ApduError> {
        if self.data.len() > MAX_DATA {
            return Err(ApduError::DataTooLong {
                len: self.data.len(),
            });
        }
        if let Some(le) = self.le {
            if le == 0 || le > MAX_LE {
                return Err(ApduError::BadLe { le });
            }
        }
        Ok(())
    }

    /// Encodes the command, short when both lengths fit, extended otherwise.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ApduError> {
        self.validate()?;
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 3);
        out.extend_from_slice(&self.header());
        let ext = self.is_extended();
        if !self.data.is_empty() {
            if ext {
                out.push(0);
                out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            } else {
                out.push(self.data.len() as u8);
            }
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            if ext {
                if self.data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&((le % MAX_LE) as u16).to_be_bytes());
            } else {
                out.push((le % MAX_SHORT_LE) as u8);
            }
        }
        Ok(out)
    }

    /// Parses a command APDU strictly (ISO/IEC 7816-3 12.1.3 decoding rules).
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        if bytes.len() < 4 {
            return Err(ApduError::TooShort { len: bytes.len() });
        }
        let mut cmd = Self::new(bytes[0], bytes[1], bytes[2], bytes[3]);
        let body = &bytes[4..];
        match body.len() {
            0 => {}
            1 => cmd.le = Some(short_le(body[0])),
            _ if body[0] != 0 => {
                let lc = body[0] as usize;
                let rest = &body[1..];
                match rest.len() {
                    n if n == lc => cmd.data = rest.to_vec(),
                    n if n == lc + 1 => {
                        cmd.data = rest[..lc].to_vec();
                        cmd.le = Some(short_le(rest[lc]));
                    }
                    n => return Err(ApduError::LcMismatch { lc, available: n }),
                }
            }
            2 => {
                return Err(ApduError::BadExtendedLength(
                    "a 00 length byte must be followed by two",
                ))
            }
            3 => cmd.le = Some(ext_le(body[1], body[2])),
            _ => {
                let lc = u16::from_be_bytes([body[1], body[2]]) as usize;
                if lc == 0 {
                    return Err(ApduError::BadExtendedLength("extended Lc is 0000"));
                }
                let rest = &body[3..];
                match rest.len() {
                    n if n == lc => cmd.data = rest.to_vec(),
                    n if n == lc + 2 => {
                        cmd.data = rest[..lc].to_vec();
                        cmd.le = Some(ext_le(rest[lc], rest[lc + 1]));
                    }
                    n if n == lc + 1 => {
                        return Err(ApduError::BadExtendedLength("extended Le needs two bytes"))
                    }
                    n => return Err(ApduError::LcMismatch { lc, available: n }),
                }
            }
        }
        Ok(cmd)
    }

    /// Splits long data into ISO command chaining (CLA bit `10` on all but the last part).
    pub fn chained(&self, max_chunk: usize) -> Vec<Command> {
        let max_chunk = max_chunk.max(1);
        if self.data.len() <= max_chunk {
            return vec![self.clone()];
        }
        let parts: Vec<&[u8]> = self.data.chunks(max_chunk).collect();
        let last = parts.len() - 1;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| Command {
                cla: if i < last { self.cla | 0x10 } else { self.cla },
                ins: self.ins,
                p1: self.p1,
                p2: self.p2,
                data: part.to_vec(),
                le: if i == last { self.le } else { None },
            })
            .collect()
    }
}

fn short_le(b: u8) -> usize {
    if b == 0 {
        MAX_SHORT_LE
    } else {
        b as usize
    }
}

fn ext_le(hi: u8, lo: u8) -> usize {
    match u16::from_be_bytes([hi, lo]) {
        0 => MAX_LE,
        n => n as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::parse_hex;

    fn round_trip(hex: &str, case: Case) {
        let bytes = parse_hex(hex).unwrap();
        let cmd = Command::parse(&bytes).unwrap();
        assert_eq!(cmd.case(), case, "{hex}");
        assert_eq!(cmd.to_bytes().unwrap(), bytes, "{hex}");
    }

    #[test]
    fn all_cases_round_trip() {
        round_trip("0084000008", Case::Two);
        round_trip("00A40400", Case::One);
        round_trip("00A4000002DF01", Case::Three);
        round_trip("00A4040000", Case::Two);
        round_trip("00A4000002DF0100", Case::Four);
        round_trip("00B0000000FFFF", Case::Two);
        round_trip("00B0000000FFFF", Case::Two);
    }

    #[test]
    fn extended_lengths() {
        let cmd = Command::new(0, 0xD6, 0, 0)
            .with_data(vec![0xAB; 300])
            .with_le(65536);
        let b = cmd.to_bytes().unwrap();
        assert_eq!(&b[4..7], &[0, 0x01, 0x2C]);
        assert_eq!(&b[b.len() - 2..], &[0, 0]);
        assert_eq!(Command::parse(&b).unwrap(), cmd);
    }

    #[test]
    fn malformed_lengths_are_exact_errors() {
        let p = |h: &str| Command::parse(&parse_hex(h).unwrap());
        assert_eq!(p("00A4"), Err(ApduError::TooShort { len: 2 }));
        assert_eq!(
            p("00A4040005AABB"),
            Err(ApduError::LcMismatch {
                lc: 5,
                available: 2
            })
        );
        assert_eq!(
            p("00A4040001AA0000"),
            Err(ApduError::LcMismatch {
                lc: 1,
                available: 3
            })
        );
        assert_eq!(
            p("00A404000001"),
            Err(ApduError::BadExtendedLength(
                "a 00 length byte must be followed by two"
            ))
        );
        assert_eq!(
            p("00A40400000000AA"),
            Err(ApduError::BadExtendedLength("extended Lc is 0000"))
        );
        let too_long = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 70_000]);
        assert_eq!(
            too_long.to_bytes(),
            Err(ApduError::DataTooLong { len: 70_000 })
        );
        assert_eq!(
            Command::new(0, 0, 0, 0).with_le(0).to_bytes(),
            Err(ApduError::BadLe { le: 0 })
        );
    }

    #[test]
    fn debug_shows_the_header_and_lengths_never_the_data() {
        let verify = Command::new(0x00, 0x20, 0x00, 0x00).with_data(vec![0x12, 0x34, 0x56]);
        assert_eq!(
            format!("{verify:?}"),
            "Command { cla: 00, ins: 20, p1: 00, p2: 00, lc: 3, le: None }"
        );
        let read = Command::new(0x00, 0xB2, 0x01, 0x2C).with_le(256);
        assert_eq!(
            format!("{read:#?}"),
            "Command { cla: 00, ins: B2, p1: 01, p2: 2C, lc: 0, le: Some(256) }"
        );
    }

    #[test]
    fn chaining_marks_all_but_last() {
        let cmd = Command::new(0x80, 0x10, 0, 0)
            .with_data(vec![1; 600])
            .with_le(256);
        let parts = cmd.chained(255);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts.iter().map(|c| c.cla).collect::<Vec<_>>(),
            vec![0x90, 0x90, 0x80]
        );
        assert_eq!(parts[2].data.len(), 90);
        assert_eq!(parts[2].le, Some(256));
        assert_eq!(parts[0].le, None);
    }
}
