//! The conjunction of two schemas, as one schema the generator can read: `allOf` branches, a
//! `$ref` and its sibling keywords, an `anyOf` branch and the keywords around it.
//!
//! The merge is exact for what the generator reads (properties, required, types, enums,
//! bounds, lengths, items) and keeps the first of two conflicting keywords it cannot combine
//! (two different `pattern`s, two `multipleOf`s, two `anyOf`s: the second goes into `allOf`).
//! That is safe because every instance built from a merged schema is validated against the
//! original schema afterwards: a lost constraint shows up as a reported unsatisfiable schema,
//! never as an invalid baseline sent to a server.

use serde_json::{Map, Value};

/// Keywords that describe rather than constrain: the overlay's value wins.
const ANNOTATIONS: &[&str] = &["description", "title", "default", "examples", "$comment"];
const LOWER_BOUNDS: &[&str] = &[
    "minimum",
    "minLength",
    "minItems",
    "minProperties",
    "minContains",
];
const UPPER_BOUNDS: &[&str] = &[
    "maximum",
    "maxLength",
    "maxItems",
    "maxProperties",
    "maxContains",
];

/// `base` and `overlay` together: an instance valid for both is valid for the result (up to
/// the conflicts described in the module docs). `true`/`false` schemas merge as such.
pub fn merge(base: &Value, overlay: &Value) -> Value {
    let (base, overlay) = match (base, overlay) {
        (Value::Bool(false), _) | (_, Value::Bool(false)) => return Value::Bool(false),
        (Value::Object(b), Value::Object(o)) => (b, o),
        (Value::Object(_), _) => return base.clone(),
        (_, Value::Object(_)) => return overlay.clone(),
        _ => return Value::Bool(true),
    };
    let mut out: Map<String, Value> = base.clone();
    for (key, value) in overlay {
        let Some(existing) = out.get(key).cloned() else {
            out.insert(key.clone(), value.clone());
            continue;
        };
        let key = key.as_str();
        let merged = if ANNOTATIONS.contains(&key) {
            value.clone()
        } else if LOWER_BOUNDS.contains(&key) {
            pick_number(&existing, value, f64::max)
        } else if UPPER_BOUNDS.contains(&key) {
            pick_number(&existing, value, f64::min)
        } else {
            match key {
                "properties" => merge_properties(&existing, value),
                "required" => union(&existing, value),
                "type" => intersect_types(&existing, value),
                "enum" => intersect_enums(&existing, value),
                "items" | "additionalProperties" | "contains" | "propertyNames" => {
                    merge(&existing, value)
                }
                "allOf" => concat(&existing, value),
                "anyOf" | "oneOf" | "not" | "pattern" | "multipleOf" | "const" | "format"
                | "prefixItems" | "if" | "then" | "else" => {
                    if existing != *value {
                        push_all_of(&mut out, key, value);
                    }
                    existing
                }
                _ => existing,
            }
        };
        out.insert(key.to_owned(), merged);
    }
    Value::Object(out)
}

fn pick_number(a: &Value, b: &Value, choose: fn(f64, f64) -> f64) -> Value {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => {
            let chosen = choose(x, y);
            if chosen == x { a.clone() } else { b.clone() }
        }
        (Some(_), None) => a.clone(),
        _ => b.clone(),
    }
}

fn merge_properties(a: &Value, b: &Value) -> Value {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a.clone();
    };
    let mut out = a.clone();
    for (name, schema) in b {
        let merged = match out.get(name) {
            Some(existing) => merge(existing, schema),
            None => schema.clone(),
        };
        out.insert(name.clone(), merged);
    }
    Value::Object(out)
}

fn union(a: &Value, b: &Value) -> Value {
    let mut out: Vec<Value> = a.as_array().cloned().unwrap_or_default();
    for value in b.as_array().into_iter().flatten() {
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    Value::Array(out)
}

fn concat(a: &Value, b: &Value) -> Value {
    let mut out: Vec<Value> = a.as_array().cloned().unwrap_or_default();
    out.extend(b.as_array().cloned().unwrap_or_default());
    Value::Array(out)
}

fn types(value: &Value) -> Vec<String> {
    match value {
        Value::String(single) => vec![single.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// Both type constraints at once; `integer` is a `number`.
fn intersect_types(a: &Value, b: &Value) -> Value {
    let (left, right) = (types(a), types(b));
    let mut out: Vec<Value> = Vec::new();
    for t in &left {
        let kept = if right.contains(t) {
            Some(t.as_str())
        } else if (t == "integer" && right.iter().any(|r| r == "number"))
            || (t == "number" && right.iter().any(|r| r == "integer"))
        {
            Some("integer")
        } else {
            None
        };
        if let Some(kept) = kept {
            let kept = Value::from(kept);
            if !out.contains(&kept) {
                out.push(kept);
            }
        }
    }
    if out.len() == 1 {
        out.remove(0)
    } else {
        Value::Array(out)
    }
}

fn intersect_enums(a: &Value, b: &Value) -> Value {
    let right = b.as_array().cloned().unwrap_or_default();
    Value::Array(
        a.as_array()
            .into_iter()
            .flatten()
            .filter(|v| right.contains(v))
            .cloned()
            .collect(),
    )
}

/// Keeps a keyword that could not be combined as a further `allOf` branch.
fn push_all_of(out: &mut Map<String, Value>, key: &str, value: &Value) {
    let mut branch = Map::new();
    branch.insert(key.to_owned(), value.clone());
    match out.get_mut("allOf").and_then(Value::as_array_mut) {
        Some(list) => list.push(Value::Object(branch)),
        None => {
            out.insert("allOf".into(), Value::Array(vec![Value::Object(branch)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn constraints_combine_and_annotations_follow_the_overlay() {
        let merged = merge(
            &json!({"type": ["string", "null"], "minLength": 2, "maxLength": 9, "required": ["a"],
                "properties": {"a": {"type": "string"}}, "description": "base"}),
            &json!({"type": "string", "minLength": 4, "maxLength": 20, "required": ["b"],
                "properties": {"a": {"maxLength": 3}, "b": {"type": "integer"}}, "description": "local"}),
        );
        assert_eq!(merged["type"], "string");
        assert_eq!(merged["minLength"], 4);
        assert_eq!(merged["maxLength"], 9);
        assert_eq!(merged["required"], json!(["a", "b"]));
        assert_eq!(
            merged["properties"]["a"],
            json!({"type": "string", "maxLength": 3})
        );
        assert_eq!(merged["description"], "local");
        assert_eq!(
            merge(&json!({"type": "number"}), &json!({"type": "integer"}))["type"],
            "integer"
        );
        assert_eq!(merge(&json!({"a": 1}), &json!(false)), json!(false));
    }

    #[test]
    fn keywords_that_cannot_combine_are_kept_as_all_of() {
        let merged = merge(&json!({"pattern": "^a"}), &json!({"pattern": "b$"}));
        assert_eq!(merged["pattern"], "^a");
        assert_eq!(merged["allOf"], json!([{"pattern": "b$"}]));
    }
}
