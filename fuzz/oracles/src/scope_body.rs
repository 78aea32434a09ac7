//! The HTTP scope check's reading of a request body
//! ([`reference_server::transport::http::called_tools`]): which tools does this body call? The
//! input is the body, as it arrives.
//!
//! Oracles: (1) for every body that is JSON, the check names exactly the tools an independent
//! reading names: the body as a whole `serde_json::Value`, every message (alone or in a batch)
//! whose `method` is the string `tools/call`, with a string `params.name`; (2) whenever rmcp
//! itself reads the body as a `tools/call` request (what the Streamable HTTP service would go
//! on to run), that tool is among the checked ones: a body cannot call a tool the scope check
//! did not see. A body that is not JSON (rmcp refuses it with 415) is held only to (2): the
//! check skips what it does not need without validating it (a number out of range in an
//! ignored field), so it may name a tool there, which only turns that 415 into a 403.

use reference_server::transport::http::called_tools;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};
use serde_json::Value;

/// The independent reading: the whole value, field by field; `None` when the body is not JSON.
fn whole_value_reading(body: &[u8]) -> Option<Vec<String>> {
    let value = serde_json::from_slice::<Value>(body).ok()?;
    let messages = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    Some(
        messages
            .iter()
            .filter(|m| m.get("method").and_then(Value::as_str) == Some("tools/call"))
            .filter_map(|m| Some(m.get("params")?.get("name")?.as_str()?.to_owned()))
            .collect(),
    )
}

pub fn check(data: &[u8]) {
    let checked = called_tools(data);
    if let Some(named) = whole_value_reading(data) {
        assert_eq!(
            checked, named,
            "the scope check read other tools than the whole value names"
        );
    }
    if let Ok(JsonRpcMessage::Request(request)) =
        serde_json::from_slice::<ClientJsonRpcMessage>(data)
        && let ClientRequest::CallToolRequest(call) = request.request
    {
        let name = call.params.name.to_string();
        assert!(
            checked.contains(&name),
            "rmcp would run {name:?}, which the scope check did not see (it saw {checked:?})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_alone_and_batched_pass_and_the_rmcp_reading_is_reached() {
        check(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_stats","arguments":{}}}"#);
        check(br#"[{"method":"tools/call","params":{"name":"a"}},{"method":"ping"}]"#);
        check(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}"#);
        check(b"not json");
    }
}
