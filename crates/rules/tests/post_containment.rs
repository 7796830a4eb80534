//! `source: post_containment`: a sign-in the engine re-evaluates because the user signed in
//! successfully after revokd contained them. Such rules read exactly what sign-in rules read,
//! see only post-containment records, and cannot have windows.

use graph::models::SignIn;
use rules::{
    Expect, OwnedRecord, Record, RuleSet, Source, SourceFile, UserFacts, WindowState, compile,
};
use serde_json::{Value, json};

fn file(origin: &str, text: &str) -> SourceFile {
    SourceFile {
        origin: origin.to_string(),
        text: text.to_string(),
    }
}

fn set(text: &str) -> RuleSet {
    compile(&[file("p.yaml", text)]).unwrap_or_else(|d| panic!("does not compile:\n{d}"))
}

fn errors(text: &str) -> String {
    match compile(&[file("p.yaml", text)]) {
        Ok(_) => panic!("expected diagnostics for:\n{text}"),
        Err(d) => d.to_string(),
    }
}

fn sign_in(fields: Value) -> SignIn {
    let mut record = json!({
        "id": "s1", "createdDateTime": "2026-11-01T10:05:00Z",
        "userId": "u1", "userPrincipalName": "alice@contoso.com"
    });
    if let (Value::Object(r), Value::Object(f)) = (&mut record, fields) {
        r.extend(f);
    }
    serde_json::from_value(record).expect("sign-in parses")
}

/// The decision of the only rule: `None` (no match), `Some(None)` (match), `Some(Some(e))`
/// (suppressed by `e`).
fn decide(set: &RuleSet, record: &Record<'_>, user: Option<&UserFacts>) -> Option<Option<String>> {
    let mut windows = WindowState::new();
    set.evaluate_with(record, user, &mut windows)
        .into_iter()
        .next()
        .map(|m| m.suppressed_by)
}

#[test]
fn the_source_has_its_wire_name() {
    assert_eq!(Source::PostContainment.as_str(), "post_containment");
    assert!(Source::ALL.contains(&Source::PostContainment));
    assert!(Source::PostContainment.is_sign_in() && Source::SignIns.is_sign_in());
    assert!(!Source::RiskyUsers.is_sign_in() && !Source::RiskDetections.is_sign_in());
    assert_eq!(
        serde_json::to_value(Source::PostContainment).expect("serializes"),
        json!("post_containment")
    );
}

#[test]
fn every_sign_in_match_key_works_on_post_containment_records() {
    let set = set("\
rules:
  - id: p
    source: post_containment
    match:
      status: success
      ip_address: [203.0.113.0/24]
      country: [nl]
      app_id: [C44B4083-3BB0-49C1-B47D-974E53CBDF3C]
      app_display_name: [azure portal]
      user_principal_name: [ALICE@contoso.com]
      min_risk_level: medium
      risk_level_during_sign_in: [high]
      risk_level_aggregated: [medium]
      risk_state: [atRisk]
    actions: [notify, disable_account]
");
    let fields = json!({
        "status": {"errorCode": 0}, "ipAddress": "203.0.113.50",
        "location": {"countryOrRegion": "NL"},
        "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "appDisplayName": "Azure Portal",
        "riskLevelDuringSignIn": "high", "riskLevelAggregated": "medium", "riskState": "atRisk"
    });
    let s = sign_in(fields.clone());
    assert_eq!(decide(&set, &Record::PostContainment(&s), None), Some(None));
    // Each key is really read: breaking any one field breaks the match.
    for (key, value) in [
        ("status", json!({"errorCode": 50126})),
        ("ipAddress", json!("198.51.100.1")),
        ("location", json!({"countryOrRegion": "US"})),
        ("appId", json!("00000000-0000-0000-0000-000000000000")),
        ("appDisplayName", json!("Outlook")),
        ("userPrincipalName", json!("bob@contoso.com")),
        ("riskLevelDuringSignIn", json!("low")),
        ("riskLevelAggregated", json!("low")),
        ("riskState", json!("remediated")),
    ] {
        let mut changed = fields.clone();
        changed[key] = value;
        let s = sign_in(changed);
        assert_eq!(
            decide(&set, &Record::PostContainment(&s), None),
            None,
            "{key}"
        );
    }
}

#[test]
fn keys_of_other_feeds_are_load_errors() {
    let got = errors(
        "rules:\n  - id: p\n    source: post_containment\n    match: {risk_event_type: [leakedCredentials]}\n    actions: [notify]\n",
    );
    assert_eq!(
        got,
        "p.yaml:4:13: match key `risk_event_type` does not apply to source `post_containment`, whose keys are: all, risk_level, min_risk_level, risk_state, user_principal_name, ip_address, country, app_id, app_display_name, status, risk_level_during_sign_in, risk_level_aggregated"
    );
}

#[test]
fn conditions_read_sign_in_and_user_with_lists_macros_and_exceptions() {
    let set = set("\
lists:
  hostile:
    kind: networks
    items: [203.0.113.0/24]
macros:
  succeeded: has(signIn.status.errorCode) && signIn.status.errorCode == 0
rules:
  - id: p
    source: post_containment
    condition: >-
      succeeded && inList(signIn.ipAddress, 'hostile')
      && equalsIgnoreCase(user.department, 'Finance')
    except:
      - name: red-team
        condition: signIn.userPrincipalName.startsWith('redteam@')
    actions: [disable_account]
");
    let finance = UserFacts {
        department: Some("finance".into()),
        ..UserFacts::default()
    };
    let hit = sign_in(json!({"ipAddress": "203.0.113.9", "status": {"errorCode": 0}}));
    let record = Record::PostContainment(&hit);
    assert_eq!(decide(&set, &record, Some(&finance)), Some(None));
    assert_eq!(decide(&set, &record, None), None);
    let failed = sign_in(json!({"ipAddress": "203.0.113.9", "status": {"errorCode": 50126}}));
    assert_eq!(
        decide(&set, &Record::PostContainment(&failed), Some(&finance)),
        None
    );
    let elsewhere = sign_in(json!({"ipAddress": "198.51.100.9", "status": {"errorCode": 0}}));
    assert_eq!(
        decide(&set, &Record::PostContainment(&elsewhere), Some(&finance)),
        None
    );
    let red = sign_in(json!({
        "ipAddress": "203.0.113.9", "status": {"errorCode": 0},
        "userPrincipalName": "redteam@contoso.com"
    }));
    assert_eq!(
        decide(&set, &Record::PostContainment(&red), Some(&finance)),
        Some(Some("red-team".to_string()))
    );
    assert!(set.reads_user(Source::PostContainment));
    assert!(!set.reads_user(Source::SignIns));
}

#[test]
fn conditions_cannot_read_other_feeds() {
    let got = errors(
        "rules:\n  - id: p\n    source: post_containment\n    condition: \"riskyUser.riskLevel == 'high'\"\n    actions: [notify]\n",
    );
    assert!(got.starts_with("p.yaml:4:"), "{got}");
    assert!(got.contains("riskyUser"), "{got}");
}

#[test]
fn post_containment_and_sign_in_rules_each_see_only_their_own_records() {
    let set = set("\
rules:
  - id: after
    source: post_containment
    match: {status: success}
    actions: [disable_account]
  - id: plain
    source: sign_ins
    match: {status: success}
    actions: [revoke_sessions]
");
    let s = sign_in(json!({"status": {"errorCode": 0}}));
    let ids = |record: &Record<'_>| -> Vec<String> {
        set.evaluate(record)
            .into_iter()
            .map(|m| m.rule.id.clone())
            .collect()
    };
    assert_eq!(ids(&Record::SignIn(&s)), ["plain"]);
    assert_eq!(ids(&Record::PostContainment(&s)), ["after"]);

    let after = set.get("after").expect("after");
    assert_eq!(
        after.explain(&Record::PostContainment(&s)).summary,
        "after matched post-containment sign-in of alice@contoso.com: status.errorCode=0 == 0 (success)"
    );
    assert_eq!(
        after.explain(&Record::SignIn(&s)).summary,
        "after did not match sign-in of alice@contoso.com: the rule watches post_containment"
    );
}

#[test]
fn the_record_names_its_source_and_user() {
    let s = sign_in(json!({}));
    let record = Record::PostContainment(&s);
    assert_eq!(record.source(), Source::PostContainment);
    assert_eq!(record.user_id(), Some("u1"));
    assert_eq!(record.user_principal_name(), Some("alice@contoso.com"));
    let anonymous = sign_in(json!({"userId": "", "userPrincipalName": null}));
    let record = Record::PostContainment(&anonymous);
    assert_eq!(record.user_id(), None);
    assert_eq!(record.user_principal_name(), None);
}

#[test]
fn owned_records_read_a_sign_in() {
    let value = json!({
        "id": "s9", "createdDateTime": "2026-11-01T10:05:00Z", "userId": "u1",
        "status": {"errorCode": 0}
    });
    let owned =
        OwnedRecord::from_json(Source::PostContainment, value.clone()).expect("a sign-in parses");
    assert!(matches!(owned, OwnedRecord::PostContainment(_)));
    assert_eq!(owned.id(), "s9");
    assert_eq!(
        owned.time().map(|t| t.to_rfc3339()),
        Some("2026-11-01T10:05:00+00:00".to_string())
    );
    assert_eq!(owned.as_record().source(), Source::PostContainment);
    assert_eq!(owned.as_record().user_id(), Some("u1"));
    // Read as a plain sign-in, the same JSON is a sign_ins record.
    let plain = OwnedRecord::from_json(Source::SignIns, value).expect("a sign-in parses");
    assert_eq!(plain.as_record().source(), Source::SignIns);
    // A sign-in needs its user.
    assert!(
        OwnedRecord::from_json(
            Source::PostContainment,
            json!({"id": "s9", "createdDateTime": "2026-11-01T10:05:00Z"})
        )
        .is_err()
    );
}

#[test]
fn test_cases_take_a_sign_in_as_input() {
    let set = set("\
rules:
  - id: p
    source: post_containment
    match: {status: success}
    except:
      - name: break-glass
        condition: signIn.userPrincipalName == 'breakglass@contoso.com'
    actions: [notify, disable_account]
    tests:
      - name: success
        input: {id: s1, createdDateTime: '2026-11-01T10:05:00Z', userId: u1, status: {errorCode: 0}}
        expect: match
      - name: failure
        input: {id: s2, createdDateTime: '2026-11-01T10:05:00Z', userId: u1, status: {errorCode: 50126}}
        expect: no_match
      - name: break glass
        input: {id: s3, createdDateTime: '2026-11-01T10:05:00Z', userId: u2, userPrincipalName: breakglass@contoso.com, status: {errorCode: 0}}
        expect: suppressed
        exception: break-glass
      - name: wrongly expects a failure to match
        input: {id: s4, createdDateTime: '2026-11-01T10:05:00Z', userId: u1, status: {errorCode: 50126}}
        expect: match
");
    let outcomes = set.run_tests();
    let results: Vec<(&str, bool, Expect)> = outcomes
        .iter()
        .map(|o| (o.name.as_str(), o.passed, o.actual))
        .collect();
    assert_eq!(
        results,
        [
            ("success", true, Expect::Match),
            ("failure", true, Expect::NoMatch),
            ("break glass", true, Expect::Suppressed),
            ("wrongly expects a failure to match", false, Expect::NoMatch),
        ]
    );
}

#[test]
fn a_test_input_that_is_not_a_sign_in_is_a_load_error() {
    let got = errors(
        "\
rules:
  - id: p
    source: post_containment
    match: {status: success}
    actions: [notify]
    tests:
      - name: a risky user is not a sign-in
        input: {id: u1, riskLevel: high}
        expect: no_match
",
    );
    assert!(
        got.starts_with("p.yaml:8:16: test record is not a valid post_containment record: "),
        "{got}"
    );
}

#[test]
fn windows_are_for_sign_in_rules_only() {
    let got = errors(
        "\
rules:
  - id: p
    source: post_containment
    match: {status: success}
    window: {group_by: [user], duration: 10m, count: 2}
    actions: [notify]
",
    );
    assert_eq!(
        got,
        "p.yaml:5:13: `window:` counts sign-ins: it needs `source: sign_ins`, not `post_containment`"
    );
}
