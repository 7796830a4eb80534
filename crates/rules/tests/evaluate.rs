//! The rule language by example: each test is a rule, a record as Graph sends it, and whether
//! the rule matches.

use graph::models::{RiskDetection, RiskyUser};
use rules::{Explanation, Record, RuleSet, SourceFile, compile};
use serde_json::{Value, json};

/// Compiles one rule (`id: t`, `actions: [revoke_sessions]` added) from `body`, a YAML mapping
/// written at column 0.
fn rule_set(body: &str) -> RuleSet {
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    let text = format!("rules:\n  - id: t\n    actions: [revoke_sessions]\n{indented}");
    let file = SourceFile {
        origin: "t.yaml".to_string(),
        text,
    };
    match compile(&[file]) {
        Ok(set) => set,
        Err(diags) => panic!("rule does not compile:\n{diags}"),
    }
}

/// Parses `record` as the model of the source the rule watches, and evaluates the rule set.
fn outcome(set: &RuleSet, record: Value) -> Option<Explanation> {
    let matches = match set.rules()[0].source {
        rules::Source::RiskyUsers => set.evaluate(&Record::RiskyUser(&parse(record))),
        rules::Source::RiskDetections => set.evaluate(&Record::RiskDetection(&parse(record))),
        rules::Source::SignIns => set.evaluate(&Record::SignIn(&parse(record))),
        rules::Source::PostContainment => set.evaluate(&Record::PostContainment(&parse(record))),
    };
    matches.into_iter().map(|m| m.explanation).next()
}

fn parse<T: serde::de::DeserializeOwned>(record: Value) -> T {
    serde_json::from_value(record).unwrap_or_else(|e| panic!("record does not parse: {e}"))
}

fn check(rule: &str, record: Value, expected: bool) {
    let set = rule_set(rule);
    let got = outcome(&set, record.clone());
    assert_eq!(
        got.is_some(),
        expected,
        "rule:\n{rule}\nrecord: {record}\nexplanation: {got:?}"
    );
}

fn risky_user(fields: Value) -> Value {
    let mut record = json!({"id": "u1", "userPrincipalName": "alex@contoso.com"});
    merge(&mut record, fields);
    record
}

fn detection(fields: Value) -> Value {
    let mut record = json!({"id": "d1", "userId": "u1", "userPrincipalName": "alex@contoso.com"});
    merge(&mut record, fields);
    record
}

fn sign_in(fields: Value) -> Value {
    let mut record = json!({
        "id": "s1", "createdDateTime": "2026-11-01T10:00:00Z",
        "userId": "u1", "userPrincipalName": "alex@contoso.com"
    });
    merge(&mut record, fields);
    record
}

fn merge(record: &mut Value, fields: Value) {
    if let (Value::Object(r), Value::Object(f)) = (record, fields) {
        r.extend(f);
    }
}

#[test]
fn list_values_are_any_of_and_keys_are_all_of() {
    let rule = "source: risky_users\nmatch:\n  risk_level: [medium, high]\n  risk_state: [atRisk]";
    check(
        rule,
        risky_user(json!({"riskLevel": "high", "riskState": "atRisk"})),
        true,
    );
    check(
        rule,
        risky_user(json!({"riskLevel": "medium", "riskState": "atRisk"})),
        true,
    );
    check(
        rule,
        risky_user(json!({"riskLevel": "low", "riskState": "atRisk"})),
        false,
    );
    check(
        rule,
        risky_user(json!({"riskLevel": "high", "riskState": "remediated"})),
        false,
    );
    check(rule, risky_user(json!({"riskLevel": "high"})), false);
}

#[test]
fn a_single_value_is_a_one_item_list() {
    let rule = "source: risky_users\nmatch: {risk_state: confirmedCompromised}";
    check(
        rule,
        risky_user(json!({"riskState": "confirmedCompromised"})),
        true,
    );
    check(rule, risky_user(json!({"riskState": "atRisk"})), false);
}

#[test]
fn enum_members_compare_exactly_and_unknown_values_never_match() {
    let rule = "source: risky_users\nmatch: {risk_level: [high]}";
    check(rule, risky_user(json!({"riskLevel": "High"})), false);
    check(rule, risky_user(json!({"riskLevel": "severe"})), false);
    check(rule, risky_user(json!({"riskLevel": 3})), false);
    check(rule, risky_user(json!({"riskLevel": null})), false);
}

#[test]
fn min_risk_level_uses_graph_rank() {
    let rule = "source: risky_users\nmatch: {min_risk_level: medium}";
    check(rule, risky_user(json!({"riskLevel": "medium"})), true);
    check(rule, risky_user(json!({"riskLevel": "high"})), true);
    check(rule, risky_user(json!({"riskLevel": "low"})), false);
    for unranked in ["none", "hidden", "unknownFutureValue", "severe"] {
        check(rule, risky_user(json!({"riskLevel": unranked})), false);
    }
}

#[test]
fn user_principal_names_ignore_case() {
    let rule = "source: risky_users\nmatch: {user_principal_name: [Alex@Contoso.com]}";
    check(rule, risky_user(json!({})), true);
    check(
        rule,
        risky_user(json!({"userPrincipalName": "ALEX@CONTOSO.COM"})),
        true,
    );
    check(
        rule,
        risky_user(json!({"userPrincipalName": "sam@contoso.com"})),
        false,
    );
}

#[test]
fn risky_user_detail_and_processing() {
    let rule = "source: risky_users\nmatch:\n  risk_detail: [adminConfirmedUserCompromised]\n  is_processing: false";
    let confirmed = json!({"riskDetail": "adminConfirmedUserCompromised", "isProcessing": false});
    check(rule, risky_user(confirmed), true);
    let processing = json!({"riskDetail": "adminConfirmedUserCompromised", "isProcessing": true});
    check(rule, risky_user(processing), false);
    // Graph's own docs sample "Boolean" here: unknown is not false.
    let placeholder =
        json!({"riskDetail": "adminConfirmedUserCompromised", "isProcessing": "Boolean"});
    check(rule, risky_user(placeholder), false);
}

#[test]
fn detections_by_type_timing_and_country() {
    let rule = "source: risk_detections\nmatch:\n  risk_event_type: [leakedCredentials, passwordSpray]\n  detection_timing_type: [offline]\n  country: [us]";
    let leak = json!({"riskEventType": "leakedCredentials", "detectionTimingType": "offline",
                      "location": {"countryOrRegion": "US"}});
    check(rule, detection(leak), true);
    let realtime = json!({"riskEventType": "passwordSpray", "detectionTimingType": "realtime",
                          "location": {"countryOrRegion": "US"}});
    check(rule, detection(realtime), false);
    let nowhere = json!({"riskEventType": "leakedCredentials", "detectionTimingType": "offline"});
    check(rule, detection(nowhere), false);
}

#[test]
fn ip_addresses_match_networks_and_single_addresses() {
    let rule = "source: risk_detections\nmatch: {ip_address: [203.0.113.0/24, 198.51.100.7, '2001:db8::/32']}";
    check(rule, detection(json!({"ipAddress": "203.0.113.50"})), true);
    check(rule, detection(json!({"ipAddress": "198.51.100.7"})), true);
    check(rule, detection(json!({"ipAddress": "198.51.100.8"})), false);
    check(rule, detection(json!({"ipAddress": "2001:db8::1"})), true);
    check(rule, detection(json!({"ipAddress": "2001:db9::1"})), false);
    // As published in Graph's own example: not an address, so no match and no panic.
    check(rule, detection(json!({"ipAddress": "123.456.7.89"})), false);
    check(rule, detection(json!({})), false);
}

#[test]
fn sign_in_status_is_read_from_the_error_code() {
    let success = "source: sign_ins\nmatch: {status: success}";
    let failure = "source: sign_ins\nmatch: {status: failure}";
    check(success, sign_in(json!({"status": {"errorCode": 0}})), true);
    check(failure, sign_in(json!({"status": {"errorCode": 0}})), false);
    check(
        success,
        sign_in(json!({"status": {"errorCode": 50126}})),
        false,
    );
    check(
        failure,
        sign_in(json!({"status": {"errorCode": 50126}})),
        true,
    );
    // No code is no evidence either way.
    check(success, sign_in(json!({"status": {}})), false);
    check(failure, sign_in(json!({})), false);
}

#[test]
fn sign_ins_by_application() {
    let rule = "source: sign_ins\nmatch:\n  app_id: [C44B4083-3BB0-49C1-B47D-974E53CBDF3C]\n  app_display_name: [azure portal]";
    let portal =
        json!({"appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "appDisplayName": "Azure Portal"});
    check(rule, sign_in(portal), true);
    let other =
        json!({"appId": "00000000-0000-0000-0000-000000000000", "appDisplayName": "Azure Portal"});
    check(rule, sign_in(other), false);
}

#[test]
fn sign_in_min_risk_level_falls_back_when_the_aggregate_is_unavailable() {
    let rule = "source: sign_ins\nmatch: {min_risk_level: high}";
    check(rule, sign_in(json!({"riskLevelAggregated": "high"})), true);
    check(
        rule,
        sign_in(json!({"riskLevelDuringSignIn": "high"})),
        true,
    );
    let hidden = json!({"riskLevelAggregated": "hidden", "riskLevelDuringSignIn": "high"});
    check(rule, sign_in(hidden), true);
    // An aggregate of `none` is a judgement, not missing data: it wins.
    let cleared = json!({"riskLevelAggregated": "none", "riskLevelDuringSignIn": "high"});
    check(rule, sign_in(cleared), false);
    let lower = json!({"riskLevelAggregated": "medium", "riskLevelDuringSignIn": "high"});
    check(rule, sign_in(lower), false);
}

#[test]
fn sign_in_risk_levels_by_name() {
    let rule = "source: sign_ins\nmatch:\n  risk_level_during_sign_in: [high]\n  risk_level_aggregated: [medium]\n  risk_state: [atRisk]";
    let both = json!({"riskLevelDuringSignIn": "high", "riskLevelAggregated": "medium", "riskState": "atRisk"});
    check(rule, sign_in(both), true);
    let swapped = json!({"riskLevelDuringSignIn": "medium", "riskLevelAggregated": "high", "riskState": "atRisk"});
    check(rule, sign_in(swapped), false);
}

#[test]
fn all_true_matches_every_record_of_the_source() {
    let rule = "source: risk_detections\nmatch: {all: true}";
    check(rule, detection(json!({})), true);
    check(rule, detection(json!({"riskLevel": "low"})), true);
}

#[test]
fn disabled_rules_are_never_evaluated() {
    let rule = "source: risky_users\nmatch: {all: true}\nenabled: false";
    check(rule, risky_user(json!({})), false);
    let set = rule_set(rule);
    let user: RiskyUser = parse(risky_user(json!({})));
    // Still there to inspect and to try out by hand.
    assert!(set.rules()[0].matches(&Record::RiskyUser(&user)));
}

#[test]
fn a_rule_only_sees_records_of_its_source() {
    let set = rule_set("source: sign_ins\nmatch: {all: true}");
    let user: RiskyUser = parse(risky_user(json!({})));
    assert!(set.evaluate(&Record::RiskyUser(&user)).is_empty());
    let why = set.rules()[0].explain(&Record::RiskyUser(&user));
    assert_eq!(
        why.summary,
        "t did not match risky user alex@contoso.com: the rule watches sign_ins"
    );
}

#[test]
fn a_match_explains_every_condition_with_wire_names_and_values() {
    let set = rule_set(
        "source: sign_ins\nmatch:\n  ip_address: [203.0.113.0/24]\n  status: success\n  country: [NL]",
    );
    let record = sign_in(json!({
        "ipAddress": "203.0.113.50", "status": {"errorCode": 0},
        "location": {"countryOrRegion": "NL"}
    }));
    let explanation = outcome(&set, record).expect("the sign-in matches");
    assert_eq!(
        serde_json::to_value(&explanation).expect("serializes"),
        json!({
            "rule_id": "t",
            "summary": "t matched sign-in of alex@contoso.com: ipAddress=203.0.113.50 in [203.0.113.0/24]; status.errorCode=0 == 0 (success); location.countryOrRegion=NL in [nl] ignoring case",
            "conditions": [
                {"field": "ipAddress", "test": "in [203.0.113.0/24]", "actual": "203.0.113.50", "held": true},
                {"field": "status.errorCode", "test": "== 0 (success)", "actual": 0, "held": true},
                {"field": "location.countryOrRegion", "test": "in [nl] ignoring case", "actual": "NL", "held": true}
            ]
        })
    );
    // The explanation is stored as JSON and read back by the audit tools.
    let text = serde_json::to_string(&explanation).expect("serializes");
    assert_eq!(
        serde_json::from_str::<Explanation>(&text).expect("reads back"),
        explanation
    );
}

#[test]
fn a_miss_names_the_conditions_that_failed() {
    let set = rule_set("source: risky_users\nmatch:\n  risk_level: [high]\n  risk_state: [atRisk]");
    let user: RiskyUser = parse(risky_user(
        json!({"riskLevel": "medium", "riskState": "atRisk"}),
    ));
    let why = set.rules()[0].explain(&Record::RiskyUser(&user));
    assert_eq!(
        why.summary,
        "t did not match risky user alex@contoso.com, failed: riskLevel=medium in [high]"
    );
    assert_eq!(
        why.conditions.iter().map(|c| c.held).collect::<Vec<_>>(),
        [false, true]
    );
}

#[test]
fn the_summary_falls_back_to_the_user_id_and_stays_on_one_line() {
    let set = rule_set("source: risk_detections\nmatch: {all: true}");
    let record = json!({"id": "d1", "userId": "u-42"});
    let explanation = outcome(&set, record).expect("all: true");
    assert_eq!(
        explanation.summary,
        "t matched risk detection of u-42: matches every record"
    );
    let sneaky = json!({"id": "d1", "userPrincipalName": "eve@x.com\nFAKE LOG LINE"});
    let explanation = outcome(&set, sneaky).expect("all: true");
    assert!(
        !explanation.summary.contains('\n'),
        "{}",
        explanation.summary
    );
}

#[test]
fn record_accessors_name_the_user() {
    let user: RiskyUser = parse(risky_user(json!({})));
    let record = Record::RiskyUser(&user);
    assert_eq!(record.source(), rules::Source::RiskyUsers);
    assert_eq!(record.user_id(), Some("u1"));
    assert_eq!(record.user_principal_name(), Some("alex@contoso.com"));
    let anonymous: RiskDetection = parse(json!({"id": "d1"}));
    assert_eq!(Record::RiskDetection(&anonymous).user_id(), None);
}

#[test]
fn yaml_anchors_and_merge_keys_share_settings_between_rules() {
    let text = "\
defaults: &defaults
  actions: [revoke_sessions]
  mode: dry_run
rules:
  - <<: *defaults
    id: a
    source: risky_users
    match: {risk_level: [high]}
";
    // A top-level helper key is not part of the format: anchors live inside `rules:`.
    assert!(
        compile(&[SourceFile {
            origin: "m.yaml".into(),
            text: text.into()
        }])
        .is_err()
    );
    let text = "\
rules:
  - &base
    id: a
    source: risky_users
    match: {risk_level: [high]}
    actions: [revoke_sessions]
    mode: dry_run
  - <<: *base
    id: b
    match: {risk_level: [medium]}
";
    let set = compile(&[SourceFile {
        origin: "m.yaml".into(),
        text: text.into(),
    }])
    .unwrap_or_else(|d| panic!("{d}"));
    let b = set.get("b").expect("rule b");
    assert_eq!(b.mode, rules::Mode::DryRun);
    assert_eq!(b.actions, [rules::ActionKind::RevokeSessions]);
    let medium: RiskyUser = parse(risky_user(json!({"riskLevel": "medium"})));
    let ids: Vec<&str> = set
        .evaluate(&Record::RiskyUser(&medium))
        .iter()
        .map(|m| m.rule.id.as_str())
        .collect();
    assert_eq!(ids, ["b"]);
}
