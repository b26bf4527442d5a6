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
    /// Handles GET RESPONSE, if `cmd` is one.
    pub fn get_response(&mut self, cmd: &Command) -> Option<Response> {
        if (cmd.cla, cmd.ins) != (0x00, 0xC0) {
            return None;
        }
        let pending = self.pending.take();
        Some(match pending {
            _ if cmd.p1 != 0 || cmd.p2 != 0 => Response::status(StatusWord::INCORRECT_P1P2),
            None => Response::status(StatusWord::CONDITIONS_NOT_SATISFIED),
            Some(data) if cmd.le == Some(data.len()) => Response::new(data, StatusWord::OK),
            Some(data) => {
                let sw = StatusWord::new(0x6C, data.len() as u8);
                self.pending = Some(data);
                Response::status(sw)
            }
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
        if !cmd.data.is_empty() || cmd.le.is_none() {
            self.pending = Some(response.data);
            return Response::status(StatusWord::new(0x61, len as u8));
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
