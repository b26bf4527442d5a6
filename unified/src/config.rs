//! The library's configuration: a TOML file named by `SSCARD_UNIFIED_CONFIG`, else
//! `/etc/sscard/unified.toml`, else the defaults (every reader found by its card). It is read
//! at every call, so a fixed file takes effect at the next call and a broken one is reported by
//! every call (return code −999 with the file, the key and what was wrong) — never a panic, never
//! silently the defaults.

use crate::encoding::Encoding;
use sscard::keys::KeySpec;
use sscard::ssc::DeviceNumber;
use sscard_core::fsutil::{read_text_file_bounded, Limit, ReadError};
use sscard_transport::backend::Disposition;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "SSCARD_UNIFIED_CONFIG";
/// The configuration file read when [`CONFIG_ENV`] is not set, if it exists.
pub const DEFAULT_PATH: &str = "/etc/sscard/unified.toml";
/// The largest configuration file read.
pub const CONFIG_LIMIT: Limit = Limit::new("a configuration file", 64 * 1024);
/// PIN entry's time limit when none is configured.
pub const DEFAULT_PIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest PIN entry time limit: PC/SC part 10 carries it in one byte of seconds.
pub const MAX_PIN_TIMEOUT_SECS: i64 = 255;

/// Whether PIN entry uses the reader's PIN pad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinPadUse {
    /// The PIN pad when the reader reports `FEATURE_VERIFY_PIN_DIRECT` /
    /// `FEATURE_MODIFY_PIN_DIRECT`, else the controlling terminal.
    Auto,
    /// Always the controlling terminal.
    Never,
}

/// The configuration in force for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where it came from (`None`: no file, the defaults).
    pub path: Option<PathBuf>,
    /// The contact card's reader (index, name or unique name substring); `None`: the first
    /// reader whose card has the SSSE application.
    pub card_reader: Option<String>,
    /// The contactless card's reader; `None`: judged by the card's ATR and the reader's name.
    pub contactless_reader: Option<String>,
    /// The PSAM's reader, the key source when `keys` is not set; `None` (and no `keys`): the
    /// first reader whose card is a PSAM.
    pub psam_reader: Option<String>,
    /// The key source (`test`, `soft:FILE`, `psam:READER`, `psam:auto`,
    /// `pkcs11:MODULE:TOKEN-LABEL`, `remote:https://HOST:PORT`).
    pub keys: Option<KeySpec>,
    /// The terminal device number reported when the reader has no serial number.
    pub device_number: Option<DeviceNumber>,
    pub encoding: Encoding,
    pub pin_pad: PinPadUse,
    pub pin_timeout: Duration,
    /// How the social security card is left when a call ends (`card_disposition`): left as it
    /// is (the default: its security state lasts until it is reset or removed, as PC/SC
    /// applications sharing a reader expect), or reset (a kiosk that wants a verified PIN
    /// forgotten after every call). Discovery probes and the PSAM are always left.
    pub card_disposition: Disposition,
    /// The key service client's certificate, key (mode 0600) and CA (PEM files) for
    /// `keys = "remote:https://…"`; each one not set comes from `SSCARD_REMOTE_CERT`,
    /// `SSCARD_REMOTE_KEY`, `SSCARD_REMOTE_CA`.
    pub remote_cert: Option<PathBuf>,
    pub remote_key: Option<PathBuf>,
    pub remote_ca: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: None,
            card_reader: None,
            contactless_reader: None,
            psam_reader: None,
            keys: None,
            device_number: None,
            encoding: Encoding::Gbk,
            pin_pad: PinPadUse::Auto,
            pin_timeout: DEFAULT_PIN_TIMEOUT,
            card_disposition: Disposition::Leave,
            remote_cert: None,
            remote_key: None,
            remote_ca: None,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Read(#[from] ReadError),
    #[error("configuration {path}: not TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("configuration {path}: unknown key {key:?} (known: {known})", known = KEYS.join(", "))]
    UnknownKey { path: PathBuf, key: String },
    #[error("configuration {path}: {key} must be {expected}")]
    WrongType {
        path: PathBuf,
        key: &'static str,
        expected: &'static str,
    },
    #[error("configuration {path}: {key} = {value:?} is not {expected}")]
    BadValue {
        path: PathBuf,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    /// `keys` and `psam_reader` name two key sources.
    #[error("configuration {path}: keys and psam_reader are both set; keep one (psam_reader = \"R\" is keys = \"psam:R\")")]
    TwoKeySources { path: PathBuf },
    /// The path is a directory, a FIFO or a device: reading it could block the caller.
    #[error("configuration {path}: not a regular file")]
    NotAFile { path: PathBuf },
}

impl PartialEq for ConfigError {
    /// Equal when they say the same (a read error carries an `io::Error`, which is not
    /// comparable).
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// Every key a configuration file may hold.
pub const KEYS: [&str; 12] = [
    "card_reader",
    "contactless_reader",
    "psam_reader",
    "keys",
    "device_number",
    "encoding",
    "pin_pad",
    "pin_timeout",
    "card_disposition",
    "remote_cert",
    "remote_key",
    "remote_ca",
];

impl Config {
    /// The configuration in force: [`CONFIG_ENV`]'s file (which must exist), else
    /// [`DEFAULT_PATH`] when it exists, else the defaults.
    pub fn load() -> Result<Self, ConfigError> {
        match std::env::var_os(CONFIG_ENV) {
            Some(p) if !p.is_empty() => Self::from_file(Path::new(&p)),
            _ if Path::new(DEFAULT_PATH).exists() => Self::from_file(Path::new(DEFAULT_PATH)),
            _ => Ok(Self::default()),
        }
    }

    /// The configuration in `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        // Opening a FIFO blocks until a writer comes, and a device may never end: only a
        // regular file (or a link to one) is read.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(ConfigError::NotAFile { path: path.into() });
        }
        let text = read_text_file_bounded(path, CONFIG_LIMIT)?;
        Self::parse(path, &text)
    }

    /// The configuration in `text` (read from `path`, for messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.into(),
                    message: e.message().to_string(),
                })?;
        let mut c = Self {
            path: Some(path.into()),
            ..Self::default()
        };
        let bad = |key, value: &str, expected| ConfigError::BadValue {
            path: path.into(),
            key,
            value: value.chars().take(200).collect(),
            expected,
        };
        for (key, value) in &table {
            let known = KEYS.iter().find(|k| **k == key.as_str()).copied();
            let Some(key) = known else {
                return Err(ConfigError::UnknownKey {
                    path: path.into(),
                    key: key.chars().take(200).collect(),
                });
            };
            let text = || {
                value.as_str().ok_or(ConfigError::WrongType {
                    path: path.into(),
                    key,
                    expected: "a string",
                })
            };
            let reader = |s: &str| match s.trim() {
                "" => Err(bad(key, s, "a reader (index, name or name substring)")),
                t => Ok(Some(t.to_string())),
            };
            match key {
                "card_reader" => c.card_reader = reader(text()?)?,
                "contactless_reader" => c.contactless_reader = reader(text()?)?,
                "psam_reader" => c.psam_reader = reader(text()?)?,
                "keys" => {
                    let s = text()?;
                    c.keys = Some(s.parse().map_err(|_| {
                        bad(
                            key,
                            s,
                            "test, soft:FILE, psam:READER, psam:auto, pkcs11:MODULE:TOKEN-LABEL or remote:https://HOST:PORT",
                        )
                    })?)
                }
                "device_number" => {
                    let s = text()?;
                    c.device_number = Some(s.parse().map_err(|_| {
                        bad(key, s, "1 to 64 printable ASCII characters without `|`")
                    })?)
                }
                "encoding" => {
                    let s = text()?;
                    c.encoding = match s.to_ascii_lowercase().as_str() {
                        "gbk" => Encoding::Gbk,
                        "utf-8" | "utf8" => Encoding::Utf8,
                        _ => return Err(bad(key, s, "gbk or utf-8")),
                    }
                }
                "pin_pad" => {
                    let s = text()?;
                    c.pin_pad = match s {
                        "auto" => PinPadUse::Auto,
                        "never" => PinPadUse::Never,
                        _ => return Err(bad(key, s, "auto or never")),
                    }
                }
                "card_disposition" => {
                    let s = text()?;
                    c.card_disposition = match s {
                        "leave" => Disposition::Leave,
                        "reset" => Disposition::Reset,
                        _ => return Err(bad(key, s, "leave or reset")),
                    }
                }
                "remote_cert" | "remote_key" | "remote_ca" => {
                    let s = text()?;
                    if s.trim().is_empty() {
                        return Err(bad(key, s, "a PEM file's path"));
                    }
                    let path = Some(PathBuf::from(s));
                    match key {
                        "remote_cert" => c.remote_cert = path,
                        "remote_key" => c.remote_key = path,
                        _ => c.remote_ca = path,
                    }
                }
                // pin_timeout
                _ => {
                    let secs = value.as_integer().ok_or(ConfigError::WrongType {
                        path: path.into(),
                        key,
                        expected: "a whole number of seconds",
                    })?;
                    if !(1..=MAX_PIN_TIMEOUT_SECS).contains(&secs) {
                        return Err(bad(key, &secs.to_string(), "1 to 255 seconds"));
                    }
                    c.pin_timeout = Duration::from_secs(secs.unsigned_abs());
                }
            }
        }
        if c.keys.is_some() && c.psam_reader.is_some() {
            return Err(ConfigError::TwoKeySources { path: path.into() });
        }
        Ok(c)
    }

    /// The key source: `keys`, else the PSAM in `psam_reader`, else the first PSAM found
    /// (`psam:auto`). A file setting both is refused when read.
    pub fn key_spec(&self) -> KeySpec {
        match (&self.keys, &self.psam_reader) {
            (Some(k), _) => k.clone(),
            (None, Some(r)) => KeySpec::Psam(r.clone()),
            (None, None) => KeySpec::Psam(AUTO.into()),
        }
    }
}

/// The reader name that means "the first reader whose card is a PSAM".
pub const AUTO: &str = "auto";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/u.toml"), text)
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            r#"
card_reader = "Virtual PCD 00 00"
contactless_reader = "PICC"
keys = "soft:/etc/sscard/keys"
device_number = "T-0042"
encoding = "UTF-8"
pin_pad = "never"
pin_timeout = 5
card_disposition = "reset"
"#,
        )
        .unwrap();
        assert_eq!(c.card_reader.as_deref(), Some("Virtual PCD 00 00"));
        assert_eq!(c.contactless_reader.as_deref(), Some("PICC"));
        assert_eq!(c.psam_reader, None);
        assert_eq!(c.card_disposition, Disposition::Reset);
        assert_eq!(c.keys, Some(KeySpec::Soft("/etc/sscard/keys".into())));
        assert_eq!(c.device_number.as_ref().map(|d| d.as_str()), Some("T-0042"));
        assert_eq!(c.encoding, Encoding::Utf8);
        assert_eq!(c.pin_pad, PinPadUse::Never);
        assert_eq!(c.pin_timeout, Duration::from_secs(5));
        assert_eq!(c.key_spec(), KeySpec::Soft("/etc/sscard/keys".into()));
        assert_eq!(
            parse("pin_timeout = 255").unwrap().pin_timeout,
            Duration::from_secs(255)
        );
    }

    #[test]
    fn a_key_service_and_its_client_files() {
        let c = parse(
            r#"
keys = "remote:https://keyd.example:8443"
remote_cert = "/etc/sscard/client.crt"
remote_key = "/etc/sscard/client.key"
remote_ca = "/etc/sscard/ca.crt"
"#,
        )
        .unwrap();
        assert_eq!(
            c.key_spec(),
            KeySpec::Remote("https://keyd.example:8443".into())
        );
        assert_eq!(c.remote_cert, Some("/etc/sscard/client.crt".into()));
        assert_eq!(c.remote_key, Some("/etc/sscard/client.key".into()));
        assert_eq!(c.remote_ca, Some("/etc/sscard/ca.crt".into()));
        assert_eq!(
            parse("keys = \"remote:http://k:1\"").unwrap_err().to_string(),
            "configuration /etc/u.toml: keys = \"remote:http://k:1\" is not test, soft:FILE, psam:READER, psam:auto, pkcs11:MODULE:TOKEN-LABEL or remote:https://HOST:PORT"
        );
        assert_eq!(
            parse("remote_key = \" \"").unwrap_err().to_string(),
            "configuration /etc/u.toml: remote_key = \" \" is not a PEM file's path"
        );
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let c = parse("# nothing\n").unwrap();
        assert_eq!(
            c,
            Config {
                path: Some("/etc/u.toml".into()),
                ..Config::default()
            }
        );
        assert_eq!((c.encoding, c.pin_pad), (Encoding::Gbk, PinPadUse::Auto));
        assert_eq!(c.pin_timeout, Duration::from_secs(30));
        assert_eq!(c.card_disposition, Disposition::Leave);
        assert_eq!(c.key_spec(), KeySpec::Psam("auto".into()));
        let psam = parse("psam_reader = \"Virtual PCD 00 01\"").unwrap();
        assert_eq!(psam.key_spec(), KeySpec::Psam("Virtual PCD 00 01".into()));
    }

    #[test]
    fn mistakes_are_exact_errors() {
        let cases: [(&str, &str); 14] = [
            (
                "encodig = \"gbk\"",
                "configuration /etc/u.toml: unknown key \"encodig\" (known: card_reader, contactless_reader, psam_reader, keys, device_number, encoding, pin_pad, pin_timeout, card_disposition, remote_cert, remote_key, remote_ca)",
            ),
            (
                "encoding = \"latin1\"",
                "configuration /etc/u.toml: encoding = \"latin1\" is not gbk or utf-8",
            ),
            (
                "encoding = 8",
                "configuration /etc/u.toml: encoding must be a string",
            ),
            (
                "pin_pad = \"always\"",
                "configuration /etc/u.toml: pin_pad = \"always\" is not auto or never",
            ),
            (
                "pin_timeout = 0",
                "configuration /etc/u.toml: pin_timeout = \"0\" is not 1 to 255 seconds",
            ),
            (
                "pin_timeout = 256",
                "configuration /etc/u.toml: pin_timeout = \"256\" is not 1 to 255 seconds",
            ),
            (
                "pin_timeout = \"30\"",
                "configuration /etc/u.toml: pin_timeout must be a whole number of seconds",
            ),
            (
                "keys = \"hsm\"",
                "configuration /etc/u.toml: keys = \"hsm\" is not test, soft:FILE, psam:READER, psam:auto, pkcs11:MODULE:TOKEN-LABEL or remote:https://HOST:PORT",
            ),
            (
                "device_number = \"12|34\"",
                "configuration /etc/u.toml: device_number = \"12|34\" is not 1 to 64 printable ASCII characters without `|`",
            ),
            (
                "card_reader = \" \"",
                "configuration /etc/u.toml: card_reader = \" \" is not a reader (index, name or name substring)",
            ),
            (
                "[readers]\ncard = \"x\"",
                "configuration /etc/u.toml: unknown key \"readers\" (known: card_reader, contactless_reader, psam_reader, keys, device_number, encoding, pin_pad, pin_timeout, card_disposition, remote_cert, remote_key, remote_ca)",
            ),
            (
                "card_disposition = \"unpower\"",
                "configuration /etc/u.toml: card_disposition = \"unpower\" is not leave or reset",
            ),
            (
                "keys = \"test\"\npsam_reader = \"1\"",
                "configuration /etc/u.toml: keys and psam_reader are both set; keep one (psam_reader = \"R\" is keys = \"psam:R\")",
            ),
            (
                "psam_reader = [\"a\"]",
                "configuration /etc/u.toml: psam_reader must be a string",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(parse(text).unwrap_err().to_string(), message, "{text}");
        }
        let e = parse("encoding = ").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Syntax { path, .. } if path == Path::new("/etc/u.toml")),
            "{e}"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_not_the_defaults() {
        let e = Config::from_file(Path::new("/nonexistent/sscard-unified.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read(ReadError::Io { .. })), "{e}");
        assert!(e
            .to_string()
            .starts_with("configuration: cannot read /nonexistent/sscard-unified.toml: "));
    }

    #[test]
    fn a_fifo_or_device_is_refused_without_blocking() {
        // Opening a FIFO blocks until a writer comes; /dev/zero would never end.
        let fifo = std::env::temp_dir().join(format!("sscard-unified-fifo-{}", std::process::id()));
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = Config::from_file(&fifo).unwrap_err();
        std::fs::remove_file(&fifo).unwrap();
        assert_eq!(
            e.to_string(),
            format!("configuration {}: not a regular file", fifo.display())
        );
        for path in ["/dev/zero", "/dev/null", "/"] {
            let e = Config::from_file(Path::new(path)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("configuration {path}: not a regular file")
            );
        }
    }
}
