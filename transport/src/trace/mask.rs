//! What of a command is shown wherever a command is echoed — traces, `send`'s output and
//! `--json`, reports and error messages — whatever its parse result. A command is classified by
//! its class and instruction bytes alone ([`describe_bytes`]), so a VERIFY, CHANGE/RELOAD PIN,
//! UNBLOCK, EXTERNAL AUTHENTICATE or WRITE KEY is masked even when the rest of it does not parse
//! (a wrong Lc, an odd number of digits, a character that is not hex).

use sscard_core::hexfmt::{to_hex, HexError};
use sscard_core::profile::commands::{describe, describe_bytes, Secrecy};
use std::ops::Range;

/// The masked bytes of encoded command bytes whose data is secret (`secrecy` or the command's
/// own semantics): the data field and anything after it (Le) of a command that parses with
/// data, and everything after the 4 header bytes otherwise — a malformed command's length byte
/// may be a secret byte the sender put where Lc belongs.
pub fn secret_range(command: &[u8], secrecy: Secrecy) -> Range<usize> {
    let secret = secrecy.union(describe_bytes(command).secrecy).command_data;
    let end = command.len();
    if !secret || end <= 4 {
        return end..end;
    }
    match sscard_core::apdu::Command::parse(command) {
        Ok(c) if !c.data.is_empty() => {
            let start = if command[4] == 0 { 7 } else { 5 };
            start..end
        }
        _ => 4..end,
    }
}

/// Command bytes as upper-case hex with the [`secret_range`] shown as `**` per byte: the one
/// way a command is echoed outside a trace (`send`'s output and `--json`).
pub fn command_hex(command: &[u8], secrecy: Secrecy) -> String {
    let masked = secret_range(command, secrecy);
    command
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if masked.contains(&i) {
                "**".to_string()
            } else {
                to_hex(&[*b])
            }
        })
        .collect()
}

/// The response data of `command` as it is echoed outside a trace (`send`'s output and
/// `--json`): hex, or `**` per byte when the command's answer is secret (`secrecy` or the
/// command's own semantics: DES CRYPT's cryptogram or MAC), as the trace masks it.
pub fn response_hex(command: &[u8], data: &[u8], secrecy: Secrecy) -> String {
    if secrecy.union(describe_bytes(command).secrecy).response_data {
        "**".repeat(data.len())
    } else {
        to_hex(data)
    }
}

/// What a command typed as hex text is, told from its header alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextClass {
    /// Its class and instruction are those of a command without secret data.
    Public,
    /// Its class and instruction are those of a command with secret data.
    Secret,
    /// It does not start with a header of 8 hex digits (it is not a command, or a command's
    /// data typed on its own): it could be anything, a PIN included, so it is secret.
    Unknown,
}

/// Whether a character is one `parse_hex` skips between digits.
fn separator(c: char) -> bool {
    c.is_whitespace() || c == ':' || c == '_'
}

/// Classifies command text by its 4-byte header (separators skipped): the class and
/// instruction bytes say whether its data is secret.
pub fn classify_text(text: &str) -> TextClass {
    let digits: Vec<u8> = text
        .chars()
        .filter(|c| !separator(*c))
        .take(8)
        .map_while(|c| c.to_digit(16).map(|d| d as u8))
        .collect();
    match digits[..] {
        [a, b, c, d, _, _, _, _] => {
            if describe(a << 4 | b, c << 4 | d).secrecy.command_data {
                TextClass::Secret
            } else {
                TextClass::Public
            }
        }
        _ => TextClass::Unknown,
    }
}

/// The start of command text for an error message (the text is one that does not parse),
/// separators removed: its 8 header digits, then `…` for the rest of a public command and `**…`
/// for the rest of a secret one, however malformed; nothing but `**` of text that does not start
/// with a header. Nothing after the header is ever quoted: a command that does not parse may be
/// two pasted together, a public header followed by a VERIFY and its PIN.
pub fn text_preview(text: &str) -> String {
    let rest = match classify_text(text) {
        TextClass::Public => "…",
        TextClass::Secret => "**…",
        TextClass::Unknown => return "**".into(),
    };
    let mut compact = text.chars().filter(|c| !separator(*c));
    let head: String = compact.by_ref().take(8).collect();
    if compact.next().is_none() {
        head
    } else {
        format!("{head}{rest}")
    }
}

/// A hex error about command text, for a message, never quoting the offending character: in a
/// command with a header it stands after the header, in the data (a PIN digit typed as `O` is
/// still a PIN digit, and a public header may be followed by a pasted VERIFY), and text without
/// a header could be anything.
pub fn hex_error(text: &str, e: &HexError) -> String {
    match (classify_text(text), e) {
        (TextClass::Public, HexError::InvalidChar { column, .. }) => {
            format!("a character at column {column} is not a hex digit (command data, not shown)")
        }
        (_, HexError::InvalidChar { column, .. }) => {
            format!("a character at column {column} is not a hex digit (secret data, not shown)")
        }
        (_, e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_des_crypt_answer_is_masked_as_the_trace_masks_it() {
        let des_crypt = sscard_core::hexfmt::parse_hex("80FA000008 0102030405060708").unwrap();
        let answer = [0x03, 0x36, 0x7B, 0xD5, 0x1B, 0x84, 0xAE, 0x05];
        assert_eq!(
            response_hex(&des_crypt, &answer, Secrecy::PUBLIC),
            "****************"
        );
        let mut response = answer.to_vec();
        response.extend_from_slice(&[0x90, 0x00]);
        let traced = super::super::Exchange::new(
            "psam",
            "r",
            &des_crypt,
            &response,
            Secrecy::PUBLIC,
            std::time::SystemTime::UNIX_EPOCH,
            std::time::Duration::ZERO,
        );
        assert_eq!(traced.response_data_hex(), "****************");
        // DES INIT's answer, a READ RECORD's: shown.
        assert_eq!(
            response_hex(&[0x80, 0x1A, 0x08, 0x01], &[0x12], Secrecy::PUBLIC),
            "12"
        );
        assert_eq!(
            response_hex(&[0x00, 0xB2, 0x01, 0x2C], &[0x02, 0x01], Secrecy::PUBLIC),
            "0201"
        );
        assert_eq!(
            response_hex(&[0x00, 0xB2, 0x01, 0x2C], &[0x02], Secrecy::RESPONSE_DATA),
            "**"
        );
    }

    #[test]
    fn secret_commands_are_masked_whatever_their_shape() {
        for (apdu, shown) in [
            ("0020000003123456", "0020000003******"),
            // Le after the data: masked with it.
            ("002000000312345600", "0020000003********"),
            // A wrong Lc: everything after the header.
            ("0020000004123456", "00200000********"),
            ("0020000002123456", "0020000002******"),
            // Lc forgotten: the first PIN byte stands where Lc belongs.
            ("00200000123456", "00200000******"),
            ("0020000012", "00200000**"),
            ("00200000000003123456", "00200000000003******"),
            ("805E010007123456FF802417", "805E010007**************"),
            ("84D4000803AABBCC", "84D4000803******"),
            ("0082000A08112233", "0082000A********"),
            ("00B2012C00", "00B2012C00"),
            ("00A4040000", "00A4040000"),
            ("0020", "0020"),
            // The ISO PIN commands, whatever the class.
            ("0021000003123456", "0021000003******"),
            ("0C21000003123456", "0C21000003******"),
            ("002C0000081234567812345678", "002C000008****************"),
            // Lc says 8, 7 follow: everything after the header.
            ("002C00000812345678123456", "002C0000****************"),
            ("002D000003123456", "002D000003******"),
            ("002C0000", "002C0000"),
            ("0026000003123456", "0026000003******"),
            ("0028000003123456", "0028000003******"),
            ("0024000006123456654321", "0024000006************"),
            ("8024000006123456654321", "8024000006************"),
        ] {
            let bytes = sscard_core::hexfmt::parse_hex(apdu).unwrap();
            assert_eq!(command_hex(&bytes, Secrecy::PUBLIC), shown, "{apdu}");
        }
        // Secret by the caller's word, whatever the instruction.
        assert_eq!(
            command_hex(&[0x84, 0xDC, 1, 0x0C, 2, 0xAA, 0xBB], Secrecy::COMMAND_DATA),
            "84DC010C02****"
        );
    }

    #[test]
    fn text_previews_hide_secret_data_even_when_it_does_not_parse() {
        assert_eq!(text_preview("00 20 00 00 03 12 34 5"), "00200000**…");
        assert_eq!(text_preview("0020000003123G56"), "00200000**…");
        assert_eq!(text_preview("00200000"), "00200000");
        assert_eq!(text_preview("845E0000 0A 123456"), "845E0000**…");
        assert_eq!(text_preview("0x0020000003123456"), "**");
        assert_eq!(text_preview("PIN=123456"), "**");
        // A PIN typed as an argument of its own is no command: not shown.
        assert_eq!(text_preview("123456"), "**");
        assert_eq!(text_preview("1234567"), "**");
        // A public header: the header alone, whatever follows (here a VERIFY pasted after a
        // SELECT, its PIN digits within the first 24 characters).
        assert_eq!(
            text_preview("00A4040010D15600000599000000000000000000FF"),
            "00A40400…"
        );
        assert_eq!(text_preview("00A40400000020000003123456"), "00A40400…");
        assert_eq!(text_preview("00A4 0400 0"), "00A40400…");
        assert_eq!(text_preview("00A4 0400"), "00A40400");
        // The ISO PIN commands are secret whatever the class.
        assert_eq!(text_preview("0021000003123456"), "00210000**…");
        assert_eq!(text_preview("002C00000812345678123456"), "002C0000**…");
        assert_eq!(text_preview("802D0000 08 1234"), "802D0000**…");
        assert_eq!(text_preview("0026000003123456"), "00260000**…");
        assert_eq!(text_preview("0028000003123456"), "00280000**…");
        assert_eq!(text_preview("0024000003123456"), "00240000**…");
        let e = sscard_core::hexfmt::parse_hex("002000000312345G").unwrap_err();
        assert_eq!(
            hex_error("002000000312345G", &e),
            "a character at column 16 is not a hex digit (secret data, not shown)"
        );
        let e = sscard_core::hexfmt::parse_hex("00A40400G").unwrap_err();
        assert_eq!(
            hex_error("00A40400G", &e),
            "a character at column 9 is not a hex digit (command data, not shown)"
        );
        // Not hex but no secret of it quoted either: an odd digit count says nothing of them.
        let e = sscard_core::hexfmt::parse_hex("00A404000").unwrap_err();
        assert_eq!(
            hex_error("00A404000", &e),
            "odd number of hex digits (9): every byte needs two"
        );
        // A header that is not hex: nothing of it is quoted.
        let e = sscard_core::hexfmt::parse_hex("00A4000G").unwrap_err();
        assert_eq!(
            hex_error("00A4000G", &e),
            "a character at column 8 is not a hex digit (secret data, not shown)"
        );
    }

    proptest! {
        /// No byte of a secret command's data, and no character of its text after the
        /// header, ever appears in what is shown.
        #[test]
        fn no_secret_digit_is_ever_shown(
            ins in prop::sample::select(vec![
                0x20u8, 0x21, 0x24, 0x25, 0x26, 0x28, 0x2C, 0x2D, 0x5E, 0x82, 0xD4,
            ]),
            cla in prop::sample::select(vec![0x00u8, 0x0C, 0x80, 0x84]),
            tail in prop::collection::vec(any::<u8>(), 0..40),
            text_tail in "[0-9A-Za-z :_]{0,40}",
        ) {
            let mut bytes = vec![cla, ins, 0x00, 0x00];
            bytes.extend_from_slice(&tail);
            let shown = command_hex(&bytes, Secrecy::PUBLIC);
            let range = secret_range(&bytes, Secrecy::PUBLIC);
            prop_assert_eq!(range.end, bytes.len());
            prop_assert!(range.start <= 7);
            // Only the header and the length bytes are shown.
            prop_assert!(shown[2 * range.start..].chars().all(|c| c == '*'));
            if range.start > 4 {
                let c = sscard_core::apdu::Command::parse(&bytes).unwrap();
                prop_assert!(!c.data.is_empty());
            }
            let text = format!("{}{text_tail}", to_hex(&bytes[..4]));
            let preview = text_preview(&text);
            prop_assert!(preview.starts_with(&to_hex(&bytes[..4])));
            prop_assert!(preview[8..].chars().all(|c| c == '*' || c == '…'));
        }

        /// Of text that does not parse, nothing after a public header is ever quoted either:
        /// it may be a VERIFY pasted after it.
        #[test]
        fn nothing_after_a_public_header_is_quoted(
            header in prop::sample::select(vec!["00A40400", "00B2012C", "80FA0000", "00C00000"]),
            text_tail in "[0-9A-Za-z :_]{0,40}",
        ) {
            let text = format!("{header}{text_tail}");
            let preview = text_preview(&text);
            prop_assert!(preview == header || preview == format!("{header}…"), "{}", preview);
            if let Err(e) = sscard_core::hexfmt::parse_hex(&text) {
                let message = hex_error(&text, &e);
                prop_assert!(!message.contains('\''), "{}", message);
            }
        }

        /// Text that does not start with 8 hex digits is never quoted.
        #[test]
        fn text_without_a_header_is_never_quoted(text in "[0-9A-Fa-f]{0,7}([^0-9A-Fa-f:_\\s][0-9A-Za-z]{0,20})?") {
            prop_assert_eq!(text_preview(&text), "**");
        }
    }
}
