//! Explanations, snapshotted: what the audit stores with a decision and what operators read.

use graph::models::{RiskyUser, SignIn};
use rules::{Explanation, Record, RuleSet, SourceFile, UserFacts, WindowState, compile};
use serde_json::json;

fn pack() -> RuleSet {
    let files = [
        (
            "config/rules/identity-protection.yaml",
            include_str!("../../../config/rules/identity-protection.yaml"),
        ),
        (
            "config/rules/sign-ins.yaml",
            include_str!("../../../config/rules/sign-ins.yaml"),
        ),
    ]
    .map(|(origin, text)| SourceFile {
        origin: origin.to_string(),
        text: text.to_string(),
    });
    compile(&files).unwrap_or_else(|d| panic!("{d}"))
}

fn sign_in(value: serde_json::Value) -> SignIn {
    serde_json::from_value(value).expect("sign-in")
}

fn explanations(set: &RuleSet, records: &[SignIn], user: Option<&UserFacts>) -> Vec<Explanation> {
    let mut windows = WindowState::new();
    let mut out = Vec::new();
    for r in records {
        out.extend(
            set.evaluate_with(&Record::SignIn(r), user, &mut windows)
                .into_iter()
                .map(|m| m.explanation),
        );
    }
    out
}

#[test]
fn a_match_block_explains_each_key() {
    let user: RiskyUser = serde_json::from_value(json!({
        "id": "u1", "userPrincipalName": "alex@contoso.com", "riskLevel": "high", "riskState": "atRisk"
    }))
    .expect("risky user");
    let set = pack();
    let matches = set.evaluate(&Record::RiskyUser(&user));
    insta::assert_yaml_snapshot!("match_block", matches[0].explanation);
}

#[test]
fn cel_conjuncts_show_the_values_they_read_and_exceptions_why_they_held() {
    let set = pack();
    let records = [sign_in(json!({
        "id": "s1", "createdDateTime": "2026-11-01T10:00:00Z", "userId": "u9",
        "userPrincipalName": "redteam@contoso.com", "ipAddress": "203.0.113.8",
        "status": {"errorCode": 0}
    }))];
    insta::assert_yaml_snapshot!("suppressed", explanations(&set, &records, None));
}

#[test]
fn windows_show_counts_thresholds_and_values() {
    let set = pack();
    let mut records: Vec<SignIn> = (0..10)
        .map(|i| {
            let country = ["RU", "CN", "BR"][i % 3];
            sign_in(json!({
                "id": format!("f{i}"), "createdDateTime": format!("2026-11-01T10:0{i}:00Z"),
                "userId": "u1", "userPrincipalName": "megan@contoso.com",
                "ipAddress": format!("192.0.2.{i}"),
                "location": {"countryOrRegion": country},
                "status": {"errorCode": 50126}
            }))
        })
        .collect();
    records.push(sign_in(json!({
        "id": "ok", "createdDateTime": "2026-11-01T10:09:30Z", "userId": "u1",
        "userPrincipalName": "megan@contoso.com", "ipAddress": "198.51.100.3",
        "location": {"countryOrRegion": "NL"}, "status": {"errorCode": 0}
    })));
    insta::assert_yaml_snapshot!("window", explanations(&set, &records, None));
}

#[test]
fn a_non_match_says_what_failed() {
    let set = pack();
    let rule = set.get("disabled-account-sign-in").expect("rule");
    let s = sign_in(json!({
        "id": "s1", "createdDateTime": "2026-11-01T10:00:00Z", "userId": "u1",
        "status": {"errorCode": 0}
    }));
    insta::assert_snapshot!("non_match", rule.explain(&Record::SignIn(&s)).summary);
}
