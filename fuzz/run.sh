#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) and prints, per target: executions, execs/s,
# coverage (libFuzzer's `cov` edges and `ft` features), corpus size, and any crash found.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]        (needs nightly and cargo-fuzz:
#                                                  cargo install cargo-fuzz --locked)
#   MERGE=1 bash fuzz/run.sh 600 sandbox           also minimizes the grown corpus back into
#                                                  fuzz/corpus/sandbox (cargo fuzz cmin)
#
# Each run works on a scratch copy of the committed corpus (fuzz/corpus-work/, ignored by git),
# so a run never bloats the repository; MERGE=1 keeps only inputs that add coverage. A crash
# leaves its input in fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/ (named after
# the bug) once fixed, and plain `cargo test` replays it forever.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
declare -A dictionary=([sandbox]=traversal [egress]=url [resource_uri]=url [sql]=sql [jsonrpc]=jsonrpc [scope_body]=jsonrpc)

echo "building the targets (cargo +nightly fuzz build -O; minutes the first time)" >&2
cargo +nightly fuzz build -O >/dev/null
printf '%-14s %10s %9s %7s %7s %7s  %s\n' target execs execs/s cov ft corpus result
for target in "${targets[@]}"; do
    work="corpus-work/$target"
    mkdir -p "$work" "artifacts/$target"
    cp -n "corpus/$target"/* "$work"/ 2>/dev/null || true
    args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048)
    if [ -n "${dictionary[$target]:-}" ]; then
        args+=(-dict="../attack/dict/${dictionary[$target]}.dict")
    fi
    log="corpus-work/$target.log"
    result=ok
    cargo +nightly fuzz run -O "$target" "$work" -- "${args[@]}" >"$log" 2>&1 || result="FAILED (see fuzz/$log)"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
    corpus=$(find "$work" -type f | wc -l)
    printf '%-14s %10s %9s %7s %7s %7s  %s\n' "$target" "$execs" "$rate" "$cov" "$ft" "$corpus" "$result"
    if [ "${MERGE:-0}" = 1 ] && [ "$result" = ok ]; then
        cargo +nightly fuzz cmin -O "$target" "$work" >/dev/null 2>&1
        rm -f "corpus/$target"/*
        cp "$work"/* "corpus/$target"/
    fi
done
