//! What `revokd check` prints for broken rule files: exact `file:line:col: message` lines.

use rules::{SourceFile, compile};

fn file(origin: &str, text: &str) -> SourceFile {
    SourceFile {
        origin: origin.to_string(),
        text: text.to_string(),
    }
}

/// Compiles `files` and asserts the printed diagnostics, one per line.
fn check(files: &[SourceFile], expected: &str) {
    match compile(files) {
        Ok(set) => panic!("expected diagnostics, compiled {} rules", set.rules().len()),
        Err(diags) => assert_eq!(diags.to_string(), expected.trim_end()),
    }
}

const GOOD: &str = "\
rules:
  - id: high-risk-users
    source: risky_users
    match: {risk_level: [high]}
    actions: [revoke_sessions]
";

#[test]
fn yaml_syntax_error() {
    check(
        &[file(
            "rules/bad.yaml",
            "rules:\n  - id: a\n    match: {risk_level: [high}\n",
        )],
        "rules/bad.yaml:3:25: mismatched bracket '[' closed by '}'",
    );
}

#[test]
fn unknown_key() {
    check(
        &[file(
            "r.yaml",
            "rules:\n  - id: a\n    source: risky_users\n    severty: high\n    match: {all: true}\n    actions: [notify]\n",
        )],
        "r.yaml:4:5: unknown field `severty`, expected one of `id`, `description`, `source`, `match`, `condition`, `except`, `window`, `actions`, `mode`, `cooldown`, `severity`, `tags`, `enabled`, `tests`",
    );
}

#[test]
fn unknown_top_level_key() {
    check(
        &[file("r.yaml", "rule:\n  - id: a\n")],
        "r.yaml:1:1: unknown field `rule`, expected one of `rules`, `lists`, `macros`",
    );
}

#[test]
fn duplicate_id_points_at_the_second_and_names_the_first() {
    let second = "rules:\n  - id: other\n    source: sign_ins\n    match: {status: failure}\n    actions: [notify]\n  - id: high-risk-users\n    source: risky_users\n    match: {all: true}\n    actions: [notify]\n";
    check(
        &[file("a.yaml", GOOD), file("b.yaml", second)],
        "b.yaml:6:9: duplicate rule id `high-risk-users`, first defined at a.yaml:2:9",
    );
}

#[test]
fn bad_cidr() {
    check(
        &[file(
            "ips.yaml",
            "rules:\n  - id: a\n    source: sign_ins\n    match:\n      ip_address: [10.0.0.0/8, 10.0.0.0/33]\n    actions: [notify]\n",
        )],
        "ips.yaml:5:32: invalid IP address or CIDR network `10.0.0.0/33` (e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32)",
    );
}

#[test]
fn bad_enum_value_lists_the_valid_ones() {
    check(
        &[file(
            "e.yaml",
            "rules:\n  - id: a\n    source: risky_users\n    match:\n      risk_level: [High]\n      risk_state: [compromised]\n    actions: [revoke_sessions]\n",
        )],
        "e.yaml:5:20: unknown value `High` for `risk_level` (did you mean `high`?), expected one of: low, medium, high, hidden, none, unknownFutureValue\n\
         e.yaml:6:20: unknown value `compromised` for `risk_state`, expected one of: none, confirmedSafe, remediated, dismissed, atRisk, confirmedCompromised, unknownFutureValue",
    );
}

#[test]
fn bad_header_values_name_the_valid_ones() {
    check(
        &[file(
            "h.yaml",
            "rules:\n  - id: a\n    source: risky_user\n    match: {all: true}\n    actions: [notify]\n  - id: b\n    source: sign_ins\n    match: {all: true}\n    actions: [revoke]\n  - id: c\n    source: sign_ins\n    match: {all: true}\n    actions: [notify]\n    cooldown: soon\n  - id: d\n    source: sign_ins\n    match: {all: true}\n    actions: [notify]\n    enabled: yes\n",
        )],
        "\
h.yaml:3:13: unknown source `risky_user`, expected one of: risky_users, risk_detections, sign_ins, post_containment
h.yaml:9:15: unknown action `revoke`, expected one of: revoke_sessions, confirm_compromised, disable_account, notify
h.yaml:14:15: invalid value: string \"soon\", expected a duration
h.yaml:19:14: invalid type: string \"yes\", expected a boolean
",
    );
}

#[test]
fn every_problem_of_every_rule_is_reported_at_once() {
    let text = "\
rules:
  - id: Bad_ID
    source: risky_users
    match:
      risk_level: [extreme]
      app_id: [x]
      colour: [red]
    actions: []
  - id: fine
    source: risk_detections
    match: {risk_event_type: [leakedCredentials]}
    actions: [revoke_sessions, revoke_sessions]
  - id: no-match
    source: sign_ins
    actions: [notify]
  - id: empty-match
    source: sign_ins
    match: {}
    actions: [notify]
  - id: all-and-more
    source: sign_ins
    match: {all: true, status: success}
    actions: [notify]
  - id: all-false
    source: sign_ins
    match: {all: false}
    actions: [notify]
";
    check(&[file("many.yaml", text)], "\
many.yaml:2:9: invalid rule id `Bad_ID`: use lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit
many.yaml:5:20: unknown value `extreme` for `risk_level`, expected one of: low, medium, high, hidden, none, unknownFutureValue
many.yaml:6:7: match key `app_id` does not apply to source `risky_users`, whose keys are: all, risk_level, min_risk_level, risk_state, risk_detail, user_principal_name, is_processing
many.yaml:7:7: unknown match key `colour`, expected one of: all, risk_level, min_risk_level, risk_state, risk_detail, user_principal_name, is_processing
many.yaml:8:14: `actions` is empty: a rule must do something (revoke_sessions, confirm_compromised, disable_account or notify)
many.yaml:12:32: action `revoke_sessions` is listed twice
many.yaml:13:5: rule has neither `match:` nor `condition:`; to match every record write `match: {all: true}`
many.yaml:18:12: empty `match:` would match every record; write `match: {all: true}` if that is meant
many.yaml:22:13: `all` cannot be combined with other match keys
many.yaml:26:18: `all` takes only `true`: it makes the rule match every record of its source
");
}

#[test]
fn wrongly_shaped_match_values() {
    let text = "\
rules:
  - id: shapes
    source: sign_ins
    match:
      min_risk_level: [high]
      status: ok
      country: []
      app_id: [x, 5, '']
      ip_address: 7
    actions: [notify]
  - id: more
    source: risky_users
    match:
      is_processing: maybe
    actions: [notify]
";
    check(
        &[file("s.yaml", text)],
        "\
s.yaml:5:23: `min_risk_level` takes one level (low, medium, high), found a list
s.yaml:6:15: `status` takes `success` or `failure`, found `ok`
s.yaml:7:16: `country` is an empty list: it would match nothing
s.yaml:8:19: `app_id` takes strings, found a number
s.yaml:8:22: empty value in `app_id`
s.yaml:9:19: `ip_address` takes a string or a list of strings, found a number
s.yaml:14:22: `is_processing` takes `true` or `false`, found `maybe`
",
    );
}

#[test]
fn files_that_are_not_rule_files() {
    check(
        &[
            file("empty.yaml", ""),
            file("list.yaml", "- id: a\n"),
            file("scalar.yaml", "rules: 5\n"),
            file("dup.yaml", "rules: []\nrules: []\n"),
        ],
        "\
empty.yaml:1:1: empty rule file: expected a mapping with a `rules:` list
list.yaml:1:1: invalid type: sequence, expected a mapping with `rules:`, `lists:` or `macros:`
scalar.yaml:1:8: invalid type: integer `5`, expected a sequence
dup.yaml:2:1: duplicate mapping key `rules` is not allowed here
",
    );
}

#[test]
fn an_alias_bomb_is_stopped_by_the_budget() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    text.push_str("rules: []\n");
    let started = std::time::Instant::now();
    let diags = compile(&[file("bomb.yaml", &text)]).expect_err("the budget refuses it");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(diags.0.len(), 1, "{diags}");
    assert!(
        diags.0[0]
            .message
            .starts_with("YAML document too large or too complex"),
        "{diags}"
    );
}
