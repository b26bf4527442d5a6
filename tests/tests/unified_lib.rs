//! The unified interface's C library (`libsscard_unified.so`, issue 16 item 6) from C and from
//! Python `ctypes`, through pcscd against the card and PSAM `sscard-model serve` presents, for
//! both algorithms: a C program compiled here with `cc` against `unified/include/sscard_unified.h`
//! and linked with `-lsscard_unified`, and the cases of `tests/unified/test_unified.py`, each on
//! a freshly served card.
//!
//! The library must be built first (`cargo build -p sscard-unified`); the test says so when it
//! is missing. Its configuration is pinned to an empty file (`SSCARD_UNIFIED_CONFIG`), so a
//! `/etc/sscard/unified.toml` on the machine does not change what is tested: the defaults find
//! the card and the PSAM by their applications.

use sscard_e2e::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// GBK of 张三, the test card's name: the library's default text encoding.
const NAME_GBK: &[u8] = &[0xD5, 0xC5, 0xC8, 0xFD];
const CARD_ID: &str = "110100D15600000599110145000000A1";
/// The served PSAM's terminal number (its EF16).
const TERMINAL: &str = "110100000001";
const ALGORITHMS: [(&str, &str, &str); 2] = [("3des", "2.00", "01"), ("sm4", "3.00", "03")];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds tests/")
        .to_path_buf()
}

/// `libsscard_unified.so` beside the workspace's binaries.
fn library() -> PathBuf {
    let lib = bin("sscard")
        .parent()
        .expect("the binaries' directory")
        .join("libsscard_unified.so");
    assert!(
        lib.exists(),
        "{} is missing: run `cargo build -p sscard-unified` (or scripts/test.sh) first",
        lib.display()
    );
    lib
}

/// A directory of this test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sscard-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        Self(dir)
    }

    /// An empty configuration file: every setting at its default.
    fn empty_config(&self) -> PathBuf {
        let config = self.0.join("unified.toml");
        std::fs::write(&config, "# defaults\n").expect("write the configuration");
        config
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles `tests/unified/<source>` with `cc` against the library's header into `dir`, linked
/// with `-lsscard_unified` and an rpath to the library's directory.
fn compile(source: &str, dir: &Path) -> PathBuf {
    let lib = library();
    let lib_dir = lib.parent().expect("the library's directory");
    let program = dir.join(source.trim_end_matches(".c"));
    let o = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-I"])
        .arg(repo().join("unified/include"))
        .arg(repo().join("tests/unified").join(source))
        .arg("-o")
        .arg(&program)
        .arg("-L")
        .arg(lib_dir)
        .arg("-lsscard_unified")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .output()
        .expect("cc runs (build-essential)");
    assert!(
        o.status.success(),
        "cc {source}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    program
}

/// The program's output as lines of bytes (the library writes GBK).
fn byte_lines(o: &Output) -> Vec<Vec<u8>> {
    o.stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// `text` with `{name}` replaced by the GBK bytes of the test card's name.
fn gbk(text: &str) -> Vec<u8> {
    let (before, after) = text.split_once("{name}").unwrap_or((text, ""));
    let mut bytes = before.as_bytes().to_vec();
    if text.contains("{name}") {
        bytes.extend_from_slice(NAME_GBK);
        bytes.extend_from_slice(after.as_bytes());
    }
    bytes
}

/// For people reading the output: the line with the GBK name shown as 张三.
fn readable(line: &[u8]) -> String {
    match line.windows(NAME_GBK.len()).position(|w| w == NAME_GBK) {
        Some(at) => format!(
            "{}张三{}",
            String::from_utf8_lossy(&line[..at]),
            String::from_utf8_lossy(&line[at + NAME_GBK.len()..])
        ),
        None => String::from_utf8_lossy(line).into_owned(),
    }
}

/// Splits `prefix` off `line`, failing with both shown.
fn after<'a>(line: &'a [u8], prefix: &str) -> &'a [u8] {
    line.strip_prefix(prefix.as_bytes()).unwrap_or_else(|| {
        panic!(
            "expected a line starting {prefix:?}, got {:?}",
            readable(line)
        )
    })
}

#[test]
fn c_program_calls_the_library_for_both_algorithms() {
    let _g = exclusive();
    let dir = TempDir::new("unified-c");
    let config = dir.empty_config();
    let demo = compile("unified_demo.c", &dir.0);
    for (alg, version, alg_id) in ALGORITHMS {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        let o = Command::new(&demo)
            .env("SSCARD_UNIFIED_CONFIG", &config)
            .output()
            .expect("the C program runs");
        assert!(o.status.success(), "{alg}: {}", stderr(&o));
        let lines = byte_lines(&o);
        // Shown with `--nocapture`: the "must show" of issue 16 (docs/unified.md, "Tests and
        // the benchmark").
        println!("unified_demo, {alg} card:");
        for l in &lines {
            println!("  {}", readable(l));
        }
        assert_eq!(
            lines.len(),
            7,
            "{alg}: {:?}",
            lines.iter().map(|l| readable(l)).collect::<Vec<_>>()
        );
        let basic = format!(
            "110100|11010519491231002X|A12345674|{CARD_ID}|{{name}}|5353434152443031|{version}|20240101|20340101|{TERMINAL}||"
        );
        assert_eq!(
            readable(&lines[0]),
            readable(&gbk(&format!("iReadCardBas(1): rc=0 {basic}"))),
        );
        assert_eq!(lines[0], gbk(&format!("iReadCardBas(1): rc=0 {basic}")));

        // Step 1: region | historical bytes | algorithm id | card id | R | challenge (empty on
        // 2.00) | terminal number |, with R and the challenge fresh random hex.
        let step1 =
            String::from_utf8(after(&lines[1], "iReadCardBas_HSM_Step1(1): rc=0 ").to_vec())
                .expect("step 1 is ASCII");
        let fields: Vec<&str> = step1.split('|').collect();
        assert_eq!(fields.len(), 8, "{alg}: step 1 {step1:?}");
        assert_eq!(
            &fields[..4],
            ["110100", "5353434152443031", alg_id, CARD_ID],
            "{alg}: {step1:?}"
        );
        let hex16 = |f: &str| f.len() == 16 && f.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(hex16(fields[4]), "{alg}: R of {step1:?}");
        match alg {
            "3des" => assert_eq!(fields[5], "", "{alg}: no challenge on 2.00: {step1:?}"),
            _ => assert!(hex16(fields[5]), "{alg}: challenge of {step1:?}"),
        }
        assert_eq!(&fields[6..], [TERMINAL, ""], "{alg}: {step1:?}");

        assert_eq!(
            readable(&lines[2]),
            format!("iGetReaderInfo: rc=0 reader_sn= psam_terminal_no={TERMINAL}")
        );
        assert_eq!(
            lines[3],
            gbk(&format!("iReadCard(1, 1, EF05 01 07, EF06 08 09): rc=0 SSSEEF05|{CARD_ID}|A12345674|$SSSEEF06|11010519491231002X|{{name}}|$"))
        );
        // Failures: the return code of PROFILE section 7 and the library's error text.
        assert_eq!(
            readable(&lines[4]),
            "iVerifyPINK(1, initial PIN): rc=-35 the PIN is the initial PIN 123456: change it before any transaction"
        );
        assert_eq!(
            readable(&lines[5]),
            "iVerifyPINK(1, wrong PIN): rc=-51 wrong PIN, 2 tries left"
        );
        assert_eq!(
            readable(&lines[6]),
            "iReadCardBas(9): rc=-1 iType 9 is not 1 (contact), 2 (contactless), 3 (both, contact first) or 4 (both, contactless first)"
        );
    }
}

#[test]
fn python_ctypes_cases_for_both_algorithms() {
    let _g = exclusive();
    let dir = TempDir::new("unified-py");
    let config = dir.empty_config();
    let script = repo().join("tests/unified/test_unified.py");
    let lib = library();
    // No __pycache__ left in the source tree.
    let python = || {
        let mut c = Command::new("python3");
        c.env("PYTHONDONTWRITEBYTECODE", "1");
        c
    };
    let list = python()
        .arg(&script)
        .arg("--list")
        .output()
        .expect("python3 runs");
    assert!(list.status.success(), "{}", stderr(&list));
    let cases: Vec<String> = stdout(&list).lines().map(str::to_string).collect();
    assert_eq!(
        cases,
        [
            "gbk",
            "utf8",
            "null-out",
            "threads",
            "pin-from-terminal",
            "wrong-pin",
            "change-pin"
        ]
    );
    let mut failed = Vec::new();
    for (alg, _, _) in ALGORITHMS {
        for case in &cases {
            // A fresh card per case: the PIN cases change its PIN and try counter.
            let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
            let o = python()
                .arg(&script)
                .arg("--lib")
                .arg(&lib)
                .args(["--alg", alg, case])
                .env("SSCARD_UNIFIED_CONFIG", &config)
                .output()
                .expect("python3 runs");
            println!("{}", stdout(&o).trim_end());
            if !o.status.success() || !stdout(&o).contains(&format!("ok {case} ({alg})")) {
                failed.push(format!(
                    "{case} ({alg}): status {:?}\n{}{}",
                    o.status.code(),
                    stdout(&o),
                    stderr(&o)
                ));
            }
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}
