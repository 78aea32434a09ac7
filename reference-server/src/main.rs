//! `mcp-reference-server`: the reference secure MCP server, over stdio or Streamable HTTP.
//! Everything lives in [`reference_server::cli`]; see the README for the flags.

fn main() -> std::process::ExitCode {
    reference_server::cli::run(std::env::args_os())
}
