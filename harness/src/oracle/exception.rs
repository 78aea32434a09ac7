//! Whether a tool error is an exception nobody handled: the fixed wording language runtimes
//! give their own errors (a JavaScript `TypeError` on `undefined`, a Python `IndexError`, a Rust
//! panic, a Java `NullPointerException`, a Go nil dereference).
//!
//! A server that catches every exception of a tool and answers `isError: true` with its
//! message (the TypeScript SDK's `McpServer` and FastMCP both do) never answers -32603, but a
//! message in the runtime's words still says an input reached code that did not expect it.
//! Only the runtime's own phrases count, never a word of the input (the caller checks that the
//! request did not carry the phrase).
//!
//! Cost: a scan for about twenty fixed substrings.

/// Runtime error phrases, with the runtime that writes them.
const SIGNATURES: &[(&str, &str)] = &[
    (
        "Cannot read properties of undefined",
        "JavaScript TypeError",
    ),
    ("Cannot read properties of null", "JavaScript TypeError"),
    ("Cannot read property '", "JavaScript TypeError"),
    ("undefined is not an object", "JavaScript TypeError"),
    ("is not a function", "JavaScript TypeError"),
    ("is not iterable", "JavaScript TypeError"),
    ("Maximum call stack size exceeded", "JavaScript RangeError"),
    ("string index out of range", "Python IndexError"),
    ("list index out of range", "Python IndexError"),
    ("'NoneType' object", "Python TypeError/AttributeError"),
    ("object is not subscriptable", "Python TypeError"),
    ("maximum recursion depth exceeded", "Python RecursionError"),
    ("Traceback (most recent call last)", "Python traceback"),
    ("called `Option::unwrap()` on a `None` value", "Rust panic"),
    ("called `Result::unwrap()` on an `Err` value", "Rust panic"),
    ("panicked at", "Rust panic"),
    ("index out of bounds: the len is", "Rust panic"),
    (
        "java.lang.NullPointerException",
        "Java NullPointerException",
    ),
    ("runtime error: index out of range", "Go runtime error"),
    (
        "invalid memory address or nil pointer dereference",
        "Go runtime error",
    ),
];

/// The runtime whose unhandled-error wording `text` carries, and the phrase.
pub fn unhandled_exception(text: &str) -> Option<(&'static str, &'static str)> {
    SIGNATURES
        .iter()
        .find(|(phrase, _)| text.contains(phrase))
        .map(|(phrase, runtime)| (*runtime, *phrase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_wordings_are_recognised_and_tool_refusals_are_not() {
        assert_eq!(
            unhandled_exception("Cannot read properties of undefined (reading 'length')"),
            Some((
                "JavaScript TypeError",
                "Cannot read properties of undefined"
            ))
        );
        assert!(
            unhandled_exception("Error executing tool save_note: string index out of range")
                .is_some()
        );
        for refusal in [
            "a note needs a title",
            "Invalid arguments: path must be relative",
            "Rate limit exceeded",
        ] {
            assert_eq!(unhandled_exception(refusal), None, "{refusal}");
        }
    }
}
