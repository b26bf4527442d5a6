#!/usr/bin/env bash
# `sscard bench model` of this checkout beside the same benchmark of another revision, in one
# run: builds REV's sscard (release) in a temporary worktree, then runs the two binaries
# alternately RUNS times and prints, per algorithm, the median read-basic-info sessions/s of each
# and the ratio this/REV (the median of the per-pair ratios).
#
#   scripts/bench-model-vs.sh REV [RUNS] [SESSIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: scripts/bench-model-vs.sh REV [RUNS] [SESSIONS]}
runs=${2:-5}
sessions=${3:-20000}
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
        printf '%s %s\n' "$side" "$("$bin" bench model --json --apdus 1 --sessions "$sessions")" >>"$out"
    done
done
python3 - "$out" "$rev" <<'EOF'
import json, statistics, sys
rows = {"old": [], "new": []}
for line in open(sys.argv[1]):
    side, text = line.split(" ", 1)
    rows[side].append({r["algorithm"]: r["info_sessions_per_s"] for r in json.loads(text)["in_process"]})
for alg in rows["new"][0]:
    new = [r[alg] for r in rows["new"]]
    old = [r[alg] for r in rows["old"]]
    ratios = [n / o for n, o in zip(new, old)]
    print(f"{alg:<4} read-basic-info sessions/s: this {statistics.median(new):>9.0f}  {sys.argv[2]} {statistics.median(old):>9.0f}"
          f"  ratio this/{sys.argv[2]} {statistics.median(ratios):.3f} (pairs {min(ratios):.3f}..{max(ratios):.3f}, {len(ratios)} runs)")
EOF
rm -f "$out"
