//! The inputs of `mcp-harness fuzz`: for one tool and one case number, one argument object,
//! the same every time for the same seed.
//!
//! Three kinds, in turn: *valid-ish* (an instance the schema engine built, one string or number
//! leaf replaced by an edge value: empty, blank, long, control and bidirectional characters,
//! zero, negative, huge), *near-valid* (one constraint broken: a property removed, a node of
//! another type, a string one past `maxLength`, a value outside `enum`), and *hostile* (the
//! payloads of the attack families, from `mcp-attack` and the stage: climbs to the outside
//! canary in every encoding, SSRF URLs to the stage's listener, SQL fragments, shell fragments
//! that create a proof file, a value nested deep). Whether a case is valid is never assumed
//! from its kind: the tool's schema validator decides ([`Case::schema_valid`]).
//!
//! Cost: building a case is a clone of a base instance and a few edits; the base instances are
//! built once per tool (one per string leaf, bounded by the schema engine's limits).

use crate::schema::{Schema, no_preferences};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::hash::{Hash, Hasher};

/// What the stage offers the hostile cases.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// The canary in the sandbox's `_evil` sibling, relative to the sandbox (what a
    /// string-prefix check admits).
    pub evil_relative: String,
    /// The outside canary file, relative to the sandbox.
    pub outside_relative: String,
    /// The outside canary file, absolute.
    pub outside_absolute: String,
    /// The listener's URL (SSRF), when there is one.
    pub listener_url: Option<String>,
    /// A command that creates the proof file (command injection).
    pub proof_command: String,
}

/// The three kinds of case, in the order they take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseKind {
    Valid,
    NearValid,
    Hostile,
}

/// One input for one tool.
#[derive(Debug, Clone)]
pub struct Case {
    pub kind: CaseKind,
    pub arguments: Value,
    /// What was changed from a schema-built instance, in words.
    pub change: String,
}

impl Case {
    /// Whether the tool's schema allows these arguments (`None`: the schema has no validator).
    pub fn schema_valid(&self, schema: &Schema) -> Option<bool> {
        schema.is_valid(&self.arguments)
    }
}

/// The schema-built instances cases start from: the minimal one and one per string leaf.
pub fn bases(schema: &Schema) -> Vec<Value> {
    let mut bases = Vec::new();
    if let Ok(minimal) = schema.instance(&[], &no_preferences) {
        bases.push(minimal);
    }
    if let Ok(leaves) = schema.leaves() {
        for leaf in leaves.iter().take(32) {
            if let Ok(instance) = schema.instance(&leaf.route, &no_preferences)
                && !bases.contains(&instance)
            {
                bases.push(instance);
            }
        }
    }
    if bases.is_empty() {
        bases.push(json!({}));
    }
    bases
}

/// The random source of case `index` of `tool` under `seed`: the same triple, the same case.
fn rng_for(seed: u64, tool: &str, index: u64) -> StdRng {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (seed, tool, index).hash(&mut hasher);
    StdRng::seed_from_u64(hasher.finish())
}

/// Every JSON pointer in `value` whose node satisfies `keep`.
fn pointers(value: &Value, keep: &dyn Fn(&Value) -> bool) -> Vec<String> {
    fn walk(value: &Value, here: String, keep: &dyn Fn(&Value) -> bool, out: &mut Vec<String>) {
        if keep(value) {
            out.push(here.clone());
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{here}/{escaped}"), keep, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{here}/{i}"), keep, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), keep, &mut out);
    out
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.random_range(0..items.len())])
}

/// Edge values a string leaf gets in valid-ish cases.
fn edge_strings() -> Vec<String> {
    vec![
        String::new(),
        " ".into(),
        "a".into(),
        "0".into(),
        "null".into(),
        "x".repeat(1000),
        "é🙂\u{202e}\u{0}\u{7}".into(),
        "\n\r\t".into(),
        "${x}{{x}}%s%n".into(),
    ]
}

/// Edge values a number leaf gets.
fn edge_numbers() -> Vec<Value> {
    vec![
        json!(0),
        json!(-1),
        json!(1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(0.5),
    ]
}

/// The payloads a string leaf gets in hostile cases, the families interleaved (a climb, an
/// SSRF URL, an SQL fragment, a shell fragment, the next climb...) so that every family reaches
/// every leaf within the first few dozen hostile cases.
fn hostile_strings(targets: &Targets, marker: &str) -> Vec<String> {
    let forms = |target: &str| -> Vec<String> {
        mcp_attack::paths::encodings(target)
            .into_iter()
            .map(|(_, form)| form)
            .collect()
    };
    let climbs = interleave(&[
        forms(&targets.outside_relative),
        forms(&targets.evil_relative).into_iter().take(4).collect(),
        forms(&targets.outside_absolute),
    ]);
    let mut urls = Vec::new();
    if let Some(url) = &targets.listener_url {
        let parsed = url::Url::parse(url).ok();
        let port = parsed.as_ref().and_then(|u| u.port()).unwrap_or(80);
        for host in [
            "127.0.0.1",
            "localhost",
            "2130706433",
            "[::ffff:127.0.0.1]",
            "0x7f.1",
        ] {
            urls.push(format!("http://{host}:{port}/fuzz/{marker}"));
        }
    }
    let sql: Vec<String> = mcp_attack::injection::SQL_FRAGMENTS
        .iter()
        .map(|f| (*f).to_owned())
        .collect();
    let shell = mcp_attack::injection::shell_fragments_with(&targets.proof_command);
    let mut payloads = interleave(&[climbs, urls, sql, shell]);
    payloads.insert(4.min(payloads.len()), "A".repeat(64 * 1024));
    payloads
}

/// The first of each list, then the second of each, and so on.
fn interleave(lists: &[Vec<String>]) -> Vec<String> {
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| lists.iter().filter_map(move |list| list.get(i).cloned()))
        .collect()
}

/// Case `index` of `tool`.
pub fn case(
    seed: u64,
    tool: &str,
    index: u64,
    bases: &[Value],
    schema: Option<&Schema>,
    targets: &Targets,
) -> Case {
    let mut rng = rng_for(seed, tool, index);
    let base = pick(&mut rng, bases).cloned().unwrap_or_else(|| json!({}));
    let mut arguments = base;
    let kind = match index % 3 {
        0 => CaseKind::Valid,
        1 => CaseKind::NearValid,
        _ => CaseKind::Hostile,
    };
    let change = match kind {
        CaseKind::Valid => valid_change(&mut arguments, index),
        CaseKind::NearValid => near_valid_change(&mut rng, &mut arguments, schema),
        CaseKind::Hostile => hostile_change(&mut rng, &mut arguments, targets, index),
    };
    Case {
        kind,
        arguments,
        change,
    }
}

/// Valid-ish case j (`index / 3`) sets leaf j % leaves (strings and numbers) to that leaf's
/// type's edge value j / leaves: every leaf gets the empty string (or 0) within the first round.
fn valid_change(arguments: &mut Value, index: u64) -> String {
    let leaves = pointers(arguments, &|v| v.is_string() || v.is_number());
    if leaves.is_empty() {
        return "as built from the schema".into();
    }
    let j = (index / 3) as usize;
    let pointer = leaves[j % leaves.len()].clone();
    let round = j / leaves.len();
    let Some(slot) = arguments.pointer_mut(&pointer) else {
        return "as built from the schema".into();
    };
    if slot.is_number() {
        let numbers = edge_numbers();
        let value = numbers[round % numbers.len()].clone();
        *slot = value.clone();
        return format!("{pointer} = {value}");
    }
    let strings = edge_strings();
    let value = strings[round % strings.len()].clone();
    let shown = crate::connection::excerpt(&format!("{value:?}"), 40);
    *slot = Value::String(value);
    format!("{pointer} = {shown}")
}

fn near_valid_change(rng: &mut StdRng, arguments: &mut Value, schema: Option<&Schema>) -> String {
    let leaves = schema.and_then(|s| s.leaves().ok()).unwrap_or_default();
    // One past maxLength, or outside enum, where the leaf says so and is in this instance.
    let constrained: Vec<_> = leaves
        .iter()
        .filter(|l| arguments.pointer(&l.pointer).is_some())
        .filter(|l| l.schema.get("maxLength").is_some() || l.schema.get("enum").is_some())
        .collect();
    let choice = rng.random_range(0..4);
    if choice == 0
        && let Some(leaf) = pick(rng, &constrained)
    {
        let (value, said) = match leaf.schema.get("maxLength").and_then(Value::as_u64) {
            Some(max) if max < 100_000 => (
                "x".repeat(max as usize + 1),
                format!("one past maxLength {max}"),
            ),
            _ => ("__not_in_enum__".to_owned(), "outside enum".to_owned()),
        };
        if let Some(slot) = arguments.pointer_mut(&leaf.pointer) {
            *slot = Value::String(value);
        }
        return format!("{} {said}", leaf.pointer);
    }
    let properties = pointers(arguments, &|_| true)
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>();
    let Some(pointer) = pick(rng, &properties).cloned() else {
        *arguments = json!("not an object");
        return "the arguments are a string".into();
    };
    if choice == 1 {
        let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", &pointer));
        let last = last.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = arguments.pointer_mut(parent) {
            map.remove(&last);
            return format!("{pointer} removed");
        }
    }
    let Some(slot) = arguments.pointer_mut(&pointer) else {
        return "unchanged".into();
    };
    let replacement = match slot {
        Value::String(_) => json!(12345),
        Value::Number(_) => json!("not a number"),
        Value::Bool(_) => json!("true"),
        Value::Array(_) => json!({"not": "an array"}),
        Value::Object(_) => json!("not an object"),
        Value::Null => json!([]),
    };
    *slot = replacement.clone();
    format!("{pointer} = {replacement} (another type)")
}

fn hostile_change(
    rng: &mut StdRng,
    arguments: &mut Value,
    targets: &Targets,
    index: u64,
) -> String {
    let strings = pointers(arguments, &|v| v.is_string());
    if rng.random_bool(0.1) || strings.is_empty() {
        // A value nested deep where a property is, within the harness's own caps.
        let mut deep = json!("bottom");
        for _ in 0..60 {
            deep = json!([deep]);
        }
        let objects = pointers(arguments, &|v| v.is_object());
        let parent = pick(rng, &objects).cloned().unwrap_or_default();
        if let Some(Value::Object(map)) = arguments.pointer_mut(&parent) {
            let key = map
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "mcp_harness_fuzz".into());
            map.insert(key.clone(), deep);
            return format!("{parent}/{key} nested 60 deep");
        }
        return "unchanged".into();
    }
    // Systematic, not random: hostile case k puts payload k / leaves into leaf k % leaves, so
    // every leaf gets every family early and every payload in turn.
    let marker = format!("case{index}");
    let payloads = hostile_strings(targets, &marker);
    let k = (index / 3) as usize;
    let pointer = strings[k % strings.len()].clone();
    let payload = payloads[(k / strings.len()) % payloads.len().max(1)].clone();
    let shown = crate::connection::excerpt(&format!("{payload:?}"), 80);
    if let Some(slot) = arguments.pointer_mut(&pointer) {
        *slot = Value::String(payload);
    }
    format!("{pointer} = {shown}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaLimits;

    fn schema() -> Schema {
        Schema::new(
            json!({
                "type": "object",
                "properties": {
                    "note": {"type": "object", "properties": {
                        "title": {"type": "string", "maxLength": 8},
                        "kind": {"enum": ["a", "b"]}
                    }, "required": ["title", "kind"]},
                    "count": {"type": "integer"}
                },
                "required": ["note"]
            }),
            SchemaLimits::default(),
        )
        .unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_case_and_another_seed_another() {
        let schema = schema();
        let bases = bases(&schema);
        let targets = Targets {
            evil_relative: "../sandbox_evil/secret.txt".into(),
            outside_relative: "../outside/canary.txt".into(),
            outside_absolute: "/tmp/x/outside/canary.txt".into(),
            listener_url: Some("http://127.0.0.1:9/".into()),
            proof_command: "touch /tmp/x/proof".into(),
        };
        let all = |seed| {
            (0..60)
                .map(|i| case(seed, "t", i, &bases, Some(&schema), &targets).arguments)
                .collect::<Vec<_>>()
        };
        assert_eq!(all(7), all(7));
        assert_ne!(all(7), all(8));
        let cases: Vec<Case> = (0..300)
            .map(|i| case(7, "t", i, &bases, Some(&schema), &targets))
            .collect();
        // Each kind yields both inputs the schema allows and inputs it refuses.
        assert!(cases.iter().any(|c| c.schema_valid(&schema) == Some(true)));
        assert!(
            cases
                .iter()
                .any(|c| c.kind == CaseKind::NearValid && c.schema_valid(&schema) == Some(false))
        );
        assert!(
            cases
                .iter()
                .any(|c| c.change.contains("one past maxLength 8"))
        );
        assert!(
            cases
                .iter()
                .any(|c| c.arguments.to_string().contains("outside/canary.txt"))
        );
    }
}
