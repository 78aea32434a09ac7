"""Sends a stdio MCP server one tools/call per size, each followed by a ping, and says which
sizes were answered: the hand check behind the README's note that the fixed server-filesystem
answers a 10,000,000-byte line and wedges on a 10 MiB one (RES-ARGUMENT-SIZE's finding).

Usage: python3 line_ladder.py TOOL ARGUMENT SIZE... -- COMMAND...
  e.g. python3 line_ladder.py read_file path 4000000 10000000 10485760 -- \
       node .../server-filesystem/dist/index.js /tmp/sandbox
Each answer is waited for at most 10 s; the server is killed at the end.
"""

import json
import select
import subprocess
import sys
import time

split = sys.argv.index("--")
tool, argument, sizes, command = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:split]], sys.argv[split + 1:]
server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def send(message):
    server.stdin.write((json.dumps(message) + "\n").encode())
    server.stdin.flush()


def answered(within):
    ready, _, _ = select.select([server.stdout], [], [], within)
    return ready and bool(server.stdout.readline())


send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "line-ladder", "version": "0"}}})
answered(10)
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
try:
    for n, size in enumerate(sizes):
        started = time.monotonic()
        send({"jsonrpc": "2.0", "id": 2 * n + 1, "method": "tools/call", "params": {"name": tool, "arguments": {argument: "A" * size}}})
        call = answered(10)
        send({"jsonrpc": "2.0", "id": 2 * n + 2, "method": "ping"})
        ping = answered(10)
        print(f"{size} bytes: call {'answered' if call else 'no answer'}, ping {'answered' if ping else 'no answer'} "
              f"({time.monotonic() - started:.1f} s; process {'running' if server.poll() is None else 'exited'})")
except BrokenPipeError:
    print("the server closed its stdin (exited)")
finally:
    server.kill()
