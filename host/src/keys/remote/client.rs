//! [`RemoteKeys`]: a [`KeySource`] answered by the key service (`sscard keyd serve`) over
//! HTTPS with mutual TLS.
//!
//! HTTP/1.1 is spoken over a `rustls` stream (ring provider, the workspace's rustls 0.23) by
//! the framing of [`super::http`]: the protocol needs one request shape (JSON body,
//! `Content-Length`) and one connection kept alive, so no HTTP client crate (and no async
//! runtime) is pulled in. The TLS material is [`RemoteTls`] ([`super::tls`]). Connecting and
//! every read or write wait at most [`TIMEOUT`].
//!
//! Request and answer bodies carry key blocks, MACs and cryptograms: they are zeroized, and
//! never logged nor shown by `Debug` or an error (a malformed answer's error names the JSON
//! error's category and position, not its text).

use super::http::{self, Answer, HttpError};
use super::protocol::{self as p, ErrorBody, ErrorKind, WireAlgorithm};
use super::tls::{client_config, RemoteTls};
use super::RemoteUrl;
use crate::keys::{CardRef, KeyError, KeySource};
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::Kid;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use zeroize::{Zeroize, Zeroizing};

/// How long connecting, and each read or write, may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Key source answered by a key service.
pub struct RemoteKeys {
    url: RemoteUrl,
    shown: String,
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    conn: Option<BufReader<Tls>>,
    info: Option<p::InfoResponse>,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("url", &self.shown)
            .finish()
    }
}

impl RemoteKeys {
    /// A client of the service at `url` (`https://HOST[:PORT]`) with the given TLS material.
    /// Connects and fetches `/v1/info` (once: `algorithm`, `region`, `terminal_number` and
    /// `describe` answer from it), so that an unreachable or refusing service fails here and a
    /// service holding a PSAM of the other algorithm is caught before the card (-2202).
    pub fn open(url: &str, tls: &RemoteTls) -> Result<Self, KeyError> {
        let parsed = RemoteUrl::parse(url).ok_or_else(|| KeyError::BadSpec {
            spec: format!("remote:{url}"),
            expected: "remote:https://HOST:PORT",
        })?;
        let server_name =
            ServerName::try_from(parsed.host.clone()).map_err(|_| KeyError::BadSpec {
                spec: format!("remote:{url}"),
                expected: "remote:https://HOST:PORT with a DNS name or IP address",
            })?;
        let config = Arc::new(client_config(tls)?);
        let mut keys = Self {
            shown: parsed.to_string(),
            url: parsed,
            config,
            server_name,
            conn: None,
            info: None,
        };
        keys.fetch_info()?;
        Ok(keys)
    }

    /// A client with the TLS material named by the environment ([`RemoteTls::from_env`]).
    pub fn open_env(url: &str) -> Result<Self, KeyError> {
        Self::open(url, &RemoteTls::from_env()?)
    }

    /// The service's URL.
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn connect(&self) -> Result<BufReader<Tls>, KeyError> {
        let url = || self.shown.clone();
        let addrs: Vec<_> = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| KeyError::RemoteUnreachable {
                url: url(),
                detail: e.to_string(),
            })?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = match (tcp, last) {
            (Some(s), _) => s,
            (None, Some(e)) if is_timeout(&e) => {
                return Err(KeyError::RemoteTimedOut {
                    url: url(),
                    seconds: TIMEOUT.as_secs(),
                })
            }
            (None, e) => {
                return Err(KeyError::RemoteUnreachable {
                    url: url(),
                    detail: e.map_or_else(|| "no address".into(), |e| e.to_string()),
                })
            }
        };
        let setup = |e: std::io::Error| KeyError::RemoteUnreachable {
            url: url(),
            detail: e.to_string(),
        };
        tcp.set_read_timeout(Some(TIMEOUT)).map_err(setup)?;
        tcp.set_write_timeout(Some(TIMEOUT)).map_err(setup)?;
        tcp.set_nodelay(true).map_err(setup)?;
        let conn = rustls::ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| KeyError::RemoteUnauthorised {
                url: url(),
                detail: e.to_string(),
            })?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Handshake now, so that a refused certificate is told apart from a lost connection.
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| self.io_error(e))?;
        }
        Ok(BufReader::new(tls))
    }

    /// Maps a transport failure.
    fn io_error(&self, e: std::io::Error) -> KeyError {
        let url = self.shown.clone();
        if is_timeout(&e) {
            return KeyError::RemoteTimedOut {
                url,
                seconds: TIMEOUT.as_secs(),
            };
        }
        if let Some(tls) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return KeyError::RemoteUnauthorised {
                url,
                detail: format!("TLS: {tls}"),
            };
        }
        if e.kind() == std::io::ErrorKind::InvalidData {
            return KeyError::RemoteMalformed {
                url,
                detail: e.to_string(),
            };
        }
        KeyError::RemoteUnreachable {
            url,
            detail: e.to_string(),
        }
    }

    /// One exchange on `conn`. A failed or timed-out write is [`HttpError::Closed`] unless
    /// it timed out (the request may then be half sent, and the server busy).
    fn exchange_on(conn: &mut BufReader<Tls>, request: &[u8]) -> Result<Answer, HttpError> {
        let stream = conn.get_mut();
        stream
            .write_all(request)
            .and_then(|()| stream.flush())
            .map_err(|e| {
                if is_timeout(&e) {
                    HttpError::Io(e)
                } else {
                    HttpError::Closed(Some(e))
                }
            })?;
        http::read_answer(conn)
    }

    /// Maps a failed exchange.
    fn http_error(&self, e: HttpError) -> KeyError {
        match e {
            HttpError::Io(e) | HttpError::Closed(Some(e)) => self.io_error(e),
            HttpError::Closed(None) | HttpError::Truncated => KeyError::RemoteUnreachable {
                url: self.shown.clone(),
                detail: e.to_string(),
            },
            malformed => self.malformed(malformed.to_string()),
        }
    }

    /// Sends one request, on the kept connection when there is one, and maps the answer's
    /// status. When the server closed the kept connection before sending any byte of the
    /// answer (it closes idle connections), the request is sent once more on a new
    /// connection: the requests compute and change nothing, so the repeat is harmless. A
    /// request whose answer had begun, or timed out, is never sent again.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let body = body.map(Zeroizing::new);
        let request = http::request(
            method,
            path,
            &self.host_header(),
            body.as_deref().map(Vec::as_slice),
        );
        let answer = match self.conn.take() {
            Some(mut conn) => match Self::exchange_on(&mut conn, &request) {
                Ok(a) => Ok((a, conn)),
                Err(HttpError::Closed(_)) => {
                    drop(conn);
                    let mut conn = self.connect()?;
                    Self::exchange_on(&mut conn, &request).map(|a| (a, conn))
                }
                Err(e) => Err(e),
            },
            None => {
                let mut conn = self.connect()?;
                Self::exchange_on(&mut conn, &request).map(|a| (a, conn))
            }
        };
        let (answer, conn) = answer.map_err(|e| self.http_error(e))?;
        if answer.keep {
            self.conn = Some(conn);
        }
        self.status(answer)
    }

    fn host_header(&self) -> String {
        let host = if self.url.host.contains(':') {
            format!("[{}]", self.url.host)
        } else {
            self.url.host.clone()
        };
        if self.url.port == 443 {
            host
        } else {
            format!("{host}:{}", self.url.port)
        }
    }

    fn status(&self, answer: Answer) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if answer.status == 200 {
            return Ok(answer.body);
        }
        Err(error_of(&self.shown, answer.status, &answer.body))
    }

    fn post<Q: Serialize, A: DeserializeOwned>(
        &mut self,
        path: &str,
        req: &Q,
    ) -> Result<A, KeyError> {
        let body = serde_json::to_vec(req).map_err(|e| self.malformed(format!("request: {e}")))?;
        let answer = self.call("POST", path, Some(body))?;
        serde_json::from_slice(&answer).map_err(|e| self.malformed(json_error(path, &e)))
    }

    fn malformed(&self, detail: String) -> KeyError {
        KeyError::RemoteMalformed {
            url: self.shown.clone(),
            detail,
        }
    }

    /// Fetches `/v1/info` (at open).
    fn fetch_info(&mut self) -> Result<(), KeyError> {
        let answer = self.call("GET", p::PATH_INFO, None)?;
        let info: p::InfoResponse = serde_json::from_slice(&answer)
            .map_err(|e| self.malformed(json_error(p::PATH_INFO, &e)))?;
        if info
            .region
            .as_ref()
            .is_some_and(|r| r.len() != 6 || !r.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(self.malformed(format!("{}: region is not 6 digits", p::PATH_INFO)));
        }
        self.info = Some(info);
        Ok(())
    }

    fn wire(&self, alg: Algorithm) -> Result<WireAlgorithm, KeyError> {
        WireAlgorithm::from_algorithm(alg).ok_or(KeyError::RemoteServer {
            url: self.shown.clone(),
            status: 400,
            message: format!(
                "the key service protocol carries 3DES and SM4, not {}",
                alg.name()
            ),
        })
    }

    fn hex(&self, field: &str, text: &str, len: Option<usize>) -> Result<Vec<u8>, KeyError> {
        let bytes = parse_hex(text).map_err(|_| self.malformed(format!("{field} is not hex")))?;
        match len {
            Some(n) if bytes.len() != n => {
                Err(self.malformed(format!("{field} has {} bytes, {n} expected", bytes.len())))
            }
            _ => Ok(bytes),
        }
    }
}

/// A JSON error without its text: serde's messages may quote the answer's values (a key
/// block where a number was expected), so only the category and position are kept.
fn json_error(path: &str, e: &serde_json::Error) -> String {
    format!(
        "{path}: {:?} error in the JSON at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// The error of a non-200 answer: its `{"error": …}` body when there is one, else the status.
pub(crate) fn error_of(url: &str, status: u16, body: &[u8]) -> KeyError {
    let url = url.to_string();
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .map(|b| b.error.message.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let kind = parsed.as_ref().map(|b| b.error.kind);
    match (status, kind) {
        (401, _) | (_, Some(ErrorKind::Unauthorised)) => KeyError::RemoteUnauthorised {
            url,
            detail: message,
        },
        (403, _) | (_, Some(ErrorKind::Forbidden)) => KeyError::RemoteRefused { url, message },
        (429, _) | (_, Some(ErrorKind::RateLimited)) => {
            KeyError::RemoteRateLimited { url, message }
        }
        (422, Some(ErrorKind::Key)) => KeyError::RemoteKey {
            url,
            code: parsed.map_or(sscard_core::profile::codes::UNKNOWN, |b| b.error.code),
            message,
        },
        (422, _) => KeyError::RemoteMalformed {
            url,
            detail: format!("422 without a key error: {message}"),
        },
        _ => KeyError::RemoteServer {
            url,
            status,
            message,
        },
    }
}

impl KeySource for RemoteKeys {
    fn describe(&self) -> String {
        match &self.info {
            Some(info) => format!("key service {} ({})", self.shown, info.source),
            None => format!("key service {}", self.shown),
        }
    }

    fn algorithm(&self) -> Option<Algorithm> {
        self.info
            .as_ref()
            .and_then(|i| i.algorithm)
            .map(WireAlgorithm::algorithm)
    }

    fn terminal_number(&mut self) -> Result<Option<String>, KeyError> {
        Ok(self.info.as_ref().and_then(|i| i.terminal_number.clone()))
    }

    fn region(&mut self) -> Result<Option<String>, KeyError> {
        Ok(self.info.as_ref().and_then(|i| i.region.clone()))
    }

    fn cryptogram(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: Kid,
        random: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let req = p::CryptogramRequest {
            algorithm: self.wire(alg)?,
            card_id: to_hex(&card.card_id),
            kid: kid.name().into(),
            random: to_hex(random),
        };
        let res: p::CryptogramResponse = self.post(p::PATH_CRYPTOGRAM, &req)?;
        let out = self.hex("cryptogram", &res.cryptogram, None)?;
        if out.is_empty() || out.len() % alg.block_size() != 0 {
            return Err(self.malformed(format!("cryptogram has {} bytes", out.len())));
        }
        Ok(out)
    }

    fn mac(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: Kid,
        challenge: &[u8],
        message: &[u8],
    ) -> Result<[u8; 4], KeyError> {
        let req = p::MacRequest {
            algorithm: self.wire(alg)?,
            card_id: to_hex(&card.card_id),
            kid: kid.name().into(),
            challenge: to_hex(challenge),
            message: to_hex(message),
        };
        let res: p::MacResponse = self.post(p::PATH_MAC, &req)?;
        let mac = self.hex("mac", &res.mac, Some(4))?;
        Ok([mac[0], mac[1], mac[2], mac[3]])
    }

    fn key_load_block(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        kid: Kid,
        tries: u8,
    ) -> Result<Vec<u8>, KeyError> {
        let mut blocks = self.key_load_blocks(alg, card, &[(kid, tries)])?;
        Ok(blocks.remove(0))
    }

    fn key_load_blocks(
        &mut self,
        alg: Algorithm,
        card: &CardRef,
        keys: &[(Kid, u8)],
    ) -> Result<Vec<Vec<u8>>, KeyError> {
        let req = p::KeyLoadBlocksRequest {
            algorithm: self.wire(alg)?,
            card_id: to_hex(&card.card_id),
            keys: keys
                .iter()
                .map(|&(kid, tries)| p::KeyToLoad {
                    kid: kid.name().into(),
                    tries,
                })
                .collect(),
        };
        let mut res: p::KeyLoadBlocksResponse = self.post(p::PATH_KEY_LOAD_BLOCKS, &req)?;
        if res.blocks.len() != keys.len() {
            return Err(self.malformed(format!(
                "{} key blocks for {} keys",
                res.blocks.len(),
                keys.len()
            )));
        }
        let blocks = res
            .blocks
            .iter()
            .map(|b| {
                let block = self.hex("block", b, None)?;
                if block.is_empty() || block.len() % alg.block_size() != 0 {
                    return Err(self.malformed(format!("a key block has {} bytes", block.len())));
                }
                Ok(block)
            })
            .collect();
        // The blocks' hex text goes no further than here.
        res.blocks.zeroize();
        blocks
    }

    fn audit_mac(&mut self, message: &[u8]) -> Result<[u8; 32], KeyError> {
        let req = p::AuditMacRequest {
            message: to_hex(message),
        };
        let res: p::AuditMacResponse = self.post(p::PATH_AUDIT_MAC, &req)?;
        let mac = self.hex("mac", &res.mac, Some(32))?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac);
        Ok(out)
    }

    /// `GET /v1/info` again (answer not kept: the description is the one of the open). On a
    /// kept connection the service closed (it was restarted), the request goes once more on a
    /// new one, as every request does.
    fn available(&mut self) -> Result<(), KeyError> {
        self.call("GET", p::PATH_INFO, None).map(drop)
    }

    fn preflight(&mut self, kids: &[Kid]) -> Result<(), KeyError> {
        let req = p::PreflightRequest {
            kids: kids.iter().map(|k| k.name().to_string()).collect(),
        };
        let _: p::PreflightResponse = self.post(p::PATH_PREFLIGHT, &req)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> KeyError {
        error_of("https://k:1", status, body.as_bytes())
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        use sscard_core::classify::Classified;
        let body = |kind: &str, code: i32| {
            format!(r#"{{"error":{{"kind":"{kind}","code":{code},"message":"m"}}}}"#)
        };
        assert_eq!(
            err(403, &body("forbidden", -999)),
            KeyError::RemoteRefused {
                url: "https://k:1".into(),
                message: "m".into()
            }
        );
        assert!(matches!(err(401, ""), KeyError::RemoteUnauthorised { .. }));
        assert!(matches!(
            err(429, &body("rate_limited", -999)),
            KeyError::RemoteRateLimited { .. }
        ));
        let key = err(422, &body("key", -2203));
        assert_eq!(key.return_code(), -2203);
        assert!(matches!(key, KeyError::RemoteKey { code: -2203, .. }));
        assert!(matches!(err(422, "x"), KeyError::RemoteMalformed { .. }));
        assert_eq!(
            err(500, &body("internal", -999)),
            KeyError::RemoteServer {
                url: "https://k:1".into(),
                status: 500,
                message: "m".into()
            }
        );
        assert!(matches!(
            err(400, "not json"),
            KeyError::RemoteServer { status: 400, .. }
        ));
    }

    #[test]
    fn an_open_client_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sscard-remote-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("client.key");
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let tls = RemoteTls {
            cert: dir.join("client.crt"),
            key: key.clone(),
            ca: dir.join("ca.crt"),
        };
        let e = RemoteKeys::open("https://k:1", &tls).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            e,
            KeyError::KeyFileTooOpen {
                path: key.display().to_string(),
                mode: 0o644
            }
        );
    }

    #[test]
    fn missing_files_are_config_errors() {
        let tls = RemoteTls {
            cert: "/nonexistent/c".into(),
            key: "/nonexistent/k".into(),
            ca: "/nonexistent/a".into(),
        };
        assert!(matches!(
            RemoteKeys::open("https://k:1", &tls).unwrap_err(),
            KeyError::RemoteConfig { what: "key", .. }
        ));
        assert!(matches!(
            RemoteKeys::open("http://k:1", &tls).unwrap_err(),
            KeyError::BadSpec { .. }
        ));
    }
}
