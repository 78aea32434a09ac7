"""A Streamable HTTP MCP server for the harness's tests of HTTP verdicts: one tool, `echo(text)`,
sessions as the 2025-11-25 transport has them (`Mcp-Session-Id` from `initialize`, `DELETE`
ends one, an unknown id gets 404). No authentication. Prints `listening on URL` on stderr.

Usage: python fake_http_server.py MODE

Modes:
  plain                 behaves
  broken-after-unknown  answers a method that is not MCP's with -32601, then HTTP 500 to every
                        later request, new sessions included (one bad request kills the
                        service); MCP methods it lacks (resources/list...) are only refused
  broken-after-delete   after a session is deleted, HTTP 500 to every later request
  deleted-served        DELETE answers 200 but the session goes on being served
  delete-405            DELETE answers 405 (the server does not end sessions, which the spec
                        allows) and the session goes on: a fixed counterpart of deleted-served
  unknown-session-500   an unknown or malformed session id gets HTTP 500 instead of 404
  forgets-sessions      forgets every session every 25 requests (a restarted server): a
                        client must open a new one on the 404
  slash-redirect        POST /mcp answers 307 to /mcp/ (an SDK did this for a year), which
                        then behaves
  sessions-expire       from its 40th request on, every session it hands out is forgotten at
                        once: initialize works, the next request on the session gets 404 (a
                        server whose session store broke); nothing after that may pass
  foreign-redirect      POST /mcp answers 307 to the same path on another origin
                        (localhost instead of 127.0.0.1): the harness must refuse to follow
  echo-errors           every tool error repeats the arguments it was given, long values cut
                        in the middle with "..." as pydantic quotes input (so an SSRF payload
                        `http://example.com:443@127.0.0.1:...` comes back altered)
  leaks-secret          every tool error carries the caller's Authorization header
"""

import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = sys.argv[1]
state = {"broken": False, "sessions": set(), "deleted": set(), "requests": 0}
lock = threading.Lock()

TOOL = {
    "name": "echo",
    "description": "Echo text back",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}
FETCH = {
    "name": "fetch",
    "description": "Fetch a URL (this server fetches nothing: every URL is refused)",
    "inputSchema": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
}


def quoted(value):
    """A value as a validation error quotes it: long ones cut in the middle."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:24] + "..." + text[-12:]
ENDPOINT = "/mcp/" if MODE == "slash-redirect" else "/mcp"
MCP_FAMILIES = ("resources", "prompts", "completion", "logging", "roots", "sampling", "elicitation", "server", "tasks")


def result(ident, value):
    return {"jsonrpc": "2.0", "id": ident, "result": value}


def error(ident, code, message):
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("content-type", "application/json")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail_hard(self):
        data = b"<html><body>500 Internal Server Error</body></html>"
        self.send_response(500)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def session_ok(self):
        """None when the request's session may be served, else the status to answer."""
        session = self.headers.get("mcp-session-id")
        with lock:
            known = session in state["sessions"]
            deleted = session in state["deleted"]
        if known or (deleted and MODE == "deleted-served"):
            return None
        if MODE == "unknown-session-500":
            return 500
        return 404 if session else 400

    def do_DELETE(self):
        if self.path != ENDPOINT:
            return self.reply(404)
        if MODE == "delete-405":
            return self.reply(405, headers=[("allow", "GET, POST")])
        session = self.headers.get("mcp-session-id")
        with lock:
            if session not in state["sessions"]:
                return self.reply(404)
            state["sessions"].discard(session)
            state["deleted"].add(session)
            if MODE == "broken-after-delete":
                state["broken"] = True
        self.reply(200)

    def foreign(self):
        """A foreign Origin or Host (DNS rebinding): refused with 403, as the spec asks."""
        origin = self.headers.get("origin")
        host = (self.headers.get("host") or "").split(":")[0]
        return (origin is not None and not origin.startswith("http://127.0.0.1")) or host not in ("127.0.0.1", "localhost")

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.foreign():
            return self.reply(403)
        with lock:
            state["requests"] += 1
            if MODE == "forgets-sessions" and state["requests"] % 25 == 0:
                state["sessions"].clear()
            if MODE == "sessions-expire" and state["requests"] > 40:
                state["sessions"].clear()
        if MODE == "slash-redirect" and self.path == "/mcp":
            return self.reply(307, headers=[("location", "/mcp/")])
        if MODE == "foreign-redirect":
            port = self.server.server_address[1]
            return self.reply(307, headers=[("location", f"http://localhost:{port}/mcp")])
        if self.path != ENDPOINT:
            return self.reply(404)
        with lock:
            broken = state["broken"]
        if broken:
            return self.fail_hard()
        try:
            message = json.loads(body)
        except ValueError:
            return self.reply(400, error(None, -32700, "Parse error"))
        if not isinstance(message, dict):
            return self.reply(400, error(None, -32600, "Invalid Request"))
        method, ident = message.get("method"), message.get("id")
        if method == "initialize":
            session = secrets.token_hex(16)
            with lock:
                if not (MODE == "sessions-expire" and state["requests"] > 40):
                    state["sessions"].add(session)
            info = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "fake-http-" + MODE, "version": "0"}}
            return self.reply(200, result(ident, info), headers=[("mcp-session-id", session)])
        refusal = self.session_ok()
        if refusal is not None:
            return self.reply(refusal, error(ident, -32001, "Session not found") if refusal == 404 else None)
        if "id" not in message:
            return self.reply(202)
        if method == "ping":
            return self.reply(200, result(ident, {}))
        if method == "tools/list":
            return self.reply(200, result(ident, {"tools": [TOOL, FETCH]}))
        if method == "tools/call":
            params = message.get("params") or {}
            arguments = params.get("arguments") or {}
            text = arguments.get("text")
            if "name" not in params:
                return self.reply(200, error(ident, -32602, "Invalid params: no tool name"))
            if params.get("name") == "fetch":
                detail = "Input should be a valid URL"
                if MODE == "echo-errors":
                    detail += f" [type=url_parsing, input_value='{quoted(arguments.get('url'))}']"
                if MODE == "leaks-secret":
                    detail += " (caller " + self.headers.get("authorization", "") + ")"
                return self.reply(200, result(ident, {"isError": True, "content": [{"type": "text", "text": detail}]}))
            if params.get("name") != "echo" or not isinstance(text, str):
                detail = "invalid arguments"
                if MODE == "echo-errors":
                    detail += ": " + ", ".join(f"{k}={quoted(v)}" for k, v in arguments.items())
                if MODE == "leaks-secret":
                    detail += " (caller " + self.headers.get("authorization", "") + ")"
                return self.reply(200, result(ident, {"isError": True, "content": [{"type": "text", "text": detail}]}))
            if MODE in ("echo-errors", "leaks-secret") and not text.isalnum():
                detail = "unsupported characters"
                if MODE == "echo-errors":
                    detail += f" in input_value='{quoted(text)}'"
                else:
                    detail += " (caller " + self.headers.get("authorization", "") + ")"
                return self.reply(200, result(ident, {"isError": True, "content": [{"type": "text", "text": detail}]}))
            return self.reply(200, result(ident, {"content": [{"type": "text", "text": text[:200]}]}))
        if MODE == "broken-after-unknown" and not method.split("/")[0] in MCP_FAMILIES:
            with lock:
                state["broken"] = True
        return self.reply(200, error(ident, -32601, "Method not found"))


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_address[1]}/mcp", file=sys.stderr, flush=True)
server.serve_forever()
