//! HTTP/1.1 framing for [`RemoteKeys`](super::RemoteKeys): writing one request and reading
//! one answer (status line, headers, a body delimited by `Content-Length`, chunked transfer
//! coding or the end of the connection), within fixed limits.
//!
//! Bodies carry key blocks, MACs and cryptograms: they are held in [`Zeroizing`] buffers,
//! and neither [`Answer`]'s `Debug` nor any [`HttpError`] shows a byte of them.

use std::io::{self, BufRead, Read};
use thiserror::Error;
use zeroize::Zeroizing;

/// The largest answer body accepted (the largest real one, a card's key blocks, is < 2 KiB).
pub(crate) const MAX_BODY: usize = 1 << 20;
/// The largest status line, header line, chunk-size line or trailer line accepted (with its
/// CRLF).
pub(crate) const MAX_LINE: usize = 8 << 10;
/// The most bytes of framing (status line, headers, chunk-size lines and chunk CRLFs,
/// trailers) accepted in one answer.
pub(crate) const MAX_FRAMING: usize = 64 << 10;

/// Why an answer could not be read.
#[derive(Debug, Error)]
pub(crate) enum HttpError {
    /// The connection ended (or could not be written to) before any byte of the answer: the
    /// only failure after which a request may be sent again on a new connection.
    #[error("the connection was closed before the answer")]
    Closed(#[source] Option<io::Error>),
    /// A transport failure after the answer began (or a timeout).
    #[error(transparent)]
    Io(io::Error),
    /// The connection ended inside the answer.
    #[error("the connection ended inside the answer")]
    Truncated,
    #[error("the answer has no status line")]
    NoStatusLine,
    #[error("not an HTTP/1.x answer")]
    NotHttp,
    #[error("the status line has no valid status code")]
    BadStatus,
    #[error("a line of the answer is longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("the answer's headers and framing exceed {limit} bytes")]
    FramingTooLong { limit: usize },
    #[error("a header line of the answer is malformed")]
    BadHeader,
    #[error("the answer's Content-Length is invalid")]
    BadContentLength,
    #[error("the answer's transfer coding is not chunked")]
    BadTransferEncoding,
    #[error("the answer has an invalid chunk size")]
    BadChunkSize,
    #[error("a chunk of the answer is not followed by CRLF")]
    BadChunkEnd,
    #[error("the answer's body is longer than {limit} bytes")]
    BodyTooLong { limit: usize },
}

/// The status, body and whether the server keeps the connection, of one answer.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
    pub keep: bool,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("keep", &self.keep)
            .finish()
    }
}

/// The bytes of one request: `body`, when given, is JSON. Zeroized when dropped (the body
/// may hold key material).
pub(crate) fn request(
    method: &str,
    path: &str,
    host: &str,
    body: Option<&[u8]>,
) -> Zeroizing<Vec<u8>> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: keep-alive\r\n"
    );
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = Zeroizing::new(Vec::with_capacity(head.len() + body.map_or(0, <[u8]>::len)));
    out.extend_from_slice(head.as_bytes());
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
    out
}

/// Whether `e` says the peer closed or reset the connection.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn io_err(e: io::Error) -> HttpError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        HttpError::Truncated
    } else {
        HttpError::Io(e)
    }
}

struct Parser<'a, R> {
    r: &'a mut R,
    framing: usize,
}

impl<R: BufRead> Parser<'_, R> {
    /// One framing line, without its CRLF (or LF).
    fn line(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut line = Vec::new();
        (&mut *self.r)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(io_err)?;
        if !line.ends_with(b"\n") {
            return Err(if line.len() >= MAX_LINE {
                HttpError::LineTooLong { limit: MAX_LINE }
            } else {
                HttpError::Truncated
            });
        }
        self.framing += line.len();
        if self.framing > MAX_FRAMING {
            return Err(HttpError::FramingTooLong { limit: MAX_FRAMING });
        }
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
        Ok(line)
    }

    /// Appends exactly `n` bytes to `body`, growing it without leaving copies behind.
    fn body(&mut self, body: &mut Zeroizing<Vec<u8>>, n: usize) -> Result<(), HttpError> {
        if n > MAX_BODY - body.len() {
            return Err(HttpError::BodyTooLong { limit: MAX_BODY });
        }
        reserve(body, n);
        let start = body.len();
        body.resize(start + n, 0);
        self.r.read_exact(&mut body[start..]).map_err(io_err)
    }

    /// Appends everything up to the end of the connection.
    fn until_close(&mut self, body: &mut Zeroizing<Vec<u8>>) -> Result<(), HttpError> {
        let mut buf = Zeroizing::new([0u8; 4096]);
        loop {
            let n = match self.r.read(&mut buf[..]) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            if n > MAX_BODY - body.len() {
                return Err(HttpError::BodyTooLong { limit: MAX_BODY });
            }
            reserve(body, n);
            body.extend_from_slice(&buf[..n]);
        }
    }
}

/// Makes room for `more` bytes in `body`, moving it (the old buffer zeroized) when it must.
fn reserve(body: &mut Zeroizing<Vec<u8>>, more: usize) {
    let need = body.len() + more;
    if need > body.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(need.max(2 * body.capacity())));
        bigger.extend_from_slice(body);
        *body = bigger;
    }
}

/// A decimal or hexadecimal number of digits only (no sign, no blanks), `None` on overflow.
fn number(text: &[u8], radix: u32) -> Option<usize> {
    if text.is_empty() || !text.iter().all(|&b| (b as char).is_digit(radix)) {
        return None;
    }
    usize::from_str_radix(std::str::from_utf8(text).ok()?, radix).ok()
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Reads one HTTP/1.1 answer.
pub(crate) fn read_answer(r: &mut impl BufRead) -> Result<Answer, HttpError> {
    // Nothing at all of the answer: the server closed an idle connection.
    match r.fill_buf() {
        Ok([]) => return Err(HttpError::Closed(None)),
        Ok(_) => {}
        Err(e) if is_closed(&e) => return Err(HttpError::Closed(Some(e))),
        Err(e) => return Err(HttpError::Io(e)),
    }
    let mut p = Parser { r, framing: 0 };
    let status_line = p.line()?;
    if status_line.is_empty() {
        return Err(HttpError::NoStatusLine);
    }
    let mut parts = status_line.splitn(3, |&b| b == b' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with(b"HTTP/1.") {
        return Err(HttpError::NotHttp);
    }
    let status = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| number(s, 10))
        .filter(|s| (100..=599).contains(s))
        .ok_or(HttpError::BadStatus)? as u16;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep = version != b"HTTP/1.0";
    loop {
        let line = p.line()?;
        if line.is_empty() {
            break;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::BadHeader)?;
        let (name, value) = (trim(&line[..colon]), trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = number(value, 10).ok_or(HttpError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadContentLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::BadTransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                keep = false
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                keep = true
            }
        }
    }
    let mut body = Zeroizing::new(Vec::new());
    if chunked {
        loop {
            let size_line = p.line()?;
            let size_text = size_line.split(|&b| b == b';').next().unwrap_or_default();
            let size = number(trim(size_text), 16).ok_or(HttpError::BadChunkSize)?;
            if size == 0 {
                // Trailers, up to the blank line.
                while !p.line()?.is_empty() {}
                break;
            }
            p.body(&mut body, size)?;
            if !p.line()?.is_empty() {
                return Err(HttpError::BadChunkEnd);
            }
        }
    } else if let Some(n) = length {
        p.body(&mut body, n)?;
    } else if status != 204 && status != 304 && !(100..200).contains(&status) {
        // Delimited by the end of the connection.
        p.until_close(&mut body)?;
        keep = false;
    }
    Ok(Answer { status, body, keep })
}

#[cfg(test)]
mod tests;
