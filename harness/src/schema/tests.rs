use super::*;
use proptest::prelude::*;

fn schema(value: Value) -> Schema {
    Schema::new(value, SchemaLimits::default()).expect("a readable schema")
}

fn pointers(leaves: &[Leaf]) -> Vec<&str> {
    leaves.iter().map(|l| l.pointer.as_str()).collect()
}

/// What FastMCP publishes for `def run(request: Request, jobs: list[Job], filter: Filter | None = None)`
/// with pydantic models (`$defs`, `$ref`, `anyOf` with null, constrained strings).
fn pydantic_like() -> Value {
    json!({
        "type": "object",
        "$defs": {
            "Request": {"type": "object", "title": "Request", "required": ["path", "encoding"],
                "properties": {
                    "path": {"type": "string", "minLength": 1, "description": "File to read"},
                    "encoding": {"type": "string", "enum": ["utf-8", "latin-1"]}}},
            "Job": {"type": "object", "required": ["name", "host"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z]{3,8}$"},
                    "host": {"type": "string", "maxLength": 64},
                    "retries": {"type": "integer", "minimum": 0, "maximum": 3}}},
            "Filter": {"type": "object", "required": ["category"],
                "properties": {
                    "category": {"type": "string"},
                    "title": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null}}}
        },
        "required": ["request", "jobs"],
        "properties": {
            "request": {"$ref": "#/$defs/Request"},
            "jobs": {"type": "array", "items": {"$ref": "#/$defs/Job"}, "minItems": 1},
            "filter": {"anyOf": [{"$ref": "#/$defs/Filter"}, {"type": "null"}], "default": null}
        }
    })
}

#[test]
fn leaves_are_found_at_any_depth_through_refs_arrays_and_branches() {
    let s = schema(pydantic_like());
    let leaves = s.leaves().unwrap();
    assert_eq!(
        pointers(&leaves),
        [
            "/filter/category",
            "/filter/title",
            "/jobs/0/host",
            "/jobs/0/name",
            "/request/path"
        ]
    );
    let path = leaves
        .iter()
        .find(|l| l.pointer == "/request/path")
        .unwrap();
    assert!(path.required);
    assert_eq!(path.name, "path");
    assert_eq!(path.names, ["request", "path"]);
    assert_eq!(path.description, "File to read");
    let title = leaves
        .iter()
        .find(|l| l.pointer == "/filter/title")
        .unwrap();
    assert!(!title.required);
    assert_eq!(
        title.route,
        [
            Step::Property("filter".into()),
            Step::Branch(0),
            Step::Property("title".into()),
            Step::Branch(0)
        ]
    );
}

#[test]
fn instances_satisfy_the_schema_and_reach_the_routed_leaf() {
    let s = schema(pydantic_like());
    let minimal = s.instance(&[], &no_preferences).unwrap();
    assert_eq!(minimal["request"]["encoding"], "utf-8");
    assert!(
        regex::Regex::new("^[a-z]{3,8}$")
            .unwrap()
            .is_match(minimal["jobs"][0]["name"].as_str().unwrap()),
        "{minimal}"
    );
    assert!(
        minimal.get("filter").is_none(),
        "optional: not in the minimal instance"
    );
    for leaf in s.leaves().unwrap() {
        let instance = s.instance(&leaf.route, &no_preferences).unwrap();
        assert!(
            instance
                .pointer(&leaf.pointer)
                .is_some_and(Value::is_string),
            "{} not in {instance}",
            leaf.pointer
        );
        assert_eq!(s.is_valid(&instance), Some(true));
    }
}

#[test]
fn preferences_are_used_where_the_constraints_allow_them() {
    let s = schema(
        json!({"type": "object", "required": ["path", "code", "url"], "properties": {
        "path": {"type": "string", "default": "."},
        "code": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "url": {"type": "string", "format": "uri"}}}),
    );
    let prefer = |leaf: &LeafView<'_>| match leaf.name {
        "path" => vec!["/sandbox/readme.txt".to_owned()],
        "url" => vec!["not a url".to_owned(), "http://127.0.0.1:9/x".to_owned()],
        _ => vec!["lowercase".to_owned()],
    };
    let instance = s.instance(&[], &prefer).unwrap();
    assert_eq!(
        instance["path"], "/sandbox/readme.txt",
        "a preference beats the default"
    );
    assert_eq!(
        instance["url"], "http://127.0.0.1:9/x",
        "the first that is a uri"
    );
    assert!(
        regex::Regex::new("^[A-Z]{2}$")
            .unwrap()
            .is_match(instance["code"].as_str().unwrap())
    );
}

#[test]
fn formats_numbers_and_combinators_get_valid_values() {
    let s = schema(json!({"type": "object",
    "required": ["email", "when", "id", "ip", "n", "x", "pick", "tuple", "tags"],
    "properties": {
        "email": {"type": "string", "format": "email"},
        "when": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"},
        "ip": {"type": "string", "format": "ipv4"},
        "n": {"type": "integer", "minimum": 10, "exclusiveMaximum": 40, "multipleOf": 7},
        "x": {"type": "number", "exclusiveMinimum": 0.5, "maximum": 0.75},
        "pick": {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "string", "minLength": 2}]},
        "tuple": {"type": "array", "prefixItems": [{"type": "integer"}, {"const": "k"}], "minItems": 2},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": true}
    }}));
    let instance = s.instance(&[], &no_preferences).unwrap();
    assert_eq!(s.is_valid(&instance), Some(true), "{instance}");
    assert_eq!(instance["n"], 14);
    assert_eq!(instance["tuple"][1], "k");
}

#[test]
fn draft_7_tuples_and_definitions_are_read() {
    let s = schema(json!({"$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"P": {"type": "string", "minLength": 4}},
        "type": "object", "required": ["pair"],
        "properties": {"pair": {"type": "array", "items": [{"$ref": "#/definitions/P"}, {"type": "boolean"}],
            "additionalItems": false, "minItems": 2}}}));
    let instance = s.instance(&[], &no_preferences).unwrap();
    assert_eq!(s.is_valid(&instance), Some(true), "{instance}");
    assert_eq!(pointers(&s.leaves().unwrap()), ["/pair/0"]);
}

#[test]
fn contradictions_are_reported_not_guessed_around() {
    for contradiction in [
        json!({"type": "string", "minLength": 5, "maxLength": 2}),
        json!({"allOf": [{"type": "string"}, {"type": "integer"}]}),
        json!({"type": "integer", "minimum": 3, "maximum": 2}),
        json!({"type": "object", "required": ["a"], "additionalProperties": false}),
        json!({"type": "string", "pattern": "^a$", "minLength": 3}),
        json!(false),
    ] {
        let result = Schema::new(contradiction.clone(), SchemaLimits::default())
            .and_then(|s| s.instance(&[], &no_preferences));
        assert!(
            matches!(result, Err(SchemaError::Unsatisfiable { .. })),
            "{contradiction}: {result:?}"
        );
    }
}

#[test]
fn hostile_schemas_end_in_a_bounded_refusal() {
    let cases = [
        json!({"type": "string", "minLength": 2_000_000_000u64}),
        json!({"type": "array", "minItems": 1_000_000_000u64}),
        json!({"type": "object", "minProperties": 1_000_000}),
        json!({"$ref": "#"}),
        json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}),
        json!({"type": "string", "pattern": "a{100000}"}),
    ];
    for hostile in cases {
        let result = Schema::new(hostile.clone(), SchemaLimits::default())
            .and_then(|s| s.instance(&[], &no_preferences));
        assert!(
            matches!(
                result,
                Err(SchemaError::TooLarge(_)
                    | SchemaError::RefLoop(_)
                    | SchemaError::Unsatisfiable { .. })
            ),
            "{hostile}: {result:?}"
        );
    }
}

/// 10,000 levels, each a required property holding a `$ref` to the next.
fn ref_chain(levels: usize) -> Value {
    let mut definitions = Map::new();
    for level in 0..levels {
        definitions.insert(
            format!("d{level}"),
            json!({"type": "object", "required": ["x"], "properties": {"x": {"$ref": format!("#/$defs/d{}", level + 1)}}}),
        );
    }
    definitions.insert(format!("d{levels}"), json!({"type": "string"}));
    json!({"$defs": definitions, "$ref": "#/$defs/d0"})
}

#[test]
fn ten_thousand_levels_of_refs_stop_at_the_depth_limit() {
    // 10,000 levels are a megabyte of schema; 5,000 are not, and are refused for depth.
    let refused = Schema::new(ref_chain(10_000), SchemaLimits::default());
    assert!(
        matches!(refused, Err(SchemaError::TooLarge(_))),
        "{:?}",
        refused.err()
    );
    let refused = Schema::new(ref_chain(5_000), SchemaLimits::default());
    assert!(
        matches!(refused, Err(SchemaError::TooDeep(_))),
        "{:?}",
        refused.err()
    );
    // Within the reference limit, the instance still stops at the nesting limit.
    let s = Schema::new(ref_chain(40), SchemaLimits::default()).unwrap();
    assert_eq!(
        s.instance(&[], &no_preferences),
        Err(SchemaError::TooDeep(SchemaLimits::default().max_depth))
    );
    // The walk lists nothing it cannot reach, and ends.
    assert!(s.leaves().unwrap().is_empty());
}

#[test]
fn literal_nesting_beyond_the_limit_is_refused_before_reading() {
    let mut deep = json!({"type": "string"});
    for _ in 0..400 {
        deep = json!({"type": "object", "properties": {"x": deep}});
    }
    assert!(matches!(
        Schema::new(deep, SchemaLimits::default()),
        Err(SchemaError::TooDeep(_))
    ));
}

#[test]
fn recursive_models_are_walked_once_and_instantiated_minimally() {
    let s = schema(
        json!({"$defs": {"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
        "$ref": "#/$defs/Node"}),
    );
    assert_eq!(pointers(&s.leaves().unwrap()), ["/name"]);
    assert_eq!(
        s.instance(&[], &no_preferences).unwrap(),
        json!({"name": "sample"})
    );
}

#[test]
fn an_external_ref_is_reported_unresolved() {
    let s = Schema::new(
        json!({"type": "object", "required": ["a"], "properties": {"a": {"$ref": "https://example.com/s.json"}}}),
        SchemaLimits::default(),
    )
    .unwrap();
    assert!(s.unchecked().is_some());
    assert!(matches!(
        s.instance(&[], &no_preferences),
        Err(SchemaError::UnresolvedRef(_))
    ));
}

// --- Property tests: random schemas --------------------------------------------------------

/// Leaf schemas that can always be satisfied.
fn satisfiable_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..6, 0u64..10).prop_map(|(min, extra)| json!({"type": "string", "minLength": min, "maxLength": min + extra})),
        prop::sample::select(vec!["^[a-z]+$", "^[A-Z]{2,4}-[0-9]{3}$", "^(foo|bar)_\\d+$", "[xyz]"])
            .prop_map(|p| json!({"type": "string", "pattern": p})),
        prop::sample::select(vec!["email", "uri", "date", "date-time", "uuid", "ipv4", "ipv6", "hostname"])
            .prop_map(|f| json!({"type": "string", "format": f})),
        (-50i64..50, 0i64..20, 1i64..5).prop_map(|(low, span, step)| {
            let low = low * step;
            json!({"type": "integer", "minimum": low, "maximum": low + span * step, "multipleOf": step})
        }),
        (-5.0f64..5.0).prop_map(|low| json!({"type": "number", "exclusiveMinimum": low, "maximum": low + 1.0})),
        Just(json!({"type": "boolean"})),
        Just(json!({"type": "null"})),
        Just(json!({"enum": ["a", 1, null]})),
        Just(json!({"const": {"k": [1, 2]}})),
        Just(json!({"type": ["string", "null"], "minLength": 2})),
        Just(json!({})),
    ]
}

/// Satisfiable schemas: leaves, objects, arrays and combinators.
fn satisfiable_part() -> impl Strategy<Value = Value> {
    satisfiable_leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map("[a-e]", inner.clone(), 0..4).prop_flat_map(|properties| {
                let names: Vec<String> = properties.keys().cloned().collect();
                (Just(properties), prop::sample::subsequence(names.clone(), 0..=names.len()))
            })
            .prop_map(|(properties, required)| {
                json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
            }),
            (inner.clone(), 0usize..3, 0usize..3).prop_map(|(items, min, extra)| {
                json!({"type": "array", "items": items, "minItems": min, "maxItems": min + extra})
            }),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|branches| json!({"anyOf": branches})),
            inner.clone().prop_map(|s| json!({"anyOf": [s, {"type": "null"}]})),
            inner.prop_map(|s| json!({"allOf": [s, {}]})),
        ]
    })
}

/// A satisfiable part, alone or as a model in the root's `$defs` referred to from a property
/// and from an array's items (as pydantic publishes models).
fn satisfiable_schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        satisfiable_part(),
        satisfiable_part().prop_map(|model| json!({"$defs": {"Model": model}, "type": "object",
            "required": ["one", "many"], "properties": {
                "one": {"$ref": "#/$defs/Model"},
                "many": {"type": "array", "items": {"$ref": "#/$defs/Model"}, "minItems": 1, "maxItems": 2},
                "maybe": {"anyOf": [{"$ref": "#/$defs/Model"}, {"type": "null"}]}}})),
    ]
}

/// Any schema, including contradictory ones.
fn any_part() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        satisfiable_leaf(),
        (0u64..8, 0u64..8)
            .prop_map(|(a, b)| json!({"type": "string", "minLength": a, "maxLength": b})),
        (-3i64..3, -3i64..3)
            .prop_map(|(a, b)| json!({"type": "integer", "minimum": a, "maximum": b})),
        Just(json!({"type": "string", "pattern": "^a$", "minLength": 2})),
        Just(json!(false)),
        Just(json!({"not": {}})),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map("[a-d]", inner.clone(), 0..4).prop_map(|properties| {
                let required: Vec<String> = properties.keys().cloned().collect();
                json!({"type": "object", "properties": properties, "required": required})
            }),
            (inner.clone(), 0usize..4, 0usize..4, any::<bool>()).prop_map(|(items, min, max, unique)| {
                json!({"type": "array", "items": items, "minItems": min, "maxItems": max, "uniqueItems": unique})
            }),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|b| json!({"oneOf": b})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|b| json!({"anyOf": b})),
            prop::collection::vec(inner, 1..3).prop_map(|b| json!({"allOf": b})),
        ]
    })
}

fn any_schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_part(),
        (any_part(), any_part()).prop_map(|(model, other)| json!({"$defs": {"M": model, "N": {"allOf": [{"$ref": "#/$defs/M"}, other]}},
            "type": "object", "required": ["z", "w"], "properties": {
                "z": {"$ref": "#/$defs/M"}, "w": {"type": "array", "items": {"$ref": "#/$defs/N"}}}})),
    ]
}

/// An independent validator, built apart from the engine's.
fn independently_valid(schema: &Value, instance: &Value) -> bool {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map(|v| v.is_valid(instance))
        .unwrap_or(false)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_instance_the_engine_emits_validates_or_it_says_why_not(schema_value in any_schema()) {
        let Ok(s) = Schema::new(schema_value.clone(), SchemaLimits::default()) else {
            return Ok(());
        };
        match s.instance(&[], &no_preferences) {
            Ok(instance) => prop_assert!(independently_valid(&schema_value, &instance), "{} for {}", instance, schema_value),
            Err(SchemaError::Unsatisfiable { .. } | SchemaError::UnresolvedRef(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {:?} for {}", other, schema_value),
        }
        for leaf in s.leaves().unwrap_or_default() {
            if let Ok(instance) = s.instance(&leaf.route, &no_preferences) {
                prop_assert!(independently_valid(&schema_value, &instance));
                prop_assert!(instance.pointer(&leaf.pointer).is_some(), "{} missing in {}", leaf.pointer, instance);
            }
        }
    }

    #[test]
    fn satisfiable_schemas_get_an_instance_and_every_leaf_is_reachable(schema_value in satisfiable_schema()) {
        let s = Schema::new(schema_value.clone(), SchemaLimits::default()).unwrap();
        let instance = s.instance(&[], &no_preferences);
        prop_assert!(instance.is_ok(), "{:?} for {}", instance, schema_value);
        prop_assert!(independently_valid(&schema_value, &instance.unwrap()));
        for leaf in s.leaves().unwrap() {
            let instance = s.instance(&leaf.route, &no_preferences);
            prop_assert!(instance.is_ok(), "{:?} for {} at {}", instance, schema_value, leaf.pointer);
            let instance = instance.unwrap();
            prop_assert!(instance.pointer(&leaf.pointer).is_some_and(Value::is_string), "{} missing in {}", leaf.pointer, instance);
        }
    }

    #[test]
    fn hostile_sizes_stay_under_the_caps(min_length in 0u64..u64::MAX / 2, min_items in 0u64..u64::MAX / 2, depth in 1usize..3000) {
        let limits = SchemaLimits::default();
        for hostile in [
            json!({"type": "string", "minLength": min_length}),
            json!({"type": "array", "items": {"type": "string", "minLength": min_length % 10_000}, "minItems": min_items % 100_000}),
            ref_chain(depth),
        ] {
            if let Ok(s) = Schema::new(hostile, limits)
                && let Ok(instance) = s.instance(&[], &no_preferences)
            {
                prop_assert!(instance.to_string().len() <= limits.max_instance_bytes + 64);
            }
        }
    }
}
