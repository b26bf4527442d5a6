//! `--keys soft:FILE | psam:READER | pkcs11:MODULE:TOKEN-LABEL | remote:https://HOST:PORT`: the one way every command names
//! its key source. Without `--keys`, commands use the software test key set and say so.

use super::{KeyError, KeySource, SoftKeys};
use sscard_transport::trace::Trace;
use std::path::PathBuf;

/// A parsed `--keys` value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySpec {
    /// The profile's public test key set.
    TestSet,
    Soft(PathBuf),
    Psam(String),
    Pkcs11 {
        module: PathBuf,
        token: String,
    },
    /// A key service (`sscard keyd serve`): its URL, `https://HOST[:PORT]`.
    Remote(String),
}

const EXPECTED: &str =
    "test, soft:FILE, psam:READER, pkcs11:MODULE:TOKEN-LABEL or remote:https://HOST:PORT";

impl std::str::FromStr for KeySpec {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bad = |expected| KeyError::BadSpec {
            spec: s.into(),
            expected,
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
                _ => Err(bad("pkcs11:MODULE:TOKEN-LABEL")),
            },
            Some(("remote", url)) if super::remote::RemoteUrl::parse(url).is_some() => {
                Ok(Self::Remote(url.into()))
            }
            Some(("remote", _)) => Err(bad("remote:https://HOST:PORT")),
            _ => Err(bad(EXPECTED)),
        }
    }
}

impl KeySpec {
    /// Whether opening the source needs the token PIN.
    pub fn needs_token_pin(&self) -> bool {
        matches!(self, Self::Pkcs11 { .. })
    }

    /// A warning for sources that keep master keys in host memory (software keys), to print
    /// before using them.
    pub fn warning(&self) -> Option<String> {
        match self {
            Self::TestSet => {
                Some("using the PROFILE test key set (software keys; never for production)".into())
            }
            Self::Soft(path) => Some(format!("using software keys from {}", path.display())),
            _ => None,
        }
    }
}

/// Opens a key source. A PSAM's exchanges go to `trace` (role `psam`); a PKCS#11 token logs in
/// with `token_pin` (see [`KeySpec::needs_token_pin`]).
pub fn open(
    spec: &KeySpec,
    trace: &Trace,
    token_pin: Option<&str>,
) -> Result<Box<dyn KeySource>, KeyError> {
    match spec {
        KeySpec::TestSet => Ok(Box::new(SoftKeys::test_set())),
        KeySpec::Soft(path) => Ok(Box::new(SoftKeys::from_file(path)?)),
        #[cfg(feature = "pcsc")]
        KeySpec::Psam(reader) => {
            use sscard_transport::pcsc::{establish, PcscBackend};
            use sscard_transport::Connection;
            let ctx = establish()?;
            let backend = PcscBackend::connect(&ctx, Some(reader), false)?;
            Ok(Box::new(super::PsamKeys::open(
                Connection::new(backend).traced(trace, "psam"),
            )?))
        }
        #[cfg(not(feature = "pcsc"))]
        KeySpec::Psam(_) => {
            let _ = trace;
            Err(KeyError::PcscNotBuilt)
        }
        #[cfg(feature = "pkcs11")]
        KeySpec::Pkcs11 { module, token } => {
            let pin = token_pin.ok_or(KeyError::NoTokenPin)?;
            Ok(Box::new(super::Pkcs11Keys::open(
                module, token, pin, false,
            )?))
        }
        #[cfg(not(feature = "pkcs11"))]
        KeySpec::Pkcs11 { .. } => {
            let _ = token_pin;
            Err(KeyError::Pkcs11NotBuilt)
        }
        #[cfg(feature = "remote")]
        KeySpec::Remote(url) => Ok(Box::new(super::RemoteKeys::open_env(url)?)),
        #[cfg(not(feature = "remote"))]
        KeySpec::Remote(_) => Err(KeyError::RemoteNotBuilt),
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
        let e = "hsm".parse::<KeySpec>().unwrap_err();
        assert_eq!(
            e,
            KeyError::BadSpec {
                spec: "hsm".into(),
                expected: EXPECTED
            }
        );
        assert_eq!(
            e.to_string(),
            "bad --keys \"hsm\": expected test, soft:FILE, psam:READER, pkcs11:MODULE:TOKEN-LABEL or remote:https://HOST:PORT"
        );
    }

    #[test]
    fn parses_remote() {
        assert_eq!(
            "remote:https://keys.example:8443"
                .parse::<KeySpec>()
                .unwrap(),
            KeySpec::Remote("https://keys.example:8443".into())
        );
        for bad in ["remote:http://k:1", "remote:", "remote:https://k:x"] {
            assert_eq!(
                bad.parse::<KeySpec>().unwrap_err(),
                KeyError::BadSpec {
                    spec: bad.into(),
                    expected: "remote:https://HOST:PORT"
                }
            );
        }
    }

    #[cfg(not(feature = "remote"))]
    #[test]
    fn remote_without_the_feature_is_not_built() {
        let spec = KeySpec::Remote("https://k:1".into());
        let e = open(&spec, &Trace::off(), None).err().unwrap();
        assert_eq!(e, KeyError::RemoteNotBuilt);
    }
}
