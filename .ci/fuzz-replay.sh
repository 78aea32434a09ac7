#!/usr/bin/env bash
# Builds the fuzz targets on stable (no sanitizer, no coverage instrumentation: libFuzzer's
# driver only) and replays every committed corpus and regression file through them, so that the
# targets keep building and every input the fuzzers kept or once crashed on still passes its
# oracle through the real entry points. (`cargo test` replays the same files through the
# oracles; the fuzzing itself needs nightly: see fuzz/README.md.)
set -euo pipefail
cd "$(dirname "$0")/.."
# Share the workspace's target directory: most dependencies are already built there.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --manifest-path fuzz/Cargo.toml --bins
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for source in fuzz/fuzz_targets/*.rs; do
    target="$(basename "$source" .rs)"
    inputs=("fuzz/corpus/$target")
    if [ -n "$(ls -A "fuzz/regressions/$target" 2>/dev/null)" ]; then
        inputs+=("fuzz/regressions/$target")
    fi
    if ! "$CARGO_TARGET_DIR/debug/$target" -runs=0 -timeout=30 "${inputs[@]}" >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz replay: $target FAILED" >&2
        exit 1
    fi
    printf 'fuzz replay: %-13s %s\n' "$target" "$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log")"
done
