#!/usr/bin/env bash
# Issue 17's benchmark: throughput and p50/p99 latency of cryptogram requests through
# `sscard keyd serve` on loopback (mutual TLS, certificates made by the harness) against the
# same key source in-process, with 1, 4 and 16 concurrent clients, for the software test keys
# and a SoftHSM2 token; in the same rounds the floor any network service has here (a no-op
# handler on keyd's own HTTPS stack, TLS and TCP echo of the same bytes, the fsync rate of the
# audit journal's disk; --no-floor leaves it out), with the ratios keyd/local, keyd/no-op,
# no-op/local, echo/local and keyd/(clients x fsync/s); with --perso N also personalisation
# cards/min through keyd against the SoftHSM token locally, and keyd's requests per card
# (tests/src/bin/bench-keyd.rs; docs/keyd.md, "Tests and the benchmark").
# The cryptogram part needs no card and takes no lock; --perso drives pcscd readers, so then the
# whole run holds the pcscd lock.
#
#   scripts/bench-keyd.sh [--release] [--requests N] [--rounds N] [--clients LIST] [--sources LIST] [--no-floor] [--perso N]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
if [ "${1:-}" = --release ]; then
    profile=release
    shift
fi
flag=
[ "$profile" = release ] && flag=--release
# sscard-cli has sscard (keyd serve) and sscard-model; sscard-e2e has bench-keyd.
cargo build $flag --quiet -p sscard-cli -p sscard-e2e --bin sscard --bin sscard-model --bin bench-keyd
bench="target/$profile/bench-keyd"
case " $* " in
*" --perso "*) exec flock -o /tmp/sscard-pcscd.lock "$bench" "$@" ;;
*) exec "$bench" "$@" ;;
esac
