#!/usr/bin/env bash
# The main job against the embedded virtual card: mutual authentication through the PSAM,
# read basic info, the initial-PIN policy and a PIN change. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --bin sscard
exec ./target/release/sscard demo "$@"
