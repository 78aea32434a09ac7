#!/usr/bin/env bash
# Instructions per guard operation, counted by valgrind's callgrind: stable across runs on a
# noisy machine, so a regression shows even where wall-clock figures wander. Runs each
# operation with N and 2N iterations and reports (I(2N) - I(N)) / N, which cancels set-up cost
# (up to the clock calibration of quanta, whose instruction count varies: hence a large N).
# Usage: benches/callgrind.sh [N]   (needs valgrind; default N = 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
cargo build --release -q -p benches --bin guard_ops
BIN=target/release/guard_ops
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "$BIN" "$1" "$2" >/dev/null 2>&1
    grep -E '^summary:|^totals:' "$OUT/cg.out" | head -1 | awk '{print $2}'
}
echo "| operation | instructions per operation (callgrind, N = $N) |"
echo "|---|---|"
for op in limiter-allowed limiter-denied api-key-1000 egress-allowed sandbox-read; do
    one=$(instructions "$op" "$N")
    two=$(instructions "$op" "$((2 * N))")
    echo "| $op | $(( (two - one) / N )) |"
done
