//! What the target offers, and what each tool parameter looks like to an attacker.
//!
//! Every parameter of every tool is classified from its JSON Schema (type, `format`), its name
//! and its description as a path, URL, SQL/filter, command/argument, identifier or free text.
//! The classification decides which probe families attack it and appears in the report.
//! [`baseline_arguments`] builds a call that satisfies the schema, into which a probe puts one
//! payload at a time.
//!
//! Cost: one `tools/list` (up to 20 pages), plus `resources/list` and `prompts/list` when the
//! server advertises them.

use crate::connection::{Connection, Reply, TargetError};
use serde_json::{Map, Value, json};

/// How a parameter looks to an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    Path,
    Url,
    Sql,
    Command,
    Identifier,
    FreeText,
    /// Not a string: numbers, booleans, objects, arrays.
    Other,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub required: bool,
    /// True when the tool declared no parameters and this one was inferred from its name and
    /// description (some servers publish an empty input schema).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
    #[serde(skip)]
    pub schema: Value,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    pub params: Vec<Param>,
}

impl ToolInfo {
    pub fn params_of(&self, kinds: &[ParamKind]) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(move |p| kinds.contains(&p.kind))
    }

    /// The first string parameter whose name, lowercased and without `_` and `-`, is one of
    /// `names` (`client_id`, `clientId` and `client-id` are all `clientid`).
    pub fn string_param_named(&self, names: &[&str]) -> Option<&Param> {
        self.params.iter().find(|p| {
            let name: String = p
                .name
                .to_ascii_lowercase()
                .chars()
                .filter(|c| *c != '_' && *c != '-')
                .collect();
            names.contains(&name.as_str()) && p.schema.get("type").is_none_or(|t| t == "string")
        })
    }
}

/// Everything discovery found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Discovery {
    pub tools: Vec<ToolInfo>,
    pub resources: usize,
    pub prompts: usize,
}

fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            // Split camelCase as well as snake_case and kebab-case.
            if c.is_uppercase() && previous_lower && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            previous_lower = c.is_lowercase();
            current.extend(c.to_lowercase());
        } else {
            previous_lower = false;
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Classifies one parameter from its schema, name and description.
pub fn classify(name: &str, schema: &Value) -> ParamKind {
    let json_type = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let is_string = json_type == "string"
        || schema
            .get("type")
            .and_then(Value::as_array)
            .is_some_and(|t| t.iter().any(|v| v == "string"));
    if !is_string || schema.get("enum").is_some() {
        return ParamKind::Other;
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && matches!(format, "uri" | "url" | "iri" | "uri-reference")
    {
        return ParamKind::Url;
    }
    let name_words = words(name);
    let description = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let description_words = words(description);
    let has = |list: &[String], wanted: &[&str]| list.iter().any(|w| wanted.contains(&w.as_str()));
    const PATH: &[&str] = &[
        "path",
        "file",
        "filename",
        "filepath",
        "dir",
        "directory",
        "folder",
        "repo",
        "repository",
        "cwd",
        "root",
        "source",
        "destination",
        "dest",
        "src",
    ];
    const URL: &[&str] = &[
        "url", "uri", "endpoint", "href", "link", "webhook", "website", "homepage",
    ];
    const SQL: &[&str] = &[
        "sql",
        "query",
        "filter",
        "where",
        "condition",
        "search",
        "needle",
        "contains",
        "pattern",
        "keyword",
        "term",
    ];
    const COMMAND: &[&str] = &[
        "command",
        "cmd",
        "args",
        "arg",
        "argument",
        "arguments",
        "shell",
        "exec",
        "script",
        "program",
        "flags",
        "options",
    ];
    const IDENTIFIER: &[&str] = &[
        "id", "name", "key", "ref", "branch", "revision", "rev", "tag", "commit", "user",
        "username", "slug", "category",
    ];
    const FREE_TEXT: &[&str] = &[
        "content",
        "contents",
        "text",
        "data",
        "body",
        "message",
        "payload",
        "note",
        "comment",
        "description",
        "title",
        "input",
    ];
    if has(&name_words, URL) {
        return ParamKind::Url;
    }
    if has(&name_words, PATH) {
        return ParamKind::Path;
    }
    if has(&name_words, COMMAND) {
        return ParamKind::Command;
    }
    if has(&name_words, SQL) {
        return ParamKind::Sql;
    }
    if has(&name_words, IDENTIFIER) {
        return ParamKind::Identifier;
    }
    if has(&name_words, FREE_TEXT) {
        return ParamKind::FreeText;
    }
    // The name said nothing: let the description decide.
    if has(&description_words, URL) {
        ParamKind::Url
    } else if has(&description_words, &["path", "file", "directory", "folder"]) {
        ParamKind::Path
    } else if has(&description_words, &["sql", "query"]) {
        ParamKind::Sql
    } else if has(&description_words, &["command", "shell"]) {
        ParamKind::Command
    } else {
        ParamKind::FreeText
    }
}

/// Replaces a `$ref` into the schema's own `$defs`/`definitions` by what it names (one level),
/// and a single-branch `allOf`/`anyOf` by its branch, keeping the description.
fn resolve(schema: &Value, root: &Value) -> Value {
    let mut resolved = schema.clone();
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        if let Some(target) = root.pointer(pointer) {
            resolved = target.clone();
            if let (Some(description), Some(object)) =
                (schema.get("description"), resolved.as_object_mut())
            {
                object.insert("description".into(), description.clone());
            }
        }
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        let branches: Vec<&Value> = resolved
            .get(combinator)
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .filter(|v| v.get("type") != Some(&json!("null")))
                    .collect()
            })
            .unwrap_or_default();
        if let [only] = branches.as_slice() {
            let mut inner = resolve(only, root);
            if let (Some(description), Some(object)) =
                (resolved.get("description").cloned(), inner.as_object_mut())
            {
                object.entry("description").or_insert(description);
            }
            return inner;
        }
    }
    resolved
}

pub fn parse_tool(tool: &Value) -> Option<ToolInfo> {
    let name = tool.get("name")?.as_str()?.to_owned();
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let schema = tool
        .get("inputSchema")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let root = schema.clone();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let params: Vec<Param> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .map(|(param, param_schema)| {
                    let param_schema = resolve(param_schema, &root);
                    Param {
                        name: param.clone(),
                        kind: classify(param, &param_schema),
                        required: required.contains(&param.as_str()),
                        inferred: false,
                        schema: param_schema,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let params = if params.is_empty() && schema.get("properties").is_none() {
        infer_params(&name, &description)
    } else {
        params
    };
    Some(ToolInfo {
        name,
        description,
        params,
    })
}

/// For a tool whose schema declares no properties at all: the conventional parameter its name
/// and description point to, so its attack surface is still probed. The oracles decide as
/// always; a wrong guess only costs a refused call.
fn infer_params(name: &str, description: &str) -> Vec<Param> {
    let text = format!("{name} {description}");
    let all = words(&text);
    let has = |wanted: &[&str]| all.iter().any(|w| wanted.contains(&w.as_str()));
    let guess = |param: &str, kind: ParamKind| Param {
        name: param.to_owned(),
        kind,
        required: true,
        inferred: true,
        schema: json!({"type": "string"}),
    };
    if has(&["url", "uri", "fetch", "http", "https", "website"]) {
        vec![guess("url", ParamKind::Url)]
    } else if has(&[
        "file",
        "files",
        "directory",
        "directories",
        "path",
        "folder",
    ]) {
        vec![guess("path", ParamKind::Path)]
    } else if has(&["sql", "query", "database"]) {
        vec![guess("query", ParamKind::Sql)]
    } else if has(&["command", "shell", "execute", "run"]) {
        vec![guess("command", ParamKind::Command)]
    } else {
        Vec::new()
    }
}

async fn list_all(
    connection: &mut Connection,
    method: &str,
    field: &str,
) -> Result<Vec<Value>, TargetError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _page in 0..20 {
        let params = cursor.as_ref().map(|c| json!({"cursor": c}));
        match connection.request(method, params).await? {
            Reply::Result(result) => {
                items.extend(
                    result
                        .get(field)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
                cursor = result
                    .get("nextCursor")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if cursor.is_none() {
                    break;
                }
            }
            Reply::Error { .. } => break,
        }
    }
    Ok(items)
}

/// Lists tools (and counts resources and prompts).
pub async fn discover(connection: &mut Connection) -> Result<Discovery, TargetError> {
    let tools = list_all(connection, "tools/list", "tools")
        .await?
        .iter()
        .filter_map(parse_tool)
        .collect();
    let resources = list_all(connection, "resources/list", "resources")
        .await
        .map(|r| r.len())
        .unwrap_or(0);
    let prompts = list_all(connection, "prompts/list", "prompts")
        .await
        .map(|p| p.len())
        .unwrap_or(0);
    Ok(Discovery {
        tools,
        resources,
        prompts,
    })
}

/// What baseline values may point at: the sandbox, when the harness staged one for the target.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    /// The sandbox's absolute path (stdio targets); `None` for HTTP targets.
    pub sandbox: Option<String>,
}

impl Baselines {
    /// A directory the target can use: the sandbox, or `.`.
    fn directory(&self) -> String {
        self.sandbox.clone().unwrap_or_else(|| ".".to_owned())
    }

    /// A file that exists in the sandbox.
    fn file(&self) -> String {
        match &self.sandbox {
            Some(sandbox) => format!("{sandbox}/readme.txt"),
            None => "readme.txt".to_owned(),
        }
    }
}

/// True when a path parameter names a directory or repository rather than a file.
fn is_directory_like(name: &str) -> bool {
    words(name).iter().any(|w| {
        matches!(
            w.as_str(),
            "dir"
                | "directory"
                | "folder"
                | "repo"
                | "repository"
                | "root"
                | "cwd"
                | "project"
                | "workspace"
                | "base"
        )
    })
}

/// A plausible, schema-satisfying value for one parameter. Path parameters point into the
/// sandbox (a directory or repository for directory-like names, an existing file otherwise), so
/// that a call gets past its first checks to the parameter under attack.
pub fn baseline_value(param: &Param, baselines: &Baselines) -> Value {
    let schema = &param.schema;
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    let json_type = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    match json_type {
        "integer" | "number" => {
            let minimum = schema.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            let maximum = schema
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            json!(1.max(minimum).min(maximum))
        }
        "boolean" => json!(false),
        "array" => {
            let item_is_path = schema.pointer("/items/type").and_then(Value::as_str)
                == Some("string")
                && param.kind == ParamKind::Path;
            if item_is_path {
                json!([baselines.file()])
            } else {
                json!([])
            }
        }
        "object" => json!({}),
        _ => match param.kind {
            ParamKind::Path if is_directory_like(&param.name) => json!(baselines.directory()),
            ParamKind::Path => json!(baselines.file()),
            ParamKind::Url => json!("https://example.com/"),
            ParamKind::Command => json!("echo"),
            _ => json!("harness"),
        },
    }
}

/// Arguments for `tool`: every required parameter with a baseline value.
pub fn baseline_arguments(tool: &ToolInfo, baselines: &Baselines) -> Map<String, Value> {
    tool.params
        .iter()
        .filter(|p| p.required)
        .map(|p| (p.name.clone(), baseline_value(p, baselines)))
        .collect()
}

/// Baseline arguments with `param` set to `value`.
pub fn arguments_with(tool: &ToolInfo, param: &str, value: Value, baselines: &Baselines) -> Value {
    let mut arguments = baseline_arguments(tool, baselines);
    arguments.insert(param.to_owned(), value);
    Value::Object(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_classified_by_schema_name_and_description() {
        let s = |v: Value| v;
        assert_eq!(
            classify("path", &s(json!({"type": "string"}))),
            ParamKind::Path
        );
        assert_eq!(
            classify("repo_path", &s(json!({"type": "string"}))),
            ParamKind::Path
        );
        assert_eq!(
            classify("filePath", &s(json!({"type": "string"}))),
            ParamKind::Path
        );
        assert_eq!(
            classify("url", &s(json!({"type": "string"}))),
            ParamKind::Url
        );
        assert_eq!(
            classify("target", &s(json!({"type": "string", "format": "uri"}))),
            ParamKind::Url
        );
        assert_eq!(
            classify("name_contains", &s(json!({"type": "string"}))),
            ParamKind::Sql
        );
        assert_eq!(
            classify("sql", &s(json!({"type": "string"}))),
            ParamKind::Sql
        );
        assert_eq!(
            classify("command", &s(json!({"type": "string"}))),
            ParamKind::Command
        );
        assert_eq!(
            classify("branch", &s(json!({"type": "string"}))),
            ParamKind::Identifier
        );
        assert_eq!(
            classify("content", &s(json!({"type": "string"}))),
            ParamKind::FreeText
        );
        assert_eq!(
            classify(
                "content",
                &s(json!({"type": "string", "description": "Text to write; replaces the file"}))
            ),
            ParamKind::FreeText
        );
        assert_eq!(
            classify(
                "x",
                &s(json!({"type": "string", "description": "The file to open"}))
            ),
            ParamKind::Path
        );
        assert_eq!(
            classify("max_depth", &s(json!({"type": "integer"}))),
            ParamKind::Other
        );
        assert_eq!(
            classify("operation", &s(json!({"type": "string", "enum": ["a"]}))),
            ParamKind::Other
        );
    }

    #[test]
    fn a_tool_with_an_empty_schema_gets_an_inferred_parameter() {
        let tool = parse_tool(&json!({"name": "read_file", "description": "Read a file", "inputSchema": {"$schema": "http://json-schema.org/draft-07/schema#"}})).unwrap();
        assert_eq!(tool.params.len(), 1);
        assert!(
            tool.params[0].inferred
                && tool.params[0].kind == ParamKind::Path
                && tool.params[0].name == "path"
        );
        let declared_empty = parse_tool(
            &json!({"name": "read_file", "inputSchema": {"type": "object", "properties": {}}}),
        )
        .unwrap();
        assert!(
            declared_empty.params.is_empty(),
            "a tool that declares no parameters gets none"
        );
    }

    #[test]
    fn references_into_defs_are_resolved() {
        let tool = parse_tool(&json!({"name": "t", "inputSchema": {"type": "object", "required": ["op"],
            "properties": {"op": {"$ref": "#/$defs/Op"}, "u": {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]}},
            "$defs": {"Op": {"type": "string", "enum": ["upper", "lower"]}}}}))
        .unwrap();
        assert_eq!(
            tool.params.iter().find(|p| p.name == "op").unwrap().kind,
            ParamKind::Other
        );
        assert_eq!(
            tool.params.iter().find(|p| p.name == "u").unwrap().kind,
            ParamKind::Url
        );
        assert_eq!(
            baseline_arguments(&tool, &Baselines::default())["op"],
            "upper"
        );
    }

    #[test]
    fn baseline_arguments_satisfy_required_fields() {
        let tool = parse_tool(&json!({"name": "t", "inputSchema": {"type": "object", "required": ["path", "n", "op"], "properties": {
            "path": {"type": "string"}, "n": {"type": "integer", "minimum": 3, "maximum": 9}, "op": {"enum": ["x", "y"]}, "opt": {"type": "string"}}}}))
        .unwrap();
        let arguments = baseline_arguments(&tool, &Baselines::default());
        assert_eq!(
            Value::Object(arguments),
            json!({"path": "readme.txt", "n": 3, "op": "x"})
        );
        assert_eq!(
            arguments_with(&tool, "opt", json!("P"), &Baselines::default())["opt"],
            "P"
        );
        let staged = Baselines {
            sandbox: Some("/s".into()),
        };
        let repo = parse_tool(&json!({"name": "g", "inputSchema": {"type": "object", "required": ["repo_path", "file"], "properties": {
            "repo_path": {"type": "string"}, "file": {"type": "string"}}}}))
        .unwrap();
        assert_eq!(
            Value::Object(baseline_arguments(&repo, &staged)),
            json!({"repo_path": "/s", "file": "/s/readme.txt"})
        );
    }
}
