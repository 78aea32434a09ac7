"""A FastMCP server written the way most Python MCP servers are: tools take pydantic models.

Its tools publish what FastMCP derives from the models: `$defs` and `$ref`, nested objects,
an array of objects with a minimum length, constrained strings (`minLength`, `maxLength`,
`pattern`), an enum (a `Literal`), optional fields (`anyOf` with null). Every input the harness
must reach sits inside a model.

Usage: python models_server.py MODE ROOT [--http | --sse], with MODE:
  vulnerable  each sink has a real mistake:
              read_document  checks containment with a string prefix on the normalized path
                             (`/data` admits `/data_evil`), the seed's mistake;
              search_items   pastes filter.category into the SQL text;
              run_checks     runs `echo` through a shell with jobs[].target interpolated.
  fixed       the same tools, the same schemas, each sink done right: realpath plus
              commonpath, bound SQL parameters, an argv list without a shell.
With --http it serves Streamable HTTP (the SDK's own transport, its defaults) on an ephemeral
loopback port (uvicorn says `Uvicorn running on http://127.0.0.1:PORT` on stderr once it
listens; the endpoint is `/mcp`); with --sse, the legacy HTTP+SSE transport of protocol
2024-11-05 the same way (the stream is `/sse`), and in vulnerable mode without the SDK's DNS
rebinding protection (its Host and Origin checks); otherwise stdio.
"""

import os
import sqlite3
import subprocess
import sys
from typing import Literal, Optional

from pydantic import BaseModel, Field

try:
    from mcp.server.fastmcp import FastMCP
except ModuleNotFoundError:  # mcp 2.x renamed FastMCP to MCPServer
    from mcp.server.mcpserver import MCPServer as FastMCP

MODE = sys.argv[1]
ROOT = os.path.abspath(sys.argv[2])
VULNERABLE = MODE == "vulnerable"
if MODE not in ("vulnerable", "fixed"):
    sys.exit(f"unknown mode {MODE!r}")

mcp = FastMCP("models-" + MODE)

database = sqlite3.connect(":memory:", check_same_thread=False)
database.executescript(
    """
    CREATE TABLE items (name TEXT, category TEXT, title TEXT);
    INSERT INTO items VALUES ('alpha', 'tools', 'Alpha'), ('beta', 'books', 'Beta');
    """
)


class DocumentRequest(BaseModel):
    path: str = Field(min_length=1, max_length=4096, description="Document to read, inside the workspace")
    encoding: Literal["utf-8", "latin-1"] = "utf-8"


class SearchFilter(BaseModel):
    category: str = Field(max_length=200, description="Only items in this category")
    title: Optional[str] = Field(None, description="Text the title must contain")
    limit: int = Field(10, ge=1, le=50)


class Job(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{2,30}$", description="A short job name")
    target: str = Field(min_length=1, max_length=300, description="The host the job checks")
    retries: int = Field(0, ge=0, le=3)


def inside_root(path: str) -> str:
    full = os.path.abspath(os.path.join(ROOT, path))
    if VULNERABLE:
        if not full.startswith(ROOT):
            raise ValueError("Path traversal detected")
        return full
    real = os.path.realpath(full)
    if os.path.commonpath([real, os.path.realpath(ROOT)]) != os.path.realpath(ROOT):
        raise ValueError("the path leads outside the workspace")
    return real


@mcp.tool()
def read_document(request: DocumentRequest) -> str:
    """Read a text document from the workspace."""
    with open(inside_root(request.path), encoding=request.encoding) as document:
        return document.read(100_000)


@mcp.tool()
def search_items(filter: SearchFilter) -> list[dict]:
    """Search the item catalogue by category (and optionally by title)."""
    if VULNERABLE:
        sql = f"SELECT name, category FROM items WHERE category = '{filter.category}' LIMIT {filter.limit}"
        rows = database.execute(sql).fetchall()
    else:
        rows = database.execute(
            "SELECT name, category FROM items WHERE category = ? LIMIT ?",
            (filter.category, filter.limit),
        ).fetchall()
    return [{"name": name, "category": category} for name, category in rows]


@mcp.tool()
def run_checks(jobs: list[Job] = Field(min_length=1, max_length=5)) -> list[str]:
    """Run connectivity checks, one job per host."""
    results = []
    for job in jobs:
        if VULNERABLE:
            done = subprocess.run(f"echo checking {job.target}", shell=True, capture_output=True, text=True, timeout=5)
        else:
            done = subprocess.run(["echo", "checking", job.target], capture_output=True, text=True, timeout=5)
        results.append(f"{job.name}: {done.stdout.strip()}")
    return results


if __name__ == "__main__":
    over_http = "--http" in sys.argv[3:]
    over_sse = "--sse" in sys.argv[3:]
    if over_http or over_sse:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        mcp.settings.host = "127.0.0.1"
        mcp.settings.port = port
        if over_sse and VULNERABLE:
            from mcp.server.transport_security import TransportSecuritySettings

            mcp.settings.transport_security = TransportSecuritySettings(
                enable_dns_rebinding_protection=False
            )
        mcp.run(transport="sse" if over_sse else "streamable-http")
    else:
        mcp.run()
