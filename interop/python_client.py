"""A client in another language: the official Python MCP SDK talks to the reference server.

Lists the tools and calls two of them over stdio, reads a resource by the URI the server
lists, gets the prompt and a completion (and sees a resource URI outside the sandbox
refused), then does the same over Streamable HTTP with an API key, and checks that a request
without the key is refused. Exits non-zero on any
mismatch. Usage: python_client.py PATH_TO_mcp-reference-server
"""

import asyncio
import os
import subprocess
import sys
import tempfile

import httpx2
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

TOKEN = "python-interop-token-0123456789"
EXPECTED_TOOLS = {"read_file", "list_directory", "write_file", "delete_file", "fetch_url",
                  "query_records", "process_data", "admin_stats", "file_history",
                  "create_directory", "file_info"}


def text_of(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def exercise(session: ClientSession, transport: str) -> None:
    await session.initialize()
    tools = {tool.name for tool in (await session.list_tools()).tools}
    assert tools == EXPECTED_TOOLS, f"{transport}: tools {sorted(tools)}"
    read = await session.call_tool("read_file", {"path": "hello.txt"})
    assert not read.is_error and text_of(read) == "hello from python", f"{transport}: {read}"
    escape = await session.call_tool("read_file", {"path": "../outside.txt"})
    assert escape.is_error, f"{transport}: traversal was not refused: {escape}"
    rows = await session.call_tool("query_records", {"name_contains": "budget"})
    assert "epsilon budget" in text_of(rows), f"{transport}: {rows}"
    resources = (await session.list_resources()).resources
    hello = next(r for r in resources if r.name == "hello.txt")
    assert str(hello.uri).startswith("file:///"), f"{transport}: {hello}"
    contents = (await session.read_resource(hello.uri)).contents
    assert contents[0].text == "hello from python", f"{transport}: {contents}"
    outside = str(hello.uri).rsplit("/", 1)[0] + "/../outside.txt"
    try:
        await session.read_resource(outside)
        raise AssertionError(f"{transport}: {outside} was read")
    except MCPError as refused:
        assert refused.error.code in (-32002, -32602), f"{transport}: {refused.error}"
    prompt = await session.get_prompt("review_file", {"path": "hello.txt"})
    assert "hello from python" in prompt.messages[0].content.text, f"{transport}: {prompt}"
    completion = await session.complete(PromptReference(type="ref/prompt", name="review_file"),
                                        {"name": "path", "value": "hel"})
    assert completion.completion.values == ["hello.txt"], f"{transport}: {completion}"
    print(f"{transport}: {len(tools)} tools listed, read_file and query_records work, traversal refused; "
          f"{len(resources)} resources, one read by its URI, one outside refused; the prompt and a completion work")


async def over_stdio(binary: str, root: str) -> None:
    params = StdioServerParameters(command=binary, args=["--stdio", "--root", root],
                                   env={"RUST_LOG": "warn", "PATH": os.environ.get("PATH", "")})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await exercise(session, "stdio")


async def over_http(binary: str, root: str) -> None:
    env = dict(os.environ, MCP_SERVER_TOKEN=TOKEN, RUST_LOG="warn")
    server = subprocess.Popen([binary, "--http", "127.0.0.1:0", "--root", root],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in server.stderr:
            if line.startswith("listening on "):
                url = line.split(" ", 2)[2].strip()
                break
        assert url, "the HTTP server did not start"
        async with httpx2.AsyncClient() as plain:
            refused = await plain.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                       headers={"Accept": "application/json, text/event-stream"})
            assert refused.status_code == 401, f"unauthenticated request got {refused.status_code}"
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
        async with client:
            async with streamable_http_client(url, http_client=client) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await exercise(session, "http")
    finally:
        server.terminate()
        server.wait(timeout=10)


async def main() -> None:
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tree:
        root = os.path.join(tree, "root")
        os.mkdir(root)
        with open(os.path.join(root, "hello.txt"), "w") as handle:
            handle.write("hello from python")
        with open(os.path.join(tree, "outside.txt"), "w") as handle:
            handle.write("CANARY")
        await asyncio.wait_for(over_stdio(binary, root), timeout=60)
        await asyncio.wait_for(over_http(binary, root), timeout=60)


if __name__ == "__main__":
    asyncio.run(main())
