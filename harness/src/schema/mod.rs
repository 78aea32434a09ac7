//! JSON Schema to instances: the values a tool's `inputSchema` allows, and the string leaves
//! inside them where a payload can go.
//!
//! [`Schema::leaves`] walks a schema and lists every string leaf an instance can have, at any
//! depth (`/request/path`, `/files/0/path`, `/filter/category`), each with the route that
//! reaches it (properties, array items, `anyOf`/`oneOf` branches). [`Schema::instance`] builds
//! one value that satisfies the schema and contains the leaf a route names, taking string
//! values from the caller's preferences (a sandbox path for a path, a listener URL for a URL)
//! when the leaf's constraints allow them. It reads local `$ref`/`$defs`/`definitions`,
//! nested objects and their required properties, arrays (`items`, `prefixItems`, tuple
//! `items`, `minItems`/`maxItems`, `uniqueItems`, `contains`), `allOf`/`anyOf`/`oneOf`,
//! `enum`/`const`, type lists including `null`, string lengths, `pattern` (strings drawn by
//! proptest's regex strategy, [`pattern`]), common `format`s, numeric bounds and `multipleOf`.
//!
//! Every instance is checked against the whole schema with the `jsonschema` crate before it is
//! returned: a schema the generator cannot satisfy is reported ([`SchemaError`]), never
//! guessed around. External `$ref`s are not fetched (no network); a schema that uses one
//! gets no validator and its instances are marked unchecked.
//!
//! Cost and failure: every walk and every instance is bounded by [`SchemaLimits`] (nesting,
//! steps, string length, items, instance bytes, leaves), so a hostile schema (a `minLength`
//! of 2e9, `minItems` of 1e9, a `$ref` loop, 10,000 levels of `$ref`s) ends in a
//! [`SchemaError`] within a fixed amount of work and memory. A `$ref` cycle that does not pass
//! through a property or an item (which would send a validator into endless recursion) is
//! refused before any validator is built.

mod merge;
pub mod pattern;

use merge::merge;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bounds on the work one walk or one instance may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaLimits {
    /// Nesting of the instance (objects and arrays), and of `$ref` chains at one node.
    pub max_depth: usize,
    /// Schema nodes visited by one walk or one instance.
    pub max_steps: usize,
    /// The longest string the generator writes (a larger `minLength` is refused).
    pub max_string_chars: usize,
    /// Items of one array, properties of one object.
    pub max_items: usize,
    /// Bytes of one instance, roughly (string bytes plus 8 a node).
    pub max_instance_bytes: usize,
    /// String leaves listed for one schema.
    pub max_leaves: usize,
    /// Bytes of the schema document itself.
    pub max_schema_bytes: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_depth: 24,
            max_steps: 20_000,
            max_string_chars: 4096,
            max_items: 64,
            max_instance_bytes: 256 * 1024,
            max_leaves: 64,
            max_schema_bytes: 1024 * 1024,
        }
    }
}

/// Why no instance (or no leaf list) could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("$ref {0:?} does not name a part of this schema (only local references are read)")]
    UnresolvedRef(String),
    #[error("$ref {0:?} refers back to itself without an object or array in between")]
    RefLoop(String),
    #[error("nested more than {0} levels deep")]
    TooDeep(usize),
    #[error("{0}")]
    TooLarge(String),
    #[error("unsatisfiable at {pointer}: {reason}")]
    Unsatisfiable { pointer: String, reason: String },
    #[error("the schema took more than {0} steps to read")]
    TooComplex(usize),
}

impl SchemaError {
    fn unsatisfiable(pointer: &str, reason: impl Into<String>) -> SchemaError {
        SchemaError::Unsatisfiable {
            pointer: if pointer.is_empty() {
                "/".to_owned()
            } else {
                pointer.to_owned()
            },
            reason: reason.into(),
        }
    }

    /// Errors that end the whole walk, rather than one branch of it.
    fn is_fatal(&self) -> bool {
        matches!(
            self,
            SchemaError::TooComplex(_) | SchemaError::RefLoop(_) | SchemaError::TooLarge(_)
        )
    }
}

/// One step of a route from the root of an instance to a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Property(String),
    Item(usize),
    /// The `anyOf`/`oneOf` branch taken at this node.
    Branch(usize),
}

/// A string leaf that instances of a schema can have.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// The JSON pointer of the leaf in an instance (`/files/0/path`).
    pub pointer: String,
    /// How to reach it, branches included.
    pub route: Vec<Step>,
    /// The nearest property name on the way (an array's name for its items).
    pub name: String,
    /// Every property name on the way, outermost first.
    pub names: Vec<String>,
    /// The leaf's description, or the nearest one above it.
    pub description: String,
    /// The leaf's own schema, with references resolved.
    pub schema: Value,
    /// True when every property on the way is required and every branch is the first: the
    /// leaf is in the minimal instance.
    pub required: bool,
}

/// What the generator asks the caller about a string leaf.
#[derive(Debug)]
pub struct LeafView<'a> {
    pub pointer: &'a str,
    pub name: &'a str,
    pub names: &'a [String],
    pub description: &'a str,
    /// The leaf's schema (constraints, `default`, `format`).
    pub schema: &'a Value,
    /// The item's position when the leaf is (inside) an array item, else 0.
    pub ordinal: usize,
}

/// The caller's preferred values for a string leaf, best first. The generator uses the first
/// that satisfies the leaf's constraints, and falls back to its own.
pub type Preferences<'a> = &'a (dyn Fn(&LeafView<'_>) -> Vec<String> + Sync);

/// No preferences: the generator's own values only.
pub fn no_preferences(_: &LeafView<'_>) -> Vec<String> {
    Vec::new()
}

/// A tool's input schema, ready to list leaves and build instances.
pub struct Schema {
    root: Value,
    validator: Option<Arc<jsonschema::Validator>>,
    /// Why there is no validator, when there is none.
    unchecked: Option<String>,
    limits: SchemaLimits,
    /// Validators for sub-schemas (combinator branches, string leaves), by their text.
    cache: Mutex<HashMap<String, Option<Arc<jsonschema::Validator>>>>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("root", &self.root)
            .field("unchecked", &self.unchecked)
            .finish()
    }
}

const MAX_CACHED_VALIDATORS: usize = 512;

fn build_validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

impl Schema {
    /// Reads a schema. Refuses (before building any validator) a document that is too large,
    /// nested too deep, or that holds a `$ref` cycle with no object or array in between.
    pub fn new(root: Value, limits: SchemaLimits) -> Result<Schema, SchemaError> {
        let (depth, bytes) = measure(&root, limits.max_depth * 4 + 1);
        if depth > limits.max_depth * 4 {
            return Err(SchemaError::TooDeep(limits.max_depth * 4));
        }
        if bytes > limits.max_schema_bytes {
            return Err(SchemaError::TooLarge(format!(
                "the schema is larger than {} bytes",
                limits.max_schema_bytes
            )));
        }
        check_ref_cycles(&root, &limits)?;
        // A validator compiles references by recursion: a long chain of them would exhaust
        // the stack, so it is refused here, as a schema nested too deep.
        if ref_chain_depth(&root, limits.max_depth * 2) > limits.max_depth * 2 {
            return Err(SchemaError::TooDeep(limits.max_depth * 2));
        }
        let (validator, unchecked) = match build_validator(&root) {
            Ok(validator) => (Some(Arc::new(validator)), None),
            Err(error) => (None, Some(error)),
        };
        Ok(Schema {
            root,
            validator,
            unchecked,
            limits,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Why instances cannot be checked (the schema does not compile, e.g. an external `$ref`).
    pub fn unchecked(&self) -> Option<&str> {
        self.unchecked.as_deref()
    }

    /// Whether `instance` satisfies the schema; `None` when there is no validator.
    pub fn is_valid(&self, instance: &Value) -> Option<bool> {
        self.validator.as_ref().map(|v| v.is_valid(instance))
    }

    /// The first reason `instance` fails the schema, if it does.
    pub fn first_error(&self, instance: &Value) -> Option<String> {
        let validator = self.validator.as_ref()?;
        validator.iter_errors(instance).next().map(|error| {
            let at = error.instance_path.to_string();
            let at = if at.is_empty() { "/".to_owned() } else { at };
            format!("{at}: {error}")
        })
    }

    /// Every string leaf an instance can have (at most [`SchemaLimits::max_leaves`]), each
    /// pointer once (the first route found).
    pub fn leaves(&self) -> Result<Vec<Leaf>, SchemaError> {
        let mut walk = Walker::new(self, &no_preferences);
        let mut out = Vec::new();
        let mut refs = Vec::new();
        walk.leaves(
            &self.root,
            &Place::root(),
            Vec::new(),
            &mut refs,
            true,
            &mut out,
        )?;
        let mut seen = std::collections::HashSet::new();
        out.retain(|leaf| seen.insert(leaf.pointer.clone()));
        Ok(out)
    }

    /// An instance that satisfies the schema and contains what `route` names (the empty route:
    /// the minimal instance, required properties only), with string leaves taken from
    /// `preferences` where they fit. Checked against the whole schema when it has a validator.
    pub fn instance(
        &self,
        route: &[Step],
        preferences: Preferences<'_>,
    ) -> Result<Value, SchemaError> {
        let mut walk = Walker::new(self, preferences);
        let value = walk.value(&self.root, &Place::root(), route)?;
        if let Some(error) = self.first_error(&value) {
            return Err(SchemaError::unsatisfiable("/", error));
        }
        Ok(value)
    }

    /// A validator for a part of this schema, with the root's `$defs` and `definitions` in
    /// reach of its references; `None` when it does not compile.
    fn part_validator(&self, part: &Value) -> Option<Arc<jsonschema::Validator>> {
        let mut document = match part {
            Value::Object(map) => map.clone(),
            Value::Bool(_) => return None,
            _ => return None,
        };
        if part.to_string().contains("$ref") {
            for key in ["$defs", "definitions"] {
                if let Some(definitions) = self.root.get(key) {
                    document
                        .entry(key.to_owned())
                        .or_insert_with(|| definitions.clone());
                }
            }
        }
        if let Some(dialect) = self.root.get("$schema") {
            document
                .entry("$schema".to_owned())
                .or_insert_with(|| dialect.clone());
        }
        let document = Value::Object(document);
        let key = document.to_string();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = cache.get(&key) {
            return found.clone();
        }
        if check_ref_cycles(&document, &self.limits).is_err() {
            return None;
        }
        let built = build_validator(&document).ok().map(Arc::new);
        if cache.len() < MAX_CACHED_VALIDATORS {
            cache.insert(key, built.clone());
        }
        built
    }
}

/// The nesting depth (stopping at `stop`) and the approximate size of a JSON value, without
/// recursion.
fn measure(value: &Value, stop: usize) -> (usize, usize) {
    let mut deepest = 0;
    let mut bytes = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        bytes += 8;
        if depth > stop {
            continue;
        }
        match node {
            Value::String(s) => bytes += s.len(),
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => {
                for (key, v) in map {
                    bytes += key.len();
                    stack.push((v, depth + 1));
                }
            }
            _ => {}
        }
    }
    (deepest, bytes)
}

/// Applicator keywords that apply at the same instance location as their parent.
const IN_PLACE: &[&str] = &["allOf", "anyOf", "oneOf"];
const IN_PLACE_SINGLE: &[&str] = &["not", "if", "then", "else", "$ref"];

/// Local `$ref`s a node leads to without the instance going one level down.
fn in_place_refs<'v>(node: &'v Value, out: &mut Vec<&'v str>, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let Some(map) = node.as_object() else {
        return;
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        out.push(reference);
    }
    for key in IN_PLACE_SINGLE {
        if *key != "$ref"
            && let Some(child) = map.get(*key)
        {
            in_place_refs(child, out, budget);
        }
    }
    for key in IN_PLACE {
        for child in map
            .get(*key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            in_place_refs(child, out, budget);
        }
    }
}

/// Refuses a schema where following `$ref`s (and in-place applicators) from some node comes
/// back to it without descending into a property or item: a validator would recurse forever.
fn check_ref_cycles(root: &Value, limits: &SchemaLimits) -> Result<(), SchemaError> {
    // Every node that carries a $ref or in-place applicators is a start; a cycle must pass
    // through a $ref target, so it is enough to start from the root and from each target.
    let mut targets: Vec<String> = vec!["#".to_owned()];
    collect_refs(root, &mut targets, limits.max_steps);
    let mut budget = limits.max_steps;
    for start in &targets {
        // Depth-first over in-place reference edges, with the path for cycle detection.
        let mut path: Vec<String> = Vec::new();
        let mut stack: Vec<(String, usize)> = vec![(start.clone(), 0)];
        while let Some((reference, depth)) = stack.pop() {
            path.truncate(depth);
            if path.contains(&reference) {
                return Err(SchemaError::RefLoop(reference));
            }
            if depth > limits.max_depth * 4 {
                return Err(SchemaError::TooDeep(limits.max_depth * 4));
            }
            if budget == 0 {
                return Err(SchemaError::TooComplex(limits.max_steps));
            }
            budget -= 1;
            let Some(node) = lookup(root, &reference) else {
                continue;
            };
            path.push(reference);
            let mut next = Vec::new();
            let mut inner_budget = 256;
            in_place_refs(node, &mut next, &mut inner_budget);
            for reference in next {
                stack.push((reference.to_owned(), depth + 1));
            }
        }
    }
    Ok(())
}

/// The longest chain of `$ref`s (a reference inside the part another reference names), up to
/// `stop + 1`; a cycle (a recursive model) counts once.
fn ref_chain_depth(root: &Value, stop: usize) -> usize {
    fn refs_inside(node: &Value) -> Vec<String> {
        let mut out = Vec::new();
        collect_refs(node, &mut out, 20_000);
        out
    }
    fn depth(
        root: &Value,
        reference: &str,
        stop: usize,
        level: usize,
        memo: &mut HashMap<String, usize>,
        in_progress: &mut Vec<String>,
    ) -> usize {
        if level > stop {
            return stop + 1;
        }
        if let Some(known) = memo.get(reference) {
            return *known;
        }
        if in_progress.iter().any(|r| r == reference) {
            return 0;
        }
        let Some(node) = lookup(root, reference) else {
            return 1;
        };
        in_progress.push(reference.to_owned());
        let mut deepest = 0;
        for inner in refs_inside(node) {
            deepest = deepest.max(depth(root, &inner, stop, level + 1, memo, in_progress));
            if deepest > stop {
                break;
            }
        }
        in_progress.pop();
        memo.insert(reference.to_owned(), deepest + 1);
        deepest + 1
    }
    let mut memo = HashMap::new();
    let mut deepest = 0;
    for reference in refs_inside(root) {
        deepest = deepest.max(depth(root, &reference, stop, 1, &mut memo, &mut Vec::new()));
        if deepest > stop {
            break;
        }
    }
    deepest
}

/// Every distinct `$ref` string in the document (bounded).
fn collect_refs(root: &Value, out: &mut Vec<String>, max: usize) {
    let mut stack = vec![root];
    let mut visited = 0;
    while let Some(node) = stack.pop() {
        visited += 1;
        if visited > max || out.len() > 1024 {
            return;
        }
        match node {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str)
                    && !out.iter().any(|r| r == reference)
                {
                    out.push(reference.to_owned());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
}

/// The part of `root` a local reference (`#`, `#/$defs/Name`, percent-encoded or not) names.
fn lookup<'v>(root: &'v Value, reference: &str) -> Option<&'v Value> {
    let fragment = reference.strip_prefix('#')?;
    if fragment.is_empty() {
        return Some(root);
    }
    let decoded = percent_encoding::percent_decode_str(fragment).decode_utf8_lossy();
    root.pointer(&decoded)
}

/// A JSON pointer token.
fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Where in the instance the walk is.
#[derive(Debug, Clone)]
struct Place {
    pointer: String,
    name: String,
    names: Vec<String>,
    description: String,
    depth: usize,
    ordinal: usize,
}

impl Place {
    fn root() -> Place {
        Place {
            pointer: String::new(),
            name: String::new(),
            names: Vec::new(),
            description: String::new(),
            depth: 0,
            ordinal: 0,
        }
    }

    fn property(&self, name: &str) -> Place {
        let mut names = self.names.clone();
        names.push(name.to_owned());
        Place {
            pointer: format!("{}/{}", self.pointer, escape_token(name)),
            name: name.to_owned(),
            names,
            description: String::new(),
            depth: self.depth + 1,
            ordinal: 0,
        }
    }

    fn item(&self, index: usize) -> Place {
        Place {
            pointer: format!("{}/{index}", self.pointer),
            name: self.name.clone(),
            names: self.names.clone(),
            description: self.description.clone(),
            depth: self.depth + 1,
            ordinal: index,
        }
    }

    /// The same place, described by `schema` when it says something.
    fn described_by(&self, schema: &Value) -> Place {
        let mut place = self.clone();
        if let Some(description) = schema.get("description").and_then(Value::as_str)
            && !description.is_empty()
        {
            place.description = description.to_owned();
        }
        place
    }
}

/// Which JSON types a schema allows, in its own order; keywords decide when `type` is absent
/// (no keyword at all: any value, which the walk treats as a string).
fn types_of(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(single)) => return vec![single.clone()],
        Some(Value::Array(list)) => {
            return list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        _ => {}
    }
    let has = |keys: &[&str]| keys.iter().any(|k| schema.get(*k).is_some());
    if has(&[
        "properties",
        "required",
        "additionalProperties",
        "minProperties",
        "maxProperties",
        "patternProperties",
        "dependentRequired",
    ]) {
        vec!["object".into()]
    } else if has(&["items", "prefixItems", "minItems", "maxItems", "contains"]) {
        vec!["array".into()]
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        vec!["number".into()]
    } else {
        vec!["string".into()]
    }
}

/// The string the generator writes where nothing else is asked for.
pub const FALLBACK_STRING: &str = "sample";

/// Example values for common string formats.
fn format_example(format: &str) -> Option<&'static str> {
    Some(match format {
        "email" | "idn-email" => "sample@example.com",
        "uri" | "url" | "iri" | "uri-reference" | "iri-reference" => "https://example.com/",
        "uri-template" => "https://example.com/{id}",
        "hostname" | "idn-hostname" => "example.com",
        "ipv4" => "192.0.2.1",
        "ipv6" => "2001:db8::1",
        "date" => "2024-01-01",
        "date-time" => "2024-01-01T00:00:00Z",
        "time" => "00:00:00Z",
        "duration" => "P1D",
        "uuid" => "00000000-0000-4000-8000-000000000000",
        "regex" => "sample",
        "json-pointer" => "/harness",
        "relative-json-pointer" => "0",
        "byte" => "aGFybmVzcw==",
        _ => return None,
    })
}

fn as_count(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| *f >= 0.0)
            .map(|f| f.ceil() as u64)
    })
}

/// The string keywords of a schema, as a schema of their own (for checking one leaf).
fn string_constraints(schema: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!("string"));
    for key in [
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "enum",
        "const",
    ] {
        if let Some(value) = schema.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    Value::Object(out)
}

/// Pads with `x` or cuts a value to a length range (in characters).
fn fit_length(value: &str, min: usize, max: Option<usize>) -> String {
    let mut out: String = match max {
        Some(max) => value.chars().take(max).collect(),
        None => value.to_owned(),
    };
    let length = out.chars().count();
    if length < min {
        out.extend(std::iter::repeat_n('x', min - length));
    }
    out
}

/// One walk or one instance: the schema, the caller's preferences and the work done so far.
struct Walker<'s> {
    schema: &'s Schema,
    preferences: Preferences<'s>,
    steps: usize,
    bytes: usize,
}

impl<'s> Walker<'s> {
    fn new(schema: &'s Schema, preferences: Preferences<'s>) -> Walker<'s> {
        Walker {
            schema,
            preferences,
            steps: 0,
            bytes: 0,
        }
    }

    fn limits(&self) -> SchemaLimits {
        self.schema.limits
    }

    fn tick(&mut self) -> Result<(), SchemaError> {
        self.steps += 1;
        if self.steps > self.limits().max_steps {
            return Err(SchemaError::TooComplex(self.limits().max_steps));
        }
        Ok(())
    }

    fn spend(&mut self, bytes: usize) -> Result<(), SchemaError> {
        self.bytes += bytes + 8;
        if self.bytes > self.limits().max_instance_bytes {
            return Err(SchemaError::TooLarge(format!(
                "an instance would be larger than {} bytes",
                self.limits().max_instance_bytes
            )));
        }
        Ok(())
    }

    /// Follows `$ref`s and merges `allOf` until neither is at the top; returns the schema and
    /// the references followed.
    fn resolve(
        &mut self,
        node: &Value,
        pointer: &str,
    ) -> Result<(Value, Vec<String>), SchemaError> {
        let mut current = match node {
            Value::Bool(true) => return Ok((json!({}), Vec::new())),
            Value::Bool(false) => {
                return Err(SchemaError::unsatisfiable(pointer, "the schema is `false`"));
            }
            Value::Object(_) => node.clone(),
            // Not a schema: read as "anything", which is what a lenient server does.
            _ => json!({}),
        };
        let mut followed: Vec<String> = Vec::new();
        let mut all_of_rounds = 0;
        loop {
            self.tick()?;
            if let Some(reference) = current.get("$ref").and_then(Value::as_str) {
                let reference = reference.to_owned();
                if followed.contains(&reference) {
                    return Err(SchemaError::RefLoop(reference));
                }
                if followed.len() >= self.limits().max_depth {
                    return Err(SchemaError::TooDeep(self.limits().max_depth));
                }
                let target = lookup(&self.schema.root, &reference)
                    .ok_or_else(|| SchemaError::UnresolvedRef(reference.clone()))?;
                let mut siblings = current.as_object().cloned().unwrap_or_default();
                siblings.remove("$ref");
                followed.push(reference);
                current = merge(target, &Value::Object(siblings));
                if let Value::Bool(false) = current {
                    return Err(SchemaError::unsatisfiable(pointer, "the schema is `false`"));
                }
                continue;
            }
            if all_of_rounds < 4
                && let Some(branches) = current.get("allOf").and_then(Value::as_array).cloned()
            {
                all_of_rounds += 1;
                let mut rest = current.as_object().cloned().unwrap_or_default();
                rest.remove("allOf");
                let mut merged = json!({});
                for branch in &branches {
                    let (resolved, refs) = self.resolve(branch, pointer)?;
                    followed.extend(refs);
                    merged = merge(&merged, &resolved);
                }
                current = merge(&merged, &Value::Object(rest));
                if let Value::Bool(false) = current {
                    return Err(SchemaError::unsatisfiable(pointer, "allOf is `false`"));
                }
                continue;
            }
            if let Some(map) = current.as_object_mut() {
                // What could not be merged in four rounds is left to the final validation.
                map.remove("allOf");
            }
            return Ok((current, followed));
        }
    }

    /// Collects the string leaves under `node` (see [`Schema::leaves`]).
    fn leaves(
        &mut self,
        node: &Value,
        place: &Place,
        route: Vec<Step>,
        refs_on_route: &mut Vec<String>,
        required: bool,
        out: &mut Vec<Leaf>,
    ) -> Result<(), SchemaError> {
        if out.len() >= self.limits().max_leaves || place.depth > self.limits().max_depth {
            return Ok(());
        }
        let (schema, followed) = match self.resolve(node, &place.pointer) {
            Ok(resolved) => resolved,
            Err(error) if error.is_fatal() => return Err(error),
            Err(_) => return Ok(()),
        };
        // A recursive model (a tree whose children are trees): its leaves are listed once.
        if followed.iter().any(|r| refs_on_route.contains(r)) {
            return Ok(());
        }
        let pushed = followed.len();
        refs_on_route.extend(followed);
        let place = place.described_by(&schema);
        let result = self.leaves_resolved(&schema, &place, route, refs_on_route, required, out);
        refs_on_route.truncate(refs_on_route.len() - pushed);
        result
    }

    fn leaves_resolved(
        &mut self,
        schema: &Value,
        place: &Place,
        route: Vec<Step>,
        refs_on_route: &mut Vec<String>,
        required: bool,
        out: &mut Vec<Leaf>,
    ) -> Result<(), SchemaError> {
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                let mut siblings = schema.as_object().cloned().unwrap_or_default();
                siblings.remove(key);
                let siblings = Value::Object(siblings);
                for (index, branch) in branches.iter().enumerate() {
                    let mut branch_route = route.clone();
                    branch_route.push(Step::Branch(index));
                    let effective = merge(&siblings, branch);
                    self.leaves(
                        &effective,
                        place,
                        branch_route,
                        refs_on_route,
                        required && index == 0,
                        out,
                    )?;
                }
                return Ok(());
            }
        }
        if schema.get("const").is_some() || schema.get("enum").is_some() {
            return Ok(());
        }
        let types = types_of(schema);
        if types.iter().any(|t| t == "object") {
            let required_names: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in properties {
                    let mut child_route = route.clone();
                    child_route.push(Step::Property(name.clone()));
                    self.leaves(
                        sub,
                        &place.property(name),
                        child_route,
                        refs_on_route,
                        required && required_names.contains(&name.as_str()),
                        out,
                    )?;
                }
            }
        }
        if types.iter().any(|t| t == "array") {
            let (prefix, rest) = item_schemas(schema);
            let min_items = as_count(schema.get("minItems")).unwrap_or(0) as usize;
            let max_items = as_count(schema.get("maxItems")).map_or(usize::MAX, |m| m as usize);
            for (index, sub) in prefix.iter().enumerate().take(max_items) {
                let mut child_route = route.clone();
                child_route.push(Step::Item(index));
                self.leaves(
                    sub,
                    &place.item(index),
                    child_route,
                    refs_on_route,
                    required && index < min_items,
                    out,
                )?;
            }
            if let Some(rest) = rest
                && rest != Value::Bool(false)
                && prefix.len() < max_items
            {
                let index = prefix.len();
                let mut child_route = route.clone();
                child_route.push(Step::Item(index));
                self.leaves(
                    &rest,
                    &place.item(index),
                    child_route,
                    refs_on_route,
                    required && index < min_items,
                    out,
                )?;
            }
        }
        if types.iter().any(|t| t == "string") && out.len() < self.limits().max_leaves {
            out.push(Leaf {
                pointer: place.pointer.clone(),
                route,
                name: place.name.clone(),
                names: place.names.clone(),
                description: place.description.clone(),
                schema: schema.clone(),
                required,
            });
        }
        Ok(())
    }

    /// A value for `node` at `place` that contains what `route` names.
    fn value(&mut self, node: &Value, place: &Place, route: &[Step]) -> Result<Value, SchemaError> {
        if place.depth > self.limits().max_depth {
            return Err(SchemaError::TooDeep(self.limits().max_depth));
        }
        let (schema, _) = self.resolve(node, &place.pointer)?;
        let place = place.described_by(&schema);
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                return self.one_of_branches(&schema, key, branches, &place, route);
            }
        }
        if let Some(constant) = schema.get("const") {
            self.spend(constant.to_string().len())?;
            return Ok(constant.clone());
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            let chosen = options
                .iter()
                .find(|v| !v.is_null())
                .or(options.first())
                .ok_or_else(|| SchemaError::unsatisfiable(&place.pointer, "an empty enum"))?;
            self.spend(chosen.to_string().len())?;
            return Ok(chosen.clone());
        }
        let types = types_of(&schema);
        let chosen = match route.first() {
            Some(Step::Property(_)) => Some("object"),
            Some(Step::Item(_)) => Some("array"),
            _ => None,
        };
        let kind: String = match chosen {
            Some(kind) if types.iter().any(|t| t == kind) || schema.get("type").is_none() => {
                kind.to_owned()
            }
            Some(kind) => {
                return Err(SchemaError::unsatisfiable(
                    &place.pointer,
                    format!("the route needs an {kind}, the schema allows {types:?}"),
                ));
            }
            None => types
                .iter()
                .find(|t| *t != "null")
                .or(types.first())
                .cloned()
                .ok_or_else(|| SchemaError::unsatisfiable(&place.pointer, "no type is allowed"))?,
        };
        match kind.as_str() {
            "object" => self.object(&schema, &place, route),
            "array" => self.array(&schema, &place, route),
            "integer" => self.number(&schema, &place, true),
            "number" => self.number(&schema, &place, false),
            "boolean" => {
                self.spend(5)?;
                Ok(schema
                    .get("default")
                    .filter(|d| d.is_boolean())
                    .cloned()
                    .unwrap_or(Value::Bool(false)))
            }
            "null" => {
                self.spend(4)?;
                Ok(Value::Null)
            }
            _ => self.string(&schema, &place),
        }
    }

    fn one_of_branches(
        &mut self,
        schema: &Value,
        key: &str,
        branches: &[Value],
        place: &Place,
        route: &[Step],
    ) -> Result<Value, SchemaError> {
        let mut siblings = schema.as_object().cloned().unwrap_or_default();
        siblings.remove(key);
        let siblings = Value::Object(siblings);
        let (order, rest): (Vec<usize>, &[Step]) = match route.first() {
            Some(Step::Branch(index)) => (vec![*index], &route[1..]),
            _ => {
                // Not null first: a baseline with a real value reaches further.
                let mut order: Vec<usize> = (0..branches.len())
                    .filter(|i| branches[*i].get("type") != Some(&json!("null")))
                    .collect();
                order.extend(
                    (0..branches.len())
                        .filter(|i| branches[*i].get("type") == Some(&json!("null"))),
                );
                (order, route)
            }
        };
        let node_validator = self.schema.part_validator(schema);
        let mut last = SchemaError::unsatisfiable(&place.pointer, format!("no {key} branch fits"));
        for index in order {
            let Some(branch) = branches.get(index) else {
                return Err(SchemaError::unsatisfiable(
                    &place.pointer,
                    format!("{key} has no branch {index}"),
                ));
            };
            let effective = merge(&siblings, branch);
            match self.value(&effective, place, rest) {
                Ok(value) => {
                    if node_validator.as_ref().is_none_or(|v| v.is_valid(&value)) {
                        return Ok(value);
                    }
                    last = SchemaError::unsatisfiable(
                        &place.pointer,
                        format!("the value built for {key} branch {index} does not satisfy {key}"),
                    );
                }
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    fn object(
        &mut self,
        schema: &Value,
        place: &Place,
        route: &[Step],
    ) -> Result<Value, SchemaError> {
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut wanted: Vec<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let forced = match route.first() {
            Some(Step::Property(name)) => Some((name.clone(), &route[1..])),
            _ => None,
        };
        if let Some((name, _)) = &forced
            && !wanted.contains(name)
        {
            wanted.push(name.clone());
        }
        let additional = schema.get("additionalProperties");
        let min_properties = as_count(schema.get("minProperties")).unwrap_or(0) as usize;
        if wanted.len().max(min_properties) > self.limits().max_items {
            return Err(SchemaError::TooLarge(format!(
                "{} needs more than {} properties",
                place.pointer,
                self.limits().max_items
            )));
        }
        let mut out = Map::new();
        let mut index = 0;
        while index < wanted.len() {
            let name = wanted[index].clone();
            index += 1;
            if out.contains_key(&name) {
                continue;
            }
            let sub = match properties.get(&name) {
                Some(sub) => sub.clone(),
                None => match additional {
                    Some(Value::Bool(false)) => {
                        return Err(SchemaError::unsatisfiable(
                            &place.pointer,
                            format!("{name:?} is required or routed to, but no property allows it"),
                        ));
                    }
                    Some(sub @ Value::Object(_)) => sub.clone(),
                    _ => json!({}),
                },
            };
            let sub_route: &[Step] = match &forced {
                Some((forced_name, rest)) if *forced_name == name => rest,
                _ => &[],
            };
            self.spend(name.len())?;
            let value = self.value(&sub, &place.property(&name), sub_route)?;
            out.insert(name.clone(), value);
            // Properties that this one makes required.
            for dependencies in ["dependentRequired", "dependencies"] {
                if let Some(list) = schema
                    .get(dependencies)
                    .and_then(|d| d.get(&name))
                    .and_then(Value::as_array)
                {
                    wanted.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
                }
            }
            if wanted.len() > self.limits().max_items {
                return Err(SchemaError::TooLarge(format!(
                    "{} needs more than {} properties",
                    place.pointer,
                    self.limits().max_items
                )));
            }
        }
        // minProperties: the optional properties in order, then made-up ones where allowed.
        let mut extra = 0;
        for (name, sub) in properties {
            if out.len() >= min_properties {
                break;
            }
            if !out.contains_key(name) {
                let value = self.value(sub, &place.property(name), &[])?;
                out.insert(name.clone(), value);
            }
        }
        while out.len() < min_properties {
            if additional == Some(&Value::Bool(false)) {
                return Err(SchemaError::unsatisfiable(
                    &place.pointer,
                    "minProperties exceeds the properties allowed",
                ));
            }
            let name = format!("mcp_harness_{extra}");
            extra += 1;
            let sub = additional
                .filter(|a| a.is_object())
                .cloned()
                .unwrap_or(json!({}));
            let value = self.value(&sub, &place.property(&name), &[])?;
            out.insert(name, value);
        }
        if let Some(max) = as_count(schema.get("maxProperties"))
            && out.len() as u64 > max
        {
            return Err(SchemaError::unsatisfiable(
                &place.pointer,
                format!(
                    "{} properties are required, at most {max} allowed",
                    out.len()
                ),
            ));
        }
        Ok(Value::Object(out))
    }

    fn array(
        &mut self,
        schema: &Value,
        place: &Place,
        route: &[Step],
    ) -> Result<Value, SchemaError> {
        let (prefix, rest) = item_schemas(schema);
        let min_items = as_count(schema.get("minItems")).unwrap_or(0);
        if min_items > self.limits().max_items as u64 {
            return Err(SchemaError::TooLarge(format!(
                "{} needs at least {min_items} items (more than {})",
                place.pointer,
                self.limits().max_items
            )));
        }
        let forced = match route.first() {
            Some(Step::Item(index)) => Some((*index, &route[1..])),
            _ => None,
        };
        let contains = schema.get("contains");
        let mut count = min_items as usize;
        if let Some((index, _)) = forced {
            count = count.max(index + 1);
        }
        if contains.is_some() {
            count = count.max(1);
        }
        if count > self.limits().max_items {
            return Err(SchemaError::TooLarge(format!(
                "{} would need more than {} items",
                place.pointer,
                self.limits().max_items
            )));
        }
        if let Some(max) = as_count(schema.get("maxItems"))
            && count as u64 > max
        {
            return Err(SchemaError::unsatisfiable(
                &place.pointer,
                format!("{count} items are needed, at most {max} allowed"),
            ));
        }
        let mut items = Vec::with_capacity(count);
        for index in 0..count {
            let mut sub = match prefix.get(index) {
                Some(sub) => sub.clone(),
                None => match &rest {
                    Some(Value::Bool(false)) => {
                        return Err(SchemaError::unsatisfiable(
                            &place.pointer,
                            format!(
                                "item {index} is needed but items are not allowed past {}",
                                prefix.len()
                            ),
                        ));
                    }
                    Some(sub) => sub.clone(),
                    None => json!({}),
                },
            };
            let sub_route: &[Step] = match forced {
                Some((forced_index, rest)) if forced_index == index => rest,
                _ => &[],
            };
            if index == 0
                && sub_route.is_empty()
                && let Some(contains) = contains
            {
                sub = merge(&sub, contains);
            }
            items.push(self.value(&sub, &place.item(index), sub_route)?);
        }
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    return Err(SchemaError::unsatisfiable(
                        &place.pointer,
                        "uniqueItems, and the items built are equal",
                    ));
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn number(
        &mut self,
        schema: &Value,
        place: &Place,
        integer: bool,
    ) -> Result<Value, SchemaError> {
        self.spend(8)?;
        let get = |key: &str| schema.get(key).and_then(Value::as_f64);
        // Draft 4 spells exclusive bounds as booleans beside minimum/maximum.
        let (mut low, mut low_open) = (get("minimum"), false);
        match schema.get("exclusiveMinimum") {
            Some(Value::Bool(true)) => low_open = true,
            Some(value) => {
                if let Some(bound) = value.as_f64()
                    && low.is_none_or(|l| bound >= l)
                {
                    low = Some(bound);
                    low_open = true;
                }
            }
            None => {}
        }
        let (mut high, mut high_open) = (get("maximum"), false);
        match schema.get("exclusiveMaximum") {
            Some(Value::Bool(true)) => high_open = true,
            Some(value) => {
                if let Some(bound) = value.as_f64()
                    && high.is_none_or(|h| bound <= h)
                {
                    high = Some(bound);
                    high_open = true;
                }
            }
            None => {}
        }
        let step = get("multipleOf").filter(|m| *m > 0.0 && m.is_finite());
        let fits = |x: f64| {
            x.is_finite()
                && (!integer || x.fract() == 0.0)
                && low.is_none_or(|l| if low_open { x > l } else { x >= l })
                && high.is_none_or(|h| if high_open { x < h } else { x <= h })
                && step.is_none_or(|m| {
                    let k = (x / m).round();
                    (k * m - x).abs() <= 1e-9 * x.abs().max(1.0)
                })
        };
        let mut candidates: Vec<f64> = Vec::new();
        if let Some(default) = schema.get("default").and_then(Value::as_f64) {
            candidates.push(default);
        }
        candidates.extend([1.0, 0.0]);
        let unit = step.unwrap_or(1.0);
        if let Some(l) = low {
            let mut start = (l / unit).ceil() * unit;
            if integer {
                start = start.ceil();
            }
            candidates.extend([start, start + unit, start + 2.0 * unit]);
            if !integer && step.is_none() {
                candidates.push(high.map_or(l + 1.0, |h| (l + h) / 2.0));
            }
        }
        if let Some(h) = high {
            let mut end = (h / unit).floor() * unit;
            if integer {
                end = end.floor();
            }
            candidates.extend([end, end - unit]);
        }
        if let Some(m) = step {
            candidates.push(m);
        }
        let chosen = candidates.into_iter().find(|x| fits(*x)).ok_or_else(|| {
            SchemaError::unsatisfiable(&place.pointer, "no number satisfies the bounds")
        })?;
        Ok(if chosen.fract() == 0.0 && chosen.abs() < 9.0e15 {
            json!(chosen as i64)
        } else {
            json!(chosen)
        })
    }

    fn string(&mut self, schema: &Value, place: &Place) -> Result<Value, SchemaError> {
        let min = as_count(schema.get("minLength")).unwrap_or(0);
        let max = as_count(schema.get("maxLength"));
        if min > self.limits().max_string_chars as u64 {
            return Err(SchemaError::TooLarge(format!(
                "{} needs a string of at least {min} characters (more than {})",
                place.pointer,
                self.limits().max_string_chars
            )));
        }
        let min = min as usize;
        let max = max.map(|m| m.min(u32::MAX as u64) as usize);
        if max.is_some_and(|max| max < min) {
            return Err(SchemaError::unsatisfiable(
                &place.pointer,
                "maxLength is below minLength",
            ));
        }
        let view = LeafView {
            pointer: &place.pointer,
            name: &place.name,
            names: &place.names,
            description: &place.description,
            schema,
            ordinal: place.ordinal,
        };
        let mut candidates = (self.preferences)(&view);
        let ordinal_suffix = if place.ordinal > 0 {
            format!("{}", place.ordinal)
        } else {
            String::new()
        };
        if place.ordinal > 0 {
            // Later items of an array: distinct values, for uniqueItems.
            candidates = candidates
                .into_iter()
                .map(|c| format!("{c}{ordinal_suffix}"))
                .collect();
        }
        if let Some(default) = schema.get("default").and_then(Value::as_str) {
            candidates.push(default.to_owned());
        }
        if let Some(example) = schema
            .get("format")
            .and_then(Value::as_str)
            .and_then(format_example)
        {
            candidates.push(example.to_owned());
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let seed = place.pointer.len() as u64 * 31 + place.ordinal as u64;
            candidates.extend(pattern::samples(pattern, 24, seed));
        }
        // A plain word that occurs in none of the stage's paths or canaries, so that a tool that
        // replaces or searches for it never mangles them.
        candidates.push(fit_length(
            &format!("{FALLBACK_STRING}{ordinal_suffix}"),
            min,
            max,
        ));
        let checker = self.schema.part_validator(&string_constraints(schema));
        for candidate in candidates {
            let length = candidate.chars().count();
            if length < min || max.is_some_and(|m| length > m) {
                continue;
            }
            let value = Value::String(candidate);
            if checker.as_ref().is_none_or(|c| c.is_valid(&value)) {
                self.spend(length)?;
                return Ok(value);
            }
        }
        Err(SchemaError::unsatisfiable(
            &place.pointer,
            "no string the harness can make satisfies the constraints",
        ))
    }
}

/// An array schema's positional item schemas, and the schema of the items after them (`None`:
/// anything; `false`: nothing more). Reads 2020-12 `prefixItems` and draft 4-2019 tuple
/// `items` with `additionalItems`.
fn item_schemas(schema: &Value) -> (Vec<Value>, Option<Value>) {
    if let Some(prefix) = schema.get("prefixItems").and_then(Value::as_array) {
        return (prefix.clone(), schema.get("items").cloned());
    }
    match schema.get("items") {
        Some(Value::Array(tuple)) => (tuple.clone(), schema.get("additionalItems").cloned()),
        Some(items) => (Vec::new(), Some(items.clone())),
        None => (Vec::new(), None),
    }
}

#[cfg(test)]
mod tests;
