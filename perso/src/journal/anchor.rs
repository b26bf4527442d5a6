//! The anchor: the audit chain's head (entry count and hash) written outside the journal after
//! every run, so that deleting the newest entries or emptying the audit table — which leaves a
//! shorter chain that still verifies — is caught. An append-only file, one JSON line per anchor,
//! each line itself MACed under the audit key; by default beside an SQLite journal
//! (`PATH.anchor`), anywhere with `--anchor FILE` (write-once media, another machine's share).

use super::audit::AuditBreak;
use super::db::{Db, Param};
use super::{row, JournalError};
use sscard::keys::KeySource;
use sscard_core::fsutil::{read_file_bounded, Limit, ReadError};
use sscard_core::hexfmt::to_hex;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The most an anchor file may hold: 16 MiB. One anchor line is about 250 bytes and `perso run`
/// appends one a run, so this is some 60 000 runs; a larger input (`--anchor /dev/zero`) is not
/// an anchor file and is refused with [`JournalError::AnchorTooLarge`] after at most this many
/// bytes, instead of growing the process without end.
pub const MAX_ANCHOR_BYTES: u64 = 16 << 20;

const ANCHOR_LIMIT: Limit = Limit::new("an anchor file", MAX_ANCHOR_BYTES);

/// The longest anchor line: a longer line is not one of ours.
const MAX_ANCHOR_LINE: usize = 4096;

/// One anchored head.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    pub at: String,
    pub station: String,
    /// Entries in the chain when anchored.
    pub count: i64,
    /// The hash of entry `count`.
    pub head: String,
    /// HMAC of the fields above under the audit key.
    pub mac: String,
}

fn message(at: &str, station: &str, count: i64, head: &str) -> Vec<u8> {
    super::audit::message(
        b"sscard anchor v1",
        &[at, station, &count.to_string(), head],
    )
}

/// The default anchor file of a journal URL: `PATH.anchor` beside an SQLite journal; for
/// PostgreSQL, `sscard-HOST-DB.anchor` in the current directory.
pub fn default_path(url: &str) -> PathBuf {
    match super::locate(url) {
        Ok(super::Location::Postgres) => {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            let rest = rest.split('?').next().unwrap_or(rest);
            let host_db = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            let name: String = host_db
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            PathBuf::from(format!("sscard-{name}.anchor"))
        }
        Ok(super::Location::Sqlite(path)) => PathBuf::from(format!("{path}.anchor")),
        // Not a journal this build opens: opening it says so.
        Err(_) => PathBuf::from(format!("{url}.anchor")),
    }
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> JournalError {
    JournalError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Appends the chain's current head to the anchor file (created 0600, never through a symbolic
/// link), synced before returning.
pub(crate) fn write(
    db: &mut (dyn Db + Send),
    key: &mut dyn KeySource,
    station: &str,
    path: &Path,
) -> Result<Anchor, JournalError> {
    let (count, head) = match db
        .query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])?
        .into_iter()
        .next()
    {
        Some(r) => {
            let [seq, hash] = row(r)?;
            (seq.int()?, hash.text()?)
        }
        None => (0, super::audit::GENESIS.to_string()),
    };
    let at = db.timestamp()?;
    let mac = to_hex(&key.audit_mac(&message(&at, station, count, &head))?);
    let anchor = Anchor {
        at,
        station: station.into(),
        count,
        head,
        mac,
    };
    let mut f = sscard_core::fsutil::open_private_append(path).map_err(|e| file_error(path, e))?;
    let mut line = serde_json::to_string(&anchor)?;
    line.push('\n');
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| file_error(path, e))?;
    Ok(anchor)
}

/// Checks every anchor line (its MAC, and that the journal still holds the anchored entry
/// with the anchored hash). `Ok(None)` when the file does not exist.
pub(crate) fn check(
    db: &mut (dyn Db + Send),
    key: &mut dyn KeySource,
    path: &Path,
) -> Result<Option<Result<usize, AuditBreak>>, JournalError> {
    // Bounded: a device or a pipe that never ends fails at the limit.
    let bytes = match read_file_bounded(path, ANCHOR_LIMIT) {
        Ok(b) => b,
        Err(ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(ReadError::TooLarge { limit, .. }) => {
            return Err(JournalError::AnchorTooLarge {
                path: path.display().to_string(),
                limit,
            })
        }
        Err(ReadError::Io { source, .. }) => return Err(file_error(path, source)),
        Err(e) => return Err(file_error(path, e)),
    };
    let found = match db
        .query("SELECT seq FROM audit ORDER BY seq DESC LIMIT 1", &[])?
        .into_iter()
        .next()
    {
        Some(r) => {
            let [seq] = row(r)?;
            seq.int()?
        }
        None => 0,
    };
    let mut lines = 0;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let changed = AuditBreak::AnchorChanged { line: i + 1 };
        // Anchor lines are short; a line longer than this is not one of ours.
        if line.len() > MAX_ANCHOR_LINE {
            return Ok(Some(Err(changed)));
        }
        let Ok(a) = serde_json::from_slice::<Anchor>(line) else {
            return Ok(Some(Err(changed)));
        };
        let mac = to_hex(&key.audit_mac(&message(&a.at, &a.station, a.count, &a.head))?);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            mac.as_bytes(),
            a.mac.as_bytes(),
        )) {
            return Ok(Some(Err(changed)));
        }
        lines += 1;
        if a.count > found {
            return Ok(Some(Err(AuditBreak::Truncated {
                anchored: a.count,
                found,
            })));
        }
        if a.count == 0 {
            continue;
        }
        let hash = db
            .query(
                "SELECT hash FROM audit WHERE seq = $1",
                &[Param::Int(a.count)],
            )?
            .into_iter()
            .next();
        let same = match hash {
            Some(r) => {
                let [h] = row(r)?;
                h.text()? == a.head
            }
            None => false,
        };
        if !same {
            return Ok(Some(Err(AuditBreak::AnchorMismatch {
                entry: a.count,
                at: a.at,
            })));
        }
    }
    Ok(Some(Ok(lines)))
}
