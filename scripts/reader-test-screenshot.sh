#!/usr/bin/env bash
# Renders the HTML report of `sscard reader-test` against the served card (SSSE and loopback
# applications, a PSAM in the second reader, through pcscd) with headless Chromium, into
# docs/reader-test-report.png (or the path given). Installs Chromium with apt when it is
# missing; CI never runs this script. Needs pcscd with the vpcd readers (scripts/setup.sh) and
# python3 (to arm the model's control socket).
#
# One APDU of the run is held 150 ms by the model (`hold 0 60 150` on its control socket: the
# 60th APDU, inside the SELECT latency samples), so the page shows how the log-scale latency
# chart keeps an outlier readable beside sub-millisecond bands.
#
#   scripts/reader-test-screenshot.sh [OUT.png] [sscard-model serve options…]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/reader-test-report.png}
shift || true

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (apt)…" >&2
    if [ "$(id -u)" -eq 0 ]; then apt=(apt-get); else apt=(sudo apt-get); fi
    "${apt[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq chromium >/dev/null
fi

cargo build -q -p sscard-cli --bin sscard --bin sscard-model
work=$(mktemp -d)
model=""
cleanup() {
    if [ -n "$model" ]; then kill "$model" 2>/dev/null || true; wait "$model" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The virtual readers are shared: one user at a time (the lock is held for the run only).
exec 9>/tmp/sscard-pcscd.lock
flock 9
target/debug/sscard-model serve --control "$work/model.sock" "$@" 2>"$work/model.log" 9>&- &
model=$!
for _ in $(seq 100); do [ -S "$work/model.sock" ] && break; sleep 0.1; done
sleep 1
python3 - "$work/model.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"hold 0 60 150\n")
answer = s.makefile().readline().strip()
if answer != "ok":
    sys.exit(f"the model's control socket answered {answer!r}")
PY
target/debug/sscard reader-test --reader "Virtual PCD 00 00" --psam-reader "Virtual PCD 00 01" \
    --model-control "$work/model.sock" --html "$work/report.html" 9>&- >/dev/null || true
kill "$model"; wait "$model" 2>/dev/null || true
model=""
flock -u 9
exec 9>&-

height=$(( $(grep -c '<tr' "$work/report.html") * 52 + 1000 ))
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
    --window-size=1400,"$height" --screenshot="$PWD/$out" "file://$work/report.html" 2>/dev/null
echo "$out ($(stat -c %s "$out") bytes)"
