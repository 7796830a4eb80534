//! Windows: counts over sign-ins per key, thresholds, re-feeding, eviction and reloads.

use graph::models::SignIn;
use rules::{Record, RuleSet, SourceFile, WindowState, compile};
use serde_json::json;

const SPRAY_THEN_SUCCESS: &str = "\
rules:
  - id: failures-then-success
    source: sign_ins
    condition: has(signIn.status.errorCode) && signIn.status.errorCode == 0
    window:
      group_by: [user]
      duration: 10m
      where: signIn.status.errorCode != 0
      count: 10
      distinct: {country: 3}
    actions: [revoke_sessions]
";

fn set(text: &str) -> RuleSet {
    compile(&[SourceFile {
        origin: "w.yaml".to_string(),
        text: text.to_string(),
    }])
    .unwrap_or_else(|d| panic!("{d}"))
}

/// A sign-in `minute` minutes past 10:00, by `user`, from `country`, with `code`.
fn sign_in(id: &str, minute: u32, user: &str, country: &str, code: i32) -> SignIn {
    serde_json::from_value(json!({
        "id": id,
        "createdDateTime": format!("2026-11-01T10:{minute:02}:00Z"),
        "userId": user,
        "ipAddress": format!("198.51.100.{}", minute % 250),
        "location": {"countryOrRegion": country},
        "status": {"errorCode": code}
    }))
    .expect("sign-in")
}

fn matched(set: &RuleSet, windows: &mut WindowState, s: &SignIn) -> bool {
    !set.evaluate_with(&Record::SignIn(s), None, windows)
        .is_empty()
}

/// Ten failures from three countries between 10:00 and 10:09, by `user`.
fn failures(user: &str) -> Vec<SignIn> {
    let countries = ["RU", "CN", "BR"];
    (0..10)
        .map(|i| {
            sign_in(
                &format!("{user}-f{i}"),
                i,
                user,
                countries[i as usize % 3],
                50126,
            )
        })
        .collect()
}

#[test]
fn failures_from_three_countries_then_a_success_matches() {
    let set = set(SPRAY_THEN_SUCCESS);
    let mut windows = WindowState::new();
    for f in failures("u1") {
        assert!(
            !matched(&set, &mut windows, &f),
            "a failure is not a success"
        );
    }
    let success = sign_in("u1-ok", 9, "u1", "RU", 0);
    let m = set.evaluate_with(&Record::SignIn(&success), None, &mut windows);
    assert_eq!(m.len(), 1);
    let window = m[0].explanation.window.as_ref().expect("window explained");
    assert_eq!(window.key.as_deref(), Some("u1"));
    assert_eq!(window.count, 10);
    assert_eq!(window.thresholds[1].values, ["BR", "CN", "RU"]);
    assert!(
        m[0].explanation.summary.contains(
            "window user=u1 over 10m: count 10 >= 10, distinct country 3 >= 3 (BR, CN, RU)"
        ),
        "{}",
        m[0].explanation.summary
    );
    // Another user's failures are another key.
    let other = sign_in("u2-ok", 9, "u2", "RU", 0);
    assert!(!matched(&set, &mut windows, &other));
}

#[test]
fn thresholds_must_all_be_crossed_within_the_span() {
    let set = set(SPRAY_THEN_SUCCESS);
    // Nine failures only.
    let mut windows = WindowState::new();
    for f in failures("u1").into_iter().skip(1) {
        matched(&set, &mut windows, &f);
    }
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("ok", 9, "u1", "RU", 0)
    ));

    // Ten failures, one country.
    let mut windows = WindowState::new();
    for i in 0..10 {
        matched(
            &set,
            &mut windows,
            &sign_in(&format!("f{i}"), i, "u1", "RU", 1),
        );
    }
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("ok", 9, "u1", "RU", 0)
    ));

    // Ten failures from three countries, but the success comes 11 minutes after the first:
    // the span (10:01, 10:11] holds nine.
    let mut windows = WindowState::new();
    for f in failures("u1") {
        matched(&set, &mut windows, &f);
    }
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("late", 11, "u1", "RU", 0)
    ));
    // At 10:10 the span (10:00, 10:10] still misses the 10:00 failure.
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("edge", 10, "u1", "RU", 0)
    ));
}

#[test]
fn feeding_the_same_sign_ins_again_does_not_double_count() {
    let set = set(SPRAY_THEN_SUCCESS);
    let mut windows = WindowState::new();
    // Five failures fed three times (a restart re-reading its overlap, twice) are five.
    let five: Vec<SignIn> = failures("u1").into_iter().take(5).collect();
    for _ in 0..3 {
        for f in &five {
            matched(&set, &mut windows, f);
        }
    }
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("ok", 9, "u1", "RU", 0)
    ));
    assert_eq!(windows.stats().events, 5);
    // The other five complete it.
    for f in failures("u1").into_iter().skip(5) {
        matched(&set, &mut windows, &f);
    }
    assert!(matched(
        &set,
        &mut windows,
        &sign_in("ok", 9, "u1", "RU", 0)
    ));
}

#[test]
fn a_rebuilt_state_decides_as_the_original() {
    let set = set(SPRAY_THEN_SUCCESS);
    let all: Vec<SignIn> = failures("u1")
        .into_iter()
        .chain([sign_in("ok", 9, "u1", "RU", 0)])
        .collect();
    let mut original = WindowState::new();
    let first: Vec<bool> = all
        .iter()
        .map(|s| matched(&set, &mut original, s))
        .collect();
    // A restarted daemon re-reads the same sign-ins into a fresh state.
    let mut rebuilt = WindowState::new();
    let again: Vec<bool> = all.iter().map(|s| matched(&set, &mut rebuilt, s)).collect();
    assert_eq!(first, again);
    assert_eq!(original.stats(), rebuilt.stats());
}

#[test]
fn impossible_travel_counts_distinct_countries_of_successes() {
    let set = set("\
rules:
  - id: travel
    source: sign_ins
    condition: signIn.status.errorCode == 0
    window:
      group_by: [user]
      duration: 1h
      where: has(signIn.status.errorCode) && signIn.status.errorCode == 0
      distinct: {country: 2}
    actions: [notify]
");
    let mut windows = WindowState::new();
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("a", 0, "u1", "NL", 0)
    ));
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("b", 5, "u1", "NL", 0)
    ));
    assert!(matched(
        &set,
        &mut windows,
        &sign_in("c", 30, "u1", "JP", 0)
    ));
    // A failure from a third country is not counted.
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("d", 31, "u2", "NL", 0)
    ));
    assert!(!matched(
        &set,
        &mut windows,
        &sign_in("e", 32, "u2", "US", 1)
    ));
}

#[test]
fn spray_from_one_address_counts_distinct_users() {
    let set = set("\
rules:
  - id: spray
    source: sign_ins
    condition: signIn.status.errorCode != 0
    window:
      group_by: [ip]
      duration: 5m
      distinct: {user: 3}
    actions: [notify]
");
    let mut windows = WindowState::new();
    let at = |id: &str, user: &str| -> SignIn {
        serde_json::from_value(json!({
            "id": id, "createdDateTime": "2026-11-01T10:00:00Z", "userId": user,
            "ipAddress": "203.0.113.9", "status": {"errorCode": 50126}
        }))
        .expect("sign-in")
    };
    assert!(!matched(&set, &mut windows, &at("1", "a")));
    assert!(!matched(&set, &mut windows, &at("2", "b")));
    assert!(!matched(&set, &mut windows, &at("3", "b")));
    assert!(matched(&set, &mut windows, &at("4", "c")));
    // Without an address there is no key, so nothing is counted.
    let no_ip: SignIn = serde_json::from_value(json!({
        "id": "5", "createdDateTime": "2026-11-01T10:00:00Z", "userId": "d",
        "status": {"errorCode": 50126}
    }))
    .expect("sign-in");
    assert!(!matched(&set, &mut windows, &no_ip));
}

#[test]
fn old_events_are_evicted_and_keys_are_capped() {
    let set = set("\
rules:
  - id: many
    source: sign_ins
    condition: 'true'
    window:
      group_by: [user]
      duration: 2m
      count: 100
      max_keys: 16
    actions: [notify]
");
    let mut windows = WindowState::new();
    for i in 0..40 {
        matched(
            &set,
            &mut windows,
            &sign_in(&format!("s{i}"), i, &format!("u{i}"), "NL", 0),
        );
    }
    let stats = windows.stats();
    assert!(stats.keys <= 16, "{stats:?}");
    // Expired sign-ins are swept once per span of sign-in time: what is held lies within two
    // spans of the newest (10:39).
    assert!(stats.events <= 4, "{stats:?}");
}

#[test]
fn a_reload_resets_only_the_changed_rule() {
    let text = |count: u32| {
        format!(
            "rules:\n  - id: kept\n    source: sign_ins\n    condition: 'true'\n    window: {{group_by: [user], duration: 1h, count: 3}}\n    actions: [notify]\n  - id: changed\n    source: sign_ins\n    condition: 'true'\n    window: {{group_by: [user], duration: 1h, count: {count}}}\n    actions: [notify]\n"
        )
    };
    let before = set(&text(3));
    let mut windows = WindowState::new();
    for i in 0..2 {
        before.evaluate_with(
            &Record::SignIn(&sign_in(&format!("s{i}"), i, "u1", "NL", 0)),
            None,
            &mut windows,
        );
    }
    let after = set(&text(4));
    windows.retain(&after);
    let third = sign_in("s2", 2, "u1", "NL", 0);
    let ids: Vec<String> = after
        .evaluate_with(&Record::SignIn(&third), None, &mut windows)
        .into_iter()
        .map(|m| m.rule.id.clone())
        .collect();
    // `kept` still holds its two earlier sign-ins; `changed` starts again from one.
    assert_eq!(ids, ["kept"]);
    assert_eq!(
        after.longest_window(),
        Some(std::time::Duration::from_secs(3600))
    );
}

#[test]
fn window_mistakes_are_load_errors() {
    let got = compile(&[SourceFile {
        origin: "w.yaml".to_string(),
        text: "\
rules:
  - id: w
    source: risky_users
    condition: 'true'
    window:
      group_by: [user, user, planet]
      duration: 2d
    actions: [notify]
"
        .to_string(),
    }])
    .expect_err("bad window")
    .to_string();
    assert_eq!(
        got,
        "w.yaml:6:30: unknown window dimension `planet`, expected one of: user, ip, app, country"
    );
    let got = compile(&[SourceFile {
        origin: "w.yaml".to_string(),
        text: "\
rules:
  - id: w
    source: risky_users
    condition: 'true'
    window:
      group_by: [user, user]
      duration: 2d
      count: 0
    actions: [notify]
"
        .to_string(),
    }])
    .expect_err("bad window")
    .to_string();
    assert_eq!(
        got,
        "w.yaml:6:7: `window:` counts sign-ins: it needs `source: sign_ins`, not `risky_users`\n\
w.yaml:6:7: `duration` must be between 1s and 24h\n\
w.yaml:6:24: `user` is listed twice in `group_by`\n\
w.yaml:8:14: `count` must be at least 1"
    );
}
