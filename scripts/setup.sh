#!/usr/bin/env bash
# Idempotent machine set-up for sscard on Debian 12 (run as root, or with sudo available).
# Installs the PC/SC stack, the vpcd virtual reader driver and test tools, then makes sure
# pcscd runs with the vpcd reader listening on 35963/35964.
set -euo pipefail

PACKAGES=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc softhsm2 tshark pkg-config gcc)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    # tshark asks whether non-root users may capture; answer once, non-interactively.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

vpcd_listening() { (ss -ltn 2>/dev/null || true) | grep -q ':35963 '; }

if pgrep -x pcscd >/dev/null && ! vpcd_listening; then
    # pcscd was started before vpcd was installed: restart so it loads the vpcd driver.
    as_root pkill -x pcscd || true
    sleep 0.5
fi
if ! pgrep -x pcscd >/dev/null; then
    echo "setup: starting pcscd" >&2
    as_root mkdir -p /run/pcscd
    as_root /usr/sbin/pcscd
fi
for _ in $(seq 1 50); do vpcd_listening && break; sleep 0.1; done
vpcd_listening || { echo "setup: pcscd runs but the vpcd reader does not listen on 35963" >&2; exit 1; }
