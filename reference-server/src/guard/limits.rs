//! Resource limits enforced *before and during* work, never measured after it.
//!
//! The seed measured memory after the work had already run, and RSS never shrinks, so its check
//! fired late or never. Here every bound is applied up front or while streaming: request body
//! size (transport layer), JSON nesting depth, string and array sizes in tool arguments (before
//! deserialization), a per-call timeout that drops (cancels) the work's future, and a
//! per-principal cap on calls in flight.
//!
//! Cost: [`check_json_shape`] is one walk of the already-parsed argument value (linear in its
//! size, which the body limit bounds); the concurrency gate is one mutex-protected map lookup
//! and a semaphore permit.
//!
//! Failure: [`LimitError`] names the bound that was hit and its value; nothing is partially done
//! when a shape check fails. A timed-out call is cancelled at its next await point; blocking work
//! must bound itself (the sandbox and database guards do).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds applied to every call.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    pub max_string_bytes: usize,
    pub max_array_items: usize,
    #[serde(with = "duration_ms")]
    pub call_timeout: Duration,
    pub max_concurrent_calls_per_principal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_json_depth: 32,
            max_string_bytes: 256 * 1024,
            max_array_items: 10_000,
            call_timeout: Duration::from_secs(30),
            max_concurrent_calls_per_principal: 8,
        }
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Which bound was hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the arguments are nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("a string argument is longer than {0} bytes")]
    StringTooLong(usize),
    #[error("an array argument has more than {0} items")]
    ArrayTooLong(usize),
    #[error("the call took longer than {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("too many calls in flight for this principal (limit {0})")]
    TooManyConcurrentCalls(usize),
}

/// Checks nesting depth, string lengths and array lengths of a JSON value without recursion
/// (a hostile depth cannot overflow the stack here).
pub fn check_json_shape(value: &Value, limits: &Limits) -> Result<(), LimitError> {
    check_shapes(vec![(value, 1)], limits)
}

/// [`check_json_shape`] of an object given as its map (a tool call's arguments), without
/// building a `Value` around it: the object itself is level 1.
pub fn check_json_object_shape(
    object: &serde_json::Map<String, Value>,
    limits: &Limits,
) -> Result<(), LimitError> {
    if limits.max_json_depth == 0 {
        return Err(LimitError::TooDeep(0));
    }
    let mut stack = Vec::with_capacity(object.len());
    for (key, item) in object {
        if key.len() > limits.max_string_bytes {
            return Err(LimitError::StringTooLong(limits.max_string_bytes));
        }
        stack.push((item, 2));
    }
    check_shapes(stack, limits)
}

fn check_shapes(mut stack: Vec<(&Value, usize)>, limits: &Limits) -> Result<(), LimitError> {
    while let Some((value, depth)) = stack.pop() {
        if depth > limits.max_json_depth {
            return Err(LimitError::TooDeep(limits.max_json_depth));
        }
        match value {
            Value::String(text) if text.len() > limits.max_string_bytes => {
                return Err(LimitError::StringTooLong(limits.max_string_bytes));
            }
            Value::Array(items) => {
                if items.len() > limits.max_array_items {
                    return Err(LimitError::ArrayTooLong(limits.max_array_items));
                }
                stack.extend(items.iter().map(|item| (item, depth + 1)));
            }
            Value::Object(map) => {
                for (key, item) in map {
                    if key.len() > limits.max_string_bytes {
                        return Err(LimitError::StringTooLong(limits.max_string_bytes));
                    }
                    stack.push((item, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs `work` under the call timeout; on expiry the future is dropped (cancelled).
pub async fn with_timeout<T>(
    limit: Duration,
    work: impl Future<Output = T>,
) -> Result<T, LimitError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| LimitError::TimedOut(limit))
}

/// Caps calls in flight per principal. Principals are removed when their last call ends, so the
/// map holds at most one entry per principal with a call in flight.
#[derive(Debug)]
pub struct ConcurrencyGate {
    per_principal: usize,
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held while a call runs; releases its slot when dropped.
pub struct CallSlot {
    _permit: OwnedSemaphorePermit,
}

impl ConcurrencyGate {
    pub fn new(per_principal: usize) -> Self {
        Self {
            per_principal: per_principal.max(1),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a slot for `principal` or refuses at once (never queues: a queue is memory).
    pub fn try_enter(&self, principal: &str) -> Result<CallSlot, LimitError> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        // Drop entries with no call in flight so the map cannot grow with idle principals.
        map.retain(|_, semaphore| semaphore.available_permits() < self.per_principal);
        let semaphore = match map.get(principal) {
            Some(semaphore) => semaphore.clone(),
            None => {
                let semaphore = Arc::new(Semaphore::new(self.per_principal));
                map.insert(principal.to_owned(), semaphore.clone());
                semaphore
            }
        };
        semaphore
            .try_acquire_owned()
            .map(|permit| CallSlot { _permit: permit })
            .map_err(|_| LimitError::TooManyConcurrentCalls(self.per_principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_checked_as_its_map_gets_the_same_answer_as_the_whole_value() {
        let limits = Limits {
            max_json_depth: 3,
            max_string_bytes: 4,
            max_array_items: 2,
            ..Limits::default()
        };
        for value in [
            json!({}),
            json!({"a": 1}),
            json!({"a": {"b": 1}}),
            json!({"a": {"b": {"c": 1}}}),
            json!({"a": "12345"}),
            json!({"12345": 1}),
            json!({"a": [1, 2, 3]}),
            json!({"a": [[1]]}),
            json!({"a": [[[1]]]}),
        ] {
            let serde_json::Value::Object(map) = &value else {
                unreachable!()
            };
            assert_eq!(
                check_json_object_shape(map, &limits),
                check_json_shape(&value, &limits),
                "{value}"
            );
        }
    }

    #[test]
    fn shape_checks_name_the_bound() {
        let limits = Limits {
            max_json_depth: 3,
            max_string_bytes: 4,
            max_array_items: 2,
            ..Limits::default()
        };
        assert_eq!(check_json_shape(&json!({"a": {"b": 1}}), &limits), Ok(()));
        assert_eq!(
            check_json_shape(&json!({"a": {"b": {"c": 1}}}), &limits),
            Err(LimitError::TooDeep(3))
        );
        assert_eq!(
            check_json_shape(&json!({"a": "12345"}), &limits),
            Err(LimitError::StringTooLong(4))
        );
        assert_eq!(
            check_json_shape(&json!({"a": [1, 2, 3]}), &limits),
            Err(LimitError::ArrayTooLong(2))
        );
    }

    #[test]
    fn a_hostile_depth_does_not_overflow_the_stack() {
        let mut value = json!(1);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        assert_eq!(
            check_json_shape(&value, &Limits::default()),
            Err(LimitError::TooDeep(32))
        );
        // Unwind the value by hand: serde_json's own drop is recursive.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }

    #[tokio::test]
    async fn the_timeout_cancels_the_work() {
        let result = with_timeout(
            Duration::from_millis(10),
            tokio::time::sleep(Duration::from_secs(5)),
        )
        .await;
        assert_eq!(result, Err(LimitError::TimedOut(Duration::from_millis(10))));
    }

    #[test]
    fn concurrency_is_capped_per_principal_and_released() {
        let gate = ConcurrencyGate::new(2);
        let a = gate.try_enter("alice").unwrap();
        let _b = gate.try_enter("alice").unwrap();
        assert_eq!(
            gate.try_enter("alice").err(),
            Some(LimitError::TooManyConcurrentCalls(2))
        );
        assert!(gate.try_enter("bob").is_ok());
        drop(a);
        assert!(gate.try_enter("alice").is_ok());
    }
}
