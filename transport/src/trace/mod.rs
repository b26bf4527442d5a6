//! A record of every APDU: direction, time, bytes (secrets masked), status word and meaning.

pub mod pcap;

use sscard_core::hexfmt::to_hex;
use sscard_core::status::StatusWord;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Which parts of an exchange are secret (PIN, key material, cryptograms on request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Secrecy {
    pub command_data: bool,
    pub response_data: bool,
}

impl Secrecy {
    pub const PUBLIC: Self = Self {
        command_data: false,
        response_data: false,
    };
    pub const COMMAND_DATA: Self = Self {
        command_data: true,
        response_data: false,
    };
    pub const RESPONSE_DATA: Self = Self {
        command_data: false,
        response_data: true,
    };
}

/// The byte written instead of a secret byte in binary traces (`*`).
pub const MASK_BYTE: u8 = 0x2A;

/// One command and its response, already masked: secrets never reach a sink.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub at: SystemTime,
    pub elapsed: Duration,
    pub command: Vec<u8>,
    /// Indexes of masked bytes in `command`.
    pub command_masked: Vec<bool>,
    pub response: Vec<u8>,
    pub response_masked: Vec<bool>,
    pub sw: StatusWord,
}

impl Exchange {
    /// Builds a masked exchange: command data bytes (after the 4-byte header and the length
    /// bytes) and response data bytes become [`MASK_BYTE`] where `secrecy` says so.
    /// A trace of `command` and `response`; command data is masked when the caller marks it
    /// secret, and always for the commands that carry a PIN, a key or a cryptogram, so a raw
    /// APDU typed into `send` or a script is masked as well.
    pub fn new(
        command: &[u8],
        response: &[u8],
        secrecy: Secrecy,
        at: SystemTime,
        elapsed: Duration,
    ) -> Self {
        let mut cmd = command.to_vec();
        let mut cmask = vec![false; cmd.len()];
        if (secrecy.command_data || carries_secret(command)) && cmd.len() > 5 {
            let (start, end) = data_range(command);
            for i in start..end {
                cmd[i] = MASK_BYTE;
                cmask[i] = true;
            }
        }
        let mut resp = response.to_vec();
        let mut rmask = vec![false; resp.len()];
        if secrecy.response_data && resp.len() > 2 {
            let end = resp.len() - 2;
            resp[..end].fill(MASK_BYTE);
            rmask[..end].fill(true);
        }
        let sw = match response {
            [.., a, b] => StatusWord::new(*a, *b),
            _ => StatusWord(0),
        };
        Self {
            at,
            elapsed,
            command: cmd,
            command_masked: cmask,
            response: resp,
            response_masked: rmask,
            sw,
        }
    }
}

/// Where the data field of an encoded command lies.
fn data_range(cmd: &[u8]) -> (usize, usize) {
    match sscard_core::apdu::Command::parse(cmd) {
        Ok(c) if !c.data.is_empty() => {
            let start = if cmd[4] == 0 { 7 } else { 5 };
            (start, start + c.data.len())
        }
        _ => (cmd.len(), cmd.len()),
    }
}

/// Hex with masked bytes shown as `**`.
pub fn masked_hex(bytes: &[u8], masked: &[bool]) -> String {
    bytes
        .iter()
        .zip(masked.iter().chain(std::iter::repeat(&false)))
        .map(|(b, m)| if *m { "**".to_string() } else { to_hex(&[*b]) })
        .collect()
}

/// Receives exchanges.
pub trait TraceSink {
    fn record(&mut self, exchange: &Exchange);
}

/// Human-readable lines: `> command` and `< response SW meaning (time)`.
pub struct TextSink<W: Write> {
    out: W,
    timing: bool,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, timing: bool) -> Self {
        Self { out, timing }
    }
}

impl<W: Write> TraceSink for TextSink<W> {
    fn record(&mut self, e: &Exchange) {
        let data_len = e.response.len().saturating_sub(2);
        let timing = if self.timing {
            format!(" ({:.1} ms)", e.elapsed.as_secs_f64() * 1000.0)
        } else {
            String::new()
        };
        let _ = writeln!(self.out, "> {}", masked_hex(&e.command, &e.command_masked));
        let _ = writeln!(
            self.out,
            "< {}{} {}{timing}",
            masked_hex(&e.response[..data_len], &e.response_masked),
            if data_len > 0 {
                format!(" {}", e.sw)
            } else {
                e.sw.to_string()
            },
            e.sw.meaning()
        );
        let _ = self.out.flush();
    }
}

/// Exchanges as `tracing` debug events (masked like every sink).
pub struct LogSink;

impl TraceSink for LogSink {
    fn record(&mut self, e: &Exchange) {
        tracing::debug!(
            command = %masked_hex(&e.command, &e.command_masked),
            response = %masked_hex(&e.response, &e.response_masked),
            sw = %e.sw,
            micros = e.elapsed.as_micros() as u64,
            "apdu"
        );
    }
}

/// Commands whose data is a PIN, key material or an authentication cryptogram, whoever sends
/// them: VERIFY (20), CHANGE/RESET RETRY COUNTER (24), EXTERNAL AUTHENTICATE (82), CHANGE and
/// RELOAD PIN (5E), WRITE KEY (D4).
pub fn carries_secret(command: &[u8]) -> bool {
    matches!(command.get(1), Some(0x20 | 0x24 | 0x5E | 0x82 | 0xD4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_command_and_response_data() {
        let e = Exchange::new(
            &[0, 0x20, 0, 0, 3, 0x12, 0x34, 0x56],
            &[0x90, 0],
            Secrecy::COMMAND_DATA,
            SystemTime::now(),
            Duration::ZERO,
        );
        assert_eq!(
            masked_hex(&e.command, &e.command_masked),
            "0020000003******"
        );
        let e = Exchange::new(
            &[0, 0x88, 0, 8, 1, 1, 0],
            &[1, 2, 0x90, 0],
            Secrecy::RESPONSE_DATA,
            SystemTime::now(),
            Duration::ZERO,
        );
        assert_eq!(masked_hex(&e.response, &e.response_masked), "****9000");
        assert_eq!(e.sw, StatusWord::OK);
    }

    #[test]
    fn pin_and_key_commands_are_masked_even_when_sent_as_public() {
        for (apdu, masked) in [
            ("0020000003802417", "0020000003******"),
            ("805E010007123456FF802417", "805E010007**************"),
            ("0082000A081122334455667788", "0082000A08****************"),
            ("84D4000803AABBCC", "84D4000803******"),
        ] {
            let bytes = sscard_core::hexfmt::parse_hex(apdu).unwrap();
            let e = Exchange::new(
                &bytes,
                &[0x90, 0],
                Secrecy::PUBLIC,
                SystemTime::now(),
                Duration::ZERO,
            );
            assert_eq!(masked_hex(&e.command, &e.command_masked), masked, "{apdu}");
        }
        let e = Exchange::new(
            &[0, 0xB2, 1, 0x2C, 0],
            &[0x90, 0],
            Secrecy::PUBLIC,
            SystemTime::now(),
            Duration::ZERO,
        );
        assert_eq!(masked_hex(&e.command, &e.command_masked), "00B2012C00");
    }

    #[test]
    fn text_sink_prints_meaning() {
        let mut out = Vec::new();
        let e = Exchange::new(
            &[0, 0xA4, 4, 0, 0],
            &[0x6A, 0x82],
            Secrecy::PUBLIC,
            SystemTime::now(),
            Duration::ZERO,
        );
        TextSink::new(&mut out, false).record(&e);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "> 00A4040000\n< 6A82 file or application not found\n"
        );
    }
}
