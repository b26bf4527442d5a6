//! [`RemoteKeys`]: a [`KeySource`] answered by the key service (`sscard keyd serve`) over
//! HTTPS with mutual TLS.
//!
//! The HTTP/1.1 exchange is written here over a `rustls` stream (ring provider, the workspace's
//! rustls 0.23): the protocol needs one request shape (JSON body, `Content-Length`) and one
//! connection kept alive, so no HTTP client crate (and no async runtime) is pulled in. Answers
//! may use `Content-Length` or chunked transfer coding.
//!
//! The client certificate, its key and the CA that signed the service's certificate are PEM
//! files named by `SSCARD_REMOTE_CERT`, `SSCARD_REMOTE_KEY` and `SSCARD_REMOTE_CA` (or given
//! to [`RemoteKeys::open`]); the key file must be mode 0600. Connecting and every read or
//! write wait at most [`TIMEOUT`].

use super::protocol::{self as p, ErrorBody, ErrorKind, WireAlgorithm};
use super::RemoteUrl;
use crate::keys::{CardRef, KeyError, KeySource};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sscard_core::crypto::Algorithm;
use sscard_core::hexfmt::{parse_hex, to_hex};
use sscard_core::profile::Kid;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long connecting, and each read or write, may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer body accepted (the largest real one, a card's key blocks, is < 2 KiB).
const MAX_BODY: usize = 1 << 20;
/// The largest status line or header accepted.
const MAX_LINE: usize = 8 << 10;

/// Environment variables naming the client's PEM files.
pub const ENV_CERT: &str = "SSCARD_REMOTE_CERT";
pub const ENV_KEY: &str = "SSCARD_REMOTE_KEY";
pub const ENV_CA: &str = "SSCARD_REMOTE_CA";

/// The client's TLS material: PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl RemoteTls {
    /// The files named by `SSCARD_REMOTE_CERT`, `SSCARD_REMOTE_KEY` and `SSCARD_REMOTE_CA`.
    pub fn from_env() -> Result<Self, KeyError> {
        Self::or_env(None, None, None)
    }

    /// The files given, each one not given named by its environment variable.
    pub fn or_env(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
    ) -> Result<Self, KeyError> {
        let var = |given: Option<PathBuf>, what: &'static str, name: &str| {
            given
                .or_else(|| {
                    std::env::var_os(name)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                })
                .ok_or_else(|| KeyError::RemoteConfig {
                    what,
                    path: format!("${name}"),
                    reason: "not set".into(),
                })
        };
        Ok(Self {
            cert: var(cert, "certificate", ENV_CERT)?,
            key: var(key, "key", ENV_KEY)?,
            ca: var(ca, "CA", ENV_CA)?,
        })
    }
}

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

fn read_file(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| KeyError::RemoteConfig {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

fn client_config(tls: &RemoteTls) -> Result<rustls::ClientConfig, KeyError> {
    let bad = |what: &'static str, path: &Path, reason: String| KeyError::RemoteConfig {
        what,
        path: path.display().to_string(),
        reason,
    };
    // The key file: 0600, like key files.
    let meta = std::fs::metadata(&tls.key).map_err(|e| bad("key", &tls.key, e.to_string()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::KeyFileTooOpen {
                path: tls.key.display().to_string(),
                mode,
            });
        }
    }
    let certs =
        |what: &'static str, path: &Path| -> Result<Vec<CertificateDer<'static>>, KeyError> {
            let pem = read_file(what, path)?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(what, path, format!("not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(bad(what, path, "holds no CERTIFICATE".into()));
            }
            Ok(certs)
        };
    let chain = certs("certificate", &tls.cert)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs("CA", &tls.ca)? {
        roots
            .add(ca)
            .map_err(|e| bad("CA", &tls.ca, e.to_string()))?;
    }
    let key_pem = read_file("key", &tls.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| bad("key", &tls.key, "holds no PEM private key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("certificate", &tls.cert, e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            bad(
                "certificate",
                &tls.cert,
                format!("refused with key {}: {e}", tls.key.display()),
            )
        })
}

/// The status, body and whether the server keeps the connection, of one answer.
struct Answer {
    status: u16,
    body: Vec<u8>,
    keep: bool,
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "line too long or connection closed",
        ));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| std::io::ErrorKind::InvalidData.into())
}

/// Reads one HTTP/1.1 answer. `Err(io)` for transport failures; a malformed answer is
/// `InvalidData`.
fn read_answer(r: &mut impl BufRead) -> std::io::Result<Answer> {
    let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let status_line = read_line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("not an HTTP/1.x answer"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status code"))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep = version != "HTTP/1.0";
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("a header without ':'"))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse().map_err(|_| invalid("bad Content-Length"))?)
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => {
                if value.eq_ignore_ascii_case("close") {
                    keep = false
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    keep = true
                }
            }
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(r)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                while !read_line(r)?.is_empty() {}
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("answer too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            if !read_line(r)?.is_empty() {
                return Err(invalid("chunk not followed by CRLF"));
            }
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(invalid("answer too large"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if status != 204 && status != 304 && !(100..200).contains(&status) {
        // Delimited by the end of the connection.
        r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
        if body.len() > MAX_BODY {
            return Err(invalid("answer too large"));
        }
        keep = false;
    }
    Ok(Answer { status, body, keep })
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

    /// One exchange on `conn`.
    fn exchange_on(&self, conn: &mut BufReader<Tls>, request: &[u8]) -> std::io::Result<Answer> {
        let stream = conn.get_mut();
        stream.write_all(request)?;
        stream.flush()?;
        read_answer(conn)
    }

    /// Sends one request, on the kept connection when there is one (reconnecting once when
    /// the server closed it meanwhile), and maps the answer's status.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, KeyError> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: keep-alive\r\n",
            self.host_header()
        );
        if let Some(b) = &body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        request.push_str("\r\n");
        // The body may hold key material (the audit message does not; blocks travel back).
        let mut request = Zeroizing::new(request.into_bytes());
        if let Some(b) = body {
            request.extend_from_slice(&Zeroizing::new(b));
        }
        let answer = match self.conn.take() {
            Some(mut conn) => match self.exchange_on(&mut conn, &request) {
                Ok(a) => Ok((a, conn)),
                // A kept connection the server closed meanwhile: once more on a new one. The
                // requests compute and change nothing, so a repeat is harmless.
                Err(e) if !is_timeout(&e) && e.kind() != std::io::ErrorKind::InvalidData => {
                    let mut conn = self.connect()?;
                    self.exchange_on(&mut conn, &request).map(|a| (a, conn))
                }
                Err(e) => Err(e),
            },
            None => {
                let mut conn = self.connect()?;
                self.exchange_on(&mut conn, &request).map(|a| (a, conn))
            }
        };
        let (answer, conn) = answer.map_err(|e| self.io_error(e))?;
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

    fn status(&self, answer: Answer) -> Result<Vec<u8>, KeyError> {
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
        serde_json::from_slice(&answer).map_err(|e| self.malformed(format!("{path}: {e}")))
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
            .map_err(|e| self.malformed(format!("{}: {e}", p::PATH_INFO)))?;
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
        let res: p::KeyLoadBlocksResponse = self.post(p::PATH_KEY_LOAD_BLOCKS, &req)?;
        if res.blocks.len() != keys.len() {
            return Err(self.malformed(format!(
                "{} key blocks for {} keys",
                res.blocks.len(),
                keys.len()
            )));
        }
        res.blocks
            .iter()
            .map(|b| {
                let block = self.hex("block", b, None)?;
                if block.is_empty() || block.len() % alg.block_size() != 0 {
                    return Err(self.malformed(format!("a key block has {} bytes", block.len())));
                }
                Ok(block)
            })
            .collect()
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

    #[test]
    fn answers_by_length_and_chunks() {
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        let a = read_answer(&mut r).unwrap();
        assert_eq!(
            (a.status, a.body.as_slice(), a.keep),
            (200, &b"{}"[..], true)
        );
        let mut r: &[u8] =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n";
        let a = read_answer(&mut r).unwrap();
        assert_eq!((a.body.as_slice(), a.keep), (&b"{}"[..], false));
        let mut r: &[u8] = b"SSH-2.0\r\n";
        assert!(matches!(
            read_answer(&mut r),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData
        ));
    }

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
