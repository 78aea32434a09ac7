//! What the target offers, and where in each tool's input a payload can go.
//!
//! Every string leaf of every tool's input, at any depth (`path`, `request.path`,
//! `files[0].path`, `filter.category`), is an attack point addressed by a JSON pointer. Points
//! come from the [`crate::schema`] engine, which reads `$ref`s, nested objects, arrays and
//! combinators; each point is classified from its own name, the names above it, its
//! description, its schema and the tool's name and description as a path, URL, SQL/filter,
//! command/argument, identifier or free text. The classification orders and tailors payloads;
//! it does not decide whether a point is attacked.
//!
//! [`ToolInfo::arguments`] builds a call that satisfies the tool's schema and contains one
//! point, with every string taken from [`Baselines`] where the constraints allow it (sandbox
//! paths for paths, the canary listener for URLs), so that a payload in one point meets a call
//! that is otherwise valid.
//!
//! Cost: one `tools/list` (up to 20 pages), plus `resources/list` and `prompts/list`; the
//! schema engine's work per tool is bounded by [`SchemaLimits`]. A schema the engine refuses
//! is kept on the tool as `schema_problem`, and the tool's points are still listed where it
//! could read them.

use crate::connection::{Connection, Reply, TargetError};
use crate::schema::{LeafView, Schema, SchemaError, SchemaLimits, Step};
use serde_json::{Value, json};
use std::sync::Arc;

/// How an attack point looks to an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    Path,
    Url,
    Sql,
    Command,
    Identifier,
    FreeText,
}

impl PointKind {
    pub fn name(self) -> &'static str {
        match self {
            PointKind::Path => "path",
            PointKind::Url => "url",
            PointKind::Sql => "sql",
            PointKind::Command => "command",
            PointKind::Identifier => "identifier",
            PointKind::FreeText => "free_text",
        }
    }
}

/// A string leaf of a tool's input: where a payload goes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Point {
    /// The JSON pointer of the leaf in the tool's arguments (`/request/path`).
    pub pointer: String,
    pub kind: PointKind,
    /// True when the leaf is in every call the schema allows.
    pub required: bool,
    /// True when the tool declared no input and this point was inferred from its name and
    /// description (some servers publish an empty input schema).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
    /// True for a path that names a directory or repository rather than a file.
    #[serde(skip)]
    pub directory: bool,
    /// The nearest property name (an array's name for its items).
    #[serde(skip)]
    pub name: String,
    /// How the schema engine reaches the leaf.
    #[serde(skip)]
    pub route: Vec<Step>,
    /// The leaf's own schema.
    #[serde(skip)]
    pub schema: Value,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    pub points: Vec<Point>,
    /// Why the schema engine could not read the input schema or build a call from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_problem: Option<String>,
    #[serde(skip)]
    pub schema: Option<Arc<Schema>>,
}

impl ToolInfo {
    /// Whether this is one of the server's tools (not a prompt's or a resource template's
    /// synthesised tool, [`crate::surface`]): what floods, timing and `tools/call`-shaped
    /// probes use, since the rules they check are about tool calls.
    pub fn is_tool(&self) -> bool {
        crate::surface::surface_of(&self.name) == "tool"
    }

    pub fn points_of(&self, kinds: &[PointKind]) -> impl Iterator<Item = &Point> {
        self.points.iter().filter(move |p| kinds.contains(&p.kind))
    }

    /// The first point whose own name, lowercased and without `_` and `-`, is one of `names`
    /// (`client_id`, `clientId` and `client-id` are all `clientid`), at any depth.
    pub fn point_named(&self, names: &[&str]) -> Option<&Point> {
        self.points.iter().find(|p| {
            let name: String = p
                .name
                .to_ascii_lowercase()
                .chars()
                .filter(|c| *c != '_' && *c != '-')
                .collect();
            names.contains(&name.as_str())
        })
    }

    pub fn point(&self, pointer: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.pointer == pointer)
    }

    /// Arguments that satisfy the schema and contain `point` (the minimal call without one),
    /// with strings from `baselines` in its `variant`. A tool whose schema the engine cannot
    /// read gets `{}` and the reason.
    pub fn arguments(
        &self,
        point: Option<&Point>,
        baselines: &Baselines,
        variant: usize,
    ) -> Result<Value, SchemaError> {
        let Some(schema) = &self.schema else {
            return Err(SchemaError::Unsatisfiable {
                pointer: "/".into(),
                reason: self
                    .schema_problem
                    .clone()
                    .unwrap_or_else(|| "no schema".into()),
            });
        };
        let route: &[Step] = point.map_or(&[], |p| p.route.as_slice());
        let preferences = |leaf: &LeafView<'_>| baselines.preferences(self, leaf, variant);
        let value = schema.instance(route, &preferences)?;
        // An empty input must still be an object for `tools/call`.
        Ok(if value.is_object() { value } else { json!({}) })
    }
}

/// `arguments` with the string at `pointer` replaced by `value` (created if missing).
pub fn with_value_at(mut arguments: Value, pointer: &str, value: Value) -> Value {
    if let Some(slot) = arguments.pointer_mut(pointer) {
        *slot = value;
        return arguments;
    }
    // The pointer's parent exists (an instance for the point was built): insert the last token.
    if let Some((parent, token)) = pointer.rsplit_once('/')
        && let Some(Value::Object(map)) = arguments.pointer_mut(parent)
    {
        map.insert(token.replace("~1", "/").replace("~0", "~"), value);
    }
    arguments
}

/// Everything discovery found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Discovery {
    pub tools: Vec<ToolInfo>,
    pub resources: usize,
    pub prompts: usize,
    /// The listings as the server sent them (for META: their texts, and to compare with a
    /// later listing). Not in the report: the texts are the server's.
    #[serde(skip)]
    pub listings: Listings,
}

/// A server's listings as sent, each bounded to [`MAX_LISTED`] items.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listings {
    pub tools: Vec<Value>,
    pub prompts: Vec<Value>,
    pub resources: Vec<Value>,
    pub resource_templates: Vec<Value>,
}

/// The most items of one listing kept (and attacked).
pub const MAX_LISTED: usize = 200;

/// The listing methods: (method, result field).
pub const LISTING_METHODS: [(&str, &str); 4] = [
    ("tools/list", "tools"),
    ("prompts/list", "prompts"),
    ("resources/list", "resources"),
    ("resources/templates/list", "resourceTemplates"),
];

impl Listings {
    /// The listing of `method` (one of [`LISTING_METHODS`]).
    pub fn of(&self, method: &str) -> &[Value] {
        match method {
            "tools/list" => &self.tools,
            "prompts/list" => &self.prompts,
            "resources/list" => &self.resources,
            _ => &self.resource_templates,
        }
    }

    fn slot(&mut self, method: &str) -> &mut Vec<Value> {
        match method {
            "tools/list" => &mut self.tools,
            "prompts/list" => &mut self.prompts,
            "resources/list" => &mut self.resources,
            _ => &mut self.resource_templates,
        }
    }
}

impl Discovery {
    /// String points of every tool.
    pub fn point_count(&self) -> usize {
        self.tools.iter().map(|t| t.points.len()).sum()
    }
}

/// The words of a name or a text, lowercased, with their singulars appended (`paths` also
/// reads as `path`).
fn words(text: &str) -> Vec<String> {
    let mut out = split_words(text);
    // Plurals read as their singular too: `paths`, `files`, `directories`, `urls`.
    let singulars: Vec<String> = out
        .iter()
        .filter_map(|w| {
            if let Some(stem) = w.strip_suffix("ies") {
                Some(format!("{stem}y"))
            } else {
                w.strip_suffix('s')
                    .filter(|stem| stem.len() >= 3 && !stem.ends_with('s'))
                    .map(str::to_owned)
            }
        })
        .collect();
    out.extend(singulars);
    out
}

/// The words of a name or a text, lowercased: snake_case, kebab-case and camelCase split.
fn split_words(text: &str) -> Vec<String> {
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

const PATH_WORDS: &[&str] = &[
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
    "workbook",
    "document",
    "location",
];
const URL_WORDS: &[&str] = &[
    "url", "uri", "endpoint", "href", "link", "webhook", "website", "homepage",
];
const SQL_WORDS: &[&str] = &[
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
    "sort",
    "order",
];
const COMMAND_WORDS: &[&str] = &[
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
    "host",
    "hostname",
];
const IDENTIFIER_WORDS: &[&str] = &[
    "id", "name", "key", "ref", "branch", "revision", "rev", "tag", "commit", "user", "username",
    "slug", "category", "title", "label", "type",
];
const FREE_TEXT_WORDS: &[&str] = &[
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
    "input",
    "value",
];

fn has(list: &[String], wanted: &[&str]) -> bool {
    list.iter().any(|w| wanted.contains(&w.as_str()))
}

/// The kind a list of words names, if any (URL, path, command, SQL, identifier, free text,
/// in that order).
fn kind_named(list: &[String]) -> Option<PointKind> {
    if has(list, URL_WORDS) {
        Some(PointKind::Url)
    } else if has(list, PATH_WORDS) {
        Some(PointKind::Path)
    } else if has(list, COMMAND_WORDS) {
        Some(PointKind::Command)
    } else if has(list, SQL_WORDS) {
        Some(PointKind::Sql)
    } else if has(list, IDENTIFIER_WORDS) {
        Some(PointKind::Identifier)
    } else if has(list, FREE_TEXT_WORDS) {
        Some(PointKind::FreeText)
    } else {
        None
    }
}

/// The kind a description names: only the strong kinds, from a few telling words.
fn kind_described(list: &[String]) -> Option<PointKind> {
    if has(list, URL_WORDS) {
        Some(PointKind::Url)
    } else if has(list, &["path", "file", "directory", "folder"]) {
        Some(PointKind::Path)
    } else if has(list, &["sql", "query"]) {
        Some(PointKind::Sql)
    } else if has(list, &["command", "shell"]) {
        Some(PointKind::Command)
    } else {
        None
    }
}

/// What a tool as a whole works on, from its name (`create_directory`, `init_repo`,
/// `export_workbook`) and description: a point the leaf says nothing about (a bare `name`)
/// takes it.
fn tool_kind(tool_name: &str, tool_description: &str) -> Option<PointKind> {
    let name = words(tool_name);
    let strong = |kind: &PointKind| matches!(kind, PointKind::Url | PointKind::Path);
    kind_named(&name)
        .filter(strong)
        .or_else(|| kind_described(&words(tool_description)))
}

/// Classifies a string leaf: its own name first; for a bare name (`name`, `value`, none), the
/// names above it, its description, and what the tool works on.
pub fn classify(
    names: &[String],
    description: &str,
    schema: &Value,
    tool_name: &str,
    tool_description: &str,
) -> PointKind {
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && matches!(format, "uri" | "url" | "iri" | "uri-reference")
    {
        return PointKind::Url;
    }
    let own = names.last().map(|n| words(n)).unwrap_or_default();
    let bare = own.iter().all(|w| {
        matches!(
            w.as_str(),
            "name" | "names" | "value" | "values" | "input" | "item" | "x"
        )
    });
    let own_kind = kind_named(&own);
    if let Some(kind) = own_kind
        && !bare
    {
        return kind;
    }
    let strong = |kind: &PointKind| !matches!(kind, PointKind::Identifier | PointKind::FreeText);
    // A bare leaf inside a named object (`source.name`), or described (`x`: "the file to open").
    for parent in names.iter().rev().skip(1) {
        if let Some(kind) = kind_named(&words(parent)).filter(strong) {
            return kind;
        }
    }
    kind_described(&words(description))
        .or_else(|| tool_kind(tool_name, tool_description))
        .or(own_kind)
        .unwrap_or(PointKind::FreeText)
}

/// An input schema for a tool that declared none, with the conventional parameter its name
/// and description point to, so that its attack surface is still probed. The oracles decide
/// as always; a wrong guess costs only a refused call.
fn inferred_schema(name: &str, description: &str) -> Option<Value> {
    let all = words(&format!("{name} {description}"));
    let has = |wanted: &[&str]| all.iter().any(|w| wanted.contains(&w.as_str()));
    let parameter = if has(&["url", "uri", "fetch", "http", "https", "website"]) {
        "url"
    } else if has(&["file", "directory", "path", "folder"]) {
        "path"
    } else if has(&["sql", "query", "database"]) {
        "query"
    } else if has(&["command", "shell", "execute", "run"]) {
        "command"
    } else {
        return None;
    };
    Some(
        json!({"type": "object", "required": [parameter], "properties": {parameter: {"type": "string"}}}),
    )
}

pub fn parse_tool(tool: &Value) -> Option<ToolInfo> {
    let name = tool.get("name")?.as_str()?.to_owned();
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let declared = tool
        .get("inputSchema")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let inferred_input = if declared.get("properties").is_none()
        && declared.get("$ref").is_none()
        && ["anyOf", "oneOf", "allOf"]
            .iter()
            .all(|k| declared.get(k).is_none())
    {
        inferred_schema(&name, &description)
    } else {
        None
    };
    let inferred = inferred_input.is_some();
    let input = inferred_input.unwrap_or(declared);
    let mut info = ToolInfo {
        name,
        description,
        points: Vec::new(),
        schema_problem: None,
        schema: None,
    };
    let schema = match Schema::new(input, SchemaLimits::default()) {
        Ok(schema) => schema,
        Err(error) => {
            info.schema_problem = Some(error.to_string());
            return Some(info);
        }
    };
    if let Some(unchecked) = schema.unchecked() {
        info.schema_problem = Some(format!(
            "calls cannot be checked against the schema: {unchecked}"
        ));
    }
    match schema.leaves() {
        Ok(leaves) => {
            info.points = leaves
                .into_iter()
                .map(|leaf| Point {
                    kind: classify(
                        &leaf.names,
                        &leaf.description,
                        &leaf.schema,
                        &info.name,
                        &info.description,
                    ),
                    directory: is_directory_like(&leaf.names, &leaf.description)
                        || words(&info.name).iter().any(|w| is_directory_word(w)),
                    pointer: leaf.pointer,
                    required: leaf.required,
                    inferred,
                    name: leaf.name,
                    route: leaf.route,
                    schema: leaf.schema,
                })
                .collect();
        }
        Err(error) => info.schema_problem = Some(error.to_string()),
    }
    info.schema = Some(Arc::new(schema));
    // A schema that admits no call at all is a problem the report names.
    if info.schema_problem.is_none()
        && let Err(error) = info.arguments(None, &Baselines::default(), 0)
    {
        info.schema_problem = Some(error.to_string());
    }
    Some(info)
}

pub async fn list_all(
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

/// Lists tools, prompts, resources and resource templates (a server without one of the last
/// three just has an empty listing of it).
pub async fn discover(connection: &mut Connection) -> Result<Discovery, TargetError> {
    let mut listings = Listings::default();
    for (method, field) in LISTING_METHODS {
        let mut items = match list_all(connection, method, field).await {
            Ok(items) => items,
            Err(error) if method == "tools/list" => return Err(error),
            Err(_) => Vec::new(),
        };
        items.truncate(MAX_LISTED);
        *listings.slot(method) = items;
    }
    // Prompts with arguments and resource templates with variables are attacked like tools
    // ([`crate::surface`]).
    let tools = listings
        .tools
        .iter()
        .filter_map(parse_tool)
        .chain(
            listings
                .prompts
                .iter()
                .filter_map(crate::surface::prompt_tool),
        )
        .chain(
            listings
                .resource_templates
                .iter()
                .chain(&crate::surface::direct_read_templates(
                    &listings.resources,
                    &listings.resource_templates,
                ))
                .filter_map(crate::surface::template_tool),
        )
        .chain(completion_tools(connection.capabilities(), &listings))
        .collect();
    Ok(Discovery {
        tools,
        resources: listings.resources.len(),
        prompts: listings.prompts.len(),
        listings,
    })
}

/// The completable arguments of the listed prompts and templates, for a server that declares
/// `completions` ([`crate::surface::completion_tools`]).
fn completion_tools(capabilities: &Value, listings: &Listings) -> Vec<ToolInfo> {
    if capabilities.get("completions").is_none() {
        return Vec::new();
    }
    let prompts = listings
        .prompts
        .iter()
        .flat_map(|p| crate::surface::completion_tools(Some(p), None));
    let templates = listings
        .resource_templates
        .iter()
        .flat_map(|t| crate::surface::completion_tools(None, Some(t)));
    prompts.chain(templates).collect()
}

/// How many baseline variants a tool may be tried with before it counts as refusing them.
pub const BASELINE_VARIANTS: usize = 6;

/// What baseline strings may point at: the sandbox and the canary listener, when the harness
/// staged them for the target.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    /// The sandbox's absolute path (stdio targets); `None` for HTTP targets.
    pub sandbox: Option<String>,
    /// The canary listener's base URL.
    pub listener: Option<String>,
}

impl Baselines {
    /// `name` inside the sandbox: absolute (when the sandbox is known), then relative.
    fn inside(&self, name: &str) -> Vec<String> {
        let relative = if name.is_empty() {
            ".".to_owned()
        } else {
            name.to_owned()
        };
        match &self.sandbox {
            Some(sandbox) if name.is_empty() => vec![sandbox.clone(), relative],
            Some(sandbox) => vec![format!("{sandbox}/{name}"), relative],
            None => vec![relative],
        }
    }

    /// The path candidates for a leaf, best first: an existing file, the sandbox directory,
    /// or a fresh name (for tools that create what they are given), each absolute and
    /// relative; the scratch file first for tools that delete or move.
    fn paths(&self, directory_first: bool, destructive: bool, ordinal: usize) -> Vec<String> {
        let file = self.inside("readme.txt");
        let directory = self.inside("");
        let fresh = self.inside(&format!("mcp-harness-new-{ordinal}"));
        let scratch = self.inside(crate::stage::SCRATCH_FILE);
        let order: Vec<Vec<String>> = if destructive {
            vec![scratch, fresh, directory]
        } else if directory_first {
            vec![directory, file, fresh]
        } else {
            vec![file, directory, fresh]
        };
        let mut out: Vec<String> = Vec::new();
        for value in order.into_iter().flatten() {
            if !out.contains(&value) {
                out.push(value);
            }
        }
        out
    }

    /// The preferred strings for a leaf of `tool` in `variant`: the candidates of its kind,
    /// starting with the `variant`-th (see [`Baselines::paths`]).
    pub fn preferences(&self, tool: &ToolInfo, leaf: &LeafView<'_>, variant: usize) -> Vec<String> {
        let kind = classify(
            leaf.names,
            leaf.description,
            leaf.schema,
            &tool.name,
            &tool.description,
        );
        let mut values = match kind {
            PointKind::Path => {
                let directory_first = is_directory_like(leaf.names, leaf.description)
                    || (leaf.name.is_empty() || leaf.name == "name")
                        && words(&tool.name).iter().any(|w| is_directory_word(w));
                self.paths(directory_first, is_destructive(&tool.name), leaf.ordinal)
            }
            PointKind::Url => {
                let listener = self
                    .listener
                    .as_ref()
                    .map(|l| format!("{l}/baseline"))
                    .unwrap_or_else(|| "https://example.com/".to_owned());
                vec![listener, "https://example.com/".to_owned()]
            }
            PointKind::Command => vec!["echo".to_owned()],
            PointKind::Identifier | PointKind::FreeText if is_revision_like(leaf.names) => {
                vec!["HEAD".to_owned(), "main".to_owned()]
            }
            _ => Vec::new(),
        };
        if !values.is_empty() {
            let rotation = variant % values.len();
            values.rotate_left(rotation);
        }
        values
    }
}

/// Whether a tool's name says it deletes or moves what it is given: its baseline is the
/// scratch file, never a file other calls need.
pub fn is_destructive(tool_name: &str) -> bool {
    words(tool_name).iter().any(|w| {
        matches!(
            w.as_str(),
            "delete"
                | "remove"
                | "rm"
                | "unlink"
                | "drop"
                | "destroy"
                | "purge"
                | "erase"
                | "move"
                | "mv"
                | "rename"
                | "truncate"
                | "wipe"
                | "clear"
        )
    })
}

fn is_directory_word(word: &str) -> bool {
    matches!(
        word,
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
            | "mkdir"
    )
}

/// True when a path leaf names a directory or repository rather than a file.
fn is_directory_like(names: &[String], description: &str) -> bool {
    let own = names.last().map(|n| words(n)).unwrap_or_default();
    own.iter().any(|w| is_directory_word(w))
        || (own.iter().all(|w| w == "path")
            && words(description)
                .iter()
                .take(6)
                .any(|w| is_directory_word(w)))
}

/// True when a leaf's name ends in a word for a git revision (`branch`, `baseRef`, `target`),
/// not merely contains one (`branch_type` is something else).
fn is_revision_like(names: &[String]) -> bool {
    let last = names
        .last()
        .and_then(|name| split_words(name).pop())
        .unwrap_or_default();
    matches!(
        last.as_str(),
        "branch" | "revision" | "rev" | "ref" | "commit" | "target" | "base"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, schema: Value) -> PointKind {
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        classify(&[name.to_owned()], &description, &schema, "tool", "")
    }

    #[test]
    fn points_are_classified_by_schema_name_description_and_tool() {
        let s = json!({"type": "string"});
        assert_eq!(kind("path", s.clone()), PointKind::Path);
        assert_eq!(kind("repo_path", s.clone()), PointKind::Path);
        assert_eq!(kind("filePath", s.clone()), PointKind::Path);
        assert_eq!(kind("paths", s.clone()), PointKind::Path);
        assert_eq!(kind("url", s.clone()), PointKind::Url);
        assert_eq!(
            kind("target", json!({"type": "string", "format": "uri"})),
            PointKind::Url
        );
        assert_eq!(kind("name_contains", s.clone()), PointKind::Sql);
        assert_eq!(kind("sql", s.clone()), PointKind::Sql);
        assert_eq!(kind("command", s.clone()), PointKind::Command);
        assert_eq!(kind("branch", s.clone()), PointKind::Identifier);
        assert_eq!(kind("category", s.clone()), PointKind::Identifier);
        assert_eq!(kind("content", s.clone()), PointKind::FreeText);
        assert_eq!(
            kind(
                "content",
                json!({"type": "string", "description": "Text to write; replaces the file"})
            ),
            PointKind::FreeText,
            "an explicit name wins over the description"
        );
        assert_eq!(
            kind(
                "x",
                json!({"type": "string", "description": "The file to open"})
            ),
            PointKind::Path
        );
        // A parent's name and the tool's purpose decide for a bare leaf.
        assert_eq!(
            classify(&["source".into(), "value".into()], "", &s, "copy", ""),
            PointKind::Path
        );
        assert_eq!(
            classify(&["name".into()], "", &s, "create_directory", ""),
            PointKind::Path
        );
        assert_eq!(
            classify(&["name".into()], "", &s, "init_repo", ""),
            PointKind::Path
        );
        assert_eq!(
            classify(&["name".into()], "", &s, "get_user", ""),
            PointKind::Identifier,
            "a bare name in a tool about nothing in particular stays an identifier"
        );
    }

    #[test]
    fn a_tool_with_an_empty_schema_gets_an_inferred_point() {
        let tool = parse_tool(&json!({"name": "read_file", "description": "Read a file", "inputSchema": {"$schema": "http://json-schema.org/draft-07/schema#"}})).unwrap();
        assert_eq!(tool.points.len(), 1);
        let point = &tool.points[0];
        assert!(point.inferred && point.kind == PointKind::Path && point.pointer == "/path");
        let declared_empty = parse_tool(
            &json!({"name": "read_file", "inputSchema": {"type": "object", "properties": {}}}),
        )
        .unwrap();
        assert!(
            declared_empty.points.is_empty(),
            "a tool that declares no parameters gets none"
        );
        assert_eq!(
            declared_empty
                .arguments(None, &Baselines::default(), 0)
                .unwrap(),
            json!({})
        );
    }

    #[test]
    fn nested_models_give_points_and_calls_that_reach_them() {
        let tool = parse_tool(&json!({"name": "search", "inputSchema": {"type": "object",
            "$defs": {"Filter": {"type": "object", "required": ["category"], "properties": {
                "category": {"type": "string"}, "title": {"type": "string"}}}},
            "required": ["filter", "files"],
            "properties": {
                "filter": {"$ref": "#/$defs/Filter"},
                "files": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["path"],
                    "properties": {"path": {"type": "string"}}}},
                "op": {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]}}}}))
        .unwrap();
        let pointers: Vec<(&str, PointKind)> = tool
            .points
            .iter()
            .map(|p| (p.pointer.as_str(), p.kind))
            .collect();
        assert_eq!(
            pointers,
            [
                ("/files/0/path", PointKind::Path),
                ("/filter/category", PointKind::Identifier),
                ("/filter/title", PointKind::Identifier)
            ]
        );
        let staged = Baselines {
            sandbox: Some("/s".into()),
            listener: None,
        };
        let title = tool.point("/filter/title").unwrap();
        let arguments = tool.arguments(Some(title), &staged, 0).unwrap();
        assert_eq!(arguments["files"][0]["path"], "/s/readme.txt");
        assert_eq!(arguments["filter"]["title"], "sample");
        let attacked = with_value_at(arguments, &title.pointer, json!("P"));
        assert_eq!(attacked["filter"]["title"], "P");
    }

    #[test]
    fn path_baselines_prefer_the_sandbox_to_a_default_and_rotate_through_variants() {
        let tool = parse_tool(&json!({"name": "g", "inputSchema": {"type": "object", "required": ["repo_path", "file"], "properties": {
            "repo_path": {"type": "string", "default": "."}, "file": {"type": "string"}}}}))
        .unwrap();
        let staged = Baselines {
            sandbox: Some("/s".into()),
            listener: Some("http://127.0.0.1:9".into()),
        };
        assert_eq!(
            tool.arguments(None, &staged, 0).unwrap(),
            json!({"repo_path": "/s", "file": "/s/readme.txt"})
        );
        assert_eq!(
            tool.arguments(None, &staged, 1).unwrap(),
            json!({"repo_path": ".", "file": "readme.txt"})
        );
        assert_eq!(
            tool.arguments(None, &staged, 4).unwrap(),
            json!({"repo_path": "/s/mcp-harness-new-0", "file": "/s/mcp-harness-new-0"})
        );
        let delete = parse_tool(&json!({"name": "delete_file", "inputSchema": {"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}}})).unwrap();
        assert_eq!(
            delete.arguments(None, &staged, 0).unwrap(),
            json!({"path": "/s/mcp-harness-scratch.txt"}),
            "a tool that deletes gets the scratch file"
        );
        let diff = parse_tool(&json!({"name": "git_diff", "inputSchema": {"type": "object", "required": ["target", "branch_type", "baseRef"], "properties": {
            "target": {"type": "string"}, "branch_type": {"type": "string"}, "baseRef": {"type": "string"}}}}))
        .unwrap();
        assert_eq!(
            diff.arguments(None, &staged, 0).unwrap(),
            json!({"target": "HEAD", "branch_type": "sample", "baseRef": "HEAD"}),
            "a name ending in a revision word gets HEAD"
        );
        let fetch = parse_tool(&json!({"name": "fetch", "inputSchema": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}})).unwrap();
        assert_eq!(
            fetch.arguments(None, &staged, 0).unwrap(),
            json!({"url": "http://127.0.0.1:9/baseline"})
        );
    }

    #[test]
    fn an_unsatisfiable_schema_is_named_on_the_tool() {
        let tool = parse_tool(
            &json!({"name": "t", "inputSchema": {"type": "object", "required": ["a"],
            "properties": {"a": {"type": "string", "minLength": 9, "maxLength": 3}}}}),
        )
        .unwrap();
        assert!(
            tool.schema_problem
                .as_deref()
                .is_some_and(|p| p.contains("maxLength is below minLength")),
            "{:?}",
            tool.schema_problem
        );
    }
}
