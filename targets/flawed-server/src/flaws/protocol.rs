//! Twins of the protocol seams: the errors answered for requests the server cannot serve
//! (`Guards::protocol`) and where a tool call is logged (`Guards::call_log`).

use super::{Flaw, Transport::Stdio};
use reference_server::guards::{CallLog, JsonRpcErrors, ProtocolErrors};
use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use std::sync::Arc;

/// -32603 for everything, as a catch-all exception handler would answer.
struct InternalErrorForEverything;

impl ProtocolErrors for InternalErrorForEverything {
    fn name(&self) -> &'static str {
        "wrong-error-codes"
    }
    fn unknown_method(&self, method: &str) -> ErrorData {
        ErrorData::new(
            ErrorCode::INTERNAL_ERROR,
            format!("cannot handle {method}"),
            None,
        )
    }
    fn malformed_params(&self, method: &str) -> ErrorData {
        self.unknown_method(method)
    }
    fn unknown_tool(&self, _tool: &str) -> ErrorData {
        ErrorData::new(ErrorCode::INTERNAL_ERROR, "tool failed", None)
    }
    fn resource_not_found(&self) -> ErrorCode {
        JsonRpcErrors.resource_not_found()
    }
}

pub const WRONG_ERROR_CODES: Flaw = Flaw {
    name: "wrong-error-codes",
    summary: "Unknown methods and malformed requests get -32603 instead of -32601/-32602.",
    caught: &[(Stdio, "PROTO-UNKNOWN-METHOD")],
    swaps: &["protocol"],
    harness_args: &[],
    tools: Some(|guards, _| guards.protocol = Arc::new(InternalErrorForEverything)),
    http: None,
};

/// The reference's protocol errors, but "resource not found" is -32603 (internal error), as a
/// catch-all exception handler answers a missing file.
struct InternalErrorForMissingResources;

impl ProtocolErrors for InternalErrorForMissingResources {
    fn name(&self) -> &'static str {
        "resource-missing-internal"
    }
    fn unknown_method(&self, method: &str) -> ErrorData {
        JsonRpcErrors.unknown_method(method)
    }
    fn malformed_params(&self, method: &str) -> ErrorData {
        JsonRpcErrors.malformed_params(method)
    }
    fn unknown_tool(&self, tool: &str) -> ErrorData {
        JsonRpcErrors.unknown_tool(tool)
    }
    fn resource_not_found(&self) -> ErrorCode {
        ErrorCode::INTERNAL_ERROR
    }
}

pub const RESOURCE_MISSING_INTERNAL: Flaw = Flaw {
    name: "resource-missing-internal",
    summary: "A resource that does not exist gets -32603 (internal error) instead of -32002 (-32602 for 2026-07-28 clients).",
    caught: &[(Stdio, "PROTO-RESOURCE-NOT-FOUND")],
    swaps: &["protocol"],
    harness_args: &[],
    tools: Some(|guards, _| guards.protocol = Arc::new(InternalErrorForMissingResources)),
    http: None,
};

/// A call log on stdout, as a stray `print` or a chatty library would write.
struct StdoutCallLog;

impl CallLog for StdoutCallLog {
    fn name(&self) -> &'static str {
        "stdout-noise"
    }
    fn called(&self, tool: &str) {
        println!("[flawed-server] handling {tool}");
    }
}

pub const STDOUT_NOISE: Flaw = Flaw {
    name: "stdout-noise",
    summary: "Every tool call prints a line to stdout.",
    caught: &[(Stdio, "PROTO-STDOUT-HYGIENE")],
    swaps: &["call_log"],
    harness_args: &[],
    tools: Some(|guards, _| guards.call_log = Arc::new(StdoutCallLog)),
    http: None,
};
