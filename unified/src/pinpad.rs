//! PIN entry on the reader's PIN pad, PC/SC part 10 (v2.02): the reader lists its features
//! for `CM_IOCTL_GET_FEATURE_REQUEST`, and `FEATURE_VERIFY_PIN_DIRECT` /
//! `FEATURE_MODIFY_PIN_DIRECT` take a `PIN_VERIFY_STRUCTURE` / `PIN_MODIFY_STRUCTURE` whose APDU
//! template the reader completes with the digits typed on its keypad. The PIN never reaches the
//! host.
//!
//! The social security card's VERIFY is `00200000 Lc <PIN BCD>` and CHANGE PIN
//! `805E0100 Lc <old BCD> FF <new BCD>` (PROFILE section 4), where the BCD has as many bytes as
//! the PIN needs (an odd digit count padded with `F`). A PIN pad fills a block of fixed size, so
//! the block is 3 bytes of `FF` into which the reader writes the digits from the left: 6 digits
//! fill it, 5 leave the final `F` the card expects. Shorter PINs would leave a whole `FF` byte,
//! which the card refuses (`6A80`): the structures therefore ask the reader for 5 to 6 digits
//! ([`MIN_DIGITS`], [`MAX_DIGITS`]), and a PIN of 2 to 4 digits is entered through `iVerifyPINK`
//! or the terminal.

/// `SCARD_CTL_CODE(3400)` as pcsc-lite defines it (`0x42000000 + 3400`).
pub const CM_IOCTL_GET_FEATURE_REQUEST: u32 = 0x4200_0000 + 3400;
/// The feature tag of `FEATURE_VERIFY_PIN_DIRECT`.
pub const FEATURE_VERIFY_PIN_DIRECT: u8 = 0x06;
/// The feature tag of `FEATURE_MODIFY_PIN_DIRECT`.
pub const FEATURE_MODIFY_PIN_DIRECT: u8 = 0x07;
/// The fewest digits asked of the PIN pad (see the module's documentation).
pub const MIN_DIGITS: u8 = 5;
/// The most digits asked of the PIN pad (PROFILE section 3).
pub const MAX_DIGITS: u8 = 6;
/// Bytes of the PIN block in the APDU template.
const BLOCK: u8 = 3;
/// The message language, Chinese (PRC).
const LANG_ZH_CN: u16 = 0x0804;
/// `bmFormatString`: units are bytes (b7), the PIN at offset 0 (b6–b3), left justified (b2 = 0),
/// BCD (b1–b0 = 01).
const FORMAT_BCD_BYTES: u8 = 0x81;
/// `bEntryValidationCondition`: the validation key ends the entry.
const VALIDATE_ON_KEY: u8 = 0x02;

/// The PIN pad functions a reader offers: their control codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub verify: Option<u32>,
    pub modify: Option<u32>,
}

/// The reader's answer to `CM_IOCTL_GET_FEATURE_REQUEST` does not follow PC/SC part 10.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reader's feature list is malformed at byte {offset}: each entry is a tag, the length 4 and a control code")]
pub struct FeaturesMalformed {
    pub offset: usize,
}

/// Parses the feature list: entries of tag (1 byte), length (1 byte, always 4), control code
/// (4 bytes, big-endian). Features other than the two PIN ones are skipped.
pub fn parse_features(tlv: &[u8]) -> Result<Features, FeaturesMalformed> {
    let mut features = Features::default();
    let mut offset = 0;
    while offset < tlv.len() {
        let entry = tlv
            .get(offset..offset + 6)
            .filter(|e| e[1] == 4)
            .ok_or(FeaturesMalformed { offset })?;
        let code = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
        match entry[0] {
            FEATURE_VERIFY_PIN_DIRECT => features.verify = Some(code),
            FEATURE_MODIFY_PIN_DIRECT => features.modify = Some(code),
            _ => {}
        }
        offset += 6;
    }
    Ok(features)
}

fn template(header: [u8; 4], blocks: &[u8]) -> Vec<u8> {
    let mut apdu = header.to_vec();
    apdu.push(blocks.len() as u8);
    apdu.extend_from_slice(blocks);
    apdu
}

/// `PIN_VERIFY_STRUCTURE` for VERIFY `00200000 03 <PIN block>`; `timeout_secs` for the first
/// key and between keys.
pub fn verify_structure(timeout_secs: u8) -> Vec<u8> {
    let apdu = template([0x00, 0x20, 0x00, 0x00], &[0xFF; BLOCK as usize]);
    let mut s = vec![
        timeout_secs,
        timeout_secs,
        FORMAT_BCD_BYTES,
        BLOCK,      // bmPINBlockString: no length field, a block of 3 bytes
        0x00,       // bmPINLengthFormat: the PIN length is not inserted
        MAX_DIGITS, // wPINMaxExtraDigit (little-endian 0xXXYY: XX minimum, YY maximum)
        MIN_DIGITS,
        VALIDATE_ON_KEY,
        0x01, // bNumberMessage
    ];
    s.extend_from_slice(&LANG_ZH_CN.to_le_bytes());
    s.push(0x00); // bMsgIndex
    s.extend_from_slice(&[0x00; 3]); // bTeoPrologue
    s.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
    s.extend_from_slice(&apdu);
    s
}

/// `PIN_MODIFY_STRUCTURE` for CHANGE PIN `805E0100 07 <old block> FF <new block>`: the reader
/// asks for the current PIN, the new one and the new one again.
pub fn modify_structure(timeout_secs: u8) -> Vec<u8> {
    let mut blocks = [0xFF; 2 * BLOCK as usize + 1];
    blocks[BLOCK as usize] = 0xFF; // the separator of PROFILE section 4
    let apdu = template([0x80, 0x5E, 0x01, 0x00], &blocks);
    let mut s = vec![
        timeout_secs,
        timeout_secs,
        FORMAT_BCD_BYTES,
        BLOCK,
        0x00,
        0x00,      // bInsertionOffsetOld: the current PIN at the start of the data
        BLOCK + 1, // bInsertionOffsetNew: after the old block and the separator
        MAX_DIGITS,
        MIN_DIGITS,
        0x03, // bConfirmPIN: the current PIN is entered (b1), the new one confirmed (b0)
        VALIDATE_ON_KEY,
        0x03, // bNumberMessage: current, new, confirmation
    ];
    s.extend_from_slice(&LANG_ZH_CN.to_le_bytes());
    s.extend_from_slice(&[0x00, 0x01, 0x02]); // bMsgIndex1..3
    s.extend_from_slice(&[0x00; 3]);
    s.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
    s.extend_from_slice(&apdu);
    s
}

/// What the reader itself answered about the entry (CCID's `64xx`), before any card answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryOutcome {
    /// `6400`: no key within the time limit (−32).
    Timeout,
    /// `6401`: the cancel key (−31).
    Cancelled,
    /// `6402`: the two new PIN entries differ (−34).
    Differ,
    /// `6403`: too few or too many digits (−33).
    Length,
}

/// The reader's own outcome in status word `sw`, if it is one; else `sw` is the card's.
pub fn entry_outcome(sw: u16) -> Option<EntryOutcome> {
    match sw {
        0x6400 => Some(EntryOutcome::Timeout),
        0x6401 => Some(EntryOutcome::Cancelled),
        0x6402 => Some(EntryOutcome::Differ),
        0x6403 => Some(EntryOutcome::Length),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::hexfmt::{parse_hex, to_hex};

    #[test]
    fn the_verify_structure_byte_by_byte() {
        assert_eq!(
            to_hex(&verify_structure(30)),
            concat!(
                "1E1E",     // bTimerOut, bTimerOut2: 30 s
                "81",       // BCD, byte units, offset 0, left justified
                "03",       // a 3-byte PIN block, no length field
                "00",       // no PIN length inserted
                "0605",     // 5 to 6 digits
                "02",       // validation key
                "01",       // one message
                "0408",     // zh-CN
                "00",       // message index
                "000000",   // no T=1 prologue
                "08000000", // 8 bytes of APDU
                "0020000003FFFFFF"
            )
        );
    }

    #[test]
    fn the_modify_structure_byte_by_byte() {
        assert_eq!(
            to_hex(&modify_structure(255)),
            concat!(
                "FFFF",
                "81",
                "03",
                "00",
                "00", // old PIN at offset 0
                "04", // new PIN after old block and separator
                "0605",
                "03", // current PIN asked, new PIN confirmed
                "02",
                "03",
                "0408",
                "000102",
                "000000",
                "0C000000", // 12 bytes of APDU
                "805E010007FFFFFFFFFFFFFF"
            )
        );
    }

    #[test]
    fn features_are_found_by_tag() {
        // A CCID reader with a PIN pad (verify, modify, IFD_PIN_PROPERTIES, GET_TLV_PROPERTIES).
        let list = parse_hex("06044234000607044234000712044234001A0A0442330012").unwrap();
        assert_eq!(
            parse_features(&list),
            Ok(Features {
                verify: Some(0x4234_0006),
                modify: Some(0x4234_0007)
            })
        );
        assert_eq!(parse_features(&[]), Ok(Features::default()));
        assert_eq!(
            parse_features(&parse_hex("12044234001A").unwrap()),
            Ok(Features::default())
        );
        assert_eq!(
            parse_features(&parse_hex("0604423400060702").unwrap()),
            Err(FeaturesMalformed { offset: 6 })
        );
        assert_eq!(
            parse_features(&parse_hex("060342340006").unwrap()),
            Err(FeaturesMalformed { offset: 0 })
        );
        assert_eq!(CM_IOCTL_GET_FEATURE_REQUEST, 0x4200_0D48);
    }

    #[test]
    fn reader_outcomes() {
        assert_eq!(entry_outcome(0x6400), Some(EntryOutcome::Timeout));
        assert_eq!(entry_outcome(0x6401), Some(EntryOutcome::Cancelled));
        assert_eq!(entry_outcome(0x6402), Some(EntryOutcome::Differ));
        assert_eq!(entry_outcome(0x6403), Some(EntryOutcome::Length));
        assert_eq!(entry_outcome(0x63C2), None);
        assert_eq!(entry_outcome(0x9000), None);
    }
}
