//! `revokd check --test`: the test cases rule files carry are run; a failing case is reported
//! with its file and line and makes the command fail.

mod support;

use std::path::Path;
use std::process::Output;

use support::revokd;

const CONFIG: &str = "\
store:
  path: audit.db
rules:
  files: [rules]
tenants:
  - tenant_id: 00000000-0000-4000-8000-000000000001
    auth:
      client_id: app
      client_secret: not-a-real-secret
";

fn check_test(dir: &Path) -> Output {
    revokd()
        .current_dir(dir)
        .args(["check", "--config", "revokd.yaml", "--test"])
        .env_remove("REVOKD__STORE__PATH")
        .output()
        .expect("revokd runs")
}

fn workspace(rules: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("revokd.yaml"), CONFIG).expect("write config");
    std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
    std::fs::write(dir.path().join("rules/main.yaml"), rules).expect("write rules");
    dir
}

#[test]
fn the_shipped_pack_passes_its_own_tests() {
    let out = revokd()
        .args(["check", "--config", "config/revokd.example.yaml", "--test"])
        .output()
        .expect("revokd runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rule tests: 28 passed, 0 failed"),
        "{stdout}"
    );
    assert!(!stdout.contains("rules without tests"), "{stdout}");
}

#[test]
fn a_failing_case_names_its_place_and_fails_the_command() {
    let rules = "\
rules:
  - id: high-risk-users
    source: risky_users
    condition: riskyUser.riskLevel == 'high'
    actions: [revoke_sessions]
    tests:
      - name: high is contained
        input: {id: u1, riskLevel: high}
        expect: match
      - name: wrongly expects medium to match
        input: {id: u2, userPrincipalName: pat@contoso.com, riskLevel: medium}
        expect: match
";
    let dir = workspace(rules);
    let out = check_test(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let failure = stdout
        .lines()
        .find(|l| l.contains("wrongly expects"))
        .unwrap_or_else(|| panic!("no failure line in:\n{stdout}"));
    assert!(
        failure.ends_with(
            "rules/main.yaml:10:9: rule high-risk-users test \"wrongly expects medium to match\": expected match, got no_match: high-risk-users did not match risky user pat@contoso.com, failed: riskyUser.riskLevel == 'high' [riskyUser.riskLevel=medium]"
        ),
        "{failure}"
    );
    assert!(
        stdout.contains("rule tests: 1 passed, 1 failed"),
        "{stdout}"
    );

    // Without --test the same rules are valid.
    let out = revokd()
        .current_dir(dir.path())
        .args(["check", "--config", "revokd.yaml"])
        .output()
        .expect("revokd runs");
    assert!(out.status.success());
}

#[test]
fn a_malformed_case_is_a_load_error() {
    let rules = "\
rules:
  - id: r
    source: sign_ins
    condition: signIn.isInteractive
    actions: [notify]
    tests:
      - name: no createdDateTime
        input: {id: s1, userId: u1}
        expect: match
";
    let dir = workspace(rules);
    let out = check_test(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("rules/main.yaml:8:16: test record is not a valid sign_ins record: missing field `createdDateTime`"),
        "{stderr}"
    );
}
