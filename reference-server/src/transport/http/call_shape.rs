//! Which tools a JSON-RPC body calls, read without building the arguments: what the scope
//! check of the HTTP layer needs before the body reaches rmcp.
//!
//! Cost: one pass of serde over the body that builds only the method and tool names (the
//! arguments, usually the bulk of a call, are skipped); a body the fast shape does not fit is
//! read again as a whole `serde_json::Value`.
//! Failure: none; a body that is not JSON calls no tool (rmcp refuses it).

/// The fields of a JSON-RPC message the scope check reads; every other field is skipped
/// without being built. Read from a JSON object only (a derived `Deserialize` would also take
/// an array, positionally, which the slow path does not).
struct CallShape {
    method: Option<String>,
    params: Option<CallParamsShape>,
}

/// The `params` of a [`CallShape`]: only the tool name.
struct CallParamsShape {
    name: Option<String>,
}

/// The keys [`CallShape`] and [`CallParamsShape`] read.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ShapeKey {
    Method,
    Params,
    Name,
    #[serde(other)]
    Other,
}

/// Reads an object's `wanted` keys with `read` and skips the others; a repeated wanted key is
/// an error (the slow path decides those).
fn visit_object<'de, A: serde::de::MapAccess<'de>>(
    mut map: A,
    mut read: impl FnMut(ShapeKey, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<ShapeKey>()? {
        if !read(key, &mut map)? {
            map.next_value::<serde::de::IgnoredAny>()?;
        }
    }
    Ok(())
}

fn read_once<'de, T: serde::Deserialize<'de>, A: serde::de::MapAccess<'de>>(
    slot: &mut Option<Option<T>>,
    field: &'static str,
    map: &mut A,
) -> Result<bool, A::Error> {
    if slot.is_some() {
        return Err(serde::de::Error::duplicate_field(field));
    }
    *slot = Some(map.next_value()?);
    Ok(true)
}

impl<'de> serde::Deserialize<'de> for CallShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = CallShape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CallShape, A::Error> {
                let (mut method, mut params) = (None, None);
                visit_object(map, |key, map| match key {
                    ShapeKey::Method => read_once(&mut method, "method", map),
                    ShapeKey::Params => read_once(&mut params, "params", map),
                    _ => Ok(false),
                })?;
                Ok(CallShape {
                    method: method.flatten(),
                    params: params.flatten(),
                })
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

impl<'de> serde::Deserialize<'de> for CallParamsShape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = CallParamsShape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a params object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CallParamsShape, A::Error> {
                let mut name = None;
                visit_object(map, |key, map| match key {
                    ShapeKey::Name => read_once(&mut name, "name", map),
                    _ => Ok(false),
                })?;
                Ok(CallParamsShape {
                    name: name.flatten(),
                })
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

/// The tools a JSON-RPC body calls (one message or a batch).
///
/// Fast path: the body read into [`CallShape`]s, which build nothing but the method and tool
/// names (the arguments, usually the bulk of a call, are skipped). Any body that shape does not
/// fit (a `method` that is not a string, `params` that is not an object, a duplicate field)
/// takes the slow path, a whole [`serde_json::Value`], so for every body that is JSON the answer
/// is the slow path's (a property test and the `scope_body` fuzz target check it, the latter
/// also against rmcp's own reading): the scope check never sees fewer tools than the server
/// will run. A body that is not JSON only because of something in a skipped field (a number
/// out of range) may still name its tool here; rmcp refuses such a body (415), so at worst the
/// refusal is a 403.
pub fn called_tools(body: &[u8]) -> Vec<String> {
    // serde_json skips an ignored string without checking its UTF-8, where reading the whole
    // value refuses the body (found by the scope_body fuzz target): check it first.
    let Ok(text) = std::str::from_utf8(body) else {
        return called_tools_from_value(body);
    };
    let shapes = if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<CallShape>>(text).ok()
    } else {
        serde_json::from_str::<CallShape>(text)
            .ok()
            .map(|one| vec![one])
    };
    match shapes {
        Some(shapes) => shapes
            .into_iter()
            .filter(|m| m.method.as_deref() == Some("tools/call"))
            .filter_map(|m| m.params?.name)
            .collect(),
        None => called_tools_from_value(body),
    }
}

/// [`called_tools`]'s slow path: the body as a whole JSON value.
fn called_tools_from_value(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return vec![];
    };
    let messages = match value {
        serde_json::Value::Array(items) => items,
        single => vec![single],
    };
    messages
        .iter()
        .filter(|m| m.get("method").and_then(|v| v.as_str()) == Some("tools/call"))
        .filter_map(|m| {
            m.pointer("/params/name")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn called_tools_reads_single_and_batched_calls() {
        assert_eq!(called_tools(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_stats"}}"#), vec!["admin_stats"]);
        assert_eq!(
            called_tools(br#"[{"method":"tools/call","params":{"name":"a"}},{"method":"ping"}]"#),
            vec!["a"]
        );
        assert!(called_tools(b"not json").is_empty());
        // Shapes the fast path does not fit fall back to the whole value, with its answer.
        assert_eq!(
            called_tools(
                br#"{"method":"tools/call","params":{"name":"a"},"params":{"name":"admin_stats"}}"#
            ),
            vec!["admin_stats"]
        );
        assert_eq!(
            called_tools(br#"[{"method":"tools\/call","params":{"name":"admin\u005fstats"}},7]"#),
            vec!["admin_stats"]
        );
        // Invalid UTF-8 in a skipped field: not JSON, for the fast path either.
        let body = b"{\"method\":\"tools/call\",\"params\":{\"name\":\"a\"},\"x\":\"\xe5\"}";
        assert!(called_tools(body).is_empty());
    }

    /// JSON text built from pieces a scope check cares about: JSON-RPC messages whose fields
    /// may repeat, be of the wrong type or have escaped names or values, alone or in batches,
    /// and arbitrary nesting. Duplicate keys are allowed (serde_json::Value cannot hold them, so the text is
    /// written by hand).
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        fn object(fields: Vec<(&'static str, String)>) -> String {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("7".to_owned()),
            Just(r#""tools/call""#.to_owned()),
            Just(r#""tools\/call""#.to_owned()),
            Just(r#""admin_stats""#.to_owned()),
            Just(r#""read_\u0066ile""#.to_owned()),
            Just(r#""ping""#.to_owned()),
        ];
        let value = leaf.clone().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec((Just("name"), inner), 0..3).prop_map(object),
            ]
        });
        let params = prop_oneof![
            4 => proptest::collection::vec(
                prop_oneof![
                    (Just("name"), leaf.clone()),
                    (Just("arguments"), value.clone()),
                ],
                0..3,
            )
            .prop_map(object),
            1 => value.clone(),
        ];
        let method = prop_oneof![
            3 => Just(r#""tools/call""#.to_owned()),
            1 => leaf,
        ];
        let message = proptest::collection::vec(
            prop_oneof![
                (Just("method"), method.clone()),
                (Just(r"met\u0068od"), method),
                (Just("params"), params.clone()),
                (Just(r"p\u0061rams"), params),
                (Just("id"), Just("1".to_owned())),
                (Just("other"), value.clone()),
            ],
            0..5,
        )
        .prop_map(object);
        prop_oneof![
            3 => message.clone(),
            3 => proptest::collection::vec(prop_oneof![4 => message, 1 => value.clone()], 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            1 => value,
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// The fast path never disagrees with reading the whole value: a scope check that saw
        /// fewer tools than the server runs would let a call through unchecked.
        #[test]
        fn called_tools_agrees_with_the_whole_value(text in json_text()) {
            proptest::prop_assert_eq!(called_tools(text.as_bytes()), called_tools_from_value(text.as_bytes()));
        }
    }
}
