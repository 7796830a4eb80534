//! docs/rules.schema.json is generated from the types rule files are read with, and it
//! accepts every shipped rule file and rejects malformed ones.

use serde_json::Value;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rules.schema.json");

fn generated() -> String {
    let mut text = serde_json::to_string_pretty(&rules::json_schema()).expect("schema serializes");
    text.push('\n');
    text
}

#[test]
fn the_published_schema_is_the_generated_one() {
    let generated = generated();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_PATH, &generated).expect("write docs/rules.schema.json");
    }
    let published = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        published == generated,
        "docs/rules.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test -p rules --test schema`"
    );
}

/// A validator for the parts of JSON Schema the generated schema uses.
fn valid(schema: &Value, value: &Value, root: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/$defs/");
        return valid(&root["$defs"][name], value, root, path, errors);
    }
    if let Some(options) = schema
        .get("oneOf")
        .or(schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        let mut inner = Vec::new();
        let passing = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                valid(o, value, root, path, &mut e);
                let ok = e.is_empty();
                inner.extend(e);
                ok
            })
            .count();
        if passing == 0 {
            errors.push(format!("{path}: matches none of the alternatives"));
            errors.extend(inner);
        }
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{path}: {value} not in {allowed:?}"));
    }
    if let (Some(pattern), Some(text)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) && !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
    {
        errors.push(format!("{path}: {text:?} does not match {pattern}"));
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n < min
    {
        errors.push(format!("{path}: {n} is below {min}"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        errors.push(format!("{path}: {value} is not {constant}"));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let type_ok = types.is_empty()
        || types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "null" => value.is_null(),
            _ => false,
        });
    if !type_ok {
        errors.push(format!("{path}: {value} is not of type {types:?}"));
        return;
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(key) = required.as_str()
                && !object.contains_key(key)
            {
                errors.push(format!("{path}: missing `{key}`"));
            }
        }
        for (key, item) in object {
            let child = format!("{path}.{key}");
            match properties.and_then(|p| p.get(key)) {
                Some(s) => valid(s, item, root, &child, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{child}: not allowed")),
                    Some(s @ Value::Object(_)) => valid(s, item, root, &child, errors),
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            valid(item_schema, item, root, &format!("{path}[{i}]"), errors);
        }
    }
}

fn check(text: &str) -> Vec<String> {
    let schema = rules::json_schema();
    let value: Value = serde_saphyr::from_str(text).expect("YAML parses");
    let mut errors = Vec::new();
    valid(&schema, &value, &schema, "$", &mut errors);
    errors
}

#[test]
fn every_shipped_rule_file_validates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/rules");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("config/rules") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read");
            assert_eq!(check(&text), Vec::<String>::new(), "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 2);
}

#[test]
fn malformed_files_do_not_validate() {
    let cases = [
        (
            "rules:\n  - id: a\n    source: sign_ins\n    condition: 'true'\n    actions: [notify]\n    colour: red\n",
            "$.rules[0].colour: not allowed",
        ),
        (
            "rules:\n  - id: a\n    source: planets\n    match: {all: true}\n    actions: [notify]\n",
            "$.rules[0].source",
        ),
        (
            "rules:\n  - id: a\n    source: sign_ins\n    match: {colour: red}\n    actions: [notify]\n",
            "$.rules[0].match.colour: not allowed",
        ),
        (
            "rules:\n  - id: a\n    source: sign_ins\n    match: {all: true}\n",
            "$.rules[0]: missing `actions`",
        ),
        (
            "lists:\n  l: {kind: colours, items: [a]}\n",
            "$.lists.l.kind",
        ),
        (
            "rules:\n  - id: Bad\n    source: sign_ins\n    condition: 'true'\n    actions: [notify]\n",
            "$.rules[0].id",
        ),
        (
            "rules:\n  - id: a\n    source: sign_ins\n    condition: 'true'\n    window: {group_by: [ip], duration: 1m, distinct: {planet: 2}}\n    actions: [notify]\n",
            "$.rules[0].window.distinct.planet: not allowed",
        ),
        (
            "rules:\n  - id: a\n    source: sign_ins\n    condition: 'true'\n    window: {group_by: [ip], duration: 1m, count: 0}\n    actions: [notify]\n",
            "$.rules[0].window.count",
        ),
        (
            "rules:\n  - id: a\n    source: sign_ins\n    condition: 'true'\n    window: {group_by: [planet], duration: 1m, count: 1}\n    actions: [notify]\n",
            "$.rules[0].window.group_by[0]",
        ),
        (
            "rules:\n  - id: a\n    source: sign_ins\n    condition: 'true'\n    actions: [notify]\n    tests: [{name: t, input: {id: x}, expect: maybe}]\n",
            "$.rules[0].tests[0].expect",
        ),
    ];
    for (text, expected) in cases {
        let errors = check(text);
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{text}\nexpected an error at {expected}, got {errors:?}"
        );
    }
}

#[test]
fn the_docs_list_every_name_with_its_type_and_every_function() {
    let docs = include_str!("../../../docs/rules.md");
    for (name, ty, holds) in rules::condition_fields() {
        let row = format!("| `{name}` | {ty} | {holds} |");
        assert!(docs.contains(&row), "docs/rules.md lacks the row:\n{row}");
    }
    for function in [
        "has(",
        "size(",
        "startsWith",
        "endsWith",
        "contains",
        "matches",
        "lowerAscii",
        "upperAscii",
        "trim()",
        "equalsIgnoreCase",
        "riskAtLeast",
        "ipInCidr",
        "inList",
        "exists(",
        "all(",
        "exists_one",
    ] {
        assert!(
            docs.contains(function),
            "docs/rules.md does not mention {function}"
        );
    }
}
