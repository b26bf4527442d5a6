//! `sscard shell` through real pcscd and vpcd against `sscard-model serve`, 3DES and SM4: a
//! session piped in reads back as a transcript, byte for byte (docs/shell.md shows the SM4
//! one); on a pseudo-terminal (Python's `pty`, driving the binary as a person would) tab
//! completion, history, the PIN entry without echo, and the errors of a session that goes on.

use sscard_e2e::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `sscard shell ARGS` with `input` on a pipe, stderr into the same pipe as stdout (so errors
/// stand where they happened), at most 60 s.
fn shell_pipe(args: &[&str], input: &str) -> Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" shell \"$@\" 2>&1")
        .arg(bin("sscard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sscard shell");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the session");
    wait_at_most(child, Duration::from_secs(60), "sscard shell")
}

/// Waits for `child`, killing it (and failing) after `limit`: no test leaves a process.
fn wait_at_most(mut child: std::process::Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let o = child.wait_with_output().expect("output");
            panic!("{what} did not end within {limit:?}: {}", stdout(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The session docs/shell.md records: every command of the shell on the model card, the PIN
/// on the line after `verify`, the decoded trace (`trace on`) of a verify and a raw VERIFY under `trace raw`, and a failing command that ends
/// the run before the `ls` after it.
const SESSION: &str = "\
# A session on the model card: PIN 123456 on the line after verify.
connect \"pcd 00 00\"
ls
select EF06
read
read EF05 card_number
verify
123456
auth internal
auth external
write EF07 medical_account 22081101000000054321
read EF07 3
apdu 00B2072C00
trace on
verify
123456
trace raw
apdu 00200000 03 123456
trace off
select DF01
read EF01 1 --raw
read EF08
ls
";

/// What [`SESSION`] prints on a card of `alg` (`3des`, `sm4`).
fn transcript(alg: &str) -> String {
    let (version, mark_tdes, mark_sm4, alg_id, alg_name) = match alg {
        "3des" => ("2.00 (3DES)", "*", " ", "01", "3DES"),
        _ => ("3.00 (SM4)", " ", "*", "03", "SM4"),
    };
    format!(
        "\
sscard> connect \"pcd 00 00\"
connected to Virtual PCD 00 00: ATR 3B880153534341524430319C
SSSE {version}, issued
sscard> ls
NAME       FID   SFI  STRUCTURE   READ 3DES{mark_tdes}            READ SM4{mark_sm4}             UPDATE KEY
DF01       DF01  -    DF, the city's local extension
EF05       EF05  05   7 records   always                always                UK_N
EF06       EF06  06   7 records   always                ext-auth RKSSSE       UK_N
EF07       EF07  07   3 records   ext-auth RKSSSE       ext-auth RKSSSE       UK_N
* the connected card's algorithm
sscard> select EF06
selected EF06 (FID EF06, SFI 06, 7 records)
sscard> read
sscard: warning: using the PROFILE test key set (software keys; never for production)
EF06 #1  social security number = 11010519491231002X
EF06 #2  name = 张三
EF06 #3  name extension = (empty)
EF06 #4  gender = 2
EF06 #5  ethnic group = 01
EF06 #6  birthplace = 110105
EF06 #7  birth date = 1949-12-31
sscard> read EF05 card_number
EF05 #7  card number = A12345674
sscard> verify
PIN verified: the initial PIN, change it
sscard> auth internal
internal authentication: the card proved it holds IRK (genuine)
sscard> auth external
external authentication with RKSSSE (0A) in SSSE: accepted
sscard> write EF07 medical_account 22081101000000054321
EF07 record 3 updated
sscard> read EF07 3
EF07 #3  medical insurance account = 1101000000054321
sscard> apdu 00B2072C00
> 00B2072C00
< 0709413132333435363734 9000 success
sscard> trace on
trace on
sscard> verify
card  SELECT SSSE  DF name = SSSE  algorithm = {alg_id} ({alg_name})  life cycle = 02 (ISSUED)  9000 success
card  VERIFY  PIN = ******  9000 success
PIN verified: the initial PIN, change it
sscard> trace raw
trace raw
sscard> apdu 0020000003******
card > 0020000003******
card < 9000 success
> 0020000003******
< 9000 success
sscard> trace off
trace off
sscard> select DF01
selected DF01 (the local extension)
sscard> read EF01 1 --raw
40 08 0000000000000000
sscard> read EF08
sscard: error: unknown file \"EF08\": EF05, EF06, EF07, DF01/EF01 or DF01/EF02
"
    )
}

#[test]
fn a_piped_session_reads_back_as_its_transcript_byte_for_byte() {
    let _g = exclusive();
    for alg in ["3des", "sm4"] {
        let _m = ModelServer::start(&["--alg", alg], &[READER_0, READER_1]);
        let o = shell_pipe(&[], SESSION);
        let out = stdout(&o);
        assert_eq!(out, transcript(alg), "{alg}");
        // The first failing command's exit code: bad input.
        assert_eq!(o.status.code(), Some(2), "{alg}");
        // The card number A12345674 holds the digits; no other line does.
        assert!(
            out.lines()
                .all(|l| !l.contains("123456") || l.contains("A12345674")),
            "the PIN never shows"
        );
    }
}

#[test]
fn a_script_file_runs_like_a_pipe_and_keep_going_goes_on() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--alg", "sm4"], &[READER_0, READER_1]);
    let script = temp("script.txt");
    std::fs::write(
        &script,
        "readers\nconnect 0\nverify\n000000\nread EF05 7 # after a wrong PIN\nhelp auth\nverify\n",
    )
    .unwrap();
    let o = Command::new(bin("sscard"))
        .args(["shell", "--keep-going", "--script"])
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    let err = stderr(&o);
    assert!(
        out.starts_with(
            "sscard> readers\n0: Virtual PCD 00 00  card 3B880153534341524430319C\n1: Virtual PCD 00 01  card 3B6800005053414D2D535331\n"
        ),
        "{out}"
    );
    assert!(
        out.ends_with(
            "sscard> connect 0\nconnected to Virtual PCD 00 00: ATR 3B880153534341524430319C\nSSSE 3.00 (SM4), issued\n\
sscard> verify\n\
sscard> read EF05 7 # after a wrong PIN\nEF05 #7  card number = A12345674\n\
sscard> help auth\nauth internal|external [KID]\n    internal: the card proves it holds IRK; external: the terminal proves KID (default: the DF's)\n\
sscard> verify\n"
        ),
        "{out}"
    );
    assert_eq!(
        err,
        "sscard: warning: using the PROFILE test key set (software keys; never for production)\n\
sscard: error: wrong PIN, 2 tries left\n\
sscard: error: the script ended where verify reads the PIN\n"
    );
    // --keep-going: the first failure's exit code (a wrong PIN: the card refused, 1).
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(!out.contains("000000") && !err.contains("000000"));
    // Without it the run stops at the wrong PIN.
    let o = Command::new(bin("sscard"))
        .args(["shell", "--script"])
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).ends_with("sscard> verify\n"), "{}", stdout(&o));
    let _ = std::fs::remove_file(&script);
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sscard-shell-{}-{name}", std::process::id()))
}

/// Drives a program on a pseudo-terminal. Steps (a JSON list): `["send", KEYS]`, `["expect",
/// TEXT]` (waits up to 15 s for TEXT after the previous match, escape sequences removed),
/// `["settle", SECONDS]`, `["retry", [KEYS, TEXT]]` (KEYS sent again every 2 s until TEXT
/// shows), `["echo", "on"|"off"]` (the terminal's echo flag now), `["absent",
/// TEXT]` (never shown so far), `["control", LINE]` (to the model's control socket). Prints
/// the transcript without escape sequences; exits 1 with the reason on a failed step, 10 + the
/// program's code when it failed, 1 when the terminal's echo is off after it ended.
const PTY_DRIVER: &str = r#"
import json, os, pty, re, select, socket, subprocess, sys, termios, time

steps = json.load(open(sys.argv[1]))
master, slave = pty.openpty()
os.set_blocking(master, False)
proc = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
buf = b""
mark = 0

def pump(timeout):
    global buf
    r, _, _ = select.select([master], [], [], timeout)
    if not r:
        return False
    try:
        buf += os.read(master, 65536)
    except OSError:
        return False
    return True

def clean(b):
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b.decode("utf-8", "replace")).replace("\r", "")

def fail(msg):
    proc.kill()
    proc.wait()
    print("FAIL: " + msg + "\n--- transcript ---\n" + clean(buf), file=sys.stderr)
    sys.exit(1)

for kind, arg in steps:
    if kind == "send":
        os.write(master, arg.encode())
    elif kind == "expect":
        deadline = time.time() + 15
        while clean(buf).find(arg, mark) < 0:
            if time.time() > deadline or (proc.poll() is not None and not pump(0.1)):
                fail("no %r" % arg)
            pump(0.05)
        mark = clean(buf).find(arg, mark) + len(arg)
    elif kind == "settle":
        end = time.time() + float(arg)
        while time.time() < end:
            pump(0.05)
    elif kind == "echo":
        have = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
        if have != (arg == "on"):
            fail("the terminal's echo is %s, expected %s" % ("on" if have else "off", arg))
    elif kind == "absent":
        if arg in clean(buf):
            fail("%r was shown" % arg)
    elif kind == "retry":
        # Sends arg[0] until arg[1] shows (a card pcscd has yet to see comes in a poll later).
        keys, text = arg
        deadline = time.time() + 15
        while True:
            start = len(clean(buf))
            os.write(master, keys.encode())
            step_end = time.time() + 2
            while clean(buf).find(text, start) < 0 and time.time() < step_end:
                pump(0.05)
            if clean(buf).find(text, start) >= 0:
                mark = clean(buf).find(text, start) + len(text)
                break
            if time.time() > deadline:
                fail("no %r after %r" % (text, keys))
    elif kind == "control":
        c = socket.socket(socket.AF_UNIX)
        c.connect(os.environ["MODEL_CONTROL"])
        c.sendall((arg + "\n").encode())
        c.makefile().readline()
        c.close()
deadline = time.time() + 15
while proc.poll() is None:
    if time.time() > deadline:
        fail("the program did not end")
    pump(0.05)
while pump(0.05):
    pass
sys.stdout.write(clean(buf))
if not termios.tcgetattr(slave)[3] & termios.ECHO:
    print("FAIL: the terminal's echo is off after the program ended", file=sys.stderr)
    sys.exit(1)
sys.exit(0 if proc.returncode == 0 else 10 + proc.returncode)
"#;

/// Runs `sscard shell` on a pseudo-terminal through [`PTY_DRIVER`]; the transcript.
fn on_terminal(steps: &serde_json::Value, control: &Path) -> String {
    let driver = temp("pty.py");
    let steps_file = temp("steps.json");
    std::fs::write(&driver, PTY_DRIVER).unwrap();
    std::fs::write(&steps_file, steps.to_string()).unwrap();
    let child = Command::new("python3")
        .arg(&driver)
        .arg(&steps_file)
        .arg(bin("sscard"))
        .arg("shell")
        .env("MODEL_CONTROL", control)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (tests need it)");
    let o = wait_at_most(child, Duration::from_secs(120), "the pty driver");
    let _ = std::fs::remove_file(&driver);
    let _ = std::fs::remove_file(&steps_file);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn send(keys: &str) -> serde_json::Value {
    serde_json::json!(["send", keys])
}
fn expect(text: &str) -> serde_json::Value {
    serde_json::json!(["expect", text])
}
fn settle() -> serde_json::Value {
    serde_json::json!(["settle", "0.3"])
}

const PROMPT: &str = "sscard> ";
const UP: &str = "\u{1b}[A";

#[test]
fn on_a_terminal_tab_completes_history_recalls_and_the_pin_is_not_echoed() {
    let _g = exclusive();
    let m = ModelServer::start(&["--alg", "sm4"], &[READER_0, READER_1]);
    let steps = serde_json::json!([
        expect(PROMPT),
        // A command: `re` is the start of read and readers; the second TAB lists them.
        send("re\t"),
        settle(),
        send("\t"),
        expect("read     readers"),
        send("\u{15}ver\t"),
        expect("verify "),
        send("\u{15}"),
        // A reader's name, case fixed and quoted.
        send("connect \"virtual pcd 00 00\t"),
        expect("connect \"Virtual PCD 00 00\" "),
        send("\r"),
        expect("SSSE 3.00 (SM4), issued"),
        expect(PROMPT),
        // A file name: the common part, then the list.
        send("read EF0\t"),
        settle(),
        send("\t"),
        expect("EF05  EF06  EF07"),
        // A field of the file.
        send("6 gen\t"),
        expect("read EF06 gender "),
        send("\r"),
        expect("EF06 #4  gender = 2"),
        expect(PROMPT),
        // The PIN: asked with the terminal's echo off, never shown.
        send("verify\r"),
        expect("PIN: "),
        ["echo", "off"],
        send("123456\r"),
        expect("PIN verified: the initial PIN, change it"),
        expect(PROMPT),
        // A raw VERIFY carries the PIN: it never enters the history.
        send("apdu 0020000003123456\r"),
        expect("< 9000 success"),
        expect(PROMPT),
        // Up: the last line with no secret (verify), then the read before it.
        send(UP),
        expect("verify"),
        send(UP),
        expect("read EF06 gender "),
        send("\r"),
        expect("EF06 #4  gender = 2"),
        expect(PROMPT),
        // Typing is echoed again.
        send("help trace\r"),
        expect("print every APDU exchanged as it happens, decoded (on) or in hex (raw); secrets masked"),
        expect(PROMPT),
        send("exit\r"),
    ]);
    let out = on_terminal(&steps, &m.control);
    // Nothing between the PIN prompt and the answer: the PIN typed was not echoed.
    assert!(
        out.contains("sscard> verify\nPIN: \nPIN verified: the initial PIN, change it\n"),
        "{out}"
    );
    assert!(
        out.contains("sscard> help trace\ntrace on|raw|off\n"),
        "{out}"
    );
    assert_eq!(
        out.matches("0020000003123456").count(),
        1,
        "typed once, never recalled: {out}"
    );
    assert!(
        out.contains("> 0020000003******\n< 9000 success\n"),
        "{out}"
    );
}

#[test]
fn on_a_terminal_errors_say_what_happened_and_the_shell_goes_on() {
    let _g = exclusive();
    let m = ModelServer::start(&["--alg", "3des"], &[READER_0, READER_1]);
    let ctx = sscard_transport::pcsc::establish().unwrap();
    let virtual_readers: Vec<String> = sscard_transport::pcsc::list_readers(&ctx)
        .unwrap()
        .into_iter()
        .filter(|r| r.to_lowercase().contains("virtual"))
        .collect();
    assert!(virtual_readers.len() >= 2, "{virtual_readers:?}");
    let ambiguous = format!(
        "sscard: error: \"virtual\" matches several readers: {}; name one exactly or by index",
        virtual_readers.join(", ")
    );
    let steps = serde_json::json!([
        expect(PROMPT),
        send("bogus\r"),
        expect("sscard: error: unknown command \"bogus\": `help` lists the commands"),
        expect(PROMPT),
        send("read EF05\r"),
        expect("sscard: error: not connected: `connect READER` first (`readers` lists them)"),
        expect(PROMPT),
        send("connect virtual\r"),
        expect(&ambiguous),
        expect(PROMPT),
        send("connect 'Virtual PCD 00 00\r"),
        expect("sscard: error: unclosed ' in the line"),
        expect(PROMPT),
        send("connect 0\r"),
        expect("SSSE 2.00 (3DES), issued"),
        expect(PROMPT),
        // The card pulled: the command fails, the connection ends, the shell goes on.
        // (pcscd may let one more command through before it sees the card go.)
        ["control", "remove 0"],
        ["retry", ["read EF05 7\r", "sscard: error: the card was removed\nsscard: disconnected from Virtual PCD 00 00: `connect` again"]],
        expect(PROMPT),
        send("connect 0\r"),
        expect("sscard: error: no card in reader \"Virtual PCD 00 00\""),
        expect(PROMPT),
        ["control", "insert 0"],
        ["retry", ["connect 0\r", "SSSE 2.00 (3DES), issued"]],
        expect(PROMPT),
        send("read EF05 7\r"),
        expect("EF05 #7  card number = A12345674"),
        expect(PROMPT),
        send("\u{4}"),
    ]);
    let out = on_terminal(&steps, &m.control);
    assert!(out.contains("sscard> read EF05 7\n"), "{out}");
}

#[test]
fn a_psam_shows_its_files_decoded() {
    let _g = exclusive();
    let _m = ModelServer::start(&["--alg", "3des"], &[READER_0, READER_1]);
    let o = shell_pipe(
        &["--keep-going"],
        "connect 1\nls\nread EF15\nread EF16\nselect EF16\napdu 00B0000006\nread EF05\nauth internal\n",
    );
    assert_eq!(
        stdout(&o),
        "\
sscard> connect 1
connected to Virtual PCD 00 01: ATR 3B6800005053414D2D535331
PSAM 11010000000000000001, 3DES, region 110100, city level, terminal number 110100000001
sscard> ls
NAME       FID   SFI  STRUCTURE   HOLDS
DF01       DF01  -    DF          the security application
EF15       0015  15   24 bytes    serial, version, algorithm, region, key level, validity
EF16       0016  16   6 bytes     terminal number
sscard> read EF15
EF15  serial = 11010000000000000001
EF15  version = 01
EF15  algorithm = 01 (3DES)
EF15  region = 110100
EF15  level = 2 (city)
EF15  start date = 2024-01-01
EF15  expiry date = 2034-01-01
sscard> read EF16
EF16  terminal number = 110100000001
sscard> select EF16
selected EF16 (0016)
sscard> apdu 00B0000006
> 00B0000006
< 110100000001 9000 success
sscard> read EF05
sscard: error: a PSAM has EF15 and EF16: `read EF15` or `read EF16`
sscard> auth internal
sscard: error: the card is a PSAM: `ls`, `read EF15`, `read EF16`, `select` and `apdu` talk to it
"
    );
    assert_eq!(o.status.code(), Some(2));
}

/// The line after `verify` in a pipe is its PIN even when `verify` fails before asking (not
/// connected, wrong arguments): never run as a command, never echoed. No card needed.
#[test]
fn the_line_after_a_failing_verify_is_still_its_pin() {
    let o = shell_pipe(
        &["--keep-going"],
        "verify\n123456\nverify extra\n654321\nhelp verify\n",
    );
    assert_eq!(
        stdout(&o),
        "\
sscard> verify
sscard: error: not connected: `connect READER` first (`readers` lists them)
sscard> verify extra
sscard: error: usage: verify
sscard> help verify
verify
    VERIFY the PIN, asked without echo (from a script: its next line, never echoed)
"
    );
    assert_eq!(o.status.code(), Some(2));
}
