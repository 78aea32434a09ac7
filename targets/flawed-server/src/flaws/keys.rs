//! The seed's API key check in a tool argument: an extra tool, `private_status`, compares its
//! `api_key` argument byte by byte and stops at the first wrong byte. The reference has no such
//! tool (keys are checked by the transport, in constant time); the twin adds it, routed like
//! every other tool.

use super::{Flaw, Transport::Stdio};
use reference_server::guards::ExtraTool;
use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::json;
use std::sync::Arc;

/// The key `private_status` expects (the kill matrix passes it with `--argument-key`).
pub const ARGUMENT_KEY: &str = "flawed-argument-key-0123456789abcdef";
/// What the comparison spends on each matching byte, so the leak shows through a stdio pipe
/// even when the reference rate limit leaves only a few hundred pairs to time (4 us a byte:
/// about 140 us between a first- and a last-byte miss; at 1 us the kill matrix row was
/// inconclusive on one CI run in three).
const ARGUMENT_KEY_BYTE_COST: std::time::Duration = std::time::Duration::from_micros(4);

/// A tool with one required string argument.
pub fn one_argument_tool(
    name: &'static str,
    description: &'static str,
    argument: &str,
    argument_description: &str,
) -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {argument: {"type": "string", "description": argument_description}},
        "required": [argument],
    });
    let serde_json::Value::Object(schema) = schema else {
        unreachable!("a JSON object literal")
    };
    Tool::new(name, description, schema)
}

pub fn text(result: &str) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(result.to_owned())])
}

fn error(result: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(result.to_owned())])
}

fn private_status() -> ExtraTool {
    ExtraTool {
        tool: one_argument_tool(
            "private_status",
            "Reports private status; needs an API key.",
            "api_key",
            "Your API key",
        ),
        call: Arc::new(|arguments| {
            let presented = arguments
                .as_ref()
                .and_then(|a| a.get("api_key")?.as_str())
                .unwrap_or_default()
                .to_owned();
            Box::pin(async move {
                // The seed: verify_api_key(api_key) with a comparison that stops at the
                // first difference.
                if super::early_exit_equal_costing(
                    presented.as_bytes(),
                    ARGUMENT_KEY.as_bytes(),
                    ARGUMENT_KEY_BYTE_COST,
                ) {
                    text("status: private and fine")
                } else {
                    error("Invalid API key")
                }
            })
        }),
    }
}

pub const KEY_ARGUMENT_EARLY_EXIT: Flaw = Flaw {
    name: "key-argument-early-exit",
    summary: "The seed's API key check: an extra tool, `private_status`, takes the key as an `api_key` argument and compares it byte by byte, stopping at the first wrong byte.",
    caught: &[(Stdio, "TIME-CREDENTIAL-COMPARE")],
    swaps: &["extra_tools"],
    harness_args: &["--argument-key", ARGUMENT_KEY],
    tools: Some(|guards, _| guards.extra_tools.push(private_status())),
    http: None,
};
