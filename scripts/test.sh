#!/usr/bin/env bash
# Runs every test: unit, model, and end-to-end through real pcscd + vpcd.
# Installs what is missing first (scripts/setup.sh). Fails loudly when pcscd cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# --lib too: the e2e tests load libsscard_unified.so, a cdylib no binary depends on.
cargo build --workspace --bins --lib
export SSCARD_REQUIRE_PCSCD=1
cargo test --workspace -- --test-threads=2
