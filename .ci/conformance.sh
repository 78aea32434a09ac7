#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios against the reference server over
# Streamable HTTP. The suite sends no credentials, so the server runs in its explicit
# development mode (refused off loopback, warns at start) on an ephemeral loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.1.13   # the newest release that runs on Node 20
SCENARIOS=(server-initialize ping tools-list dns-rebinding-protection)

work=$(mktemp -d)
cleanup() { [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

(cd "$work" && npm install --no-audit --no-fund --silent "@modelcontextprotocol/conformance@$VERSION" >/dev/null)
mkdir -p "$work/root"
echo "conformance" > "$work/root/hello.txt"
# The suite's scenarios run back to back as one principal: give it room under the limiter.
printf '[rate_limit]\nburst = 500\nper_second = 100.0\n' > "$work/server.toml"

binary=target/debug/mcp-reference-server
[[ -x $binary ]] || cargo build -q -p reference-server
RUST_LOG=warn "$binary" --http 127.0.0.1:0 --root "$work/root" --config "$work/server.toml" --insecure-dev-no-auth 2> "$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^listening on //p' "$work/server.log" | head -n 1)
  [[ -n $url ]] && break
  sleep 0.1
done
[[ -n $url ]] || { echo "the server did not start:"; cat "$work/server.log"; exit 1; }

failed=0
for scenario in "${SCENARIOS[@]}"; do
  if "$work/node_modules/.bin/conformance" server --url "$url" --scenario "$scenario" > "$work/$scenario.log" 2>&1; then
    echo "conformance $scenario: passed"
  else
    echo "conformance $scenario: FAILED"
    cat "$work/$scenario.log"
    failed=1
  fi
done
exit $failed
