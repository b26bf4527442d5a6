//! Private files are 0600 even under a permissive umask. The umask belongs to the whole process
//! and the test harness runs tests on threads, so the files are made by a child process: this
//! test binary again, started by `sh` after `umask 000`, running only the ignored test below.
#![cfg(unix)]

use sscard_core::fsutil::{
    create_private, create_private_temp, open_private_append, write_atomic_private, write_private,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const DIR_VAR: &str = "SSCARD_PRIVATE_FILES_DIR";

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn private_files_are_0600_under_umask_000() {
    let dir = std::env::temp_dir().join(format!("sscard-umask-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" --exact --ignored --test-threads=1 make_files_in_dir_var")
        .arg(std::env::current_exe().unwrap())
        .env(DIR_VAR, &dir)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "the child exited {}: {}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    // The umask really was 000: an ordinary file came out world-writable.
    assert_eq!(mode(&dir.join("ordinary")), 0o666);
    for name in ["created", "appended", "written", "replaced"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let temp: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert_eq!(temp.len(), 1, "{temp:?}");
    assert_eq!(mode(&temp[0]), 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child's part: makes the files, once with each function. Checked by the test above.
#[test]
#[ignore = "run by private_files_are_0600_under_umask_000 in a child process under umask 000"]
fn make_files_in_dir_var() {
    let dir = PathBuf::from(std::env::var_os(DIR_VAR).expect("started by the umask test"));
    std::fs::write(dir.join("ordinary"), b"x").unwrap();
    create_private(&dir.join("created")).unwrap();
    open_private_append(&dir.join("appended")).unwrap();
    write_private(&dir.join("written"), b"x").unwrap();
    write_atomic_private(&dir.join("replaced"), b"x").unwrap();
    create_private_temp(&dir.join("torn")).unwrap();
}
