//! A generic tool browses the served card and PSAM (PROFILE v3 section 4, field-terminal
//! shapes): OpenSC's `opensc-explorer`, driven non-interactively through real pcscd and vpcd
//! against `sscard-model serve`, selects SSSE by AID, DF01 and the PSAM's DF01 by path, reads
//! the FCP of EFs (`info`), their records and bytes (`cat`), and finds files by FID (`find`).
//! The sample session in docs/opensc-explorer.md is this test's 3DES run.

use sscard_e2e::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OPENSC_EXPLORER: &str = "/usr/bin/opensc-explorer";

/// What one opensc-explorer session printed.
struct Session {
    /// Standard output, with `find`'s progress lines (`(EF04)\r`) taken out.
    out: String,
    err: String,
}

/// Runs `opensc-explorer -r READER SCRIPT` on the commands given and waits at most 60 s for it
/// to end. The tool is required: without it the test fails and says how to install it.
fn explore(reader: &str, commands: &str) -> Session {
    assert!(
        std::path::Path::new(OPENSC_EXPLORER).exists(),
        "{OPENSC_EXPLORER} is required (SSCARD_REQUIRE_PCSCD={}) but missing: run scripts/setup.sh (Debian package opensc)",
        std::env::var("SSCARD_REQUIRE_PCSCD").unwrap_or_default()
    );
    let script: PathBuf = std::env::temp_dir().join(format!(
        "sscard-opensc-explorer-{}-{}.txt",
        std::process::id(),
        reader.replace(' ', "_")
    ));
    std::fs::write(&script, commands).expect("write the explorer script");
    let mut child = Command::new(OPENSC_EXPLORER)
        .arg("-r")
        .arg(reader)
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn opensc-explorer");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child
        .try_wait()
        .expect("wait for opensc-explorer")
        .is_none()
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("opensc-explorer did not finish within 60 s on {reader}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().expect("opensc-explorer output");
    let _ = std::fs::remove_file(&script);
    assert!(
        o.status.success(),
        "opensc-explorer failed on {reader}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    Session {
        out: strip_progress(&stdout(&o)),
        err: stderr(&o),
    }
}

/// `find` prints `(FID)\r` for every FID it tries; only the lines it keeps matter.
fn strip_progress(text: &str) -> String {
    text.split('\n')
        .map(|line| line.rsplit('\r').next().unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `text` holds `block` (several whole lines) verbatim.
fn has(text: &str, block: &str) {
    assert!(
        text.contains(block),
        "expected\n{block}\n---- in ----\n{text}"
    );
}

const SSC_COMMANDS: &str = "cd aid:7378312E73682EC9E7BBE1B1A3D5CF
info EF05
cat EF05
cat EF06
find EF04 EF08
find DF00 DF02
cd DF01
info
cat sfi:1
verify CHV0 123456
cat sfi:1 2
";

#[test]
fn opensc_explorer_browses_the_card_by_aid_fid_and_sfi() {
    let _g = exclusive();
    for (alg, version, alg_id) in [("3des", "2", "01"), ("sm4", "3", "03")] {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        let s = explore(READER_0, SSC_COMMANDS);
        // `info EF05`: the FCP of a linear record file, 7 records of at most 18 bytes.
        has(
            &s.out,
            "\nWorking Elementary File  ID EF05\n\nFile path:               EF05\nFile size:               0 bytes\nEF structure:            Linear variable\nNumber of records:       7\nMax. record size:        18 bytes\n",
        );
        has(&s.out, "Type attributes:         04 41 00 12 07\n");
        // `cat EF05`: every record by number until 6A83.
        has(
            &s.out,
            "Record 1:\n00000000: 01 10 11 01 00 D1 56 00 00 05 99 11 01 45 00 00 ......V......E..\n00000010: 00 A1                                           ..\n",
        );
        has(
            &s.out,
            &format!("Record 3:\n00000000: 03 04 3{version} 2E 30 30 ..{version}.00\n"),
        );
        has(
            &s.out,
            "Record 7:\n00000000: 07 09 41 31 32 33 34 35 36 37 34 ..A12345674\n",
        );
        assert!(!s.out.contains("Record 8:"), "{alg}: {}", s.out);
        // `cat EF06`: free on a 2.00 card, after RKSSSE only on a 3.00 card.
        let refusals = s
            .err
            .matches("Read failed: Security status not satisfied\n")
            .count();
        if alg == "3des" {
            has(
                &s.out,
                "Record 1:\n00000000: 08 12 31 31 30 31 30 35 31 39 34 39 31 32 33 31 ..11010519491231\n00000010: 30 30 32 58                                     002X\n",
            );
            has(&s.out, "Record 4:\n00000000: 0A 01 32 ..2\n");
            assert_eq!(refusals, 1, "DF01 before VERIFY: {}", s.err);
        } else {
            assert_eq!(refusals, 2, "EF06, and DF01 before VERIFY: {}", s.err);
        }
        // `find`: the EFs of SSSE and DF01 below it.
        has(
            &s.out,
            "FileID\tType  Size\n EF05 \t wEF     0\n EF06 \t wEF     0\n EF07 \t wEF     0\nFileID\tType  Size\n[DF01]\t  DF     0\tName: \\xDF\\x01\n",
        );
        // `cd DF01` and `info`: its FCI.
        has(
            &s.out,
            "\nDedicated File  ID 0000\n\nFile path:               DF01\nFile size:               0 bytes\nDF name:                 \\xDF\\x01\n",
        );
        has(
            &s.out,
            &format!("Proprietary attributes:  9F 0C 03 86 01 {alg_id} C0 01 02\n"),
        );
        // DF01's records need the PIN: refused before VERIFY (above), read after.
        has(
            &s.out,
            "Code correct.\nRecord 2:\n00000000: 41 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 A...............\n00000010: 00 00                                           ..\n",
        );
    }
}

const PSAM_COMMANDS: &str = "info 0015
cat 0015
cat 0016
cd DF01
info
cat 0016
find 0014 0017
";

#[test]
fn opensc_explorer_browses_the_psam_by_path() {
    let _g = exclusive();
    for (alg, alg_id) in [("3des", "01"), ("sm4", "03")] {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        let s = explore(READER_1, PSAM_COMMANDS);
        assert_eq!(s.err, "", "{alg}");
        // `info 0015`: SELECT by path 3F00/0015, a transparent FCP of 24 bytes.
        has(
            &s.out,
            "\nWorking Elementary File  ID 0015\n\nFile path:               3F00/0015\nFile size:               24 bytes\nEF structure:            Transparent\n",
        );
        has(&s.out, "Type attributes:         01\n");
        // `cat 0015`, `cat 0016`: READ BINARY by offset.
        has(
            &s.out,
            &format!("00000000: 11 01 00 00 00 00 00 00 00 01 01 {alg_id} 11 01 00 02 ................\n00000010: 20 24 01 01 20 34 01 01                          $.. 4..\n"),
        );
        has(&s.out, "00000000: 11 01 00 00 00 01 ......\n");
        // `cd DF01` by path and `info`: the DF's FCP.
        has(
            &s.out,
            "\nDedicated File  ID DF01\n\nFile path:               3F00/DF01\nFile size:               0 bytes\n",
        );
        has(&s.out, "Type attributes:         38\n");
        // From DF01, EF16 by path DF01/0016; `find` lists both files.
        assert_eq!(
            s.out
                .matches("00000000: 11 01 00 00 00 01 ......\n")
                .count(),
            2,
            "{alg}: {}",
            s.out
        );
        has(
            &s.out,
            "FileID\tType  Size\n 0015 \t wEF    24\n 0016 \t wEF     6\n",
        );
    }
}
