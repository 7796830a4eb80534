//! Rule and rule-set hashes: they change exactly when what a rule means or says changes.

use rules::{RuleSet, SourceFile, compile};

fn set(files: &[(&str, &str)]) -> RuleSet {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|(origin, text)| SourceFile {
            origin: (*origin).to_string(),
            text: (*text).to_string(),
        })
        .collect();
    compile(&files).unwrap_or_else(|d| panic!("{d}"))
}

/// The hash of the only rule in `rule`, a rule's YAML lines after `- `.
fn rule_hash(rule: &str) -> String {
    let text = format!("rules:\n  - {}\n", rule.replace('\n', "\n    "));
    set(&[("r.yaml", &text)]).rules()[0].hash.clone()
}

const BASE: &str =
    "id: r\nsource: risky_users\nmatch: {risk_level: [high, medium]}\nactions: [revoke_sessions]";

#[test]
fn the_hash_is_hex_sha256() {
    let hash = rule_hash(BASE);
    assert_eq!(hash.len(), 64);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn layout_and_place_do_not_change_the_hash() {
    let base = rule_hash(BASE);
    // Block style, other key order, list order and duplicates, defaults spelled out.
    let same = "actions:\n  - revoke_sessions\nmatch:\n  risk_level: [medium, high, high]\nsource: risky_users\nid: r\nmode: enforce\ncooldown: 60m\nenabled: true";
    assert_eq!(rule_hash(same), base);
    let moved = format!(
        "# comment\nrules:\n  - id: other\n    source: sign_ins\n    match: {{all: true}}\n    actions: [notify]\n  - {}\n",
        BASE.replace('\n', "\n    ")
    );
    let in_other_file = set(&[("elsewhere.yaml", &moved)]);
    assert_eq!(in_other_file.rules()[1].hash, base);
}

#[test]
fn every_field_is_covered() {
    let base = rule_hash(BASE);
    let changes = [
        BASE.replace("id: r", "id: r2"),
        BASE.replace("[high, medium]", "[high]"),
        BASE.replace("risk_level: [high, medium]", "risk_state: [atRisk]"),
        BASE.replace("risky_users", "risk_detections"),
        BASE.replace("[revoke_sessions]", "[revoke_sessions, notify]"),
        format!("{BASE}\nmode: dry_run"),
        format!("{BASE}\ncooldown: 2h"),
        format!("{BASE}\nseverity: critical"),
        format!("{BASE}\ntags: [attack.t1078]"),
        format!("{BASE}\nenabled: false"),
        format!("{BASE}\ndescription: words"),
    ];
    for changed in changes {
        assert_ne!(rule_hash(&changed), base, "{changed}");
    }
}

#[test]
fn the_set_hash_ignores_file_order_and_follows_any_rule_change() {
    let a = (
        "a.yaml",
        "rules:\n  - id: a\n    source: sign_ins\n    match: {status: failure}\n    actions: [notify]\n",
    );
    let b = (
        "b.yaml",
        "rules:\n  - id: b\n    source: sign_ins\n    match: {status: success}\n    actions: [notify]\n",
    );
    let b2 = (
        "b.yaml",
        "rules:\n  - id: b\n    source: sign_ins\n    match: {status: success}\n    actions: [revoke_sessions]\n",
    );
    assert_eq!(set(&[a, b]).hash(), set(&[b, a]).hash());
    assert_ne!(set(&[a, b]).hash(), set(&[a, b2]).hash());
    assert_ne!(set(&[a, b]).hash(), set(&[a]).hash());
    assert_eq!(set(&[]).rules().len(), 0);
}
