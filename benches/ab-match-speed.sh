#!/usr/bin/env bash
# Alternate two or more builds of the `match_speed` example on the same templates, so that
# a speed ratio is measured under the same machine load, and print each binary's fastest
# and median figure (microseconds per comparison, each run the median of 3 rounds).
#
#   benches/ab-match-speed.sh <FVC folder> <times> <binary> <binary> [<binary> ...]
#
# Build a previous version with `git worktree add /tmp/old <rev>` and
# `cargo build --release -p huella-finger --example match_speed` inside it.
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,9p "$0"; exit 2; }
data=$1 times=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$times"); do
    for b in "$@"; do
        us=$("$b" "$data" --rounds 3 | tail -n 1 | awk '{print $5}')
        echo "$b $us" >>"$out"
    done
done
for b in "$@"; do
    grep -F "$b " "$out" | awk '{print $2}' | sort -n |
        awk -v b="$b" '{v[NR] = $1} END {printf "%s: fastest %.2f us, median %.2f us, %d runs\n", b, v[1], v[int((NR + 1) / 2)], NR}'
done
