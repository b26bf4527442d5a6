//! T=0 case-4 behaviour (PROFILE section 1): response data waits behind `61xx` for
//! GET RESPONSE `00C00000xx`; a wrong Le answers `6Cxx`.

use sscard_core::apdu::{Command, Response};
use sscard_core::status::StatusWord;

/// Response data waiting for GET RESPONSE.
#[derive(Debug, Default)]
pub struct T0 {
    pending: Option<Vec<u8>>,
}

impl T0 {
    /// Handles GET RESPONSE, if `cmd` is one. Data longer than 256 bytes comes in parts of 256,
    /// each but the last answered `61xx` with what is left (`6100` = 256 or more).
    pub fn get_response(&mut self, cmd: &Command) -> Option<Response> {
        if (cmd.cla, cmd.ins) != (0x00, 0xC0) {
            return None;
        }
        if cmd.p1 != 0 || cmd.p2 != 0 {
            // A malformed GET RESPONSE is refused; what waits keeps waiting.
            return Some(Response::status(StatusWord::INCORRECT_P1P2));
        }
        let Some(mut data) = self.pending.take() else {
            return Some(Response::status(StatusWord::CONDITIONS_NOT_SATISFIED));
        };
        let part = data.len().min(256);
        Some(if cmd.le == Some(part) {
            let rest = data.split_off(part);
            if rest.is_empty() {
                Response::new(data, StatusWord::OK)
            } else {
                let sw = more_waiting(rest.len());
                self.pending = Some(rest);
                Response::new(data, sw)
            }
        } else {
            self.pending = Some(data);
            Response::status(StatusWord::new(0x6C, part as u8))
        })
    }

    /// Shapes an application response for T=0: a case-4 command's data goes behind `61xx`; a
    /// case-2 command's data comes directly when Le matches, else `6Cxx`.
    pub fn wrap(&mut self, cmd: &Command, response: Response) -> Response {
        self.pending = None;
        if response.data.is_empty() {
            return response;
        }
        let len = response.data.len();
        if !cmd.data.is_empty() || cmd.le.is_none() || len > 256 {
            self.pending = Some(response.data);
            return Response::status(more_waiting(len));
        }
        if cmd.le == Some(len) {
            response
        } else {
            Response::status(StatusWord::new(0x6C, len as u8))
        }
    }

    pub fn clear(&mut self) {
        self.pending = None;
    }
}

/// `61xx` for `len` bytes waiting: xx = len, `00` for 256 or more.
fn more_waiting(len: usize) -> StatusWord {
    StatusWord::new(0x61, len.min(256) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sscard_core::hexfmt::{parse_hex, to_hex};

    fn cmd(hex: &str) -> Command {
        Command::parse(&parse_hex(hex).unwrap()).unwrap()
    }

    fn sw(r: &Response) -> String {
        to_hex(&[r.sw.sw1(), r.sw.sw2()])
    }

    #[test]
    fn data_longer_than_256_bytes_comes_in_parts() {
        let mut t0 = T0::default();
        let data: Vec<u8> = (0..264u32).map(|i| i as u8).collect();
        let r = t0.wrap(
            &cmd("80FA000001AA"),
            Response::new(data.clone(), StatusWord::OK),
        );
        assert_eq!(sw(&r), "6100");
        // A GET RESPONSE with P1 set is refused and the data still waits.
        assert_eq!(sw(&t0.get_response(&cmd("00C0010000")).unwrap()), "6A86");
        // A wrong Le: 6Cxx with this part's length, nothing lost.
        assert_eq!(sw(&t0.get_response(&cmd("00C0000010")).unwrap()), "6C00");
        let first = t0.get_response(&cmd("00C0000000")).unwrap();
        assert_eq!(
            (first.data.as_slice(), sw(&first).as_str()),
            (&data[..256], "6108")
        );
        let last = t0.get_response(&cmd("00C0000008")).unwrap();
        assert_eq!(
            (last.data.as_slice(), sw(&last).as_str()),
            (&data[256..], "9000")
        );
        assert_eq!(sw(&t0.get_response(&cmd("00C0000008")).unwrap()), "6985");
    }
}
