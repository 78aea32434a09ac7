"""A legacy HTTP+SSE MCP server (protocol 2024-11-05), written without an SDK, for the harness's
tests of its legacy SSE verdicts: `GET /sse` opens a stream whose first event names
`/messages?session_id=ID`; each message POSTed there is answered 202 and its response sent on
that session's stream. One tool, `echo(text)`. Requests need `Authorization: Bearer TOKEN`;
Host and Origin must be loopback. Prints `listening on URL` (the stream's URL) on stderr.

Usage: python fake_sse_server.py MODE TOKEN

Modes:
  careful           behaves
  session-unchecked a message for a session that was never opened is accepted and answered on
                    the newest stream (one queue for everyone, the session id only a label)
  auth-stream-only  checks the credential when the stream opens, not on the messages: anyone
                    holding a session id may send (the session id taken for a credential)
  any-token         opens the stream for any bearer token, right or wrong
  no-endpoint       opens the stream and never names an endpoint
  foreign-endpoint  names an endpoint on another origin (localhost for 127.0.0.1)
  huge-event        answers tools/call with a 6 MB event (over the harness's 4 MiB cap)
  answers-in-post   answers each message in the POST's own body (200), nothing on the stream
"""

import json
import queue
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MODE = sys.argv[1]
TOKEN = sys.argv[2]
sessions = {}
newest = {"id": None}
lock = threading.Lock()

TOOL = {
    "name": "echo",
    "description": "Echo text back",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def answer(message):
    method = message.get("method")
    ident = message.get("id")
    if ident is None:
        return None
    if method == "initialize":
        result = {"protocolVersion": "2024-11-05", "capabilities": {"tools": {}}, "serverInfo": {"name": "fake-sse-" + MODE, "version": "0"}}
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": [TOOL]}
    elif method == "tools/call" and (message.get("params") or {}).get("name") != "echo":
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32602, "message": "Unknown tool"}}
    elif method == "tools/call":
        text = str((message.get("params") or {}).get("arguments", {}).get("text", ""))
        if MODE == "huge-event":
            text = "x" * (6 * 1024 * 1024)
        result = {"content": [{"type": "text", "text": "echo: " + text[:200] if MODE != "huge-event" else text}]}
    else:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "Method not found"}}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refused(self):
        host = self.headers.get("host", "")
        origin = self.headers.get("origin")
        if not host.startswith("127.0.0.1:"):
            self.reply(421, b"Invalid Host")
            return True
        if origin is not None and not origin.startswith("http://127.0.0.1:"):
            self.reply(403, b"Invalid Origin")
            return True
        return False

    def authorized(self):
        given = self.headers.get("authorization") or ""
        if given == "Bearer " + TOKEN or (MODE == "any-token" and given.startswith("Bearer ")):
            return True
        self.send_response(401)
        self.send_header("www-authenticate", "Bearer")
        self.send_header("content-length", "0")
        self.end_headers()
        return False

    def do_GET(self):
        if urlparse(self.path).path != "/sse":
            return self.reply(404)
        if self.refused() or not self.authorized():
            return
        session = secrets.token_hex(16)
        inbox = queue.Queue(maxsize=1000)
        with lock:
            sessions[session] = inbox
            newest["id"] = session
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        port = self.server.server_address[1]
        endpoint = f"/messages?session_id={session}"
        if MODE == "foreign-endpoint":
            endpoint = f"http://localhost:{port}{endpoint}"
        try:
            if MODE != "no-endpoint":
                self.wfile.write(f"event: endpoint\ndata: {endpoint}\n\n".encode())
            self.wfile.flush()
            while True:
                try:
                    message = inbox.get(timeout=15)
                except queue.Empty:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                self.wfile.write(f"event: message\ndata: {json.dumps(message)}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with lock:
                sessions.pop(session, None)

    def do_POST(self):
        url = urlparse(self.path)
        if url.path != "/messages":
            return self.reply(405)
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(min(length, 1 << 20))
        if self.refused():
            return
        if MODE != "auth-stream-only" and not self.authorized():
            return
        session = (parse_qs(url.query).get("session_id") or [""])[0]
        with lock:
            inbox = sessions.get(session)
            if inbox is None and MODE == "session-unchecked":
                inbox = sessions.get(newest["id"])
        if inbox is None:
            return self.reply(404, b"Could not find session")
        try:
            message = json.loads(body)
        except ValueError:
            return self.reply(400, b"Parse error")
        response = answer(message) if isinstance(message, dict) else None
        if MODE == "answers-in-post":
            return self.reply(200 if response else 202, json.dumps(response).encode() if response else b"Accepted")
        self.reply(202, b"Accepted")
        if response is not None:
            try:
                inbox.put_nowait(response)
            except queue.Full:
                pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"listening on http://127.0.0.1:{server.server_address[1]}/sse", file=sys.stderr, flush=True)
server.serve_forever()
