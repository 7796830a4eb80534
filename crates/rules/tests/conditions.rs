//! CEL conditions, named lists, macros and exceptions by example: each test is rule text, a
//! record as Graph sends it, and the decision; or rule text and the exact diagnostics.

use graph::models::{RiskDetection, RiskyUser, SignIn};
use rules::{Record, RuleSet, SourceFile, UserFacts, WindowState, compile, required_files};
use serde_json::{Value, json};

fn file(origin: &str, text: &str) -> SourceFile {
    SourceFile {
        origin: origin.to_string(),
        text: text.to_string(),
    }
}

fn set(text: &str) -> RuleSet {
    compile(&[file("t.yaml", text)]).unwrap_or_else(|d| panic!("does not compile:\n{d}"))
}

fn errors(text: &str) -> String {
    match compile(&[file("t.yaml", text)]) {
        Ok(_) => panic!("expected diagnostics for:\n{text}"),
        Err(d) => d.to_string(),
    }
}

/// A sign-in rule with `condition`, written as a YAML double-quoted scalar (whose text starts
/// at column 17 of line 4).
fn sign_in_rule(condition: &str) -> String {
    let quoted = condition.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "rules:\n  - id: t\n    source: sign_ins\n    condition: \"{quoted}\"\n    actions: [notify]\n"
    )
}

fn sign_in(fields: Value) -> SignIn {
    let mut record = json!({
        "id": "s1", "createdDateTime": "2026-11-01T10:00:00Z",
        "userId": "u1", "userPrincipalName": "alex@contoso.com"
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

fn holds(condition: &str, fields: Value) -> bool {
    let set = set(&sign_in_rule(condition));
    let s = sign_in(fields);
    decide(&set, &Record::SignIn(&s), None).is_some()
}

#[test]
fn fields_operators_and_functions() {
    let base = json!({
        "ipAddress": "203.0.113.50", "appDisplayName": "Azure Portal",
        "location": {"countryOrRegion": "NG", "city": "Lagos"},
        "status": {"errorCode": 50126}, "riskLevelAggregated": "high",
        "riskEventTypes_v2": ["anonymizedIPAddress", "unfamiliarFeatures"],
        "deviceDetail": {"isCompliant": false}
    });
    let cases = [
        ("signIn.location.countryOrRegion == 'NG'", true),
        ("signIn.location.countryOrRegion in ['US', 'NL']", false),
        (
            "signIn.status.errorCode != 0 && signIn.status.errorCode > 50000",
            true,
        ),
        ("riskAtLeast(signIn.riskLevelAggregated, 'medium')", true),
        ("riskAtLeast(signIn.riskLevelDuringSignIn, 'low')", false),
        ("ipInCidr(signIn.ipAddress, '203.0.113.0/24')", true),
        (
            "ipInCidr(signIn.ipAddress, ['10.0.0.0/8', '2001:db8::/32'])",
            false,
        ),
        (
            "equalsIgnoreCase(signIn.appDisplayName, 'AZURE PORTAL')",
            true,
        ),
        (
            "signIn.appDisplayName.lowerAscii().startsWith('azure')",
            true,
        ),
        ("signIn.userPrincipalName.endsWith('@contoso.com')", true),
        (
            "signIn.userPrincipalName.matches('^[a-z]+@contoso[.]com$')",
            true,
        ),
        ("matches(signIn.location.city, 'lag')", false),
        (
            "signIn.riskEventTypes_v2.exists(t, t == 'anonymizedIPAddress')",
            true,
        ),
        ("signIn.riskEventTypes_v2.all(t, t.contains('IP'))", false),
        (
            "signIn.riskEventTypes_v2.exists_one(t, t.endsWith('Features'))",
            true,
        ),
        ("size(signIn.riskEventTypes_v2) == 2", true),
        ("'unfamiliarFeatures' in signIn.riskEventTypes_v2", true),
        ("!signIn.deviceDetail.isCompliant", true),
        (
            "signIn.isInteractive ? true : signIn.ipAddress + '!' == '203.0.113.50!'",
            true,
        ),
        ("signIn.userPrincipalName.size() > 3", true),
        ("signIn.appId.trim() == ''", true),
    ];
    for (condition, expected) in cases {
        assert_eq!(holds(condition, base.clone()), expected, "{condition}");
    }
}

#[test]
fn absent_fields_read_as_zero_values_and_has_tells_them_apart() {
    let empty = json!({});
    // An absent errorCode reads as 0: has() is how a rule tells "succeeded" from "unknown".
    assert!(holds("signIn.status.errorCode == 0", empty.clone()));
    assert!(!holds(
        "has(signIn.status.errorCode) && signIn.status.errorCode == 0",
        empty.clone()
    ));
    assert!(holds(
        "has(signIn.status.errorCode)",
        json!({"status": {"errorCode": 0}})
    ));
    assert!(!holds("has(signIn.location)", empty.clone()));
    assert!(holds(
        "has(signIn.location)",
        json!({"location": {"city": "x"}})
    ));
    assert!(holds("signIn.ipAddress == ''", empty.clone()));
    assert!(!holds(
        "ipInCidr(signIn.ipAddress, '0.0.0.0/0')",
        empty.clone()
    ));
    assert!(!holds(
        "riskAtLeast(signIn.riskLevelAggregated, 'low')",
        empty.clone()
    ));
    assert!(holds("size(signIn.riskEventTypes_v2) == 0", empty));
}

#[test]
fn user_attributes_come_from_the_directory_and_are_absent_without_it() {
    let set = set(
        "rules:\n  - id: t\n    source: sign_ins\n    condition: >-\n      user.department == 'Finance' && !user.accountEnabled && has(user.accountEnabled)\n      && 'Executives' in user.groups\n    actions: [notify]\n",
    );
    let s = sign_in(json!({}));
    let record = Record::SignIn(&s);
    let facts = UserFacts {
        department: Some("Finance".into()),
        account_enabled: Some(false),
        groups: Some(vec!["Executives".into()]),
        ..UserFacts::default()
    };
    assert_eq!(decide(&set, &record, Some(&facts)), Some(None));
    assert_eq!(decide(&set, &record, None), None);
    assert!(set.reads_user(rules::Source::SignIns));
    assert!(!set.reads_user(rules::Source::RiskyUsers));
}

#[test]
fn each_source_reads_its_own_record() {
    let set = set(
        "rules:\n  - id: u\n    source: risky_users\n    condition: riskyUser.riskLevel == 'high' && riskyUser.riskState == 'atRisk'\n    actions: [revoke_sessions]\n  - id: d\n    source: risk_detections\n    condition: riskDetection.riskEventType in ['leakedCredentials', 'passwordSpray']\n    actions: [notify]\n",
    );
    let user: RiskyUser =
        serde_json::from_value(json!({"id": "u1", "riskLevel": "high", "riskState": "atRisk"}))
            .expect("risky user");
    let detection: RiskDetection =
        serde_json::from_value(json!({"id": "d1", "riskEventType": "passwordSpray"}))
            .expect("detection");
    let ids = |r: &Record<'_>| -> Vec<String> {
        set.evaluate(r)
            .into_iter()
            .map(|m| m.rule.id.clone())
            .collect()
    };
    assert_eq!(ids(&Record::RiskyUser(&user)), ["u"]);
    assert_eq!(ids(&Record::RiskDetection(&detection)), ["d"]);
}

#[test]
fn condition_and_match_must_both_hold() {
    let set = set(
        "rules:\n  - id: t\n    source: sign_ins\n    match: {status: success}\n    condition: signIn.location.countryOrRegion == 'NG'\n    actions: [notify]\n",
    );
    let ok = sign_in(json!({"status": {"errorCode": 0}, "location": {"countryOrRegion": "NG"}}));
    let failed =
        sign_in(json!({"status": {"errorCode": 1}, "location": {"countryOrRegion": "NG"}}));
    assert_eq!(decide(&set, &Record::SignIn(&ok), None), Some(None));
    assert_eq!(decide(&set, &Record::SignIn(&failed), None), None);
}

#[test]
fn lists_inline_and_from_files() {
    let rules_text = "\
lists:
  bad-networks:
    kind: networks
    file: lists/bad.txt
  vips:
    description: people never to contain automatically
    items: [CEO@Contoso.com]
rules:
  - id: t
    source: sign_ins
    condition: inList(signIn.ipAddress, 'bad-networks') && !inList(signIn.userPrincipalName, 'vips')
    actions: [notify]
";
    let rule_file = file("cfg/rules/main.yaml", rules_text);
    assert_eq!(
        required_files(std::slice::from_ref(&rule_file)),
        ["cfg/rules/lists/bad.txt"]
    );
    let list_file = file(
        "cfg/rules/lists/bad.txt",
        "# threat intel\n203.0.113.0/24\n2001:db8:bad::/48  # v6 range\n",
    );
    let set = compile(&[rule_file.clone(), list_file]).unwrap_or_else(|d| panic!("{d}"));
    let from = |ip: &str, upn: &str| {
        let s = sign_in(json!({"ipAddress": ip, "userPrincipalName": upn}));
        decide(&set, &Record::SignIn(&s), None).is_some()
    };
    assert!(from("203.0.113.9", "alex@contoso.com"));
    assert!(from("2001:db8:bad::1", "alex@contoso.com"));
    assert!(!from("203.0.113.9", "ceo@contoso.com"));
    assert!(!from("198.51.100.1", "alex@contoso.com"));

    // The list file was not passed: the error points at `file:`, and rules using the list
    // add no second error about it.
    assert_eq!(
        compile(&[rule_file])
            .expect_err("missing list file")
            .to_string(),
        "cfg/rules/main.yaml:4:11: list file `lists/bad.txt` was not loaded (looked for `cfg/rules/lists/bad.txt`)"
    );
    // A bad item is reported in the list file, at its line.
    let bad = compile(&[
        file("cfg/rules/main.yaml", rules_text),
        file("cfg/rules/lists/bad.txt", "10.0.0.0/8\n\n  10.0.0/40\n"),
    ])
    .expect_err("bad network");
    assert_eq!(
        bad.to_string(),
        "cfg/rules/lists/bad.txt:3:3: invalid IP address or CIDR network `10.0.0/40` (e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32)"
    );
}

#[test]
fn lists_and_macros_are_shared_across_files() {
    let shared = file(
        "shared.yaml",
        "lists:\n  countries:\n    items: [ru, kp]\nmacros:\n  failed: has(signIn.status.errorCode) && signIn.status.errorCode != 0\n  from_watched_country: inList(signIn.location.countryOrRegion, 'countries')\n",
    );
    let rules = file(
        "rules.yaml",
        "rules:\n  - id: t\n    source: sign_ins\n    condition: failed && from_watched_country\n    actions: [notify]\n",
    );
    let set = compile(&[shared, rules]).unwrap_or_else(|d| panic!("{d}"));
    let s = sign_in(json!({"status": {"errorCode": 50126}, "location": {"countryOrRegion": "RU"}}));
    let m = set.evaluate(&Record::SignIn(&s));
    assert_eq!(m.len(), 1);
    // Each macro is a conjunct of its own in the explanation, named by the macro.
    let tests: Vec<&str> = m[0]
        .explanation
        .conditions
        .iter()
        .map(|c| c.test.as_str())
        .collect();
    assert_eq!(tests, ["failed", "from_watched_country"]);
    assert_eq!(
        m[0].explanation.conditions[1].actual,
        json!({"signIn.location.countryOrRegion": "RU"})
    );
}

#[test]
fn editing_a_list_or_macro_changes_the_hash_of_rules_that_use_it() {
    let text = |items: &str, cond: &str| {
        format!(
            "lists:\n  l:\n    items: [{items}]\nmacros:\n  m: '{cond}'\nrules:\n  - id: t\n    source: sign_ins\n    condition: m && inList(signIn.appId, 'l')\n    actions: [notify]\n  - id: other\n    source: sign_ins\n    condition: signIn.appId == 'x'\n    actions: [notify]\n"
        )
    };
    let base = set(&text("a", "signIn.isInteractive"));
    let list_changed = set(&text("b", "signIn.isInteractive"));
    let macro_changed = set(&text("a", "!signIn.isInteractive"));
    assert_ne!(base.rules()[0].hash, list_changed.rules()[0].hash);
    assert_ne!(base.rules()[0].hash, macro_changed.rules()[0].hash);
    assert_eq!(base.rules()[1].hash, list_changed.rules()[1].hash);
}

#[test]
fn exceptions_suppress_and_say_which_held() {
    let set = set("\
lists:
  corporate-egress:
    kind: networks
    items: [198.51.100.0/24]
rules:
  - id: t
    source: sign_ins
    condition: signIn.location.countryOrRegion != 'NL'
    except:
      - name: corporate-vpn
        condition: inList(signIn.ipAddress, 'corporate-egress')
      - name: test-accounts
        condition: signIn.userPrincipalName.startsWith('test-')
    actions: [revoke_sessions]
");
    let vpn = sign_in(json!({"ipAddress": "198.51.100.7", "location": {"countryOrRegion": "US"}}));
    let plain = sign_in(json!({"ipAddress": "203.0.113.7", "location": {"countryOrRegion": "US"}}));
    assert_eq!(
        decide(&set, &Record::SignIn(&vpn), None),
        Some(Some("corporate-vpn".to_string()))
    );
    assert_eq!(decide(&set, &Record::SignIn(&plain), None), Some(None));
    // `evaluate` (no window state, no directory) leaves suppressed matches out.
    assert!(set.evaluate(&Record::SignIn(&vpn)).is_empty());
    let m = set.evaluate_with(&Record::SignIn(&vpn), None, &mut WindowState::new());
    let exception = m[0]
        .explanation
        .exception
        .as_ref()
        .expect("exception explained");
    assert_eq!(exception.name, "corporate-vpn");
    assert!(
        m[0].explanation
            .summary
            .contains("suppressed by exception corporate-vpn")
    );
}

#[test]
fn mistakes_are_load_errors_at_their_place() {
    let cases: [(&str, &str); 14] = [
        (
            "signIn.ipAdress == '1.2.3.4'",
            "t.yaml:4:24: `signIn` has no field `ipAdress` (did you mean `ipAddress`?), expected one of:",
        ),
        (
            "signIn.status.errorCode == '0'",
            "t.yaml:4:41: `==` compares values of one type, found int and string",
        ),
        (
            "riskyUser.riskLevel == 'high'",
            "t.yaml:4:17: `riskyUser` is not available to rules of source `sign_ins`: they read `signIn` and `user`",
        ),
        (
            "signIn.riskLevelAggregated == 'hgh'",
            "t.yaml:4:47: `signIn.riskLevelAggregated` is never `hgh` (did you mean `high`?)",
        ),
        (
            "inList(signIn.ipAddress, 'nope')",
            "t.yaml:4:42: unknown list `nope`; no lists are defined",
        ),
        (
            "ipInCidr(signIn.ipAddress, '10.0.0/40')",
            "t.yaml:4:44: invalid IP address or CIDR network `10.0.0/40`",
        ),
        (
            "signIn.appId.matches('(')",
            "t.yaml:4:38: invalid regular expression:",
        ),
        (
            "riskAtLeast(signIn.riskState, 'severe')",
            "t.yaml:4:47: unknown risk level `severe`, expected one of: low, medium, high",
        ),
        (
            "frobnicate(signIn.appId)",
            "t.yaml:4:27: unknown function `frobnicate`",
        ),
        (
            "signIn.appId",
            "t.yaml:4:23: a condition must be a bool, this is a string",
        ),
        (
            "signIn.status.errorCode + 1 > 2",
            "t.yaml:4:41: `+` joins two strings; arithmetic is not supported in conditions",
        ),
        (
            "signIn.appId == null",
            "t.yaml:4:33: `null` is not a value here",
        ),
        (
            "signIn.riskEventTypes_v2[0] == 'x'",
            "t.yaml:4:41: indexing is not supported",
        ),
        (
            "signIn.appId == 'x' &&",
            "t.yaml:4:39: syntax error in condition: mismatched input '<EOF>'",
        ),
    ];
    for (condition, expected) in cases {
        let got = errors(&sign_in_rule(condition));
        assert!(
            got.starts_with(expected),
            "{condition}\n  got: {got}\n want: {expected}"
        );
    }
}

#[test]
fn positions_inside_block_scalars_and_macros() {
    let text = "\
macros:
  broken: signIn.nope == 1
  fine: signIn.isInteractive
rules:
  - id: t
    source: sign_ins
    condition: |
      fine &&
        signIn.location.country == 'NL'
    actions: [notify]
  - id: u
    source: risky_users
    condition: fine
    actions: [notify]
";
    assert_eq!(
        errors(text),
        "t.yaml:2:18: `signIn` has no field `nope`, expected one of: id, createdDateTime, userId, userPrincipalName, userDisplayName, appId, appDisplayName, ipAddress, clientAppUsed, isInteractive, resourceId, resourceDisplayName, userAgent, correlationId, homeTenantId, conditionalAccessStatus, riskLevelAggregated, riskLevelDuringSignIn, riskState, riskDetail, riskEventTypes, riskEventTypes_v2, location, status, deviceDetail\n\
t.yaml:9:25: `signIn.location` has no field `country` (did you mean `countryOrRegion`?), expected one of: city, state, countryOrRegion\n\
t.yaml:13:16: macro `fine` cannot be used here: `signIn` is not available to rules of source `risky_users`: they read `riskyUser` and `user`"
    );
}

#[test]
fn macro_cycles_and_names_are_checked() {
    let text = "macros:\n  a: b\n  b: a\n  signIn: signIn.isInteractive\n";
    let got = errors(text);
    assert_eq!(
        got,
        "t.yaml:2:6: macro `a` is defined in terms of itself (a -> b -> a)\n\
t.yaml:4:3: macro name `signIn` is already a name in conditions; pick another"
    );
}

#[test]
fn duplicate_names_across_files_name_the_first() {
    let a = file(
        "a.yaml",
        "lists:\n  l:\n    items: [x]\nmacros:\n  m: signIn.isInteractive\n",
    );
    let b = file(
        "b.yaml",
        "lists:\n  l:\n    items: [y]\nmacros:\n  m: signIn.isInteractive\n",
    );
    assert_eq!(
        compile(&[a, b]).expect_err("duplicates").to_string(),
        "b.yaml:2:3: list `l` is defined twice, first at a.yaml:2:3\nb.yaml:5:3: macro `m` is defined twice, first at a.yaml:5:3"
    );
}

#[test]
fn exception_and_list_shape_errors() {
    let text = "\
lists:
  both:
    items: [a]
    file: x.txt
  Bad:
    items: [a]
rules:
  - id: t
    source: sign_ins
    condition: signIn.isInteractive
    except:
      - name: e
        condition: signIn.appId == 1
      - name: e
        condition: 'true'
    actions: [notify]
";
    let got = errors(text);
    assert_eq!(
        got,
        "t.yaml:2:3: list `both` has both `items` and `file`: give one\n\
t.yaml:5:3: invalid list name `Bad`: use lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit\n\
t.yaml:13:33: `==` compares values of one type, found string and int\n\
t.yaml:14:15: exception `e` is listed twice in this rule"
    );
}
