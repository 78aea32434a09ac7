#!/usr/bin/env bash
# Runs ci/certify.sh, the script of the GitHub Action and the GitLab template, as they run it,
# against the bundled reference server (must certify) and a flawed twin (must not), and checks
# the outputs a CI system reads: the exit status, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, and
# SARIF, JUnit, Markdown and JSON reports that parse.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p mcp-harness -p flawed-server
harness="$PWD/target/debug/mcp-harness"
flawed="$PWD/target/debug/flawed-server"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check() { # name expected-status expected-summary-text
    local dir="$work/$1" status
    python3 - "$dir" "$2" "$3" <<'PY'
import json, sys, pathlib, xml.etree.ElementTree as ET
dir, want, text = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
out = dir / "reports"
assert (dir / "output").read_text().strip() == f"status={want}", (dir / "output").read_text()
summary = (dir / "summary").read_text()
assert text in summary, summary
for sarif in out.glob("*.sarif"):
    document = json.loads(sarif.read_text())
    assert document["version"] == "2.1.0"
    failures = [r for r in document["runs"][0]["results"] if r["kind"] == "fail"]
    assert (len(failures) > 0) == (want == "1"), (sarif, len(failures))
    for result in failures:
        assert result["partialFingerprints"]["mcpHarnessFinding/v1"]
for junit in out.glob("*.junit.xml"):
    ET.parse(junit)
for report in out.glob("*.json"):
    json.loads(report.read_text())
for page in out.glob("*.html"):
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text, page
assert all(list(out.glob(p)) for p in ["*.md", "*.sarif", "*.junit.xml", "*.html", "*.json"])
print(f"{dir.name}: status {want}, reports {sorted(p.name for p in out.iterdir())}")
PY
}

run() { # name [project file text]
    local dir="$work/$1"
    mkdir -p "$dir"
    : > "$dir/summary"; : > "$dir/output"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" > "$dir/mcp-harness.toml"; fi
    (cd "$dir" && MCP_HARNESS="$harness" MCP_HARNESS_OUTPUT_DIR=reports \
        GITHUB_STEP_SUMMARY="$dir/summary" GITHUB_OUTPUT="$dir/output" \
        MCP_HARNESS_ARGS="${3:-}" bash "$OLDPWD/ci/certify.sh" > "$dir/stdout" 2> "$dir/stderr") || true
}

run reference "" "--only TRAV --only PROTO"
check reference 0 "mcp-harness: CERTIFIED"
run twin "only = [\"TRAV-PREFIX\"]
[[target]]
name = \"files\"
stdio = \"$flawed --flaw path-prefix --stdio --root {sandbox}\""
check twin 1 "NOT CERTIFIED"
echo "action script checked"
