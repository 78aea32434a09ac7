// A TypeScript SDK (McpServer) server for `mcp-harness fuzz`'s tests. One tool,
// `open_project({ repo: "owner/name", ref? })`, its arguments checked by a zod schema.
//
// Modes (first argument):
//   refine-throws  the planted bug: the refinement reads the name part of `repo` as
//                  repo.split("/")[1].length, which throws a TypeError for a repo with no
//                  slash; zod does not catch a throwing refinement, so the exception escapes
//                  the SDK's argument validation
//   refine-checked the fix: the refinement returns false for that, and the SDK answers the
//                  call as invalid arguments
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const mode = process.argv[2] ?? "refine-checked";
const nameIsShort = (repo) =>
  mode === "refine-throws"
    ? repo.split("/")[1].length <= 100
    : repo.includes("/") && repo.split("/")[1].length <= 100;

const server = new McpServer({ name: "projects", version: mode });
server.registerTool(
  "open_project",
  {
    description: "Open a project by its repository",
    inputSchema: {
      repo: z.string().refine(nameIsShort, { message: "repo is owner/name" }),
      ref: z.string().optional(),
    },
  },
  async ({ repo, ref }) => ({
    content: [{ type: "text", text: `opened ${repo.length} ${ref ?? "main"}` }],
  }),
);
await server.connect(new StdioServerTransport());
