//! A first look at the reference server: starts it over stdio on a fresh sandbox, lists its
//! tools, and shows a few calls, including ones the guards refuse.
//!
//! Run: `cargo run -p reference-server --example tool_call`

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::json;

fn show(label: &str, result: &rmcp::model::CallToolResult) {
    let text: String = serde_json::to_value(&result.content)
        .ok()
        .and_then(|v| {
            v.pointer("/0/text")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let verdict = if result.is_error == Some(true) {
        "refused"
    } else {
        "ok"
    };
    let one_line: Vec<&str> = text.lines().map(str::trim).collect();
    let one_line = one_line.join(" ");
    let shown: String = one_line.chars().take(90).collect();
    println!("{label:<55} {verdict:<8} {shown}");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = tempfile::tempdir()?;
    let root = sandbox.path().join("root");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("hello.txt"), "hello from inside the sandbox")?;
    std::fs::write(
        sandbox.path().join("outside.txt"),
        "you should never see this",
    )?;
    std::os::unix::fs::symlink(sandbox.path().join("outside.txt"), root.join("link-out"))?;

    // The server binary sits next to this example's binary in the target directory.
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("mcp-reference-server"))
        .ok_or("no target directory")?;
    if !binary.exists() {
        return Err("build the server first: cargo build -p reference-server".into());
    }
    let command = tokio::process::Command::new(&binary).configure(|cmd| {
        cmd.arg("--stdio")
            .arg("--root")
            .arg(&root)
            .env("RUST_LOG", "warn");
    });
    let client = ().serve(TokioChildProcess::new(command)?).await?;
    let info = client
        .peer_info()
        .and_then(|i| i.server_info.clone())
        .map(|s| format!("{} {}", s.name, s.version))
        .unwrap_or_default();
    println!("connected to {info} over stdio, sandbox {}", root.display());
    let tools: Vec<String> = client
        .list_all_tools()
        .await?
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    println!("tools: {}\n", tools.join(", "));

    let calls = [
        (
            "read_file hello.txt",
            "read_file",
            json!({"path": "hello.txt"}),
        ),
        (
            "read_file ../outside.txt (traversal)",
            "read_file",
            json!({"path": "../outside.txt"}),
        ),
        (
            "read_file link-out (symlink out of the sandbox)",
            "read_file",
            json!({"path": "link-out"}),
        ),
        (
            "query_records name_contains=\"' OR 1=1 --\"",
            "query_records",
            json!({"name_contains": "' OR 1=1 --"}),
        ),
        (
            "query_records name_contains=report",
            "query_records",
            json!({"name_contains": "report", "limit": 1}),
        ),
        (
            "fetch_url http://169.254.169.254/ (cloud metadata)",
            "fetch_url",
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
        ),
        (
            "fetch_url http://example.com:x@127.0.0.1/ (userinfo)",
            "fetch_url",
            json!({"url": "http://example.com:x@127.0.0.1/"}),
        ),
        (
            "process_data sha256",
            "process_data",
            json!({"data": "abc", "operation": "sha256"}),
        ),
    ];
    for (label, tool, arguments) in calls {
        let params = CallToolRequestParams::new(tool)
            .with_arguments(arguments.as_object().cloned().unwrap_or_default());
        show(label, &client.call_tool(params).await?);
    }
    client.cancel().await?;
    Ok(())
}
