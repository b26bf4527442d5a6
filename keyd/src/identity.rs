//! Who a client is: its certificate's subject CN and SHA-256 fingerprint, as the policy and
//! the audit log name it.

use sha2::{Digest, Sha256};
use sscard_core::hexfmt::to_hex;

/// A client as its (CA-verified) certificate names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    /// The subject's common name, when it has one (UTF-8).
    pub cn: Option<String>,
    /// Upper-case hex of the DER certificate's SHA-256.
    pub fingerprint: String,
}

impl ClientIdentity {
    /// The identity of a DER certificate. A certificate whose subject does not parse still has
    /// its fingerprint.
    pub fn of_certificate(der: &[u8]) -> Self {
        let cn = x509_parser::parse_x509_certificate(der)
            .ok()
            .and_then(|(_, cert)| {
                cert.subject()
                    .iter_common_name()
                    .next()
                    .and_then(|a| a.as_str().ok().map(str::to_string))
            });
        Self {
            cn,
            fingerprint: to_hex(&Sha256::digest(der)),
        }
    }

    /// How the audit log and messages name the client: `CN (fingerprint prefix)`.
    pub fn label(&self) -> String {
        format!(
            "{} ({})",
            self.cn.as_deref().unwrap_or("no CN"),
            &self.fingerprint[..16.min(self.fingerprint.len())]
        )
    }
}
