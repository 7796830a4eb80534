//! Properties of conditions over generated expressions and records:
//! - hostile condition text never panics the compiler, and its diagnostics stay in the file;
//! - an expression that type-checks at load evaluates, on any record the models accept, to
//!   exactly what the reference CEL interpreter (the `cel` crate's) computes on the same
//!   record with absent fields read as zero values: it never errors and never disagrees.

use std::collections::HashMap;
use std::sync::Arc;

use graph::models::SignIn;
use proptest::prelude::*;
use rules::{Record, RuleSet, SourceFile, UserFacts, WindowState, compile};
use serde_json::{Map, Value, json};

fn compile_condition(condition: &str) -> Result<RuleSet, rules::Diagnostics> {
    let quoted = condition.replace('\\', "\\\\").replace('"', "\\\"");
    compile(&[SourceFile {
        origin: "p.yaml".to_string(),
        text: format!(
            "rules:\n  - id: p\n    source: sign_ins\n    condition: \"{quoted}\"\n    actions: [notify]\n"
        ),
    }])
}

/// The sign-in fields expressions read, with their CEL type and JSON path.
const STRINGS: [(&str, &[&str]); 5] = [
    ("signIn.ipAddress", &["ipAddress"]),
    ("signIn.appDisplayName", &["appDisplayName"]),
    ("signIn.userPrincipalName", &["userPrincipalName"]),
    ("signIn.riskLevelAggregated", &["riskLevelAggregated"]),
    (
        "signIn.location.countryOrRegion",
        &["location", "countryOrRegion"],
    ),
];
const BOOLS: [(&str, &[&str]); 2] = [
    ("signIn.isInteractive", &["isInteractive"]),
    (
        "signIn.deviceDetail.isCompliant",
        &["deviceDetail", "isCompliant"],
    ),
];
const ERROR_CODE: (&str, &[&str]) = ("signIn.status.errorCode", &["status", "errorCode"]);
const LIST: (&str, &[&str]) = ("signIn.riskEventTypes_v2", &["riskEventTypes_v2"]);

fn string_literal() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "''",
        "'NL'",
        "'nl'",
        "'203.0.113.5'",
        "'Azure Portal'",
        "'high'",
        "'a@b.c'",
        "'é'",
        "'x'",
        "'Az'",
    ])
    .prop_map(str::to_string)
}

fn string_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(STRINGS.to_vec()).prop_map(|(n, _)| n.to_string()),
        1 => string_literal(),
        1 => (prop::sample::select(STRINGS.to_vec()), string_literal())
            .prop_map(|((n, _), l)| format!("({n} + {l})")),
    ]
}

fn int_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(ERROR_CODE.0.to_string()),
        (-2i64..60000).prop_map(|i| i.to_string()),
        string_expr().prop_map(|s| format!("size({s})")),
        Just(format!("size({})", LIST.0)),
    ]
}

/// Expressions, mostly well typed; some are not, and must then be rejected at load.
fn bool_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(BOOLS.to_vec()).prop_map(|(n, _)| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        (string_expr(), string_expr()).prop_map(|(a, b)| format!("{a} == {b}")),
        (string_expr(), string_expr()).prop_map(|(a, b)| format!("{a} != {b}")),
        (string_expr(), string_expr()).prop_map(|(a, b)| format!("{a} < {b}")),
        (int_expr(), int_expr()).prop_map(|(a, b)| format!("{a} >= {b}")),
        (int_expr(), int_expr()).prop_map(|(a, b)| format!("{a} == {b}")),
        (string_expr(), string_literal()).prop_map(|(a, b)| format!("{a}.startsWith({b})")),
        (string_expr(), string_literal()).prop_map(|(a, b)| format!("{a}.endsWith({b})")),
        (string_expr(), string_expr()).prop_map(|(a, b)| format!("{a}.contains({b})")),
        (string_expr(), string_literal(), string_literal())
            .prop_map(|(a, b, c)| format!("{a} in [{b}, {c}]")),
        string_literal().prop_map(|l| format!("{} .exists(t, t == {l})", LIST.0)),
        string_literal().prop_map(|l| format!("{}.all(t, t != {l})", LIST.0)),
        string_literal().prop_map(|l| format!("{l} in {}", LIST.0)),
        // Ill typed: the checker must reject these.
        (string_expr(), int_expr()).prop_map(|(a, b)| format!("{a} == {b}")),
        string_expr(),
        Just(format!("{} + 1 > 0", ERROR_CODE.0)),
    ];
    leaf.prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            (inner.clone(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
        ]
    })
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..70000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "NL",
            "nl",
            "203.0.113.5",
            "Azure Portal",
            "high",
            "é",
            "x",
            "Az"
        ])
        .prop_map(|s| Value::String(s.to_string())),
        prop::collection::vec(
            prop::sample::select(vec!["x", "high", "NL", ""]).prop_map(|s| json!(s)),
            0..3
        )
        .prop_map(Value::Array),
    ]
}

/// A sign-in with some of the fields set, to values of the right type or not.
fn sign_in_json() -> impl Strategy<Value = Value> {
    let paths: Vec<&'static [&'static str]> = STRINGS
        .iter()
        .chain(BOOLS.iter())
        .chain([&ERROR_CODE, &LIST])
        .map(|(_, p)| *p)
        .collect();
    prop::collection::vec((prop::sample::select(paths), json_leaf()), 0..10).prop_map(|sets| {
        let mut record =
            json!({"id": "s1", "createdDateTime": "2026-11-01T10:00:00Z", "userId": "u1"});
        for (path, value) in sets {
            set_path(&mut record, path, value);
        }
        record
    })
}

fn set_path(record: &mut Value, path: &[&str], value: Value) {
    let mut at = record;
    for (i, key) in path.iter().enumerate() {
        let Value::Object(object) = at else { return };
        if i + 1 == path.len() {
            object.insert((*key).to_string(), value);
            return;
        }
        at = object
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The record as the reference interpreter sees it: every field present, read from the model
/// (so lenient parsing applies as in the daemon), absent ones as zero values.
fn cel_context(s: &SignIn) -> cel::Context<'static, 'static> {
    let text = |v: Option<&str>| cel::Value::String(Arc::new(v.unwrap_or_default().to_string()));
    let location = s.location.clone().unwrap_or_default();
    let device = s.device_detail.clone().unwrap_or_default();
    let status = s.status.clone().unwrap_or_default();
    let map = |entries: Vec<(&str, cel::Value)>| -> cel::Value {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<HashMap<String, cel::Value>>()
            .into()
    };
    let sign_in = map(vec![
        ("ipAddress", text(s.ip_address.as_deref())),
        ("appDisplayName", text(s.app_display_name.as_deref())),
        ("userPrincipalName", text(s.user_principal_name.as_deref())),
        (
            "riskLevelAggregated",
            text(s.risk_level_aggregated.as_ref().map(|l| l.as_str())),
        ),
        (
            "isInteractive",
            cel::Value::Bool(s.is_interactive.unwrap_or(false)),
        ),
        (
            "riskEventTypes_v2",
            cel::Value::List(Arc::new(
                s.risk_event_types_v2
                    .iter()
                    .map(|t| cel::Value::String(Arc::new(t.clone())))
                    .collect(),
            )),
        ),
        (
            "location",
            map(vec![(
                "countryOrRegion",
                text(location.country_or_region.as_deref()),
            )]),
        ),
        (
            "deviceDetail",
            map(vec![(
                "isCompliant",
                cel::Value::Bool(device.is_compliant.unwrap_or(false)),
            )]),
        ),
        (
            "status",
            map(vec![(
                "errorCode",
                cel::Value::Int(status.error_code.unwrap_or(0).into()),
            )]),
        ),
    ]);
    let mut context = cel::Context::default();
    context.add_variable_from_value("signIn", sign_in);
    context
}

fn ours(set: &RuleSet, s: &SignIn) -> bool {
    !set.evaluate_with(&Record::SignIn(s), None, &mut WindowState::new())
        .is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn checked_expressions_evaluate_as_cel_does(expr in bool_expr(), record in sign_in_json()) {
        let Ok(sign_in) = serde_json::from_value::<SignIn>(record) else {
            return Ok(());
        };
        let Ok(set) = compile_condition(&expr) else {
            return Ok(());
        };
        let got = ours(&set, &sign_in);
        let program = cel::Program::compile(&expr).expect("what we parse, cel parses");
        let reference = program.execute(&cel_context(&sign_in));
        prop_assert_eq!(
            reference.clone(),
            Ok(cel::Value::Bool(got)),
            "{} on {:?}", expr, sign_in
        );
    }

    #[test]
    fn ill_typed_expressions_are_rejected_at_load(a in string_expr(), b in int_expr()) {
        let expr = format!("{a} == {b}");
        let err = compile_condition(&expr).expect_err("string == int is a type error");
        let text = err.to_string();
        prop_assert!(text.contains("compares values of one type"), "{}", text);
        prop_assert!(text.starts_with("p.yaml:4:"), "{}", text);
    }

    #[test]
    fn hostile_condition_text_never_panics(text in "\\PC{0,80}") {
        if let Err(d) = compile_condition(&text) {
            for diag in &d.0 {
                prop_assert!(diag.line >= 1 && diag.line <= 6, "{}", diag);
            }
        }
    }

    #[test]
    fn condition_shaped_text_never_panics(
        tokens in prop::collection::vec(prop::sample::select(vec![
            "signIn", ".", "ipAddress", "location", "countryOrRegion", "user", "groups",
            "(", ")", "[", "]", "'", "\"", "&&", "||", "!", "==", "<", "in", ",", " ",
            "exists", "x", "has", "size", "inList", "ipInCidr", "riskAtLeast", "matches",
            "'10.0.0.0/8'", "'high'", "1", "-", "?", ":", "{", "}", "null", "1.5", "2u",
            "b'x'", "`", "\\", "\n", "riskyUser",
        ]), 0..40)
    ) {
        let _ = compile_condition(&tokens.concat());
    }

    #[test]
    fn user_attributes_never_panic(
        department in prop::option::of(".{0,8}"),
        enabled in prop::option::of(any::<bool>()),
        groups in prop::option::of(prop::collection::vec(".{0,6}", 0..4)),
    ) {
        let set = compile_condition(
            "user.department.lowerAscii() == 'finance' || !user.accountEnabled || user.groups.exists(g, g.matches('^adm'))",
        ).expect("valid");
        let facts = UserFacts { department, account_enabled: enabled, groups, ..UserFacts::default() };
        let sign_in: SignIn = serde_json::from_value(json!({"id": "s", "createdDateTime": "2026-11-01T10:00:00Z", "userId": "u"})).expect("sign-in");
        let _ = set.evaluate_with(&Record::SignIn(&sign_in), Some(&facts), &mut WindowState::new());
    }
}
