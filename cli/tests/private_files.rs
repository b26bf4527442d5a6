//! Files the `sscard` command line writes (reports, traces, converted scripts) are created
//! 0600 and never through a symbolic link planted at their path.
#![cfg(unix)]

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sscard-cli-private-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apdu-scripts/ssc/01-select.apdu")
}

#[test]
fn reports_and_traces_are_private() {
    let d = dir("reports");
    let files = ["junit.xml", "report.json", "trace.pcapng", "trace.jsonl"].map(|f| d.join(f));
    // A report left world-readable by an earlier run is narrowed.
    std::fs::write(&files[0], b"old").unwrap();
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sscard"))
        .args(["script", "run", "--model", "--keys", "test"])
        .arg(scripts())
        .arg("--junit")
        .arg(&files[0])
        .arg("--json-file")
        .arg(&files[1])
        .arg("--pcap")
        .arg(&files[2])
        .arg("--trace-json")
        .arg(&files[3])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        assert!(std::fs::metadata(f).unwrap().len() > 3, "{}", f.display());
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_link_planted_at_an_output_is_not_followed() {
    let d = dir("links");
    let victim = d.join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    let scriptor = d.join("in.txt");
    std::fs::write(&scriptor, "# select\n00 A4 04 00 00\n").unwrap();
    let out = d.join("out.apdu");
    let o = Command::new(env!("CARGO_BIN_EXE_sscard"))
        .args(["script", "import"])
        .arg(&scriptor)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(mode(&out), 0o600);
    let link = d.join("link.apdu");
    symlink(&victim, &link).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sscard"))
        .args(["script", "import"])
        .arg(&scriptor)
        .arg(&link)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{} is a symbolic link", link.display())),
        "{err}"
    );
    let pcap = d.join("trace.pcapng");
    symlink(&victim, &pcap).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sscard"))
        .args(["script", "run", "--model", "--keys", "test"])
        .arg(scripts())
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("--pcap {}", pcap.display())), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    std::fs::remove_dir_all(&d).unwrap();
}
