#!/usr/bin/env bash
# `sscard bench perso` of this checkout beside the same benchmark of another revision, in one
# run: builds REV's sscard (release) in a temporary worktree, then runs the two binaries
# alternately RUNS times at the given model latency and prints, per reader count, the median
# cards/min of each and the ratio this/REV (the median of the per-pair ratios), with this
# checkout's APDUs per card. pcscd with the vpcd readers must run (scripts/setup.sh); run it
# under `flock -o /tmp/sscard-pcscd.lock` when others share the machine.
#
#   scripts/bench-perso-vs.sh REV [RUNS] [LATENCY-MS] [READERS] [CARDS-PER-READER]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: scripts/bench-perso-vs.sh REV [RUNS] [LATENCY-MS] [READERS] [CARDS-PER-READER]}
runs=${2:-3}
latency=${3:-20}
readers=${4:-1,2,4,8}
cards=${5:-3}
base=$(mktemp -d /tmp/sscard-bench-base.XXXXXX)
trap 'git worktree remove --force "$base" >/dev/null 2>&1 || true; rm -rf "$base"' EXIT
git worktree add --detach "$base" "$rev" >/dev/null 2>&1
(cd "$base" && cargo build --release --quiet --bin sscard)
cargo build --release --quiet --bin sscard
old="$base/target/release/sscard"
new=./target/release/sscard
out=$(mktemp /tmp/sscard-bench-out.XXXXXX)
for i in $(seq 1 "$runs"); do
    # Alternate which side goes first, so drift in the machine's speed hits both alike.
    if [ $((i % 2)) -eq 0 ]; then order="old new"; else order="new old"; fi
    for side in $order; do
        bin=$old; [ "$side" = new ] && bin=$new
        printf '%s %s\n' "$side" "$("$bin" bench perso --json --latency-ms "$latency" --readers "$readers" --cards-per-reader "$cards")" >>"$out"
    done
done
python3 - "$out" "$rev" "$latency" <<'EOF'
import json, statistics, sys
rows = {"old": [], "new": []}
for line in open(sys.argv[1]):
    side, text = line.split(" ", 1)
    rows[side].append({r["readers"]: r for r in json.loads(text)["runs"]})
print(f"personalisation at {sys.argv[3]} ms/APDU, this checkout beside {sys.argv[2]}")
for k in rows["new"][0]:
    new = [r[k]["cards_per_min"] for r in rows["new"]]
    old = [r[k]["cards_per_min"] for r in rows["old"]]
    apdus = statistics.median(r[k].get("apdus_per_card", 0) for r in rows["new"])
    ratios = [n / o for n, o in zip(new, old)]
    print(f"{k} reader(s): cards/min this {statistics.median(new):>8.1f}  {sys.argv[2]} {statistics.median(old):>8.1f}"
          f"  ratio {statistics.median(ratios):.3f} (pairs {min(ratios):.3f}..{max(ratios):.3f}, {len(ratios)} runs)  APDUs/card this {apdus:.1f}")
EOF
rm -f "$out"
