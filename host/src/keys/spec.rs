//! `--keys soft:FILE | psam:READER | pkcs11:MODULE:TOKEN-LABEL`: the one way every command names
//! its key source. Without `--keys`, commands use the software test key set and say so.

use super::{KeyError, KeySource, PsamKeys, SoftKeys};
use crate::transport::pcsc::{establish, PcscTransport};
use std::path::PathBuf;

/// A parsed `--keys` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// The profile's public test key set.
    TestSet,
    Soft(PathBuf),
    Psam(String),
    Pkcs11 {
        module: PathBuf,
        token: String,
    },
}

impl std::str::FromStr for KeySpec {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bad = |detail: &str| KeyError::BadSpec {
            spec: s.into(),
            detail: detail.into(),
        };
        match s.split_once(':') {
            _ if s == "test" => Ok(Self::TestSet),
            Some(("soft", path)) if !path.is_empty() => Ok(Self::Soft(path.into())),
            Some(("psam", reader)) if !reader.is_empty() => Ok(Self::Psam(reader.into())),
            Some(("pkcs11", rest)) => match rest.rsplit_once(':') {
                Some((module, token)) if !module.is_empty() && !token.is_empty() => {
                    Ok(Self::Pkcs11 {
                        module: module.into(),
                        token: token.into(),
                    })
                }
                _ => Err(bad("expected pkcs11:MODULE:TOKEN-LABEL")),
            },
            _ => Err(bad(
                "expected test, soft:FILE, psam:READER or pkcs11:MODULE:TOKEN-LABEL",
            )),
        }
    }
}

/// The token PIN: `SSCARD_PKCS11_PIN`, or a no-echo prompt. Never from argv.
pub fn token_pin() -> Result<zeroize::Zeroizing<String>, KeyError> {
    if let Ok(pin) = std::env::var("SSCARD_PKCS11_PIN") {
        return Ok(zeroize::Zeroizing::new(pin));
    }
    crate::prompt::secret_line("token PIN")
        .map_err(|e| KeyError::Unsupported(format!("reading the token PIN: {e}")))
}

/// Opens a key source. Software keys print a warning on stderr.
pub fn open(spec: &KeySpec) -> Result<Box<dyn KeySource>, KeyError> {
    match spec {
        KeySpec::TestSet => {
            eprintln!("sscard: warning: using the PROFILE test key set (software keys; never for production)");
            Ok(Box::new(SoftKeys::test_set()))
        }
        KeySpec::Soft(path) => {
            eprintln!(
                "sscard: warning: using software keys from {}",
                path.display()
            );
            Ok(Box::new(SoftKeys::from_file(path)?))
        }
        KeySpec::Psam(reader) => {
            let ctx = establish().map_err(|e| KeyError::Unsupported(e.to_string()))?;
            let t = PcscTransport::connect(&ctx, Some(reader), false)
                .map_err(|e| KeyError::Unsupported(format!("PSAM reader: {e}")))?;
            Ok(Box::new(PsamKeys::open(t)?))
        }
        #[cfg(feature = "pkcs11")]
        KeySpec::Pkcs11 { module, token } => {
            let pin = token_pin()?;
            Ok(Box::new(super::Pkcs11Keys::open(
                module, token, &pin, false,
            )?))
        }
        #[cfg(not(feature = "pkcs11"))]
        KeySpec::Pkcs11 { .. } => Err(KeyError::Unsupported(
            "this build of sscard has no PKCS#11 support (cargo feature pkcs11)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "soft:/k".parse::<KeySpec>().unwrap(),
            KeySpec::Soft("/k".into())
        );
        assert_eq!(
            "psam:Virtual PCD 00 01".parse::<KeySpec>().unwrap(),
            KeySpec::Psam("Virtual PCD 00 01".into())
        );
        assert_eq!(
            "pkcs11:/usr/lib/softhsm/libsofthsm2.so:sscard"
                .parse::<KeySpec>()
                .unwrap(),
            KeySpec::Pkcs11 {
                module: "/usr/lib/softhsm/libsofthsm2.so".into(),
                token: "sscard".into()
            }
        );
        assert_eq!(
            "hsm".parse::<KeySpec>().unwrap_err(),
            KeyError::BadSpec {
                spec: "hsm".into(),
                detail: "expected test, soft:FILE, psam:READER or pkcs11:MODULE:TOKEN-LABEL".into()
            }
        );
    }
}
