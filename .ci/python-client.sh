#!/usr/bin/env bash
# The official Python MCP SDK as a client of the reference server, over stdio and HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
MCP_SDK_VERSION=2.3.0

venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_SDK_VERSION"

binary=target/debug/mcp-reference-server
[[ -x $binary ]] || cargo build -q -p reference-server
"$venv/bin/python" interop/python_client.py "$binary"
