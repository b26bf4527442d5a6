#!/usr/bin/env bash
# Idempotent machine set-up for sscard on Debian 12 (run as root, or with sudo available).
# Installs the PC/SC stack, the vpcd virtual reader driver and test tools, then makes sure
# pcscd runs with the vpcd reader listening on 35963/35964.
set -euo pipefail

PACKAGES=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc softhsm2 tshark postgresql openssl libxml2-utils python3 python3-pyscard python3-pycryptodome pkg-config gcc)

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

# Five more vpcd readers (two slots each): B-D (ports 35965-35970) for multi-reader tests,
# E and F (35971-35974) for the independent card and terminal of tests/independent/,
# "Virtual PCD B 00 00" … "Virtual PCD F 00 01". Each needs its own copy of the vpcd driver:
# pcscd shares one loaded driver between readers and vpcd keeps its sockets in globals.
EXTRA=/etc/reader.conf.d/sscard-vpcd
DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
if [ ! -f "$EXTRA" ] || ! grep -q sscard-f "$EXTRA"; then
    echo "setup: adding vpcd readers on ports 35965-35974 ($EXTRA)" >&2
    {
        for reader in "B b 0x8C7D" "C c 0x8C7F" "D d 0x8C81" "E e 0x8C83" "F f 0x8C85"; do
            set -- $reader
            printf 'FRIENDLYNAME "Virtual PCD %s"\nDEVICENAME   /dev/null:%s\nLIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd-sscard-%s.so\nCHANNELID    %s\n\n' "$1" "$3" "$2" "$3"
        done
    } | as_root tee "$EXTRA" >/dev/null
fi
for x in b c d e f; do
    copy=/usr/lib/pcsc/drivers/serial/libifdvpcd-sscard-$x.so
    cmp -s "$DRIVER" "$copy" || as_root cp "$DRIVER" "$copy"
done

vpcd_listening() {
    local open
    open=$(ss -ltn 2>/dev/null || true)
    grep -q ':35963 ' <<<"$open" && grep -q ':35969 ' <<<"$open" && grep -q ':35973 ' <<<"$open"
}

if pgrep -x pcscd >/dev/null && ! vpcd_listening; then
    # pcscd was started before vpcd (or the extra readers) was installed: restart so it loads them.
    as_root pkill -x pcscd || true
    for _ in $(seq 1 50); do pgrep -x pcscd >/dev/null || break; sleep 0.1; done
fi
if ! pgrep -x pcscd >/dev/null; then
    echo "setup: starting pcscd" >&2
    as_root mkdir -p /run/pcscd
    as_root /usr/sbin/pcscd
fi
for _ in $(seq 1 50); do vpcd_listening && break; sleep 0.1; done
vpcd_listening || { echo "setup: pcscd runs but the vpcd readers do not listen on 35963, 35969 and 35973" >&2; exit 1; }
