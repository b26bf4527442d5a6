//! APDUs over a transport: encoding, T=0 `61xx` GET RESPONSE and `6Cxx` resend, command
//! chaining, APDU counting and tracing with secrets masked.

use crate::trace::{Exchange, Secrecy, TraceSink};
use crate::{Transport, TransportError};
use sscard_core::apdu::{ApduError, Command, Response};
use sscard_core::hexfmt::to_hex;
use std::time::{Instant, SystemTime};

/// Why an APDU exchange failed below the card's status word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot encode the command: {0}")]
    Encode(#[from] ApduError),
    #[error("{command}: GET RESPONSE did not end after {rounds} rounds")]
    EndlessGetResponse { command: String, rounds: usize },
}

const MAX_GET_RESPONSE_ROUNDS: usize = 256;

/// An APDU channel to one card.
pub struct Channel<'t> {
    transport: &'t mut dyn Transport,
    sinks: Vec<Box<dyn TraceSink + 't>>,
    apdus: u64,
}

impl<'t> Channel<'t> {
    pub fn new(transport: &'t mut dyn Transport) -> Self {
        Self {
            transport,
            sinks: Vec::new(),
            apdus: 0,
        }
    }

    /// Adds a trace sink; every exchange reaches it masked.
    pub fn with_sink(mut self, sink: Box<dyn TraceSink + 't>) -> Self {
        self.sinks.push(sink);
        self
    }

    pub fn add_sink(&mut self, sink: Box<dyn TraceSink + 't>) {
        self.sinks.push(sink);
    }

    /// APDUs sent so far (GET RESPONSE and resends included).
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    pub fn transport(&mut self) -> &mut dyn Transport {
        self.transport
    }

    pub fn atr(&self) -> Vec<u8> {
        self.transport.atr()
    }

    /// Sends bytes exactly as given (even malformed ones) and returns the answer as is: no GET
    /// RESPONSE, no resend on 6Cxx. Conformance scripts use it to see every status word.
    pub fn transmit_raw(
        &mut self,
        bytes: &[u8],
        secrecy: Secrecy,
    ) -> Result<Response, ChannelError> {
        // Clocks are read only for trace sinks: an untraced exchange costs the transport alone.
        let clock = (!self.sinks.is_empty()).then(|| (SystemTime::now(), Instant::now()));
        let raw = self.transport.transmit(bytes)?;
        self.apdus += 1;
        if let Some((at, start)) = clock {
            let e = Exchange::new(bytes, &raw, secrecy, at, start.elapsed());
            self.sinks.iter_mut().for_each(|s| s.record(&e));
        }
        Response::parse(&raw).map_err(|e| TransportError::MalformedResponse(e.to_string()).into())
    }

    /// Sends a public command.
    pub fn transmit(&mut self, cmd: &Command) -> Result<Response, ChannelError> {
        self.transmit_marked(cmd, Secrecy::PUBLIC)
    }

    /// Sends a command whose data (or response) is secret in traces. `6Cxx` is answered by a
    /// resend with the right Le; `61xx` by GET RESPONSE until the data is complete.
    pub fn transmit_marked(
        &mut self,
        cmd: &Command,
        secrecy: Secrecy,
    ) -> Result<Response, ChannelError> {
        let mut resp = self.resend_on_wrong_le(cmd, secrecy)?;
        // GET RESPONSE carries no secret data; its answer is as secret as the command's.
        let get_secrecy = Secrecy {
            command_data: false,
            response_data: secrecy.response_data,
        };
        let mut data = std::mem::take(&mut resp.data);
        let mut rounds = 0;
        while let Some(n) = resp.sw.bytes_available() {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS {
                return Err(ChannelError::EndlessGetResponse {
                    command: to_hex(&cmd.header()),
                    rounds: MAX_GET_RESPONSE_ROUNDS,
                });
            }
            let get = Command::new(0x00, 0xC0, 0x00, 0x00).with_le(n);
            resp = self.resend_on_wrong_le(&get, get_secrecy)?;
            data.append(&mut resp.data);
        }
        Ok(Response::new(data, resp.sw))
    }

    /// Sends `cmd`; on `6Cxx` sends it again once with Le = xx (`00` meaning 256).
    fn resend_on_wrong_le(
        &mut self,
        cmd: &Command,
        secrecy: Secrecy,
    ) -> Result<Response, ChannelError> {
        let resp = self.transmit_raw(&cmd.to_bytes()?, secrecy)?;
        match resp.sw.correct_le() {
            Some(le) => {
                let again = cmd.clone().with_le(if le == 0 { 256 } else { le as usize });
                self.transmit_raw(&again.to_bytes()?, secrecy)
            }
            None => Ok(resp),
        }
    }

    /// Sends long data with ISO command chaining; the last part's response is returned.
    pub fn transmit_chained(
        &mut self,
        cmd: &Command,
        max_chunk: usize,
    ) -> Result<Response, ChannelError> {
        let parts = cmd.chained(max_chunk);
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let r = self.transmit(part)?;
            if i == last || !r.sw.is_success() {
                return Ok(r);
            }
        }
        unreachable!("chained() returns at least one part")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::hexfmt::parse_hex;

    /// Replays canned responses and records what was sent.
    struct Scripted {
        replies: Vec<&'static str>,
        sent: Vec<String>,
    }

    impl Transport for Scripted {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.sent.push(to_hex(apdu));
            Ok(parse_hex(self.replies.remove(0)).unwrap())
        }
        fn atr(&self) -> Vec<u8> {
            Vec::new()
        }
        fn name(&self) -> String {
            "scripted".into()
        }
        fn reset(&mut self) -> Result<(), TransportError> {
            Ok(())
        }
        fn with_transaction(
            &mut self,
            f: &mut dyn FnMut(&mut dyn Transport) -> Result<(), TransportError>,
        ) -> Result<(), TransportError> {
            f(self)
        }
    }

    #[test]
    fn get_response_and_wrong_le() {
        let mut t = Scripted {
            replies: vec!["6C04", "6104", "6C02", "AABB6102", "CCDD9000"],
            sent: vec![],
        };
        let mut ch = Channel::new(&mut t);
        let r = ch
            .transmit(
                &Command::new(0x80, 0xFA, 0, 0)
                    .with_data(vec![1; 8])
                    .with_le(1),
            )
            .unwrap();
        assert_eq!(r.data, vec![0xAA, 0xBB, 0xCC, 0xDD]);
        assert_eq!(ch.apdu_count(), 5);
        drop(ch);
        assert_eq!(
            t.sent,
            vec![
                "80FA0000080101010101010101 01".replace(' ', ""),
                "80FA0000080101010101010101 04".replace(' ', ""),
                "00C0000004".into(),
                "00C0000002".into(),
                "00C0000002".into()
            ]
        );
    }

    #[test]
    fn endless_get_response_is_an_error() {
        let mut t = Scripted {
            replies: vec!["6101"; 300],
            sent: vec![],
        };
        let err = Channel::new(&mut t)
            .transmit(&Command::new(0, 0xB0, 0, 0).with_le(1))
            .unwrap_err();
        assert_eq!(
            err,
            ChannelError::EndlessGetResponse {
                command: "00B00000".into(),
                rounds: 256
            }
        );
    }
}
