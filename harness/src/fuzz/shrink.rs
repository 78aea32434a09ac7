//! Delta debugging over JSON: the simpler values a failing input could be, biggest cuts first.
//!
//! [`candidates`] lists, for the whole value and then for every node inside it: the node
//! removed (a property of an object, an item of an array), a string emptied, halved or cut by
//! one character, a number made 0, a nested value replaced by its first child. The caller keeps
//! the first candidate that still fails the same check and asks again, so a 64 KiB payload in
//! a deep object ends as the few characters and the one property that matter.
//!
//! Cost: at most [`MAX_CANDIDATES`] values per round, each a clone of the input (inputs are
//! bounded by the schema engine and the harness's caps).

use serde_json::Value;

/// Candidates listed per round.
pub const MAX_CANDIDATES: usize = 200;

/// Simpler variants of `value`, biggest cuts first.
pub fn candidates(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    variants(value, &mut |variant| out.push(variant));
    out.truncate(MAX_CANDIDATES);
    out
}

/// Calls `emit` with each simpler variant of `value` (the whole value rebuilt around the
/// changed node).
fn variants(value: &Value, emit: &mut dyn FnMut(Value)) {
    match value {
        Value::Object(map) => {
            for key in map.keys() {
                let mut smaller = map.clone();
                smaller.remove(key);
                emit(Value::Object(smaller));
            }
            for (key, child) in map {
                variants(child, &mut |variant| {
                    let mut changed = map.clone();
                    changed.insert(key.clone(), variant);
                    emit(Value::Object(changed));
                });
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first()
                && (first.is_array() || first.is_object())
                && items.len() == 1
            {
                emit(first.clone());
            }
            for i in 0..items.len() {
                let mut smaller = items.clone();
                smaller.remove(i);
                emit(Value::Array(smaller));
            }
            for (i, child) in items.iter().enumerate() {
                variants(child, &mut |variant| {
                    let mut changed = items.clone();
                    changed[i] = variant;
                    emit(Value::Array(changed));
                });
            }
        }
        Value::String(text) if !text.is_empty() => {
            emit(Value::String(String::new()));
            let chars: Vec<char> = text.chars().collect();
            if chars.len() > 1 {
                emit(Value::String(chars[..chars.len() / 2].iter().collect()));
                emit(Value::String(chars[chars.len() / 2..].iter().collect()));
                emit(Value::String(chars[..chars.len() - 1].iter().collect()));
                emit(Value::String(chars[1..].iter().collect()));
            }
        }
        Value::Number(n) if n.as_f64() != Some(0.0) => emit(Value::from(0)),
        Value::Bool(true) => emit(Value::Bool(false)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shrinks `value` against `fails` the way the fuzzer does.
    fn shrink(mut value: Value, fails: impl Fn(&Value) -> bool) -> Value {
        'outer: loop {
            for candidate in candidates(&value) {
                if fails(&candidate) {
                    value = candidate;
                    continue 'outer;
                }
            }
            return value;
        }
    }

    #[test]
    fn a_failure_shrinks_to_what_matters() {
        let input =
            json!({"a": {"b": ["x", {"c": "hello ../../etc/passwd world"}], "d": 7}, "e": true});
        let shrunk = shrink(input, |v| v.to_string().contains("../"));
        assert_eq!(shrunk, json!({"a": {"b": {"c": "../"}}}));
        let empty_nested = json!({"note": {"title": "", "body": "long text"}, "tags": ["a", "b"]});
        let shrunk = shrink(empty_nested, |v| {
            v.pointer("/note/title") == Some(&json!(""))
        });
        assert_eq!(shrunk, json!({"note": {"title": ""}}));
    }

    #[test]
    fn nothing_simpler_than_the_simplest() {
        assert!(candidates(&json!({})).is_empty());
        assert!(candidates(&json!("")).is_empty());
        assert!(candidates(&json!(0)).is_empty());
    }
}
