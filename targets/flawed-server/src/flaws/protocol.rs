//! Twins of the protocol seams: the errors answered for requests the server cannot serve
//! (`Guards::protocol`) and where a tool call is logged (`Guards::call_log`).

use super::{Flaw, Transport::Stdio};
use reference_server::guards::{CallLog, ProtocolErrors};
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
