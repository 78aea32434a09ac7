"""A hand-written MCP server over stdio for `mcp-harness fuzz`'s tests. One tool,
`save_note(note: {title, body}, tags?)`, whose arguments it validates by type as a typical
server does (missing or mistyped fields are -32602).

Modes (first argument):
  crash-on-empty  the planted bug: it takes the title's first letter for an index, so an
                  empty title raises IndexError, and the dispatcher answers every exception
                  with -32603 "Internal error"
  checked         the fix: an empty title is a tool error (isError: true)
  reject-all      every tools/call is refused -32602: no input reaches the tool
"""
import json
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "checked"
TOOL = {
    "name": "save_note",
    "description": "Save a note",
    "inputSchema": {
        "type": "object",
        "properties": {
            "note": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "body": {"type": "string"}},
                "required": ["title", "body"],
            },
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["note"],
    },
}


class InvalidParams(Exception):
    pass


def save_note(arguments):
    if not isinstance(arguments, dict) or not isinstance(arguments.get("note"), dict):
        raise InvalidParams("note must be an object")
    note = arguments["note"]
    if not isinstance(note.get("title"), str) or not isinstance(note.get("body"), str):
        raise InvalidParams("note.title and note.body must be strings")
    tags = arguments.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidParams("tags must be strings")
    if MODE == "checked" and note["title"] == "":
        return {"isError": True, "content": [{"type": "text", "text": "a note needs a title"}]}
    initial = note["title"][0]  # IndexError on an empty title in crash-on-empty mode
    return {"content": [{"type": "text", "text": "saved under " + initial.upper()}]}


def answer(message):
    method, ident = message.get("method"), message.get("id")
    if ident is None:
        return None
    try:
        if method == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "notes", "version": MODE}}
        elif method == "ping":
            result = {}
        elif method == "tools/list":
            result = {"tools": [TOOL]}
        elif method == "tools/call":
            params = message.get("params") or {}
            if MODE == "reject-all" or params.get("name") != "save_note":
                raise InvalidParams("no such tool")
            result = save_note(params.get("arguments"))
        else:
            return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": "Method not found"}}
        return {"jsonrpc": "2.0", "id": ident, "result": result}
    except InvalidParams as error:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32602, "message": str(error)}}
    except Exception:
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32603, "message": "Internal error"}}


for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    reply = answer(message) if isinstance(message, dict) else None
    if reply is not None:
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
