#!/usr/bin/env python3
"""The unified interface's C library (libsscard_unified.so) from Python ctypes.

Each case runs against a freshly served card and PSAM (`sscard-model serve --alg ALG`, PIN
123456, a matching city PSAM), through pcscd; tests/tests/unified_lib.rs starts the model and
runs one case per process:

    python3 tests/unified/test_unified.py --lib target/debug/libsscard_unified.so --alg sm4 gbk

`--list` prints the case names. A case prints `ok <case>` or `FAIL <case>: <why>` and the
process exits 0 or 1. The library reads its configuration from the file that
SSCARD_UNIFIED_CONFIG names (the caller passes an empty one: the defaults).
"""

import argparse
import ctypes
import os
import pty
import select
import signal
import sys
import tempfile
import termios
import threading
import time

OUT_SIZE = 2048  # PROFILE section 10: pOutInfo holds at least 2048 bytes
NAME = "张三"
CARD_ID = "110100D15600000599110145000000A1"
CARD_INFO = f"{CARD_ID}|A12345674|".encode("ascii")
INITIAL_PIN = b"123456"
NEW_PIN = b"802417"
WRONG_PIN = b"654321"
VERSION = {"3des": "2.00", "sm4": "3.00"}

# Return codes of PROFILE section 7.
OK = 0
INITIAL_PIN_IN_USE = -35
NEW_PIN_IS_INITIAL = -36
WRONG_PIN_CODE = -51
INVALID_DATA = -23  # also a NULL argument: nothing read or written


def expected_line(alg):
    """The iReadCardBas line of the served test card (PROFILE sections 7 and 9): vpcd reports
    no reader serial number, so the terminal device number is empty."""
    return (
        f"110100|11010519491231002X|A12345674|{CARD_ID}|{NAME}|5353434152443031|"
        f"{VERSION[alg]}|20240101|20340101|110100000001||"
    )


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def load(path):
    """The library with the prototypes of PROFILE section 10 (and the K variants)."""
    lib = ctypes.CDLL(path)
    c_int, c_char_p, c_long = ctypes.c_int, ctypes.c_char_p, ctypes.c_long
    prototypes = {
        "iReadCardBas": [c_int, c_char_p],
        "iReadCardBas_HSM_Step1": [c_int, c_char_p],
        "iReadCardBas_HSM_Step2": [c_char_p, c_char_p],
        "iReadCard": [c_int, c_int, c_char_p, c_char_p, c_char_p],
        "iWriteCard": [c_int, c_char_p, c_char_p, c_char_p, c_char_p],
        "iVerifyPIN": [c_int, c_char_p],
        "iChangePIN": [c_int, c_char_p],
        "iVerifyPINK": [c_int, c_char_p, c_char_p],
        "iChangePINK": [c_int, c_char_p, c_char_p, c_char_p],
        "iReloadPIN": [c_int, c_char_p, c_char_p],
        "iUnblockPIN": [c_int, c_char_p, c_char_p],
        "iGetReaderInfo": [c_char_p, c_char_p],
    }
    for name, args in prototypes.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = c_long
    return lib


def call(fn, *args):
    """Calls `fn(*args, pOutInfo)`: (return code, pOutInfo's bytes up to the first NUL)."""
    out = ctypes.create_string_buffer(OUT_SIZE)
    rc = fn(*args, out)
    return rc, out.value


def read_basic_info(lib):
    return call(lib.iReadCardBas, 1)


# --- cases -------------------------------------------------------------------------------


def case_gbk(lib, args):
    """The default encoding is GBK: the name is the GBK bytes of 张三 (D5C5 C8FD)."""
    rc, raw = read_basic_info(lib)
    check(rc == OK, f"iReadCardBas returned {rc}: {raw!r}")
    check(NAME.encode("gbk") == b"\xd5\xc5\xc8\xfd", "Python's GBK codec disagrees")
    check(raw == expected_line(args.alg).encode("gbk"), f"line {raw!r}")
    check(raw.decode("gbk").split("|")[4] == NAME, f"name field of {raw!r}")
    check(NAME.encode("utf-8") not in raw, "the name is in UTF-8 without configuration")


def case_utf8(lib_path, args):
    """`encoding = "utf-8"` in the file SSCARD_UNIFIED_CONFIG names: the line is UTF-8."""
    with tempfile.TemporaryDirectory(prefix="sscard-unified-") as d:
        config = os.path.join(d, "unified.toml")
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write('encoding = "utf-8"\n')
        os.environ["SSCARD_UNIFIED_CONFIG"] = config
        lib = load(lib_path)
        rc, raw = read_basic_info(lib)
    check(rc == OK, f"iReadCardBas returned {rc}: {raw!r}")
    check(raw == expected_line(args.alg).encode("utf-8"), f"line {raw!r}")
    check(raw.decode("utf-8").split("|")[4] == NAME, f"name field of {raw!r}")


def case_null_out(lib, args):
    """NULL buffers are refused (-23) without a crash; the library still works."""
    rc = lib.iReadCardBas(1, None)
    check(rc == INVALID_DATA, f"iReadCardBas(1, NULL) returned {rc}")
    out = ctypes.create_string_buffer(OUT_SIZE)
    rc = lib.iVerifyPINK(1, None, out)
    check(rc == INVALID_DATA, f"iVerifyPINK(1, NULL, out) returned {rc}")
    check(b"NULL" in out.value, f"iVerifyPINK(1, NULL, out) says {out.value!r}")
    out = ctypes.create_string_buffer(OUT_SIZE)
    rc = lib.iReadCard(1, 1, CARD_INFO, None, out)
    check(rc == INVALID_DATA, f"iReadCard with a NULL pFileAddr returned {rc}")
    check(b"NULL" in out.value, f"iReadCard with a NULL pFileAddr says {out.value!r}")
    rc = lib.iGetReaderInfo(None, None)
    check(rc == INVALID_DATA, f"iGetReaderInfo(NULL, NULL) returned {rc}")
    # A NULL PIN was not sent as an empty PIN: the card still takes the initial PIN.
    rc, text = call(lib.iVerifyPINK, 1, INITIAL_PIN)
    check(rc == INITIAL_PIN_IN_USE, f"iVerifyPINK(initial) after the NULL calls: {rc} {text!r}")
    rc, raw = read_basic_info(lib)
    check(rc == OK and raw == expected_line(args.alg).encode("gbk"), f"after: {rc} {raw!r}")


def case_threads(lib, args):
    """8 threads reading at once: every call succeeds with the same line (the library
    serialises calls on one reader)."""
    threads, per_thread = 8, 5
    start = threading.Barrier(threads)
    results = [[] for _ in range(threads)]

    def worker(i):
        start.wait()
        for _ in range(per_thread):
            results[i].append(read_basic_info(lib))

    # Daemon threads: a call that never returns fails the case instead of hanging the exit.
    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
        check(not t.is_alive(), "a thread is still calling after 300 s")
    calls = [r for rs in results for r in rs]
    check(len(calls) == threads * per_thread, f"{len(calls)} calls returned")
    bad = [r for r in calls if r != (OK, expected_line(args.alg).encode("gbk"))]
    check(not bad, f"{len(bad)} of {len(calls)} calls differ, e.g. {bad[:3]!r}")


def case_wrong_pin(lib, args):
    """A wrong PIN as text: -51 with the tries left in the text; the right one resets it."""
    rc, text = call(lib.iVerifyPINK, 1, WRONG_PIN)
    check(rc == WRONG_PIN_CODE, f"iVerifyPINK(wrong) returned {rc}: {text!r}")
    check(b"2" in text, f"the error text does not give the tries left (2): {text!r}")
    check(WRONG_PIN not in text, "the error text quotes the PIN")
    rc, text = call(lib.iVerifyPINK, 1, INITIAL_PIN)
    check(rc == INITIAL_PIN_IN_USE, f"iVerifyPINK(initial) returned {rc}: {text!r}")


def case_change_pin(lib, args):
    """iChangePINK old → new, then the new PIN verifies (0) and the old one no longer does;
    changing back to the initial PIN is refused (-36)."""
    rc, text = call(lib.iChangePINK, 1, INITIAL_PIN, NEW_PIN)
    check(rc == OK, f"iChangePINK(initial → new) returned {rc}: {text!r}")
    rc, text = call(lib.iVerifyPINK, 1, NEW_PIN)
    check(rc == OK, f"iVerifyPINK(new) returned {rc}: {text!r}")
    rc, text = call(lib.iVerifyPINK, 1, INITIAL_PIN)
    check(rc == WRONG_PIN_CODE, f"iVerifyPINK(old) returned {rc}: {text!r}")
    rc, text = call(lib.iChangePINK, 1, NEW_PIN, INITIAL_PIN)
    check(rc == NEW_PIN_IS_INITIAL, f"iChangePINK(new → initial) returned {rc}: {text!r}")
    rc, text = call(lib.iVerifyPINK, 1, NEW_PIN)
    check(rc == OK, f"iVerifyPINK(new) at the end returned {rc}: {text!r}")


def case_pin_from_terminal(lib_path, args):
    """iVerifyPIN with no PIN pad reads the PIN from the controlling terminal without echo: a
    child on a new pty changes the PIN to NEW_PIN (K variant), then calls iVerifyPIN; this
    process types NEW_PIN at the pty once echo is off and checks the PIN never shows."""
    fd_result, result = tempfile.mkstemp(prefix="sscard-unified-pty-")
    os.close(fd_result)
    try:
        pid, master = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal, stdin, stdout, stderr
            try:
                os.execv(
                    sys.executable,
                    [sys.executable, os.path.abspath(__file__), "--lib", lib_path,
                     "--alg", args.alg, "--result", result, "child-verify-pin"],
                )
            finally:
                os._exit(127)
        try:
            transcript, prompt, typed = type_pin_at(master)
        except BaseException:
            os.kill(pid, signal.SIGKILL)  # leave no process behind
            os.waitpid(pid, 0)
            os.close(master)
            raise
        _, status = os.waitpid(pid, 0)
        os.close(master)
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
              f"child status {status}: {transcript!r}")
        check(typed, f"echo was never off while the PIN was awaited: {transcript!r}")
        check(prompt.strip(), "no prompt on the terminal before the PIN was awaited")
        check(NEW_PIN not in transcript, f"the PIN was echoed: {transcript!r}")
        with open(result) as f:
            lines = dict(line.rstrip("\n").split(" ", 1) for line in f)
        check(lines.get("change") == "0", f"iChangePINK in the child: {lines}")
        check(lines.get("verify") == "0", f"iVerifyPIN from the terminal: {lines}")
        check(lines.get("echo_after") == "on", f"the terminal's echo after the call: {lines}")
        print(f"terminal showed: {transcript.decode('utf-8', 'replace')!r}")
    finally:
        os.unlink(result)


def type_pin_at(master):
    """Reads the child's terminal until it closes; types NEW_PIN once echo is off. Returns
    (everything the terminal showed, what it showed before the PIN was typed, whether typed)."""
    transcript, prompt, typed, echo_off_since = b"", b"", False, None
    deadline = time.monotonic() + 60
    while True:
        check(time.monotonic() < deadline, f"the child did not finish: {transcript!r}")
        if not typed and echo_off_since is None:
            # A pty master reports its slave's termios: echo off means the PIN is awaited.
            if not termios.tcgetattr(master)[3] & termios.ECHO:
                echo_off_since = time.monotonic()
        if not typed and echo_off_since is not None and (
            transcript or time.monotonic() - echo_off_since > 2
        ):
            # Type like a user once the prompt is out (or echo has been off for 2 s
            # without one: the check below then names the missing prompt), Enter included.
            prompt = transcript
            os.write(master, NEW_PIN + b"\r")
            typed = True
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            transcript += chunk
    return transcript, prompt, typed


def child_verify_pin(lib_path, args):
    lib = load(lib_path)
    rc_change, _ = call(lib.iChangePINK, 1, INITIAL_PIN, NEW_PIN)
    rc_verify, text = call(lib.iVerifyPIN, 1)
    echo = "on" if termios.tcgetattr(sys.stdin.fileno())[3] & termios.ECHO else "off"
    with open(args.result, "w") as f:
        f.write(f"change {rc_change}\nverify {rc_verify}\necho_after {echo}\n")
        f.write(f"text {text.decode('gbk', 'replace')}\n")


# Cases that take the loaded library; the others load it themselves (configuration, child).
CASES = {
    "gbk": case_gbk,
    "utf8": case_utf8,
    "null-out": case_null_out,
    "threads": case_threads,
    "pin-from-terminal": case_pin_from_terminal,
    "wrong-pin": case_wrong_pin,
    "change-pin": case_change_pin,
}
LOADS_ITSELF = {"utf8", "pin-from-terminal"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", help="path of libsscard_unified.so")
    p.add_argument("--alg", choices=sorted(VERSION), default="3des")
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--list", action="store_true", help="print the case names")
    p.add_argument("case", nargs="?", choices=sorted(CASES) + ["child-verify-pin"])
    args = p.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    if not args.lib or not args.case:
        p.error("--lib and a case are required")
    if args.case == "child-verify-pin":
        child_verify_pin(args.lib, args)
        return 0
    try:
        if args.case in LOADS_ITSELF:
            CASES[args.case](args.lib, args)
        else:
            CASES[args.case](load(args.lib), args)
    except Failure as e:
        print(f"FAIL {args.case} ({args.alg}): {e}")
        return 1
    print(f"ok {args.case} ({args.alg})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
