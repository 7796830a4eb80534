//! Hostile input never panics: not rule text (arbitrary, YAML-shaped, or the default pack
//! mangled), and not records (arbitrary JSON that the models accept).

use std::sync::LazyLock;

use graph::models::{RiskDetection, RiskyUser, SignIn};
use proptest::prelude::*;
use rules::{Record, RuleSet, SourceFile, compile};
use serde_json::{Map, Value, json};

const PACK: &str = include_str!("../../../config/rules/identity-protection.yaml");
/// The sign-in pack: lists, macros, CEL conditions, exceptions, windows and test cases.
const SIGN_IN_PACK: &str = include_str!("../../../config/rules/sign-ins.yaml");

fn compile_text(text: String) -> Result<RuleSet, rules::Diagnostics> {
    compile(&[SourceFile {
        origin: "fuzz.yaml".to_string(),
        text,
    }])
}

/// Pieces of rule files, shuffled into text that is often almost valid.
fn yaml_token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "rules:",
        "\n",
        "  ",
        "    ",
        "- ",
        "id: ",
        "a",
        "source: ",
        "risky_users",
        "sign_ins",
        "risk_detections",
        "match:",
        "match: ",
        "{",
        "}",
        "[",
        "]",
        ", ",
        ": ",
        "all: true",
        "risk_level: ",
        "high",
        "min_risk_level: ",
        "ip_address: ",
        "10.0.0.0/8",
        "::/0",
        "999.1.1.1/40",
        "status: ",
        "success",
        "actions: ",
        "revoke_sessions",
        "mode: ",
        "dry_run",
        "cooldown: ",
        "1h",
        "-5s",
        "enabled: ",
        "yes",
        "~",
        "&x ",
        "*x",
        "<<: *x",
        "!!str ",
        "!foo ",
        "'",
        "\"",
        "#",
        "? ",
        "---",
        "...",
        "|\n",
        ">-\n",
        "\t",
        "\u{feff}",
        "0x1F",
        ".nan",
        "1e999",
    ])
}

/// One small edit of a valid file: delete, insert or replace a character.
fn mangle(text: &str, at: usize, edit: u8, c: char) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    match edit % 3 {
        0 if at < chars.len() => {
            chars.remove(at);
        }
        1 if at < chars.len() => chars[at] = c,
        _ => chars.insert(at, c),
    }
    chars.into_iter().collect()
}

/// Values Graph might send, and values it should not.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "high",
            "medium",
            "low",
            "none",
            "hidden",
            "unknownFutureValue",
            "atRisk",
            "confirmedCompromised",
            "leakedCredentials",
            "offline",
            "203.0.113.50",
            "2001:db8::1",
            "123.456.7.89",
            "",
            "US",
            "nl",
            "ALEX@CONTOSO.COM",
            "Azure Portal",
        ])
        .prop_map(|s| Value::String(s.to_string())),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "riskLevel",
        "riskState",
        "riskDetail",
        "riskEventType",
        "detectionTimingType",
        "userPrincipalName",
        "isProcessing",
        "ipAddress",
        "location",
        "countryOrRegion",
        "appId",
        "appDisplayName",
        "status",
        "errorCode",
        "riskLevelDuringSignIn",
        "riskLevelAggregated",
        "userId",
    ])
    .prop_map(str::to_string)
}

/// A record object with the required keys, so that the models accept it most of the time.
fn record() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(field_name(), json_value(), 0..12).prop_map(|fields| {
        let mut object: Map<String, Value> = fields.into_iter().collect();
        object.insert("id".into(), json!("r1"));
        object.entry("userId").or_insert_with(|| json!("u1"));
        object.insert("createdDateTime".into(), json!("2026-11-01T10:00:00Z"));
        Value::Object(object)
    })
}

/// Rules that use every match key of every source, so every field reader runs.
static EVERY_KEY: LazyLock<RuleSet> = LazyLock::new(every_key);

fn every_key() -> RuleSet {
    let text = "\
rules:
  - id: users
    source: risky_users
    match:
      risk_level: [high, medium]
      min_risk_level: low
      risk_state: [atRisk]
      risk_detail: [none]
      user_principal_name: [alex@contoso.com]
      is_processing: false
    actions: [revoke_sessions]
  - id: detections
    source: risk_detections
    match:
      risk_event_type: [leakedCredentials]
      risk_level: [high]
      min_risk_level: medium
      risk_state: [atRisk]
      detection_timing_type: [offline]
      ip_address: [203.0.113.0/24, '2001:db8::/32']
      country: [us]
      user_principal_name: [alex@contoso.com]
    actions: [revoke_sessions]
  - id: sign-ins
    source: sign_ins
    match:
      ip_address: [203.0.113.0/24]
      country: [nl]
      app_id: [x]
      app_display_name: [azure portal]
      status: success
      risk_level_during_sign_in: [high]
      risk_level_aggregated: [high]
      min_risk_level: high
      risk_state: [atRisk]
      user_principal_name: [alex@contoso.com]
    actions: [revoke_sessions]
  - id: everything
    source: sign_ins
    match: {all: true}
    actions: [notify]
";
    compile_text(text.to_string()).unwrap_or_else(|d| panic!("{d}"))
}

/// Evaluates and explains every rule; a match must be explained by conditions that all held.
fn exercise(set: &RuleSet, record: &Record<'_>) {
    for m in set.evaluate(record) {
        assert_eq!(m.rule.source, record.source());
        assert!(m.explanation.conditions.iter().all(|c| c.held));
        assert!(!m.explanation.summary.contains('\n'));
    }
    for rule in set.rules() {
        let explanation = rule.explain(record);
        assert_eq!(
            rule.matches(record),
            rule.source == record.source() && explanation.conditions.iter().all(|c| c.held)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in ".*") {
        let _ = compile_text(text);
    }

    #[test]
    fn yaml_shaped_text_never_panics(tokens in prop::collection::vec(yaml_token(), 0..60)) {
        let _ = compile_text(tokens.concat());
    }

    #[test]
    fn a_mangled_pack_never_panics_and_reports_positions_inside_the_file(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<char>()), 1..4)
    ) {
        let text = edits.iter().fold(PACK.to_string(), |t, (at, edit, c)| mangle(&t, *at, *edit, *c));
        let lines = text.lines().count().max(1);
        if let Err(diags) = compile_text(text) {
            prop_assert!(!diags.0.is_empty());
            for d in &diags.0 {
                prop_assert!(d.line >= 1 && d.line <= lines + 1, "{d}");
                prop_assert!(d.column >= 1, "{d}");
            }
        }
    }

    #[test]
    fn a_mangled_sign_in_pack_never_panics_and_its_tests_run(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<char>()), 1..4)
    ) {
        let text = edits.iter().fold(SIGN_IN_PACK.to_string(), |t, (at, edit, c)| mangle(&t, *at, *edit, *c));
        let lines = text.lines().count().max(1);
        match compile_text(text) {
            Err(diags) => {
                prop_assert!(!diags.0.is_empty());
                for d in &diags.0 {
                    prop_assert!(d.line >= 1 && d.line <= lines + 1, "{d}");
                    prop_assert!(d.column >= 1, "{d}");
                }
            }
            // A mangled pack that still loads runs its tests without panicking.
            Ok(set) => {
                let _ = set.run_tests();
            }
        }
    }

    #[test]
    fn arbitrary_records_never_panic_evaluate(record in record()) {
        let set = &*EVERY_KEY;
        if let Ok(user) = serde_json::from_value::<RiskyUser>(record.clone()) {
            exercise(set, &Record::RiskyUser(&user));
        }
        if let Ok(detection) = serde_json::from_value::<RiskDetection>(record.clone()) {
            exercise(set, &Record::RiskDetection(&detection));
        }
        if let Ok(sign_in) = serde_json::from_value::<SignIn>(record) {
            exercise(set, &Record::SignIn(&sign_in));
        }
    }
}
