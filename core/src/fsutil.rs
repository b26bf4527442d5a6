//! Files that hold keys, PINs, personal data or traces of them: created private (mode 0600,
//! whatever the umask), never through a symbolic link an attacker planted, and replaced
//! atomically. On Unix only; elsewhere the same calls create ordinary files.
//!
//! Every file and stdin input is read through the bounded readers here ([`read_file_bounded`],
//! [`read_to_end_bounded`], [`read_secret_file_bounded`], [`read_line_bounded`]): each kind of
//! input has a [`Limit`], and a device or a pipe that never ends (`/dev/zero`) is refused with
//! [`ReadError::TooLarge`] after at most `limit + 1` bytes, instead of growing the process to
//! gigabytes. Devices and pipes are still read (`/dev/stdin`, a FIFO): they are bounded, not
//! refused.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The most one kind of input may hold, and its name for messages ("an APDU script").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// What the input is, with its article: the message says "the most read for {what}".
    pub what: &'static str,
    /// The largest accepted size in bytes.
    pub bytes: u64,
}

impl Limit {
    pub const fn new(what: &'static str, bytes: u64) -> Self {
        Self { what, bytes }
    }
}

/// Why a bounded read gave nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The input could not be opened or read.
    #[error("cannot read {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
    /// The input holds more than its limit: refused, not truncated.
    #[error("{name} holds more than {limit} bytes, the most read for {what}")]
    TooLarge {
        name: String,
        what: &'static str,
        limit: u64,
    },
    /// A text input that is not UTF-8.
    #[error("{name} is not UTF-8 text ({what})")]
    NotText { name: String, what: &'static str },
}

impl ReadError {
    /// Whether the input was refused for its size.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge { .. })
    }
}

fn too_large(name: &str, limit: Limit) -> ReadError {
    ReadError::TooLarge {
        name: name.to_string(),
        what: limit.what,
        limit: limit.bytes,
    }
}

fn io_error(name: &str) -> impl FnOnce(io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        name: name.to_string(),
        source,
    }
}

/// Reads `reader` to its end, at most `limit.bytes` bytes: one byte more and the read stops
/// with [`ReadError::TooLarge`] (memory stays within about twice the limit). `name` names the
/// input in errors (a path, or "standard input").
pub fn read_to_end_bounded(
    reader: impl Read,
    name: &str,
    limit: Limit,
) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    reader
        .take(limit.bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error(name))?;
    if bytes.len() as u64 > limit.bytes {
        return Err(too_large(name, limit));
    }
    Ok(bytes)
}

/// Opens `path` and reads it through [`read_to_end_bounded`]. A regular file larger than the
/// limit is refused before it is read; a device or a pipe is read up to one byte past it.
pub fn read_file_bounded(path: &Path, limit: Limit) -> Result<Vec<u8>, ReadError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(io_error(&name))?;
    if file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > limit.bytes)
    {
        return Err(too_large(&name, limit));
    }
    read_to_end_bounded(file, &name, limit)
}

/// [`read_file_bounded`] of UTF-8 text.
pub fn read_text_file_bounded(path: &Path, limit: Limit) -> Result<String, ReadError> {
    let bytes = read_file_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotText {
        name: path.display().to_string(),
        what: limit.what,
    })
}

/// Reads a file that holds secrets (a key file) into one zeroized buffer allocated once, so
/// no copy of its bytes is left behind by a reallocation. Bounded like [`read_file_bounded`].
pub fn read_secret_file_bounded(
    path: &Path,
    limit: Limit,
) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(io_error(&name))?;
    if file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > limit.bytes)
    {
        return Err(too_large(&name, limit));
    }
    // One byte more than the limit, to see whether the input goes past it.
    let capacity = usize::try_from(limit.bytes.saturating_add(1)).unwrap_or(usize::MAX);
    let mut buf = Zeroizing::new(vec![0u8; capacity]);
    let mut filled = 0;
    while filled < capacity {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(&name)(e)),
        }
    }
    if filled as u64 > limit.bytes {
        return Err(too_large(&name, limit));
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Reads one line (up to `\n`, which is not returned; a `\r` before it is dropped too) of at
/// most `limit.bytes` bytes into zeroized memory: for PINs typed or piped on stdin. `None` at
/// the end of the input. A longer line is refused with [`ReadError::TooLarge`] after
/// `limit.bytes + 1` bytes, whether or not a line end ever comes (`< /dev/zero`).
pub fn read_line_bounded(
    reader: &mut dyn BufRead,
    name: &str,
    limit: Limit,
) -> Result<Option<Zeroizing<Vec<u8>>>, ReadError> {
    let cap = usize::try_from(limit.bytes).unwrap_or(usize::MAX);
    // Allocated once: the line never moves, so no copy of it is left unzeroized.
    let mut line = Zeroizing::new(Vec::with_capacity(cap.saturating_add(1).min(1 << 20)));
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(name)(e)),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if line.len() + part.len() > cap {
            return Err(too_large(name, limit));
        }
        line.extend_from_slice(part);
        let used = end.unwrap_or(part.len());
        reader.consume(used);
        if end.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

/// The mode of every file these functions create: read and write for the owner alone.
pub const PRIVATE_MODE: u32 = 0o600;

/// Opens `path` for writing, created if absent and truncated, with mode 0600. A symbolic link
/// at `path` itself is refused (not followed); an existing regular file with wider permissions
/// is narrowed to 0600 before anything is written. A device or a pipe (`/dev/null`, a FIFO)
/// is opened as it is, its mode left alone.
pub fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    private(&mut options);
    let file = options.open(path).map_err(|e| explain(e, path))?;
    narrow(&file)?;
    Ok(file)
}

/// Opens `path` for appending, created with mode 0600 if absent and never truncated; a
/// symbolic link at `path` is refused and an existing regular file with wider permissions is
/// narrowed to 0600. For an append-only log (an audit anchor file), and to create a database
/// file private before the database library opens it: SQLite gives its `-wal`, `-shm` and
/// `-journal` files the mode of the database file.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    private(&mut options);
    let file = options.open(path).map_err(|e| explain(e, path))?;
    narrow(&file)?;
    Ok(file)
}

/// Writes `bytes` to `path` through [`create_private`]: mode 0600, a symbolic link at `path`
/// refused. For reports and outputs a user names (`--junit`, `--out`), which may be a device
/// or a pipe.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_private(path)?.write_all(bytes)
}

/// Replaces `path` with `bytes` so that a crash or a power cut leaves either the old file or
/// the new one, and the new one is private: a temporary file beside it with a random name,
/// created exclusively (`O_EXCL`: it never opens what someone planted under that name, a
/// symbolic link included) with mode 0600, written, synced, renamed over `path` (a symbolic
/// link at `path` is replaced, not followed), then the directory synced.
///
/// `path` must be a regular file, a symbolic link or absent: a device or a directory there is
/// refused, not replaced (`/dev/null` stays a device).
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let kind = meta.file_type();
        if !kind.is_file() && !kind.is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a regular file; it is not replaced by one",
                    path.display()
                ),
            ));
        }
    }
    let (mut file, tmp) = create_private_temp(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path)
}

/// A new, empty private file in the directory of `path`, named after it with a random,
/// unpredictable part (`.NAME.<32 hex digits>.tmp`), created exclusively with mode 0600.
/// [`write_atomic_private`] writes through it; a power-cut simulation can leave one half
/// written, as a real cut would.
pub fn create_private_temp(path: &Path) -> io::Result<(File, PathBuf)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dir = parent(path);
    let mut last = None;
    // A name taken (by chance, or by someone who guessed it) is skipped, never opened.
    for _ in 0..16 {
        let tmp = dir.join(format!(
            ".{}.{:032x}.tmp",
            name.to_string_lossy(),
            rand::random::<u128>()
        ));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        private(&mut options);
        match options.open(&tmp) {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Syncs the directory holding `path`, so that a rename into it survives a power cut.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(parent(path))?.sync_all()
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(unix)]
fn private(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(PRIVATE_MODE).custom_flags(libc::O_NOFOLLOW);
}

#[cfg(not(unix))]
fn private(_: &mut OpenOptions) {}

/// Narrows an existing regular file opened by [`create_private`] to 0600 (through the open
/// file, so it is the file opened that changes, not whatever the path names by now).
#[cfg(unix)]
fn narrow(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = file.metadata()?;
    if meta.is_file() && meta.permissions().mode() & 0o7777 != PRIVATE_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_MODE))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn narrow(_: &File) -> io::Result<()> {
    Ok(())
}

/// `O_NOFOLLOW` on a symbolic link fails with `ELOOP`, whose message ("too many levels of
/// symbolic links") does not say what happened.
fn explain(e: io::Error, path: &Path) -> io::Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link; a private file is not written through one (remove it \
                 or name the file it points to)",
                path.display()
            ),
        );
    }
    let _ = path;
    e
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sscard-fsutil-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    const SMALL: Limit = Limit::new("a test input", 8);

    #[test]
    fn bounded_reads_refuse_an_endless_device_after_the_limit() {
        let e = read_file_bounded(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero holds more than 8 bytes, the most read for a test input"
        );
        assert!(e.is_too_large());
        let e = read_secret_file_bounded(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero holds more than 8 bytes, the most read for a test input"
        );
        let mut zero = io::BufReader::new(File::open("/dev/zero").unwrap());
        let e = read_line_bounded(&mut zero, "standard input", SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            "standard input holds more than 8 bytes, the most read for a test input"
        );
        // An endless reader that is not a file: bounded the same way.
        let e = read_to_end_bounded(io::repeat(b'0'), "a pipe", SMALL).unwrap_err();
        assert!(matches!(
            e,
            ReadError::TooLarge {
                limit: 8,
                what: "a test input",
                ..
            }
        ));
    }

    #[test]
    fn bounded_reads_take_inputs_up_to_the_limit() {
        let d = dir("bounded");
        let at = d.join("eight");
        std::fs::write(&at, b"12345678").unwrap();
        assert_eq!(read_file_bounded(&at, SMALL).unwrap(), b"12345678");
        assert_eq!(
            &read_secret_file_bounded(&at, SMALL).unwrap()[..],
            b"12345678"
        );
        assert_eq!(read_text_file_bounded(&at, SMALL).unwrap(), "12345678");
        let over = d.join("nine");
        std::fs::write(&over, b"123456789").unwrap();
        for e in [
            read_file_bounded(&over, SMALL).unwrap_err(),
            read_secret_file_bounded(&over, SMALL).unwrap_err(),
            read_text_file_bounded(&over, SMALL).unwrap_err(),
        ] {
            assert_eq!(
                e.to_string(),
                format!(
                    "{} holds more than 8 bytes, the most read for a test input",
                    over.display()
                )
            );
        }
        let latin = d.join("latin");
        std::fs::write(&latin, b"caf\xe9").unwrap();
        assert_eq!(
            read_text_file_bounded(&latin, SMALL)
                .unwrap_err()
                .to_string(),
            format!("{} is not UTF-8 text (a test input)", latin.display())
        );
        let missing = d.join("missing");
        assert_eq!(
            read_file_bounded(&missing, SMALL).unwrap_err().to_string(),
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lines_end_at_a_newline_and_drop_a_carriage_return() {
        let mut input = io::Cursor::new(b"123456\r\n654321\nlast".to_vec());
        let mut next = || {
            read_line_bounded(&mut input, "stdin", SMALL)
                .unwrap()
                .map(|l| l.to_vec())
        };
        assert_eq!(next(), Some(b"123456".to_vec()));
        assert_eq!(next(), Some(b"654321".to_vec()));
        assert_eq!(next(), Some(b"last".to_vec()));
        assert_eq!(next(), None);
        let mut empty_line = io::Cursor::new(b"\n".to_vec());
        assert_eq!(
            read_line_bounded(&mut empty_line, "stdin", SMALL)
                .unwrap()
                .map(|l| l.to_vec()),
            Some(Vec::new())
        );
    }

    proptest::proptest! {
        /// Whatever the input and the limit, a bounded read returns the input when it fits
        /// and refuses it otherwise, and a line read returns the first line when it fits.
        #[test]
        fn bounded_reads_agree_with_the_limit(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            limit in 0u64..48,
        ) {
            let l = Limit::new("x", limit);
            match read_to_end_bounded(&data[..], "input", l) {
                Ok(b) => proptest::prop_assert!(b == data && data.len() as u64 <= limit),
                Err(e) => proptest::prop_assert!(e.is_too_large() && data.len() as u64 > limit),
            }
            let first = data.split(|b| *b == b'\n').next().unwrap_or(&[]);
            let mut reader = io::BufReader::with_capacity(7, &data[..]);
            match read_line_bounded(&mut reader, "input", l) {
                Ok(None) => proptest::prop_assert!(data.is_empty()),
                Ok(Some(line)) => {
                    let want = first.strip_suffix(b"\r").unwrap_or(first);
                    proptest::prop_assert_eq!(&line[..], want);
                    proptest::prop_assert!(first.len() as u64 <= limit);
                }
                Err(e) => proptest::prop_assert!(e.is_too_large() && first.len() as u64 > limit),
            }
        }
    }

    #[test]
    fn create_private_makes_0600_and_narrows_an_existing_file() {
        let d = dir("create");
        let new = d.join("new");
        create_private(&new).unwrap().write_all(b"secret").unwrap();
        assert_eq!(mode(&new), 0o600);
        let old = d.join("old");
        std::fs::write(&old, b"previous contents").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private(&old).unwrap().write_all(b"new").unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read(&old).unwrap(), b"new");
        // A device keeps its mode.
        let null = Path::new("/dev/null");
        let before = mode(null);
        create_private(null).unwrap().write_all(b"x").unwrap();
        assert_eq!(mode(null), before);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn open_private_append_keeps_the_contents_and_narrows() {
        let d = dir("append");
        let log = d.join("anchor");
        open_private_append(&log)
            .unwrap()
            .write_all(b"1\n")
            .unwrap();
        assert_eq!(mode(&log), 0o600);
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_private_append(&log)
            .unwrap()
            .write_all(b"2\n")
            .unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"1\n2\n");
        assert_eq!(mode(&log), 0o600);
        let link = d.join("link");
        symlink(&log, &link).unwrap();
        assert!(open_private_append(&link)
            .unwrap_err()
            .to_string()
            .ends_with("is a symbolic link; a private file is not written through one (remove it or name the file it points to)"));
        assert_eq!(std::fs::read(&log).unwrap(), b"1\n2\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn create_private_refuses_a_symbolic_link() {
        let d = dir("link");
        let target = d.join("target");
        std::fs::write(&target, b"untouched").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = d.join("trace.pcapng");
        symlink(&target, &link).unwrap();
        let e = create_private(&link).unwrap_err();
        assert_eq!(e.raw_os_error(), None, "explained: {e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{} is a symbolic link; a private file is not written through one (remove it or \
                 name the file it points to)",
                link.display()
            )
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        assert_eq!(mode(&target), 0o644);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn write_atomic_private_replaces_the_file_and_leaves_no_temporary() {
        let d = dir("atomic");
        let path = d.join("card.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic_private(&path, b"new image").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new image");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["card.json"]);
        // A symbolic link at the target is replaced by the file, its target left alone.
        let target = d.join("elsewhere");
        std::fs::write(&target, b"untouched").unwrap();
        let link = d.join("linked.json");
        symlink(&target, &link).unwrap();
        write_atomic_private(&link, b"image").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(std::fs::read(&link).unwrap(), b"image");
        // A device or a directory is not replaced by a file.
        assert_eq!(
            write_atomic_private(Path::new("/dev/null"), b"x")
                .unwrap_err()
                .to_string(),
            "/dev/null is not a regular file; it is not replaced by one"
        );
        assert!(Path::new("/dev/null")
            .metadata()
            .unwrap()
            .file_type()
            .is_char_device());
        assert_eq!(
            write_atomic_private(&d, b"x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // write_private writes through create_private.
        let report = d.join("report.xml");
        write_private(&report, b"<testsuites/>").unwrap();
        assert_eq!(mode(&report), 0o600);
        assert_eq!(std::fs::read(&report).unwrap(), b"<testsuites/>");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn temporary_names_are_random_and_a_planted_name_is_never_opened() {
        let d = dir("temp");
        let path = d.join("card.json");
        let (_, a) = create_private_temp(&path).unwrap();
        let (_, b) = create_private_temp(&path).unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".card.json.") && name.ends_with(".tmp"),
            "{name}"
        );
        assert_eq!(name.len(), ".card.json.".len() + 32 + ".tmp".len());
        assert_eq!(mode(&a), 0o600);
        // The old fixed name (card.tmp) or any other planted link is not where it writes.
        let target = d.join("victim");
        std::fs::write(&target, b"untouched").unwrap();
        symlink(&target, d.join("card.tmp")).unwrap();
        write_atomic_private(&path, b"image").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        // A link planted under a temporary name already used: create_new refuses to open it.
        std::fs::remove_file(&a).unwrap();
        symlink(&target, &a).unwrap();
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        private(&mut options);
        assert_eq!(
            options.open(&a).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"untouched");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
