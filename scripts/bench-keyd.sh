#!/usr/bin/env bash
# Issue 17's benchmark: throughput and p50/p99 latency of cryptogram requests through
# `sscard keyd serve` on loopback (mutual TLS, certificates made by the harness) against the
# same key source in-process, with 1, 4 and 16 concurrent clients, for the software test keys
# and a SoftHSM2 token (tests/src/bin/bench-keyd.rs; docs/keyd.md, "Tests and the benchmark").
# No card, no pcscd: it takes no pcscd lock.
#
#   scripts/bench-keyd.sh [--release] [--requests N] [--rounds N] [--clients LIST] [--sources LIST]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
if [ "${1:-}" = --release ]; then
    profile=release
    shift
fi
flag=
[ "$profile" = release ] && flag=--release
# sscard-cli has the sscard binary (keyd serve); sscard-e2e has bench-keyd.
cargo build $flag --quiet -p sscard-cli -p sscard-e2e --bin sscard --bin bench-keyd
exec "target/$profile/bench-keyd" "$@"
