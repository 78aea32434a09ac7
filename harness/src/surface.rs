//! Surfaces beyond tools: prompts and resource templates as attack targets, so every family
//! that attacks a tool's points attacks theirs too, with the same payloads, oracles and reach
//! ledger.
//!
//! A prompt with arguments and a resource template with variables each become a
//! [`ToolInfo`] whose name says what it is (`prompts/NAME`, `resources/TEMPLATE`) and whose
//! input schema is synthesised: one required string per prompt argument or template variable.
//! [`request_for`] turns a call of such a "tool" into the request the surface takes:
//! `prompts/get` with the arguments, or `resources/read` with the template expanded. The
//! expansion puts each value in raw (no percent-encoding), as an attacker's client would: the
//! payload sets carry their own encoded forms.
//!
//! A template variable's kind comes from its place in the template, not from its name: a
//! whole-URI template (`{url}`, `{+url}`) is a URL point; a variable in a `file:` template or
//! in the path (after the authority) is a path point; one in the authority (`repo://{owner}`)
//! or the query is an identifier.
//!
//! A server that lists `file://` or `http(s)://` resources is also read by URI directly
//! ([`direct_read_templates`]): `resources/read` must validate every URI, not only those it
//! listed.
//!
//! A server that declares `completions` has each prompt argument and template variable
//! completed too ([`completion_tools`]): `completion/complete` with the payload as the
//! argument's value, since a completion that lists the directory a value names is a path sink
//! like the read that follows it.
//!
//! Cost: linear in the listings. Failure: an item without a name or template, or with nothing
//! to attack, is left out.

use crate::discover::{PointKind, ToolInfo, parse_tool};
use serde_json::{Map, Value, json};

/// The name prefix of a prompt's synthesised tool.
pub const PROMPT_PREFIX: &str = "prompts/";
/// The name prefix of a resource template's synthesised tool.
pub const TEMPLATE_PREFIX: &str = "resources/";

/// The name prefix of a completable argument's synthesised tool:
/// `completions/prompt:NAME#ARGUMENT` or `completions/resource:TEMPLATE#VARIABLE`.
pub const COMPLETION_PREFIX: &str = "completions/";

/// The surfaces, in report order.
pub const SURFACES: [&str; 4] = ["tool", "prompt", "resource_template", "completion"];

/// Which surface a (possibly synthesised) tool named `name` is.
pub fn surface_of(name: &str) -> &'static str {
    if name.starts_with(COMPLETION_PREFIX) {
        "completion"
    } else if name.starts_with(PROMPT_PREFIX) {
        "prompt"
    } else if name.starts_with(TEMPLATE_PREFIX) {
        "resource_template"
    } else {
        "tool"
    }
}

/// One expression of a URI template (RFC 6570): its operator and its variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    /// `""` (simple), `+`, `#`, `.`, `/`, `;`, `?` or `&`.
    pub operator: &'static str,
    pub variables: Vec<String>,
    /// Where it starts in the template (bytes).
    pub at: usize,
    /// Where it ends (after the `}`).
    pub end: usize,
}

/// The expressions of `template`, in order; `None` for an unclosed brace.
pub fn expressions(template: &str) -> Option<Vec<Expression>> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = template[rest..].find('{') {
        let at = rest + open;
        let close = at + template[at..].find('}')?;
        let body = &template[at + 1..close];
        let (operator, names) = match body.chars().next() {
            Some(c @ ('+' | '#' | '.' | '/' | ';' | '?' | '&')) => (
                match c {
                    '+' => "+",
                    '#' => "#",
                    '.' => ".",
                    '/' => "/",
                    ';' => ";",
                    '?' => "?",
                    _ => "&",
                },
                &body[1..],
            ),
            _ => ("", body),
        };
        let variables: Vec<String> = names
            .split(',')
            .map(|v| {
                v.trim_end_matches('*')
                    .split(':')
                    .next()
                    .unwrap_or(v)
                    .trim()
            })
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        out.push(Expression {
            operator,
            variables,
            at,
            end: close + 1,
        });
        rest = close + 1;
    }
    Some(out)
}

/// `template` with each variable replaced by its raw value from `values` (a missing one by
/// nothing), with the operators' prefixes and separators.
pub fn expand(template: &str, values: &Map<String, Value>) -> String {
    let Some(found) = expressions(template) else {
        return template.to_owned();
    };
    let value = |name: &str| match values.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut out = String::new();
    let mut last = 0;
    for expression in found {
        out.push_str(&template[last..expression.at]);
        let (first, separator, named) = match expression.operator {
            "+" => ("", ",", false),
            "#" => ("#", ",", false),
            "." => (".", ".", false),
            "/" => ("/", "/", false),
            ";" => (";", ";", true),
            "?" => ("?", "&", true),
            "&" => ("&", "&", true),
            _ => ("", ",", false),
        };
        let parts: Vec<String> = expression
            .variables
            .iter()
            .map(|name| {
                if named {
                    format!("{name}={}", value(name))
                } else {
                    value(name)
                }
            })
            .collect();
        out.push_str(first);
        out.push_str(&parts.join(separator));
        last = expression.end;
    }
    out.push_str(&template[last..]);
    out
}

/// The kind of each variable of `template`, by its place (see the module docs).
pub fn variable_kinds(template: &str) -> Vec<(String, PointKind)> {
    let Some(found) = expressions(template) else {
        return Vec::new();
    };
    let whole = found.len() == 1
        && found[0].at == 0
        && found[0].end == template.len()
        && found[0].variables.len() == 1
        && matches!(found[0].operator, "" | "+");
    let file = template.to_ascii_lowercase().starts_with("file:");
    // The authority ends at the first '/' after "scheme://" (or at once without "//").
    let authority_end = template
        .find("://")
        .map(|i| {
            let start = i + 3;
            template[start..]
                .find('/')
                .map_or(template.len(), |j| start + j)
        })
        .unwrap_or(0);
    let query_start = template
        .find('?')
        .or_else(|| {
            found
                .iter()
                .find(|e| matches!(e.operator, "?" | "&"))
                .map(|e| e.at)
        })
        .unwrap_or(template.len());
    let mut out = Vec::new();
    for expression in &found {
        for name in &expression.variables {
            let kind = if whole {
                PointKind::Url
            } else if matches!(expression.operator, "?" | "&") || expression.at >= query_start {
                PointKind::Identifier
            } else if file || expression.at >= authority_end || expression.operator == "/" {
                PointKind::Path
            } else {
                PointKind::Identifier
            };
            out.push((name.clone(), kind));
        }
    }
    out
}

/// A synthesised tool for a prompt with arguments.
pub fn prompt_tool(prompt: &Value) -> Option<ToolInfo> {
    let name = prompt.get("name")?.as_str()?;
    let arguments = prompt.get("arguments")?.as_array()?;
    let mut properties = Map::new();
    let mut required = Vec::new();
    for argument in arguments {
        let Some(argument_name) = argument.get("name").and_then(Value::as_str) else {
            continue;
        };
        let description = argument
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        properties.insert(
            argument_name.to_owned(),
            json!({"type": "string", "description": description}),
        );
        // Every argument is sent: an optional one is still an input.
        required.push(Value::String(argument_name.to_owned()));
    }
    if properties.is_empty() {
        return None;
    }
    parse_tool(&json!({
        "name": format!("{PROMPT_PREFIX}{name}"),
        "description": prompt.get("description").cloned().unwrap_or_default(),
        "inputSchema": {"type": "object", "properties": properties, "required": required},
    }))
}

/// A synthesised tool for a resource template with variables, its points kinded by their
/// place in the template.
pub fn template_tool(template: &Value) -> Option<ToolInfo> {
    let uri_template = template.get("uriTemplate")?.as_str()?;
    let kinds = variable_kinds(uri_template);
    if kinds.is_empty() {
        return None;
    }
    let mut properties = Map::new();
    for (name, _) in &kinds {
        properties.insert(name.clone(), json!({"type": "string"}));
    }
    let required: Vec<&String> = kinds.iter().map(|(name, _)| name).collect();
    let mut info = parse_tool(&json!({
        "name": format!("{TEMPLATE_PREFIX}{uri_template}"),
        "description": template.get("description").cloned().unwrap_or_default(),
        "inputSchema": {"type": "object", "properties": properties, "required": required},
    }))?;
    for point in &mut info.points {
        if let Some((_, kind)) = kinds.iter().find(|(name, _)| *name == point.name) {
            point.kind = *kind;
        }
    }
    Some(info)
}

/// One synthesised tool per argument of `prompt` (`ref/prompt`) or variable of `template`
/// (`ref/resource`) for `completion/complete`, whose one point is the argument's value, kinded
/// as the prompt argument (by its name) or the template variable (by its place) is.
pub fn completion_tools(prompt: Option<&Value>, template: Option<&Value>) -> Vec<ToolInfo> {
    let (reference, arguments): (String, Vec<(String, Option<PointKind>)>) =
        match (prompt, template) {
            (Some(prompt), _) => {
                let Some(name) = prompt.get("name").and_then(Value::as_str) else {
                    return Vec::new();
                };
                let arguments = prompt
                    .get("arguments")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.get("name").and_then(Value::as_str))
                    .map(|a| (a.to_owned(), None))
                    .collect();
                (format!("prompt:{name}"), arguments)
            }
            (None, Some(template)) => {
                let Some(uri) = template.get("uriTemplate").and_then(Value::as_str) else {
                    return Vec::new();
                };
                let kinds = variable_kinds(uri)
                    .into_iter()
                    .map(|(name, kind)| (name, Some(kind)))
                    .collect();
                (format!("resource:{uri}"), kinds)
            }
            (None, None) => return Vec::new(),
        };
    arguments
        .into_iter()
        .filter_map(|(argument, kind)| {
            let mut info = parse_tool(&json!({
                "name": format!("{COMPLETION_PREFIX}{reference}#{argument}"),
                "description": "completion/complete of this argument's value",
                "inputSchema": {
                    "type": "object",
                    "properties": {argument.clone(): {"type": "string"}},
                    "required": [argument],
                },
            }))?;
            if let Some(kind) = kind {
                for point in &mut info.points {
                    point.kind = kind;
                }
            }
            Some(info)
        })
        .collect()
}

/// Synthesised templates for reading listed resources' URIs directly: a server that lists
/// `file://` resources gets `file://{+path}` (TRAV's payloads as `file://` URIs: the planted
/// canaries by absolute path, `..` forms, encoded forms), one that lists `http(s)://`
/// resources gets `{+url}` (SSRF's payloads). Nothing for a server whose templates already
/// cover that scheme.
pub fn direct_read_templates(resources: &[Value], templates: &[Value]) -> Vec<Value> {
    let uris: Vec<String> = resources
        .iter()
        .filter_map(|r| r.get("uri").and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .collect();
    let covered = |scheme: &str| {
        templates.iter().any(|t| {
            t.get("uriTemplate")
                .and_then(Value::as_str)
                .is_some_and(|u| u.to_ascii_lowercase().starts_with(scheme))
        })
    };
    let mut out = Vec::new();
    if uris.iter().any(|u| u.starts_with("file:")) && !covered("file:") {
        out.push(json!({
            "uriTemplate": "file://{+path}",
            "description": "the server's file:// resources, read by URI",
        }));
    }
    if uris
        .iter()
        .any(|u| u.starts_with("http:") || u.starts_with("https:"))
        && !covered("http")
    {
        out.push(json!({
            "uriTemplate": "{+url}",
            "description": "the server's http(s):// resources, read by URI",
        }));
    }
    out
}

/// The request a call of `tool` with `arguments` is: `(method, params)`.
pub fn request_for(tool: &str, arguments: Value) -> (&'static str, Value) {
    if let Some(completed) = tool.strip_prefix(COMPLETION_PREFIX)
        && let Some((reference, argument)) = completed.rsplit_once('#')
    {
        let value = match arguments.get(argument) {
            Some(Value::String(value)) => value.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let reference = match reference.split_once(':') {
            Some(("prompt", name)) => json!({"type": "ref/prompt", "name": name}),
            Some((_, uri)) => json!({"type": "ref/resource", "uri": uri}),
            None => json!({"type": "ref/prompt", "name": reference}),
        };
        (
            "completion/complete",
            json!({"ref": reference, "argument": {"name": argument, "value": value}}),
        )
    } else if let Some(prompt) = tool.strip_prefix(PROMPT_PREFIX) {
        // prompts/get takes strings only.
        let strings: Map<String, Value> = match arguments {
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(_) => (k, v),
                    other => (k, Value::String(other.to_string())),
                })
                .collect(),
            _ => Map::new(),
        };
        ("prompts/get", json!({"name": prompt, "arguments": strings}))
    } else if let Some(template) = tool.strip_prefix(TEMPLATE_PREFIX) {
        let values = match arguments {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        ("resources/read", json!({"uri": expand(template, &values)}))
    } else {
        ("tools/call", json!({"name": tool, "arguments": arguments}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_completable_argument_becomes_a_tool_whose_call_is_completion_complete() {
        let prompt = json!({"name": "review", "arguments": [{"name": "path"}, {"name": "tone"}]});
        let tools = completion_tools(Some(&prompt), None);
        assert_eq!(
            tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            [
                "completions/prompt:review#path",
                "completions/prompt:review#tone"
            ]
        );
        assert_eq!(surface_of(&tools[0].name), "completion");
        assert!(!tools[0].is_tool());
        assert_eq!(tools[0].points[0].kind, PointKind::Path);
        let (method, params) = request_for(&tools[0].name, json!({"path": "../x"}));
        assert_eq!(method, "completion/complete");
        assert_eq!(
            params,
            json!({"ref": {"type": "ref/prompt", "name": "review"}, "argument": {"name": "path", "value": "../x"}})
        );
        let template = json!({"uriTemplate": "file:///srv/{+rest}#{frag}"});
        let tools = completion_tools(None, Some(&template));
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0].points[0].kind, PointKind::Path);
        let (_, params) = request_for(&tools[1].name, json!({"frag": "a"}));
        assert_eq!(
            params,
            json!({"ref": {"type": "ref/resource", "uri": "file:///srv/{+rest}#{frag}"}, "argument": {"name": "frag", "value": "a"}})
        );
    }

    fn values(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn templates_expand_raw_with_their_operators() {
        let v = values(&[("path", "../../etc/passwd"), ("owner", "o"), ("q", "x y")]);
        assert_eq!(expand("file:///{path}", &v), "file:///../../etc/passwd");
        assert_eq!(expand("file://{+path}", &v), "file://../../etc/passwd");
        assert_eq!(
            expand("repo://{owner}{/path}", &v),
            "repo://o/../../etc/passwd"
        );
        assert_eq!(expand("s://{owner}/search{?q}", &v), "s://o/search?q=x y");
        assert_eq!(expand("s://x{?q,owner}", &v), "s://x?q=x y&owner=o");
        assert_eq!(expand("no variables", &v), "no variables");
        assert_eq!(expand("broken {path", &v), "broken {path");
    }

    #[test]
    fn a_variable_is_kinded_by_its_place() {
        assert_eq!(
            variable_kinds("file:///{path}"),
            [("path".into(), PointKind::Path)]
        );
        assert_eq!(variable_kinds("{+url}"), [("url".into(), PointKind::Url)]);
        assert_eq!(
            variable_kinds("repo://{owner}/{repo}/{+path}{?ref}"),
            [
                ("owner".into(), PointKind::Identifier),
                ("repo".into(), PointKind::Path),
                ("path".into(), PointKind::Path),
                ("ref".into(), PointKind::Identifier),
            ]
        );
        assert_eq!(
            variable_kinds("users://{id}/profile"),
            [("id".into(), PointKind::Identifier)]
        );
    }

    #[test]
    fn prompts_and_templates_become_tools_whose_calls_are_their_requests() {
        let prompt = json!({"name": "summarize", "arguments": [{"name": "path", "description": "the file to summarize"}]});
        let tool = prompt_tool(&prompt).unwrap();
        assert_eq!(tool.name, "prompts/summarize");
        assert_eq!(tool.points.len(), 1);
        assert_eq!(tool.points[0].kind, PointKind::Path);
        let (method, params) = request_for(&tool.name, json!({"path": "../x", "n": 3}));
        assert_eq!(method, "prompts/get");
        assert_eq!(
            params,
            json!({"name": "summarize", "arguments": {"path": "../x", "n": "3"}})
        );
        assert!(
            prompt_tool(&json!({"name": "hello"})).is_none(),
            "no argument, nothing to attack"
        );

        let template = json!({"uriTemplate": "file:///{name}", "name": "files"});
        let tool = template_tool(&template).unwrap();
        assert_eq!(
            tool.points[0].kind,
            PointKind::Path,
            "a file: variable is a path, whatever its name"
        );
        let (method, params) = request_for(&tool.name, json!({"name": "../../secret"}));
        assert_eq!(method, "resources/read");
        assert_eq!(params, json!({"uri": "file:///../../secret"}));
        assert_eq!(request_for("echo", json!({})).0, "tools/call");
    }

    #[test]
    fn listed_file_and_web_resources_are_read_directly_unless_a_template_covers_them() {
        let resources = [
            json!({"uri": "file:///srv/readme.txt", "name": "readme"}),
            json!({"uri": "https://example.com/doc", "name": "doc"}),
        ];
        let direct = direct_read_templates(&resources, &[]);
        let templates: Vec<&str> = direct
            .iter()
            .filter_map(|t| t["uriTemplate"].as_str())
            .collect();
        assert_eq!(templates, ["file://{+path}", "{+url}"]);
        let tool = template_tool(&direct[0]).unwrap();
        assert_eq!(tool.points[0].kind, PointKind::Path);
        let (_, params) = request_for(&tool.name, json!({"path": "/tmp/outside/canary.txt"}));
        assert_eq!(params["uri"], "file:///tmp/outside/canary.txt");
        assert_eq!(
            template_tool(&direct[1]).unwrap().points[0].kind,
            PointKind::Url
        );
        let covering = [json!({"uriTemplate": "file:///{path}"})];
        assert_eq!(
            direct_read_templates(&resources[..1], &covering),
            Vec::<Value>::new()
        );
        assert!(direct_read_templates(&[], &[]).is_empty());
    }
}
