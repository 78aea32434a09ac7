//! The server over stdio, driven by rmcp's client: every tool, every kind of bad input, the
//! rate limit, and stdout hygiene with raw bytes.

mod common;

use common::*;
use rmcp::ServiceError;
use rmcp::model::ErrorCode;
use serde_json::json;
use std::io::{BufRead, Write};

#[tokio::test]
async fn every_tool_works_over_stdio() {
    let stage = Stage::new();
    let client = stdio_client(&stage, &[], &[]).await;
    let tools: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for expected in [
        "read_file",
        "list_directory",
        "write_file",
        "delete_file",
        "create_directory",
        "file_info",
        "fetch_url",
        "query_records",
        "process_data",
        "admin_stats",
    ] {
        assert!(
            tools.contains(&expected.to_owned()),
            "{expected} missing from {tools:?}"
        );
    }

    let read = client
        .call_tool(call("read_file", json!({"path": "hello.txt"})))
        .await
        .unwrap();
    assert_eq!(text(&read), "hello from the sandbox");

    let listing = client
        .call_tool(call("list_directory", json!({"path": ".", "max_depth": 2})))
        .await
        .unwrap();
    assert!(text(&listing).contains("docs/readme.md"));

    let written = client
        .call_tool(call(
            "write_file",
            json!({"path": "docs/new.txt", "content": "new"}),
        ))
        .await
        .unwrap();
    assert_eq!(written.is_error, Some(false));
    assert_eq!(
        std::fs::read_to_string(stage.root().join("docs/new.txt")).unwrap(),
        "new"
    );
    client
        .call_tool(call("delete_file", json!({"path": "docs/new.txt"})))
        .await
        .unwrap();
    assert!(!stage.root().join("docs/new.txt").exists());

    let created = client
        .call_tool(call("create_directory", json!({"path": "docs/made"})))
        .await
        .unwrap();
    assert_eq!(created.is_error, Some(false));
    assert!(stage.root().join("docs/made").is_dir());
    let escaped = client
        .call_tool(call("create_directory", json!({"path": "../made"})))
        .await
        .unwrap();
    assert_eq!(escaped.is_error, Some(true));
    assert!(!stage.root().join("../made").exists());

    let info = client
        .call_tool(call("file_info", json!({"path": "hello.txt"})))
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&text(&info)).unwrap();
    assert_eq!(info["bytes"], "hello from the sandbox".len());
    assert!(
        !info.to_string().contains("hello from"),
        "a summary, never the content"
    );

    let rows = client
        .call_tool(call("query_records", json!({"name_contains": "report"})))
        .await
        .unwrap();
    assert!(text(&rows).contains("alpha report") && text(&rows).contains("beta report"));

    let upper = client
        .call_tool(call(
            "process_data",
            json!({"data": "abc", "operation": "uppercase"}),
        ))
        .await
        .unwrap();
    assert_eq!(text(&upper), "ABC");

    let stats = client
        .call_tool(call("admin_stats", json!({})))
        .await
        .unwrap();
    assert!(
        text(&stats).contains("\"read_file\": 1"),
        "{}",
        text(&stats)
    );

    let history = client
        .call_tool(call("file_history", json!({"path": "hello.txt"})))
        .await
        .unwrap();
    assert!(
        text(&history).contains("first commit"),
        "{}",
        text(&history)
    );

    // fetch_url: a loopback target is refused by policy (the default allowlist is example.com).
    let refused = client
        .call_tool(call("fetch_url", json!({"url": "http://127.0.0.1:9/"})))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_inputs_get_the_documented_errors() {
    let stage = Stage::new();
    let client = stdio_client(&stage, &[], &[]).await;
    let mut snapshot = Vec::new();
    let cases = [
        ("read_file", json!({"path": "../outside.txt"})),
        ("read_file", json!({"path": "/etc/passwd"})),
        ("read_file", json!({"path": "link-out"})),
        ("read_file", json!({"path": "../root_evil/secret.txt"})),
        ("read_file", json!({"path": "missing.txt"})),
        ("read_file", json!({"path": "docs"})),
        ("read_file", json!({"path": "hello.txt", "extra": 1})),
        ("read_file", json!({"path": 7})),
        ("list_directory", json!({"max_depth": 11})),
        ("query_records", json!({"name_contains": "x", "limit": 0})),
        ("process_data", json!({"data": "x", "operation": "rm -rf"})),
        (
            "fetch_url",
            json!({"url": "http://example.com:x@127.0.0.1/"}),
        ),
        ("fetch_url", json!({"url": "file:///etc/passwd"})),
    ];
    for (tool, arguments) in cases {
        let result = client
            .call_tool(call(tool, arguments.clone()))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true), "{tool} {arguments}");
        let message = text(&result);
        assert!(!message.contains(CANARY), "{message}");
        assert!(
            !message.contains(stage.dir.path().to_str().unwrap()),
            "the message names a server path: {message}"
        );
        snapshot.push(format!("{tool} {arguments} -> {}", stable(&message)));
    }
    insta::assert_snapshot!("stdio_bad_inputs", snapshot.join("\n"));

    // An unknown tool is a protocol error, -32602 (MCP 2025-11-25, server/tools).
    let unknown = client
        .call_tool(call("no_such_tool", json!({})))
        .await
        .unwrap_err();
    let ServiceError::McpError(error) = unknown else {
        panic!("expected a JSON-RPC error, got {unknown:?}")
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    // Nothing escaped: the canary files are untouched.
    assert_eq!(
        std::fs::read_to_string(stage.path("outside.txt")).unwrap(),
        CANARY
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn option_and_shell_payloads_reach_git_as_plain_operands() {
    let stage = Stage::new();
    let client = stdio_client(&stage, &[], &[]).await;
    let planted = stage.path("planted-by-injection");
    for path in [
        format!("--output={}", planted.display()),
        format!("$(touch {})", planted.display()),
        format!("hello.txt; touch {}", planted.display()),
        format!("`touch {}`", planted.display()),
    ] {
        // Either an empty history (a pathspec that matches nothing) or a refusal: never an effect.
        let result = client
            .call_tool(call("file_history", json!({"path": path})))
            .await
            .unwrap();
        assert!(!text(&result).contains("first commit"), "{path}");
    }
    assert!(
        !planted.exists(),
        "an operand was obeyed as an option or run by a shell"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn oversized_and_deep_arguments_are_refused_before_work() {
    let stage = Stage::new();
    let config = stage.config("[limits]\nmax_json_depth = 8\nmax_string_bytes = 1000\n");
    let client = stdio_client(&stage, &["--config", config.to_str().unwrap()], &[]).await;
    let long = client
        .call_tool(call(
            "process_data",
            json!({"data": "a".repeat(1001), "operation": "reverse"}),
        ))
        .await
        .unwrap();
    assert_eq!(long.is_error, Some(true));
    assert!(
        text(&long).contains("longer than 1000 bytes"),
        "{}",
        text(&long)
    );
    let mut deep = json!("x");
    for _ in 0..10 {
        deep = json!({"d": deep});
    }
    let nested = client
        .call_tool(call(
            "process_data",
            json!({"data": deep, "operation": "reverse"}),
        ))
        .await
        .unwrap();
    assert!(
        text(&nested).contains("nested deeper than 8"),
        "{}",
        text(&nested)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn scopes_from_the_environment_limit_the_stdio_principal() {
    let stage = Stage::new();
    let client = stdio_client(&stage, &[], &[("MCP_SERVER_TOKEN_SCOPES", "admin")]).await;
    let denied = client
        .call_tool(call("write_file", json!({"path": "x.txt", "content": "x"})))
        .await
        .unwrap();
    assert_eq!(denied.is_error, Some(true));
    assert!(text(&denied).starts_with("The request is not permitted"));
    assert!(!stage.root().join("x.txt").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_rate_limit_applies_over_stdio() {
    let stage = Stage::new();
    let config = stage.config("[rate_limit]\nburst = 3\nper_second = 0.5\n");
    let client = stdio_client(&stage, &["--config", config.to_str().unwrap()], &[]).await;
    let mut refused = None;
    for attempt in 0..6 {
        match client
            .call_tool(call(
                "process_data",
                json!({"data": "x", "operation": "uppercase"}),
            ))
            .await
        {
            Ok(_) => assert!(attempt < 3, "call {attempt} should have been refused"),
            Err(ServiceError::McpError(error)) => {
                refused = Some(attempt);
                assert_eq!(error.code.0, reference_server::tools::RATE_LIMITED_CODE);
                assert!(error.data.unwrap()["retry_after_ms"].as_u64().unwrap() > 0);
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, Some(3), "the fourth call in the burst is refused");
    client.cancel().await.unwrap();
}

/// Raw bytes on stdin: garbage, a non-message, and a valid request. Every line on stdout must be
/// a JSON-RPC message, and the server must still answer afterwards.
#[test]
fn stdout_carries_only_json_rpc_and_survives_garbage() {
    let stage = Stage::new();
    let mut child = std::process::Command::new(BINARY)
        .args(["--stdio", "--root"])
        .arg(stage.root())
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "this is not json",
        "\u{0}\u{1}\u{2}",
        r#"{"jsonrpc":"2.0","id":2,"method":"no/such/method"}"#,
        r#"{"not":"a message"}"#,
        r#"{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"read_file","arguments":{"path":"hello.txt"}}}"#,
    ];
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut by_id = std::collections::HashMap::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let message: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("non-JSON on stdout: {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
        by_id.insert(message["id"].to_string(), message);
    }
    child.wait().unwrap();
    assert_eq!(by_id["2"]["error"]["code"], -32601, "unknown method");
    assert_eq!(
        by_id["null"]["error"]["code"], -32600,
        "a JSON value that is not a message"
    );
    assert_eq!(
        by_id["\"abc\""]["result"]["content"][0]["text"], "hello from the sandbox",
        "string ids are echoed"
    );
}
