//! Files that hold keys, PINs, personal data or traces of them: created private (mode 0600,
//! whatever the umask), never through a symbolic link an attacker planted, and replaced
//! atomically. On Unix only; elsewhere the same calls create ordinary files.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
