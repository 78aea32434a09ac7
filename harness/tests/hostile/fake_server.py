"""A hostile MCP server for the harness's robustness tests. One tool, `echo(text)`.

Modes:
  silent    never writes anything
  flood     answers correctly, while a thread floods stdout with junk lines without end
  hugeline  sends one 100 MB line before its answer to tools/list, then behaves
  crash     exits on the first tools/call (every time it is restarted)
  plain     behaves, as a naive Python server does: reads whole lines, and json.loads without
            catching RecursionError (deeply nested input kills it)
"""

import json
import sys
import threading
import time

MODE = sys.argv[1]
lock = threading.Lock()


def send(message):
    with lock:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def flood():
    junk = "junk " * 40 + "\n"
    while True:
        with lock:
            sys.stdout.write(junk * 100)
        sys.stdout.flush()


TOOL = {"name": "echo", "description": "Echo text back", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}

if MODE == "silent":
    time.sleep(3600)
    sys.exit(0)
if MODE == "flood":
    threading.Thread(target=flood, daemon=True).start()

for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if not isinstance(message, dict) or "id" not in message:
        continue
    method, ident = message.get("method"), message["id"]
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": ident, "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "hostile-" + MODE, "version": "0"}}})
    elif method == "tools/list":
        if MODE == "hugeline":
            chunk = "x" * (1 << 20)
            with lock:
                for _ in range(100):
                    sys.stdout.write(chunk)
                sys.stdout.write("\n")
                sys.stdout.flush()
        send({"jsonrpc": "2.0", "id": ident, "result": {"tools": [TOOL]}})
    elif method == "tools/call":
        if MODE == "crash":
            sys.exit(3)
        text = str(message.get("params", {}).get("arguments", {}).get("text", ""))
        send({"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": text[:200]}]}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": ident, "result": {}})
    else:
        send({"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "Method not found"}})
