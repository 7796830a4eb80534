//! The rule pack shipped in config/rules/ compiles and does what its comments say, on the
//! example payloads of Graph's own documentation.

use graph::models::{RiskDetection, RiskyUser, SignIn};
use rules::{ActionKind, Expect, Mode, Record, RuleSet, Source, SourceFile, compile};
use serde_json::Value;

const PACK: [(&str, &str); 3] = [
    (
        "config/rules/identity-protection.yaml",
        include_str!("../../../config/rules/identity-protection.yaml"),
    ),
    (
        "config/rules/sign-ins.yaml",
        include_str!("../../../config/rules/sign-ins.yaml"),
    ),
    (
        "config/rules/post-containment.yaml",
        include_str!("../../../config/rules/post-containment.yaml"),
    ),
];

fn pack() -> RuleSet {
    let files: Vec<SourceFile> = PACK
        .iter()
        .map(|(origin, text)| SourceFile {
            origin: (*origin).to_string(),
            text: (*text).to_string(),
        })
        .collect();
    compile(&files).unwrap_or_else(|d| panic!("the default pack does not compile:\n{d}"))
}

/// The first record of a Graph list response stored under tests/fixtures.
fn first_record<T: serde::de::DeserializeOwned>(text: &str) -> T {
    let page: Value = serde_json::from_str(text).expect("fixture is JSON");
    serde_json::from_value(page["value"][0].clone()).expect("fixture record parses")
}

fn matched(set: &RuleSet, record: &Record<'_>) -> Vec<String> {
    set.evaluate(record)
        .into_iter()
        .map(|m| m.rule.id.clone())
        .collect()
}

#[test]
fn the_pack_has_the_documented_rules() {
    let set = pack();
    let summary: Vec<(&str, Source, Mode)> = set
        .rules()
        .iter()
        .map(|r| (r.id.as_str(), r.source, r.mode))
        .collect();
    assert_eq!(
        summary,
        [
            ("high-risk-users", Source::RiskyUsers, Mode::Enforce),
            (
                "confirmed-compromised-users",
                Source::RiskyUsers,
                Mode::Enforce
            ),
            ("medium-risk-users-watch", Source::RiskyUsers, Mode::DryRun),
            ("finance-risky-users", Source::RiskyUsers, Mode::DryRun),
            ("leaked-credentials", Source::RiskDetections, Mode::DryRun),
            ("suspicious-ip-sign-in", Source::SignIns, Mode::DryRun),
            ("disabled-account-sign-in", Source::SignIns, Mode::DryRun),
            ("password-spray-success", Source::SignIns, Mode::DryRun),
            ("failures-then-success", Source::SignIns, Mode::DryRun),
            ("impossible-travel", Source::SignIns, Mode::DryRun),
            (
                "post-containment-sign-in",
                Source::PostContainment,
                Mode::DryRun
            ),
        ]
    );
    // The demo and the end-to-end tests rely on this one as it is.
    let high = set.get("high-risk-users").expect("high-risk-users");
    assert_eq!(high.actions, [ActionKind::RevokeSessions]);
    assert!(set.rules().iter().all(|r| r.enabled));
    assert_eq!(
        set.rules()[0].origin,
        "config/rules/identity-protection.yaml"
    );
    assert_eq!(
        set.longest_window(),
        Some(std::time::Duration::from_secs(3600))
    );
    assert!(set.reads_user(Source::RiskyUsers) && set.reads_user(Source::SignIns));
}

#[test]
fn every_rule_carries_tests_and_they_pass() {
    let set = pack();
    for rule in set.rules() {
        assert!(rule.test_count() >= 2, "{} has too few tests", rule.id);
    }
    let outcomes = set.run_tests();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(ToString::to_string)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // Every decision is exercised somewhere in the pack.
    for expect in [Expect::Match, Expect::NoMatch, Expect::Suppressed] {
        assert!(outcomes.iter().any(|o| o.expected == expect), "{expect}");
    }
}

#[test]
fn a_high_risk_user_from_the_graph_docs_is_contained() {
    let user: RiskyUser = first_record(include_str!(
        "fixtures/riskyusers-list.beta.example1.response.json"
    ));
    assert_eq!(
        matched(&pack(), &Record::RiskyUser(&user)),
        ["high-risk-users"]
    );
}

#[test]
fn a_remediated_detection_from_the_graph_docs_is_left_alone() {
    let detection: RiskDetection = first_record(include_str!(
        "fixtures/riskdetections-list.v1.0.response.json"
    ));
    assert!(matched(&pack(), &Record::RiskDetection(&detection)).is_empty());
    let mut leaked = detection;
    leaked.risk_event_type = Some("leakedCredentials".to_string());
    assert_eq!(
        matched(&pack(), &Record::RiskDetection(&leaked)),
        ["leaked-credentials"]
    );
}

#[test]
fn only_a_successful_sign_in_from_the_bad_network_is_recorded() {
    let sign_in: SignIn = first_record(include_str!(
        "fixtures/signins-list.beta.example2.response.json"
    ));
    let set = pack();
    assert!(matched(&set, &Record::SignIn(&sign_in)).is_empty());

    let mut from_bad_network = sign_in;
    from_bad_network.ip_address = Some("203.0.113.50".to_string());
    // The docs sample has `"status": {}`: without an error code success is not shown.
    assert!(matched(&set, &Record::SignIn(&from_bad_network)).is_empty());
    from_bad_network.status = serde_json::from_str(r#"{"errorCode": 0}"#).ok();
    assert_eq!(
        matched(&set, &Record::SignIn(&from_bad_network)),
        ["suspicious-ip-sign-in"]
    );
}

#[test]
fn a_successful_sign_in_after_containment_escalates_to_disable_and_notify() {
    let set = pack();
    let rule = set
        .get("post-containment-sign-in")
        .expect("post-containment-sign-in");
    assert_eq!(
        rule.actions,
        [ActionKind::Notify, ActionKind::DisableAccount]
    );
    assert_eq!(rule.severity, rules::Severity::Critical);
    assert_eq!(rule.tags, ["attack.t1078", "attack.t1550"]);

    let mut sign_in: SignIn = first_record(include_str!(
        "fixtures/signins-list.beta.example2.response.json"
    ));
    sign_in.status = serde_json::from_str(r#"{"errorCode": 0}"#).ok();
    // The same sign-in, seen by the post-containment rule only when the engine says the user
    // was contained before it.
    assert!(!matched(&set, &Record::SignIn(&sign_in)).contains(&rule.id));
    assert_eq!(
        matched(&set, &Record::PostContainment(&sign_in)),
        ["post-containment-sign-in"]
    );
    sign_in.status = serde_json::from_str(r#"{"errorCode": 50126}"#).ok();
    assert!(matched(&set, &Record::PostContainment(&sign_in)).is_empty());
    // The docs sample's `"status": {}` is no evidence of success.
    sign_in.status = serde_json::from_str("{}").ok();
    assert!(matched(&set, &Record::PostContainment(&sign_in)).is_empty());
}
