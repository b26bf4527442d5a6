#!/usr/bin/env bash
# Issue 16's benchmark: calls per second of iReadCardBas in libsscard_unified.so through pcscd
# against `sscard info` on the same served card, for both algorithms, side by side in one run
# with rotating rounds (tests/src/bin/bench-unified.rs; docs/unified.md, "Tests and the
# benchmark"). Builds the library, the binaries and the C caller
# (tests/unified/bench_unified.c) in one profile, then runs the benchmark under the pcscd lock.
# pcscd with the vpcd readers must run (scripts/setup.sh).
#
#   scripts/bench-unified.sh [--release] [--lib PATH] [--count N] [--rounds N] [--alg 3des|sm4|both]
#
# --lib benchmarks another library with the same interface instead of ours (not built here).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
lib=
while [ $# -gt 0 ]; do
    case $1 in
    --release) profile=release; shift ;;
    --lib) lib=$(realpath "${2:?--lib needs a path}"); shift 2 ;;
    *) break ;;
    esac
done
flag=
[ "$profile" = release ] && flag=--release
# sscard-cli has both binaries (sscard, sscard-model); sscard-e2e has bench-unified.
packages=(-p sscard-cli -p sscard-e2e)
[ -z "$lib" ] && packages+=(-p sscard-unified)
cargo build $flag --quiet "${packages[@]}"
[ -z "$lib" ] && lib=$(realpath "target/$profile/libsscard_unified.so")
work=$(mktemp -d /tmp/sscard-bench-unified.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -std=c99 -Wall -Wextra -Werror -O2 -I unified/include tests/unified/bench_unified.c \
    -o "$work/bench_unified" -L "$(dirname "$lib")" "-l:$(basename "$lib")" \
    "-Wl,-rpath,$(dirname "$lib")"
flock -o /tmp/sscard-pcscd.lock "target/$profile/bench-unified" \
    --c-bench "$work/bench_unified" --sscard "target/$profile/sscard" "$@"
