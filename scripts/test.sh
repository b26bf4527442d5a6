#!/usr/bin/env bash
# Runs every test: unit, model, and end-to-end through real pcscd + vpcd.
# Installs what is missing first (scripts/setup.sh). Fails loudly when pcscd cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --workspace --bins
export SSCARD_REQUIRE_PCSCD=1
cargo test --workspace -- --test-threads=2
