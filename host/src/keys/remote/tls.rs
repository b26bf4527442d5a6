//! The TLS client configuration of [`RemoteKeys`](super::RemoteKeys): the client's
//! certificate, its key (a 0600 file) and the CA that signed the key service's certificate,
//! PEM files named by `SSCARD_REMOTE_CERT`, `SSCARD_REMOTE_KEY` and `SSCARD_REMOTE_CA`.

use crate::keys::KeyError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

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

fn read_file(what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| KeyError::RemoteConfig {
            what,
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

pub(crate) fn client_config(tls: &RemoteTls) -> Result<rustls::ClientConfig, KeyError> {
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
