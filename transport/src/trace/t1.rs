//! T=1 blocks (ISO/IEC 7816-3), as a CCID reader that exchanges TPDUs carries them: prologue
//! (NAD, PCB, LEN), information field, and an LRC epilogue. A block is told by its length (LEN
//! and the bytes present agree) and its LRC (the exclusive-or of every byte is zero); a reader
//! configured for a CRC epilogue is not recognised, and its blocks stay as they are.

/// A T=1 block's kind and information field.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Block<'a> {
    /// An I-block: its information field, and whether more follow (chaining).
    Information { data: &'a [u8], more: bool },
    /// A receive-ready block (acknowledgement in a chain, or a retransmission request).
    Receive,
    /// A supervisory block (IFS, WTX, RESYNCH, ABORT).
    Supervisory,
}

/// The block `bytes` hold, if they are one whole T=1 block with a good LRC.
pub(super) fn block(bytes: &[u8]) -> Option<Block<'_>> {
    let [_nad, pcb, len, rest @ ..] = bytes else {
        return None;
    };
    if rest.len() != usize::from(*len) + 1 || bytes.iter().fold(0, |a, b| a ^ b) != 0 {
        return None;
    }
    let data = &rest[..rest.len() - 1];
    Some(match pcb {
        0x00..=0x7F => Block::Information {
            data,
            more: pcb & 0x20 != 0,
        },
        0x80..=0xBF => Block::Receive,
        _ => Block::Supervisory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_by_length_and_lrc() {
        assert_eq!(
            block(&[0, 0, 5, 0, 0xB2, 1, 0x2C, 0, 0x9A]),
            Some(Block::Information {
                data: &[0, 0xB2, 1, 0x2C, 0],
                more: false
            })
        );
        assert_eq!(
            block(&[0, 0x20, 1, 0xAA, 0x8B]),
            Some(Block::Information {
                data: &[0xAA],
                more: true
            })
        );
        assert_eq!(block(&[0, 0x90, 0, 0x90]), Some(Block::Receive));
        assert_eq!(block(&[0, 0xC1, 1, 0xFE, 0x3E]), Some(Block::Supervisory));
        // A bad LRC, a wrong LEN, too short.
        assert_eq!(block(&[0, 0xC1, 1, 0xFE, 0x3F]), None);
        assert_eq!(block(&[0, 0, 2, 0, 0]), None);
        assert_eq!(block(&[0, 0]), None);
    }
}
